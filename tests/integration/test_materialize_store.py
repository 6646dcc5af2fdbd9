"""A one-call accept's job at the worker (issue 30), on Azurite's Table service: one set of rows however the job is
run (again, twice at once, after a worker died between its writes, after a write whose answer was lost), a cancel's
gate before the rows cancels every recipient, and a parked job ends every recipient failed. Counts asserted:
provider calls per recipient, rows in the partition, each row's status and attempts."""
import asyncio

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import Settings
from sms.dev.host.app import QueueTrigger
from sms.dev.host.queues import QueueListener, QueueSemantics
from sms.domain.errors import StorageUnavailable
from sms.domain.jobs import GATE_CANCELLED, GATE_MATERIALIZED
from sms.domain.model import Status, utcnow
from sms.domain.transitions import CANCELLED, OUTCOME_UNKNOWN
from sms.entrypoints import worker as worker_functions
from sms.storage.queues import StorageWholeJobQueue, queue_client
from sms.storage.tables import MESSAGES_TABLE
from sms.usecases.dispatch import RecipientsInFlight
from tests.fakes import DiesAfterTaking, InMemoryJobQueue, RecordingProvider, age_claims, assembled, whole_job
from tests.integration.test_faults import AnswerLosingProxy

LICENSEE, OTHER = "e0" * 16, "e1" * 16
REASON = "Gave up after 5 failed attempts to run its send job"


def numbers(prefix: int, count: int) -> list[str]:
    return [f"+614{prefix:03d}{i:05d}" for i in range(count)]


def worker(store, provider):
    """One worker process's use cases over the real message store (the rest in memory)."""
    return assembled(store, InMemoryJobQueue(), provider, missing_message_wait=0).dispatch


async def partition(connection: str, comm_id: str) -> dict[str, dict]:
    """Every row of the message's partition as stored, by RowKey: what no reader of ours filters."""
    async with TableServiceClient.from_connection_string(connection) as tables:
        return {e["RowKey"]: e async for e in tables.get_table_client(MESSAGES_TABLE).query_entities(
            "PartitionKey eq @pk", parameters={"pk": comm_id})}


@pytest.mark.parametrize("count", [3, 98])
async def test_a_redelivered_job_finds_its_rows_and_sends_nothing_again(adapters, emulator, count):
    """98 recipients: the most the one transaction holds beside the message row and gate."""
    to, provider = numbers(300 + count, count), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    for _ in range(2):
        await worker(adapters.messages, provider).dispatch_whole(job)
    assert sorted(provider.calls) == sorted(to)
    rows = await partition(emulator.connection_string, job.message.comm_id)
    assert len(rows) == count + 2 and rows["gate"]["State"] == GATE_MATERIALIZED
    assert {(e["Status"], e["Attempts"]) for key, e in rows.items() if key.startswith("r")} == {("sent", 1)}


@pytest.mark.parametrize("count", [5, 98])
async def test_two_workers_on_one_job_write_one_set_of_rows_and_send_each_recipient_once(adapters, emulator, count):
    to = numbers(400 + count, count)
    provider = RecordingProvider(delay=0.005)
    job = whole_job(*to, licensee=LICENSEE)
    results = await asyncio.gather(worker(adapters.messages, provider).dispatch_whole(job),
                                   worker(adapters.messages, provider).dispatch_whole(job), return_exceptions=True)
    assert all(not isinstance(r, BaseException) or isinstance(r, RecipientsInFlight) for r in results), results
    # Whatever one stepped aside from or found in flight, its redelivery finishes (nothing is sent twice).
    await worker(adapters.messages, provider).dispatch_whole(job)
    assert sorted(provider.calls) == sorted(to)
    rows = await partition(emulator.connection_string, job.message.comm_id)
    assert len(rows) == count + 2
    assert {(e["Status"], e["Attempts"]) for key, e in rows.items() if key.startswith("r")} == {("sent", 1)}


async def test_a_worker_that_died_after_writing_the_rows_leaves_them_to_the_jobs_next_run(adapters):
    """The rows' write landed, then the worker died in a provider call: the job's next run meets a 409, reads the
    rows and goes on from them. What was sent stays sent, the claim the dead worker left is traced once its lease is
    over (this provider cannot say: outcome unknown), and nothing is sent twice."""
    to = numbers(501, 3)

    crashed, after_restart = DiesAfterTaking(to[1]), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    with pytest.raises(asyncio.CancelledError):
        await worker(adapters.messages, crashed).dispatch_whole(job)
    with pytest.raises(RecipientsInFlight):  # redelivered inside the lease: handed back
        await worker(adapters.messages, after_restart).dispatch_whole(job)
    await age_claims(adapters.messages, job.message.comm_id)  # past the lease
    await worker(adapters.messages, after_restart).dispatch_whole(job)

    assert sorted(crashed.calls) == sorted(to) and after_restart.calls == []
    _, rows = await adapters.messages.load(job.message.comm_id)
    assert [(r.status, r.last_error) for r in rows] == [(Status.SENT, None), (Status.FAILED, OUTCOME_UNKNOWN), (Status.SENT, None)]


