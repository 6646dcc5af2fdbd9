"""Fault injection against real Azurite: each fault, and exact counts of what happened.

Counts asserted: provider calls per recipient, records in the table, messages in each queue.
"""
import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import timedelta

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import SEND_QUEUE, Settings
from sms.dev import azurite
from sms.dev.host.app import QueueTrigger
from sms.dev.host.queues import QueueListener, QueueSemantics
from sms.domain.errors import StorageUnavailable
from sms.domain.model import SendJob, Status
from sms.domain.transitions import OUTCOME_UNKNOWN
from sms.entrypoints import worker
from sms.storage.queues import queue_client
from sms.storage.tables import MESSAGES_TABLE
from sms.usecases.dispatch import MessageNotWritten, RecipientsInFlight
from tests.fakes import InMemoryJobQueue, RecordingProvider, SmsOverCommands, age_claims, assembled, command, sms_over
from tests.integration.test_batch import DroppingProxy

LICENSEE = "f0" * 16


def request(*numbers):
    return command(*numbers, body="Fault test")


def numbers(prefix: int, count: int) -> list[str]:
    return [f"+614{prefix:03d}{i:05d}" for i in range(count)]


def service_over(gw, provider, **options) -> SmsOverCommands:
    """The use cases on the gateway's real Azure stores with a recording provider (one 'worker process')."""
    return sms_over(gw.messages, gw.jobs, provider, missing_message_wait=0, **options)


@pytest.fixture
def gw(adapters):
    """The real adapters over the session's Azurite (tests/integration/conftest.py)."""
    return adapters


async def queued_jobs(connection: str, queue: str, comm_id: str) -> list[SendJob]:
    async with QueueServiceClient.from_connection_string(connection) as service:
        client = queue_client(service, queue, "base64")
        return [job for m in await client.peek_messages(max_messages=32) if (job := SendJob.from_json(m.content)).comm_id == comm_id]


async def test_two_workers_on_the_same_job_call_the_provider_once_per_recipient(gw):
    provider = RecordingProvider(delay=0.02)
    worker_a, worker_b = service_over(gw, provider), service_over(gw, provider)
    to = numbers(101, 40)
    response = await worker_a.accept(request(*to), LICENSEE)
    job = SendJob(response.comm_id, 0, 99)

    results = await asyncio.gather(worker_a.dispatch(job), worker_b.dispatch(job), return_exceptions=True)
    assert all(r is None or isinstance(r, (list, RecipientsInFlight)) for r in results)
    await worker_b.dispatch(job)  # the queue's redelivery of whichever handed it back

    assert sorted(s.to for s in provider.sent) == sorted(to)
    _, recipients = await gw.messages.load(response.comm_id)
    assert {r.status for r in recipients} == {Status.SENT} and {r.attempts for r in recipients} == {1}


async def test_a_job_redelivered_after_a_crash_mid_send_sends_nothing_twice(gw):
    class DiesMidSend(RecordingProvider):
        async def send(self, sms):
            await super().send(sms)  # the provider took it...
            raise asyncio.CancelledError  # ...and the worker died before recording it

    crashed = DiesMidSend()
    response = await service_over(gw, crashed).accept(request(*numbers(102, 3)), LICENSEE)
    job = SendJob(response.comm_id, 0, 99)
    with pytest.raises(asyncio.CancelledError):
        await service_over(gw, crashed).dispatch(job)

    after_restart = RecordingProvider()
    with pytest.raises(RecipientsInFlight):  # redelivered inside the lease: handed back
        await service_over(gw, after_restart, sending_lease=timedelta(minutes=5)).dispatch(job)
    await age_claims(gw.messages, response.comm_id)  # past the lease
    await service_over(gw, after_restart, sending_lease=timedelta(minutes=5)).dispatch(job)

    assert len(crashed.sent) == 3 and after_restart.sent == []
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.last_error) for r in recipients] == [(Status.FAILED, OUTCOME_UNKNOWN)] * 3


