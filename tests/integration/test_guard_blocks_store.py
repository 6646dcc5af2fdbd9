"""The GuardBlockStore contract (pumping protection's prefix blocks), on Azurite and the in-memory fake alike."""
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain.pumping import PrefixBlock
from sms.storage.guard_blocks import TableGuardBlockStore
from tests.fakes import InMemoryGuardBlockStore
from tests.integration.both_ways import BOTH, store_under_test

T0 = datetime(2026, 12, 6, 21, 0, tzinfo=timezone.utc)
A, B = "a" * 32, "b" * 32


def block(licensee: str, prefix: str, minutes: int = 30, comm_id: str | None = "c" * 32) -> PrefixBlock:
    return PrefixBlock(licensee, prefix, T0, T0 + timedelta(minutes=minutes), 40, 2, timedelta(hours=1), comm_id)


@pytest.fixture(params=BOTH)
async def store(request, emulator, unique_name):
    async with store_under_test(request.param, emulator.connection_string, InMemoryGuardBlockStore, TableGuardBlockStore,
                                unique_name("blocks")) as chosen:
        yield chosen


async def test_blocks_read_back_by_licensee_while_live_and_the_index_marks_who_has_any(store):
    await store.put(block(A, "+4479461"))
    await store.put(block(A, "+1202555", minutes=10, comm_id=None))
    await store.put(block(B, "+6149157", minutes=5))
    assert await store.licensees(T0) == {A, B}
    assert await store.licensees(T0 + timedelta(minutes=5)) == {A}  # B's only block ended
    assert await store.licensees(T0 + timedelta(minutes=30)) == set()
    live = await store.live(A, T0 + timedelta(minutes=1))
    assert sorted(live, key=lambda b: b.prefix) == [block(A, "+1202555", minutes=10, comm_id=None), block(A, "+4479461")]
    assert [b.prefix for b in await store.live(A, T0 + timedelta(minutes=10))] == ["+4479461"]


async def test_a_later_block_keeps_the_mark_as_late_as_its_latest_block(store):
    await store.put(block(A, "+4479461", minutes=30))
    await store.put(block(A, "+4479462", minutes=10))  # ends sooner: the mark still covers the first
    assert await store.licensees(T0 + timedelta(minutes=20)) == {A}


async def test_a_lift_removes_one_block(store):
    await store.put(block(A, "+4479461"))
    assert await store.lift(A, "+4479461") is True
    assert await store.lift(A, "+4479461") is False
    assert await store.live(A, T0) == []


async def test_purge_removes_what_ended_and_keeps_what_lives(store):
    await store.put(block(A, "+4479461", minutes=30))
    await store.put(block(B, "+6149157", minutes=5))
    assert await store.purge(T0 + timedelta(minutes=5)) == 2  # B's block and B's mark
    assert await store.licensees(T0) == {A}
    assert [b.prefix for b in await store.live(A, T0)] == ["+4479461"]


async def test_two_workers_marking_one_licensee_at_once_leave_the_later_end(emulator, unique_name):
    """A worker reads the licensee's mark, another writes a later one before the first writes its own: the
    first's write must not put the earlier end back (the later block would go unobeyed once it passed)."""
    from azure.data.tables.aio import TableServiceClient

    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = service.get_table_client(unique_name("blocks"))
        first, second = TableGuardBlockStore(table), TableGuardBlockStore(table)
        await first.create_table()
        await first.put(block("L1", "+4479461", minutes=10))
        read = table.get_entity
        raced = []

        async def read_then_race(*args, **kwargs):
            row = await read(*args, **kwargs)
            if not raced:  # the other worker's later block lands between this read and this write
                raced.append(True)
                await second.put(block("L1", "+4479462", minutes=60))
            return row

        table.get_entity = read_then_race
        await first.put(block("L1", "+4479463", minutes=30))
        table.get_entity = read
        assert raced
        assert await first.licensees(T0 + timedelta(minutes=45)) == {"L1"}  # marked until the later block's end
        assert {b.prefix for b in await first.live("L1", T0 + timedelta(minutes=45))} == {"+4479462"}