async def test_a_write_whose_answer_was_lost_is_found_by_the_jobs_next_run(emulator):
    """The rows' transaction lands and the connection drops before its answer: the insert is not sent again (it
    may have landed), so the run fails and the queue runs the job again, whose write meets a 409 and goes on from
    the rows as stored. Counts: 1 answer lost, 1 provider call per recipient."""
    to, provider = numbers(502, 4), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    async with AnswerLosingProxy(emulator.table_port, marker=b'"materialized"') as proxy:
        proxied = emulator.connection_string.replace(f":{emulator.table_port}/", f":{proxy.port}/")
        gateway = build(Settings.from_env({"AzureWebJobsStorage": proxied}))
        try:
            await gateway.ensure_storage()
            with pytest.raises(StorageUnavailable):
                await worker(gateway.messages, provider).dispatch_whole(job)
            assert provider.calls == []
            await worker(gateway.messages, provider).dispatch_whole(job)
        finally:
            await gateway.close()
    assert proxy.lost == 1
    assert sorted(provider.calls) == sorted(to)
    rows = await partition(emulator.connection_string, job.message.comm_id)
    assert {(e["Status"], e["Attempts"]) for key, e in rows.items() if key.startswith("r")} == {("sent", 1)}


@pytest.mark.parametrize("count", [3, 98])
async def test_a_cancel_before_the_rows_cancels_every_recipient(adapters, emulator, count):
    to, provider = numbers(600 + count, count), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    await adapters.messages.close_gate(job.message.comm_id, LICENSEE, utcnow())
    await worker(adapters.messages, provider).dispatch_whole(job)
    await worker(adapters.messages, provider).dispatch_whole(job)  # and a redelivery
    assert provider.calls == []
    rows = await partition(emulator.connection_string, job.message.comm_id)
    assert len(rows) == count + 2 and rows["gate"]["State"] == GATE_CANCELLED
    assert {(e["Status"], e["Attempts"]) for key, e in rows.items() if key.startswith("r")} == {("cancelled", 0)}


async def test_another_licensees_cancel_leaves_the_message_to_be_sent(adapters):
    to, provider = numbers(701, 3), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    await adapters.messages.close_gate(job.message.comm_id, OTHER, utcnow())
    await worker(adapters.messages, provider).dispatch_whole(job)
    assert sorted(provider.calls) == sorted(to)


@pytest.mark.parametrize("cancelled", [False, True])
async def test_a_parked_job_whose_rows_were_never_written_ends_every_recipient_final(adapters, emulator, cancelled):
    to, provider = numbers(801 + cancelled, 98), RecordingProvider()
    job = whole_job(*to, licensee=LICENSEE)
    if cancelled:
        await adapters.messages.close_gate(job.message.comm_id, LICENSEE, utcnow())
    await worker(adapters.messages, provider).give_up_whole(job, REASON)
    await worker(adapters.messages, provider).dispatch_whole(job)  # a copy of the job left behind sends nothing
    assert provider.calls == []
    rows = await partition(emulator.connection_string, job.message.comm_id)
    ended = {(e["Status"], e["Attempts"], e.get("LastError")) for key, e in rows.items() if key.startswith("r")}
    assert len(rows) == 100
    assert ended == ({("cancelled", 0, CANCELLED)} if cancelled else {("failed", 0, REASON)})


async def test_a_parked_job_whose_rows_exist_fails_only_what_is_still_waiting(adapters):
    to = numbers(803, 3)
    job = whole_job(*to, licensee=LICENSEE)
    await worker(adapters.messages, RecordingProvider(raise_for={to[1]})).dispatch_whole(job)
    rows = await worker(adapters.messages, RecordingProvider()).give_up_whole(job, REASON)
    assert [(r.status, r.attempts) for r in rows] == [(Status.SENT, 1), (Status.FAILED, 1), (Status.SENT, 1)]
    assert rows[1].last_error == REASON


async def test_a_whole_job_that_keeps_failing_is_parked_and_its_rows_written_failed(adapters, emulator, unique_name, monkeypatch):
    """Through the queue adapter's put (base64, never expiring), the dev host's queue listener and the app's real
    accept_job and accept_job_poison: the job is the message's only copy, and parking it still ends every recipient."""
    gateway = adapters.gateway()

    async def the_gateway():
        return gateway

    app = func.FunctionApp()
    app.register_functions(worker_functions.blueprint(the_gateway))
    functions = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}

    async def storage_keeps_failing(job):
        raise StorageUnavailable()

    monkeypatch.setattr(gateway.use.dispatch, "dispatch_whole", storage_keeps_failing)
    job = whole_job(*numbers(901, 2), licensee=LICENSEE)
    name = unique_name("accept")
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        queue = StorageWholeJobQueue(service, name, "base64")
        await queue.create_queue()
        await queue.put(job)
        poison = queue_client(service, f"{name}-poison", "base64")
        semantics = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.1, visibility_timeout=0, max_dequeue_count=3)
        runner = QueueListener(QueueTrigger("accept_job", name, "AzureWebJobsStorage", "msg", functions["accept_job"]),
                               service.get_queue_client(name), service.get_queue_client(f"{name}-poison"), semantics)
        parked_runner = QueueListener(
            QueueTrigger("accept_job_poison", f"{name}-poison", "AzureWebJobsStorage", "msg", functions["accept_job_poison"]),
            service.get_queue_client(f"{name}-poison"), None, semantics)  # a poison queue has no poison queue
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(parked_runner.run())]
        async with asyncio.timeout(30):
            while await adapters.messages.load(job.message.comm_id) is None:
                await asyncio.sleep(0.1)
        runner.stop()
        parked_runner.stop()
        await asyncio.gather(*tasks)
        assert await queue_client(service, name, "base64").peek_messages() == [] and await poison.peek_messages() == []
    _, rows = await adapters.messages.load(job.message.comm_id)
    assert [(r.status, r.attempts, r.last_error) for r in rows] == [(Status.FAILED, 0, REASON)] * 2