async def test_a_receipt_racing_the_outcome_write_keeps_the_later_status(gw):
    inbound = assembled(gw.messages, gw.jobs, inbound=gw.inbound, opt_outs=gw.opt_outs).inbound  # another process's

    class ReceiptFirst(RecordingProvider):
        async def send(self, sms):
            outcome = await super().send(sms)
            assert await inbound.apply_receipt(sms.reference, Status.DELIVERED, "early-receipt")
            return outcome

    response = await service_over(gw, ReceiptFirst()).accept(request(*numbers(103, 2)), LICENSEE)
    await service_over(gw, ReceiptFirst()).dispatch(SendJob(response.comm_id, 0, 99))
    _, recipients = await gw.messages.load(response.comm_id)
    assert [r.status for r in recipients] == [Status.DELIVERED] * 2
    assert [r.provider_message_id for r in recipients] == ["early-receipt"] * 2  # the receipt's id, set first, is kept


async def test_a_job_that_keeps_failing_is_parked_and_its_recipients_failed(gw, emulator, unique_name, monkeypatch):
    """Through the dev host's queue listener and the app's real trigger functions."""
    gateway = gw.gateway()

    async def the_gateway():
        return gateway

    app = func.FunctionApp()
    app.register_functions(worker.blueprint(the_gateway))
    functions = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}
    response = await SmsOverCommands(gateway.use).accept(request(*numbers(104, 2)), LICENSEE)

    async def storage_keeps_failing(job):
        raise StorageUnavailable()

    monkeypatch.setattr(gateway.use.dispatch, "dispatch", storage_keeps_failing)
    name = unique_name("faults")
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        jobs, poison = queue_client(service, name, "base64"), queue_client(service, f"{name}-poison", "base64")
        await jobs.create_queue()
        await jobs.send_message(SendJob(response.comm_id, 0, 99).to_json())
        semantics = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.1, visibility_timeout=0, max_dequeue_count=3)
        runner = QueueListener(QueueTrigger("send_job", name, "AzureWebJobsStorage", "msg", functions["send_job"]),
                               service.get_queue_client(name), service.get_queue_client(f"{name}-poison"), semantics)
        parked_runner = QueueListener(
            QueueTrigger("send_job_poison", f"{name}-poison", "AzureWebJobsStorage", "msg", functions["send_job_poison"]),
            service.get_queue_client(f"{name}-poison"), None, semantics)  # a poison queue has no poison queue
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(parked_runner.run())]

        async def settled():
            _, recipients = await gw.messages.load(response.comm_id)
            return all(r.status is Status.FAILED for r in recipients)

        async with asyncio.timeout(30):
            while not await settled():
                await asyncio.sleep(0.1)
        runner.stop()
        parked_runner.stop()
        await asyncio.gather(*tasks)

        assert await jobs.peek_messages() == [] and await poison.peek_messages() == []
    _, recipients = await gw.messages.load(response.comm_id)
    assert all(r.last_error == "Gave up after 5 failed attempts to run its send job" for r in recipients)
    assert {r.attempts for r in recipients} == {0}  # never claimed: no SMS went out


