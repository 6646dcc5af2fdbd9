from datetime import timedelta

import pytest

from sms.domain.model import utcnow
from sms.storage import IdempotencyRecord
from sms.storage.idempotency import TableIdempotencyStore


@pytest.fixture
async def keys(table_service, unique_name):
    store = TableIdempotencyStore(table_service.get_table_client(unique_name("idem")))
    await store.create_table()
    return store


def record(key="k1", licensee="a" * 32, comm_id="1" * 32, request_hash="h1"):
    now = utcnow()
    return IdempotencyRecord(licensee, key, request_hash, comm_id, now, now + timedelta(hours=24))


async def test_the_first_claim_wins_and_later_ones_see_it(keys):
    assert await keys.claim(record()) is None
    existing = await keys.claim(record(comm_id="2" * 32, request_hash="h2"))
    assert (existing.comm_id, existing.request_hash, existing.etag is not None) == ("1" * 32, "h1", True)
    assert await keys.claim(record(licensee="b" * 32)) is None  # another licensee's key of the same name


async def test_only_one_taker_replaces_an_expired_record(keys):
    await keys.claim(record())
    existing = await keys.claim(record())
    assert await keys.take_over(existing, record(comm_id="3" * 32)) is True
    assert await keys.take_over(existing, record(comm_id="4" * 32)) is False  # its ETag is stale now
    assert (await keys.claim(record())).comm_id == "3" * 32


async def test_the_raw_key_is_not_stored(keys):
    await keys.claim(record(key="customer-secret-ish-key"))
    rows = [e async for e in keys._table.list_entities()]
    assert all("customer-secret-ish-key" not in str(dict(e)) for e in rows)


async def test_a_refused_request_releases_its_own_claim_and_no_one_elses(keys):
    """Issue 23, item 3: a request refused before storing anything frees its key for the corrected one."""
    mine = record(comm_id="5" * 32)
    assert await keys.claim(mine) is None
    await keys.release(record(comm_id="6" * 32))  # another request's record of the same key: not ours to remove
    assert (await keys.claim(record(comm_id="7" * 32))).comm_id == "5" * 32
    await keys.release(mine)
    assert await keys.claim(record(comm_id="8" * 32)) is None  # the key is free again
    await keys.release(record(key="never-claimed"))  # nothing there: no error


class BeforeEachDelete:
    """A table client that runs `meanwhile` before each delete it passes on: another request's write
    landing between the purge's read and its delete. Everything else goes to the real table."""

    def __init__(self, table, meanwhile):
        self._table, self._meanwhile = table, meanwhile

    def __getattr__(self, name):
        return getattr(self._table, name)

    async def delete_entity(self, *args, **kwargs):
        await self._meanwhile()
        return await self._table.delete_entity(*args, **kwargs)


async def test_the_purge_removes_expired_records_and_never_one_taken_over_since_it_read_it(keys):
    """Issue 25: expired records are purged; one a new request took over between the purge's read and
    its delete is that request's now, and stays (the delete is conditional on the ETag read)."""
    now = utcnow()
    expired = IdempotencyRecord("a" * 32, "old", "h1", "1" * 32, now - timedelta(hours=25), now - timedelta(hours=1))
    taken = IdempotencyRecord("a" * 32, "reused", "h1", "2" * 32, now - timedelta(hours=25), now - timedelta(hours=1))
    live = record(key="live")
    for r in (expired, taken, live):
        assert await keys.claim(r) is None
    taken_over = record(key="reused", comm_id="3" * 32)

    async def take_over_once():
        if (current := await keys.claim(taken)).comm_id == taken.comm_id:
            assert await keys.take_over(current, taken_over)

    racing = TableIdempotencyStore(BeforeEachDelete(keys._table, take_over_once))
    assert sum([await racing.purge_expired(now, share, 4) for share in range(4)]) == 1
    assert await keys.claim(record(key="old", comm_id="4" * 32)) is None  # gone: a new request's
    assert (await keys.claim(record(key="reused"))).comm_id == "3" * 32
    assert (await keys.claim(record(key="live", comm_id="5" * 32))).comm_id == "1" * 32
