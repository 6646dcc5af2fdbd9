"""The sweeper's index on the Table service (sms/storage/pending.py): marks written behind and read by
time bucket, and a sweep that reads one message's partition at a time, never the whole messages table."""
import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from azure.data.tables.aio import TableServiceClient

from sms.domain.commands import Party, SendMessage
from sms.domain.model import SendJob, Status, utcnow
from sms.storage import PendingMark
from sms.storage.pending import SHARDS, TablePendingIndex, bucket, partition
from sms.storage.tables import TableMessageStore
from tests.fakes import LICENSEE, InMemoryJobQueue, RecordingProvider, assembled

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)


def test_a_mark_goes_in_the_bucket_its_due_time_rounds_up_to():
    assert bucket(T0) == "202612061000"
    assert bucket(T0 + timedelta(microseconds=1)) == "202612061005"
    assert bucket(T0 + timedelta(minutes=4, seconds=59)) == "202612061005"
    assert bucket(datetime(2026, 12, 6, 21, 3, tzinfo=timezone(timedelta(hours=11)))) == "202612061005"  # in UTC
    assert {partition(f"{i:032x}", T0).split("-")[0] for i in range(200)} == {str(s) for s in range(SHARDS)}


async def index_on(service: TableServiceClient, name: str, **options) -> TablePendingIndex:
    index = TablePendingIndex(service.get_table_client(name), **options)
    await index.create_table()
    return index


async def test_marks_are_written_behind_without_a_flush_and_read_back_when_due(table_service, unique_name):
    index = await index_on(table_service, unique_name("pending"), flush_after=0.05)
    ids = [f"{i:032x}" for i in range(250)]  # more than one transaction's 100 in some partitions
    for i, comm_id in enumerate(ids):
        index.note(comm_id, T0 + timedelta(minutes=i % 20))

    async with asyncio.timeout(10):
        while len(await index.due(T0 + timedelta(hours=1), 1000)) < len(ids):
            await asyncio.sleep(0.05)

    due = await index.due(T0 + timedelta(minutes=7), 1000)
    assert sorted(m.comm_id for m in due) == sorted(c for i, c in enumerate(ids) if i % 20 <= 7)
    assert [m.due for m in due] == sorted(m.due for m in due)  # oldest first
    assert len(await index.due(T0 + timedelta(minutes=7), 10)) == 10


async def test_a_mark_moved_is_due_at_its_new_time_only_and_done_twice_is_no_error(table_service, unique_name):
    index = await index_on(table_service, unique_name("pending"))
    index.note("a" * 32, T0)
    index.note("b" * 32, T0)
    await index.flush()
    a, b = sorted(await index.due(T0, 10), key=lambda m: m.comm_id)

    await index.moved([(a, T0 + timedelta(minutes=30))])
    await index.done([b])
    await index.done([b])  # a sweep stopped part-way, run again: the mark is gone already

    assert await index.due(T0 + timedelta(minutes=29), 10) == []
    [again] = await index.due(T0 + timedelta(minutes=30), 10)
    assert (again.comm_id, again.due) == ("a" * 32, T0 + timedelta(minutes=30))


async def test_marks_a_flush_could_not_write_are_kept_and_written_by_the_next(table_service, unique_name):
    name = unique_name("pending")
    index = TablePendingIndex(table_service.get_table_client(name), flush_after=3600)
    index.note("c" * 32, T0)
    await index.flush()  # the table is missing: Azure refuses the transaction

    await index.create_table()
    assert await index.due(T0, 10) == []
    await index.flush()
    assert [m.comm_id for m in await index.due(T0, 10)] == ["c" * 32]


class Requests:
    """What the storage client sent: (method, table, $filter) of each request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, response) -> None:
        url = urlsplit(response.http_request.url)
        table = url.path.rsplit("/", 1)[-1].split("(")[0]
        self.seen.append((response.http_request.method, table, parse_qs(url.query).get("$filter", [""])[0]))


async def test_a_sweep_reads_due_marks_and_their_messages_partitions_never_a_filter_over_every_message(emulator, unique_name):
    requests = Requests()
    async with TableServiceClient.from_connection_string(emulator.connection_string, raw_response_hook=requests) as service:
        messages_table = unique_name("messages")
        store = TableMessageStore(service.get_table_client(messages_table))
        await store.create_table()
        index = await index_on(service, unique_name("pending"))
        await index.mark_backfilled()  # a deployment whose one scan (of what came before the index) is done
        use = assembled(store, InMemoryJobQueue(), RecordingProvider(), pending=index)
        to = lambda *numbers: tuple(Party(phone_number=n) for n in numbers)  # noqa: E731
        left = await use.accept.queue(SendMessage(to=to(*(f"+614123{i:05d}" for i in range(120))), body="Hi"), LICENSEE)
        retrying = await use.accept.queue(SendMessage(to=to("+61412399999"), body="Hi"), LICENSEE)
        await index.flush()
        two_hours_ago = utcnow() - timedelta(hours=2)
        _, rows = await store.load(left.comm_id)
        await store.update_recipients(left.comm_id, [replace(r, updated_at=two_hours_ago) for r in rows[:2]]
                                      + [replace(r, updated_at=two_hours_ago, last_error="429: retry pending") for r in rows[2:3]]
                                      + [replace(r, updated_at=two_hours_ago, status=Status.SENDING) for r in rows[110:111]])
        _, [row] = await store.load(retrying.comm_id)
        await store.update_recipients(retrying.comm_id, [replace(row, updated_at=two_hours_ago, last_error="429: retry pending")])

        jobs = InMemoryJobQueue()
        later = assembled(store, jobs, RecordingProvider(), pending=index, clock=lambda: utcnow() + timedelta(minutes=6))
        requests.seen.clear()
        swept = await later.sweep.run()

        assert swept == [SendJob(left.comm_id, 0, 99), SendJob(left.comm_id, 100, 199)]  # none for the retry pending
        assert [job for job, _ in jobs.jobs] == swept
        on_messages = [(method, f) for method, table, f in requests.seen if table == messages_table]
        assert sorted(on_messages) == sorted(("GET", f"PartitionKey eq '{c}'") for c in (left.comm_id, retrying.comm_id))
        still = await index.due(utcnow() + timedelta(hours=1), 10)
        assert {m.comm_id for m in still} == {left.comm_id, retrying.comm_id}  # both still pending: looked at again


async def test_the_one_scan_finds_only_messages_with_something_to_send(table_service, unique_name):
    store = TableMessageStore(table_service.get_table_client(unique_name("messages")))
    await store.create_table()
    use = assembled(store, InMemoryJobQueue(), RecordingProvider())
    waiting = await use.accept.queue(SendMessage(to=(Party(phone_number="+61412300001"),), body="Hi"), LICENSEE)
    done = await use.accept.queue(SendMessage(to=(Party(phone_number="+61412300002"),), body="Hi"), LICENSEE)
    await use.dispatch.dispatch(SendJob(done.comm_id, 0, 99))
    assert await store.unfinished() == [waiting.comm_id]


def test_marks_from_another_shard_or_the_backfill_row_are_never_in_a_shards_range():
    mark = PendingMark("d" * 32, T0, partition("d" * 32, T0))
    shard = mark.where.split("-")[0]
    assert f"{shard}-" <= mark.where < f"{shard}-{bucket(T0)}~"
    assert not f"{shard}-" <= "~backfilled" < f"{shard}-{bucket(T0)}~"