async def test_a_storage_outage_answers_unavailable_leaves_nothing_half_written_and_recovers(tmp_path):
    """Azurite (keeping its data on disk) is stopped mid-run and started again on the same ports."""
    first = azurite.start(persist_to=str(tmp_path))
    ports = (first.queue_port, first.table_port)
    gw = build(Settings.from_env({"AzureWebJobsStorage": first.connection_string}))
    provider = RecordingProvider()
    worker = service_over(gw, provider)
    second = None
    try:
        await gw.ensure_storage()
        before = await worker.accept(request(*numbers(106, 2)), LICENSEE)

        first.stop()
        with pytest.raises(StorageUnavailable):
            await worker.accept(request(*numbers(107, 2)), LICENSEE)

        second = azurite.start(queue_port=ports[0], table_port=ports[1], persist_to=str(tmp_path))
        after = await worker.accept(request(*numbers(108, 2)), LICENSEE)
        for response in (before, after):
            assert await queued_jobs(second.connection_string, SEND_QUEUE, response.comm_id) == [SendJob(response.comm_id, 0, 1)]
            await worker.dispatch(SendJob(response.comm_id, 0, 1))

        async with TableServiceClient.from_connection_string(second.connection_string) as tables:
            rows = [e async for e in tables.get_table_client(MESSAGES_TABLE).list_entities()]
        assert sorted((e["PartitionKey"], e["RowKey"]) for e in rows) == sorted(
            (r.comm_id, row) for r in (before, after) for row in ("message", "r000000", "r000001"))
        assert sorted(s.to for s in provider.sent) == sorted(numbers(106, 2) + numbers(108, 2))
    finally:
        await gw.close()
        first.stop()
        if second:
            second.stop()


# -- issue 12: rate limits, crashes and lost answers on the dispatch path -----------------------------


class AnswerLosingProxy(DroppingProxy):
    """TCP to Azurite's table port, except that the first request carrying `marker` gets no answer:
    storage has done it, and the connection is closed as its answer comes back (a reset between the
    commit and the reply). Every other request and answer passes through."""

    def __init__(self, target_port: int, marker: bytes):
        super().__init__(target_port, drop=0)
        self.marker, self.marked, self.lost = marker, False, 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        losing = False  # the request on its way carries the marker: its answer is not passed back

        async def requests() -> None:
            nonlocal losing
            tail = b""
            while data := await reader.read(65536):
                if not self.marked and self.marker in tail + data:
                    self.marked = losing = True
                tail = data[-len(self.marker):]
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def answers() -> None:
            while data := await upstream_reader.read(65536):
                if losing:  # HTTP/1.1 without pipelining: these bytes answer the marked request
                    self.lost += 1
                    break
                writer.write(data)
                await writer.drain()
            writer.close()
            upstream_writer.close()

        await asyncio.gather(requests(), answers(), return_exceptions=True)


async def test_a_claim_whose_answer_is_lost_is_recognised_and_sent_once(emulator):
    """The claim's transaction lands, its answer is lost, the $batch retry repeats it and gets 412:
    the worker must recognise its own claim and send, not leave the recipients `sending`.
    Counts: 1 answer lost, 1 provider call per recipient, every recipient sent with 1 attempt."""
    to = numbers(109, 5)
    provider = RecordingProvider()
    async with AnswerLosingProxy(emulator.table_port, marker=b'"sending"') as proxy:
        proxied = emulator.connection_string.replace(f":{emulator.table_port}/", f":{proxy.port}/")
        gateway = build(Settings.from_env({"AzureWebJobsStorage": proxied}))
        try:
            await gateway.ensure_storage()
            worker = service_over(gateway, provider)
            response = await worker.accept(request(*to), LICENSEE)
            await worker.dispatch(SendJob(response.comm_id, 0, 99))
        finally:
            await gateway.close()
    assert proxy.lost == 1
    assert sorted(provider.calls) == sorted(to)
    async with TableServiceClient.from_connection_string(emulator.connection_string) as tables:
        rows = [e async for e in tables.get_table_client(MESSAGES_TABLE).query_entities(
            "PartitionKey eq @pk and RowKey ne 'message'", parameters={"pk": response.comm_id})]
    assert [(e["Status"], e["Attempts"]) for e in rows] == [("sent", 1)] * 5


async def test_with_a_rate_limit_the_sweeper_fails_nothing_still_being_sent(emulator, gw):
    """SMS_RATE_LIMIT_PER_SECOND=2.5 and a sending lease of one second (below the setting's 30 s
    floor, so given to the constructor): the job takes about three seconds, three leases. The sweeper
    runs every 0.1 s and another worker takes every job it re-queues for this message. One number is
    refused, one meets a provider error (transient). Counts: 8 provider calls for 8 recipients (none
    twice), 6 sent, 1 failed with the provider's reason, 1 queued for a retry with its retry job
    queued, 0 sending, 0 failed as outcome unknown."""
    settings = Settings.from_env({"AzureWebJobsStorage": emulator.connection_string, "SMS_RATE_LIMIT_PER_SECOND": "2.5"})
    lease = timedelta(seconds=1)
    to = numbers(110, 8)
    provider = RecordingProvider(refuse={to[2]: "number is blocked"}, raise_for={to[5]})
    # The sweeper scans every message in the table, other tests' too: the jobs of both workers go to
    # queues of their own, and only this message's are run.
    jobs = InMemoryJobQueue()
    live = sms_over(gw.messages, jobs, provider, send_rate_per_second=settings.rate_limit_per_second,
                    sending_lease=lease, missing_message_wait=0)
    other = sms_over(gw.messages, InMemoryJobQueue(), provider, sending_lease=lease)
    response = await live.accept(request(*to), LICENSEE)
    job = SendJob(response.comm_id, 0, 7)
    sending = asyncio.create_task(live.dispatch(job))

    while not sending.done():
        await asyncio.sleep(0.1)
        for swept in await other.sweep():
            if swept.comm_id == response.comm_id:
                with contextlib.suppress(RecipientsInFlight):
                    await other.dispatch(swept)
    await sending

    assert sorted(provider.calls) == sorted(to)
    _, recipients = await gw.messages.load(response.comm_id)
    assert Counter(r.status for r in recipients) == {Status.SENT: 6, Status.FAILED: 1, Status.QUEUED: 1}
    assert [(r.phone_number, r.last_error) for r in recipients if r.status is Status.FAILED] == [(to[2], "number is blocked")]
    assert [(r.phone_number, "ConnectionError" in r.last_error) for r in recipients if r.status is Status.QUEUED] == [(to[5], True)]
    assert jobs.jobs == [(job, 0), (job, 30)]  # the job as accepted, and its retry after the backoff


async def test_a_crash_mid_job_leaves_only_the_send_in_flight_unknown_and_the_rest_are_sent(gw):
    """A worker with a rate limit dies during its 3rd provider call; the others wait for their
    turns. The queue redelivers the job: while the 3rd is within its lease the rest are sent and the
    job is handed back; after the lease the 3rd becomes "outcome unknown". Counts: 7 provider calls
    for 7 recipients (none twice), 6 sent, 1 failed with outcome unknown, 0 queued or sending."""
    to = numbers(111, 7)
    crashed = RecordingProvider(stall_on_call=3)
    # Turns 0.2 s apart: each outcome is written long before the next call, so the one in flight is
    # the only recipient the crash leaves `sending`.
    worker = service_over(gw, crashed, send_rate_per_second=5)
    response = await worker.accept(request(*to), LICENSEE)
    job = SendJob(response.comm_id, 0, 99)
    dispatching = asyncio.create_task(worker.dispatch(job))
    await crashed.stalled.wait()
    dispatching.cancel()  # the worker process dies
    with contextlib.suppress(asyncio.CancelledError):
        await dispatching

    restarted = RecordingProvider()
    with pytest.raises(RecipientsInFlight):
        await service_over(gw, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)
    await age_claims(gw.messages, response.comm_id)  # past the lease
    await service_over(gw, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)

    assert crashed.calls == to[:3] and sorted(restarted.calls) == to[3:]
    _, recipients = await gw.messages.load(response.comm_id)
    assert Counter(r.status for r in recipients) == {Status.SENT: 6, Status.FAILED: 1}
    assert [(r.phone_number, r.last_error) for r in recipients if r.status is Status.FAILED] == [(to[2], OUTCOME_UNKNOWN)]


async def test_a_keyed_request_whose_message_write_failed_part_way_is_finished_by_its_retry(gw, monkeypatch):
    """Issue 12, item 6: 150 recipients are two transactions; the first (100 recipient rows) lands and
    the second (the last 50 and the message row) fails. The retry with the same Idempotency-Key used
    to hit EntityAlreadyExists on the rows left behind and answer 409 for the key's whole life, and
    nothing was ever sent. Now it rewrites those invisible rows and finishes the message."""
    from sms.usecases import idempotency as idempotency_module

    provider = RecordingProvider()
    sms = service_over(gw, provider, idempotency=gw.idempotency)
    submit = gw.messages._transactions.submit
    failed = []

    async def message_row_fails_once(transaction):
        if not failed and b'"RowKey":"message"' in transaction.request.content:
            failed.append(transaction)
            raise StorageUnavailable()
        return await submit(transaction)

    monkeypatch.setattr(gw.messages._transactions, "submit", message_row_fails_once)
    people = numbers(150, 150)
    with pytest.raises(StorageUnavailable):
        await sms.accept(request(*people), LICENSEE, "half-written")
    assert failed  # the message row's transaction was the one refused

    monkeypatch.setattr(idempotency_module, "IN_PROGRESS_GRACE", timedelta(0))  # the client retries later
    answer = await sms.accept(request(*people), LICENSEE, "half-written")
    assert answer.ok is True and answer.summary == "Queued for 150 recipients"
    message, recipients = await gw.messages.load(answer.comm_id)
    assert message.recipient_count == 150 and [r.seq for r in recipients] == list(range(150))
    assert {r.status for r in recipients} == {Status.QUEUED}

    for job in SendJob.covering(answer.comm_id, 150):
        await sms.dispatch(job)
        await sms.dispatch(job)  # the first attempt's copies of the jobs come round too
    assert Counter(s.to for s in provider.sent) == Counter(people)  # each of 150 texted once
    assert await sms.accept(request(*people), LICENSEE, "half-written") == answer  # and the key answers as it did


async def test_a_worker_that_dies_before_its_ledger_write_leaves_it_to_the_redelivery(gw):
    """The ledger is written after a job's sends and their outcomes. A worker killed in between has
    sent the SMS but not listed it: the job's queue message comes back, finds nothing to send, and
    lists the message as it is stored. Nothing is sent twice, and a message never committed is never
    listed (the job that finds no message writes nothing)."""
    from sms.storage import LedgerQuery
    from sms.usecases.ledger import counts

    save, deaths = gw.ledger.save, []

    async def dies_once(*args):
        if not deaths:
            deaths.append(1)
            raise asyncio.CancelledError  # the process is killed
        return await save(*args)

    gw.ledger.save = dies_once
    provider = RecordingProvider()
    licensee = uuid.uuid4().hex
    sms = service_over(gw, provider, ledger=gw.ledger)
    response = await sms.accept(request(*numbers(120, 2)), licensee)
    job = SendJob(response.comm_id, 0, 99)
    with pytest.raises(asyncio.CancelledError):
        await sms.dispatch(job)
    assert (await sms.use.ledger.page(LedgerQuery(licensee), 10))[0] == []
    await service_over(gw, provider, ledger=gw.ledger).dispatch(job)  # the redelivery
    [entry], _ = await sms.use.ledger.page(LedgerQuery(licensee), 10)
    assert entry.comm_id == response.comm_id and counts(entry) == {"sent": 2}
    assert len(provider.sent) == 2

    never = SendJob(uuid.uuid4().hex, 0, 0)  # a job whose message was never committed
    with pytest.raises(MessageNotWritten):
        await service_over(gw, provider, ledger=gw.ledger).dispatch(never)
    assert [e.comm_id for e in (await sms.use.ledger.page(LedgerQuery(licensee), 10))[0]] == [response.comm_id]
