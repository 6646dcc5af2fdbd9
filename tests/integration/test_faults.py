"""Fault injection against real Azurite: each fault, and exact counts of what happened.

Counts asserted: provider calls per recipient, records in the table, messages in each queue.

Every test that starts from an accept runs on both of accept's paths (issue 30: "every at-most-once guarantee and
its tests hold on both paths"), `accept_path`: `two_call`, today's (the rows, then a version-1 job on sms-send), and
`one_call` (the message's whole job alone on sms-accept; the worker's accept_job writes the rows, then sends). Each
first checks the path its accept took (`AcceptPath.job_of`), so a silent fall back to today's cannot pass for the
other, and runs the job as the host would: the message's trigger function (send_job or accept_job) handed the
queue message as the queue holds it. Where a fault belongs to one path's writes, the test names each path's own.
"""
import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import timedelta

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.functions.queue import QueueMessage  # the type the Python worker hands to queue triggers
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import ACCEPT_QUEUE, SEND_QUEUE, Settings
from sms.dev import azurite
from sms.dev.host.app import QueueTrigger
from sms.dev.host.queues import QueueListener, QueueSemantics
from sms.domain.comm_ids import CommIdKeys
from sms.domain.errors import StillChanging, StorageUnavailable
from sms.domain.jobs import WholeJob, parse_job
from sms.domain.model import SendJob, Status, utcnow
from sms.domain.transitions import OUTCOME_UNKNOWN
from sms.entrypoints import worker
from sms.gateway import Gateway
from sms.storage import JobQueue
from sms.storage.queues import StorageJobQueue, StorageWholeJobQueue, queue_client
from sms.storage.tables import MESSAGES_TABLE
from sms.usecases.dispatch import MessageNotWritten, RecipientsInFlight
from tests.fakes import DiesAfterTaking, InMemoryJobQueue, RecordingProvider, SmsOverCommands, age_claims, assembled, command, sms_over
from tests.integration.test_batch import DroppingProxy

LICENSEE = "f0" * 16
KEYS = CommIdKeys(b"the fault suite's own commId key!")  # the deployment's SMS_COMMID_KEY (at least 32 characters)


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


async def partition(connection: str, comm_id: str) -> dict[str, dict]:
    """Every row of the message's partition as stored, by RowKey: what no reader of ours filters."""
    async with TableServiceClient.from_connection_string(connection) as tables:
        return {e["RowKey"]: e async for e in tables.get_table_client(MESSAGES_TABLE).query_entities(
            "PartitionKey eq @pk", parameters={"pk": comm_id})}


def comm_id_of(job: SendJob | WholeJob) -> str:
    return job.message.comm_id if isinstance(job, WholeJob) else job.comm_id


class AcceptPath:
    """One of accept's two paths over real queues: where its accept puts the message's job, how the worker is handed
    it, and what is stored in between. `connection`: the Azurite its queues and rows are read back from."""

    def __init__(self, name: str, connection: str, send_queue: str, accept_queue: str):
        self.name, self.one_call = name, name == "one_call"
        self.connection, self.send_queue, self.accept_queue = connection, send_queue, accept_queue
        self.queue = accept_queue if self.one_call else send_queue  # where this path's accept puts its job
        self.trigger = "accept_job" if self.one_call else "send_job"  # the function listening on it
        self.jobs: JobQueue | None = None
        self.accept_jobs: StorageWholeJobQueue | None = None

    def queues(self, service: QueueServiceClient) -> tuple[StorageJobQueue, StorageWholeJobQueue]:
        """The two queues' adapters over `service` (base64, as host.json has the host read them)."""
        return StorageJobQueue(service, self.send_queue, "base64"), StorageWholeJobQueue(service, self.accept_queue, "base64")

    def over(self, messages, provider, *, jobs: JobQueue | None = None, accept_jobs=None, **options) -> SmsOverCommands:
        """One process's use cases over the real message store, accepting by this path: the deployment's commId key
        on both (readers recognise tagged ids before the writer is on), SMS_ACCEPT_ONE_CALL on for `one_call`."""
        options.setdefault("missing_message_wait", 0)
        return sms_over(messages, jobs or self.jobs, provider, accept_jobs=accept_jobs or self.accept_jobs, comm_id_keys=KEYS,
                        accept_one_call=self.one_call, **options)

    async def waiting(self) -> dict[str, list[str]]:
        """The job texts visible on each of the two queues, by queue name."""
        async with QueueServiceClient.from_connection_string(self.connection) as service:
            return {name: [m.content for m in await queue_client(service, name, "base64").peek_messages(max_messages=32)]
                    for name in (self.send_queue, self.accept_queue)}

    async def queued(self, comm_id: str) -> dict[str, list[bytes]]:
        """The message's jobs visible on each queue, by queue name, each as the trigger is handed it (decoded)."""
        return {name: [text.encode() for text in texts if comm_id_of(parse_job(text)) == comm_id]
                for name, texts in (await self.waiting()).items()}

    async def job_of(self, comm_id: str, recipients: int) -> bytes:
        """The one job accept queued for the message, once it is clear this path took it. one_call: one whole job on
        sms-accept under a tagged id of the licensee, nothing on sms-send, and no row in the message's partition
        (its rows are the worker's to write). two_call: one version-1 job on sms-send, nothing on sms-accept, and
        the message's rows (no gate)."""
        queued, rows = await self.queued(comm_id), await partition(self.connection, comm_id)
        other = self.send_queue if self.one_call else self.accept_queue
        assert (len(queued[self.queue]), queued[other]) == (1, []), f"{self.name}: {queued}"
        job = parse_job(queued[self.queue][0])
        if self.one_call:
            assert isinstance(job, WholeJob) and len(job.recipients) == recipients
            assert KEYS.recognised(comm_id, job.message.licensee_id, utcnow()) is not None
            assert rows == {}
        else:
            assert job == SendJob(comm_id, 0, recipients - 1, job.traceparent)
            assert set(rows) == self.rows(recipients)
        return queued[self.queue][0]

    def rows(self, recipients: int) -> set[str]:
        """The RowKeys of a message of this path once written: its recipients and message row, and a one-call one's gate."""
        return {f"r{i:06d}" for i in range(recipients)} | {"message"} | ({"gate"} if self.one_call else set())

    async def run(self, sms: SmsOverCommands, body: bytes, dequeue_count: int = 1) -> None:
        """The job run as the host runs it: the trigger function of the queue it was put on (sms-accept's accept_job for
        a whole job, sms-send's send_job for a version-1 one) handed the queue message, over `sms`'s use cases."""
        await functions_over(sms)["accept_job" if isinstance(parse_job(body), WholeJob) else "send_job"](
            QueueMessage(id=uuid.uuid4().hex, body=body, dequeue_count=dequeue_count))


def functions_over(sms: SmsOverCommands) -> dict:
    """The app's worker functions (sms/entrypoints/worker.py) over `sms`'s use cases: all they use of the Gateway."""
    gateway = Gateway(settings=None, auth=None, requests=None, use=sms.use, health=None)

    async def the_gateway():
        return gateway

    app = func.FunctionApp()
    app.register_functions(worker.blueprint(the_gateway))
    return {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}


@pytest.fixture(params=["two_call", "one_call"])
def accept_path(request) -> str:
    return request.param


@pytest.fixture
async def path(accept_path, emulator, unique_name):
    """The path under test over the session's Azurite, with queues of this test's own (so what is left on each is
    counted exactly), made by the real adapters."""
    path = AcceptPath(accept_path, emulator.connection_string, unique_name("send"), unique_name("accept"))
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        path.jobs, path.accept_jobs = path.queues(service)
        await path.jobs.create_queue()
        await path.accept_jobs.create_queue()
        yield path


async def test_two_workers_on_the_same_job_call_the_provider_once_per_recipient(gw, path):
    provider = RecordingProvider(delay=0.02)
    worker_a, worker_b = path.over(gw.messages, provider), path.over(gw.messages, provider)
    to = numbers(101, 40)
    response = await worker_a.accept(request(*to), LICENSEE)
    job = await path.job_of(response.comm_id, 40)

    results = await asyncio.gather(path.run(worker_a, job), path.run(worker_b, job), return_exceptions=True)
    assert all(r is None or isinstance(r, RecipientsInFlight) for r in results), results
    await path.run(worker_b, job, dequeue_count=2)  # the queue's redelivery of whichever handed it back

    assert sorted(s.to for s in provider.sent) == sorted(to)
    assert set(await partition(path.connection, response.comm_id)) == path.rows(40)  # one set of rows
    _, recipients = await gw.messages.load(response.comm_id)
    assert {r.status for r in recipients} == {Status.SENT} and {r.attempts for r in recipients} == {1}


async def test_a_job_redelivered_after_a_crash_mid_send_sends_nothing_twice(gw, path):
    crashed = DiesAfterTaking()
    response = await path.over(gw.messages, crashed).accept(request(*numbers(102, 3)), LICENSEE)
    job = await path.job_of(response.comm_id, 3)
    with pytest.raises(asyncio.CancelledError):
        await path.run(path.over(gw.messages, crashed), job)

    after_restart = RecordingProvider()
    with pytest.raises(RecipientsInFlight):  # redelivered inside the lease: handed back
        await path.run(path.over(gw.messages, after_restart, sending_lease=timedelta(minutes=5)), job, dequeue_count=2)
    await age_claims(gw.messages, response.comm_id)  # past the lease
    await path.run(path.over(gw.messages, after_restart, sending_lease=timedelta(minutes=5)), job, dequeue_count=3)

    assert len(crashed.sent) == 3 and after_restart.sent == []
    assert set(await partition(path.connection, response.comm_id)) == path.rows(3)
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.last_error) for r in recipients] == [(Status.FAILED, OUTCOME_UNKNOWN)] * 3


async def test_a_receipt_racing_the_outcome_write_keeps_the_later_status(gw, path):
    inbound = assembled(gw.messages, gw.jobs, inbound=gw.inbound, opt_outs=gw.opt_outs).inbound  # another process's

    class ReceiptFirst(RecordingProvider):
        async def send(self, sms):
            outcome = await super().send(sms)
            assert await inbound.apply_receipt(sms.reference, Status.DELIVERED, "early-receipt")
            return outcome

    provider = ReceiptFirst()
    response = await path.over(gw.messages, provider).accept(request(*numbers(103, 2)), LICENSEE)
    await path.run(path.over(gw.messages, provider), await path.job_of(response.comm_id, 2))
    assert len(provider.calls) == 2
    _, recipients = await gw.messages.load(response.comm_id)
    assert [r.status for r in recipients] == [Status.DELIVERED] * 2
    assert [r.provider_message_id for r in recipients] == ["early-receipt"] * 2  # the receipt's id, set first, is kept


async def test_a_job_that_keeps_failing_is_parked_and_its_recipients_failed(gw, path, monkeypatch):
    """Through the dev host's queue listener and the app's real trigger functions of the path's queue (send_job and
    send_job_poison; accept_job and accept_job_poison, where the parked job is the message's only copy: its rows
    are written failed). Counts: no provider call, every recipient failed with attempts 0, both queues empty."""
    provider = RecordingProvider()
    sms = path.over(gw.messages, provider)
    response = await sms.accept(request(*numbers(104, 2)), LICENSEE)
    await path.job_of(response.comm_id, 2)

    async def storage_keeps_failing(job):
        raise StorageUnavailable()

    monkeypatch.setattr(sms.use.dispatch, "dispatch_whole" if path.one_call else "dispatch", storage_keeps_failing)
    functions, name = functions_over(sms), path.queue
    async with QueueServiceClient.from_connection_string(path.connection) as service:
        jobs, poison = queue_client(service, name, "base64"), queue_client(service, f"{name}-poison", "base64")
        semantics = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.1, visibility_timeout=0, max_dequeue_count=3)
        runner = QueueListener(QueueTrigger(path.trigger, name, "AzureWebJobsStorage", "msg", functions[path.trigger]),
                               service.get_queue_client(name), service.get_queue_client(f"{name}-poison"), semantics)
        parked_runner = QueueListener(
            QueueTrigger(f"{path.trigger}_poison", f"{name}-poison", "AzureWebJobsStorage", "msg", functions[f"{path.trigger}_poison"]),
            service.get_queue_client(f"{name}-poison"), None, semantics)  # a poison queue has no poison queue
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(parked_runner.run())]

        async def settled():
            loaded = await gw.messages.load(response.comm_id)
            return loaded is not None and all(r.status is Status.FAILED for r in loaded[1])

        async with asyncio.timeout(30):
            while not await settled():
                await asyncio.sleep(0.1)
        runner.stop()
        parked_runner.stop()
        await asyncio.gather(*tasks)

        assert await jobs.peek_messages() == [] and await poison.peek_messages() == []
    assert await path.waiting() == {path.send_queue: [], path.accept_queue: []}
    assert set(await partition(path.connection, response.comm_id)) == path.rows(2)
    _, recipients = await gw.messages.load(response.comm_id)
    assert all(r.last_error == "Gave up after 5 failed attempts to run its send job" for r in recipients)
    assert {r.attempts for r in recipients} == {0}  # never claimed: no SMS went out
    assert provider.calls == []


async def test_a_storage_outage_answers_unavailable_leaves_nothing_half_written_and_recovers(tmp_path, accept_path):
    """Azurite (keeping its data on disk) is stopped mid-run and started again on the same ports. The accept made
    while it is down writes nothing on either path: not a row, not a job."""
    first = azurite.start(persist_to=str(tmp_path))
    ports = (first.queue_port, first.table_port)
    gw = build(Settings.from_env({"AzureWebJobsStorage": first.connection_string}))
    path = AcceptPath(accept_path, first.connection_string, SEND_QUEUE, ACCEPT_QUEUE)  # the deployment's own queues
    provider = RecordingProvider()
    worker = path.over(gw.messages, provider, jobs=gw.jobs, accept_jobs=gw.accept_jobs)
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
            await path.run(worker, await path.job_of(response.comm_id, 2))

        async with TableServiceClient.from_connection_string(second.connection_string) as tables:
            rows = [e async for e in tables.get_table_client(MESSAGES_TABLE).list_entities()]
        assert sorted((e["PartitionKey"], e["RowKey"]) for e in rows) == sorted(
            (r.comm_id, row) for r in (before, after) for row in path.rows(2))
        assert sum(len(texts) for texts in (await path.waiting()).values()) == 2  # the two jobs, never deleted here
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


async def test_a_claim_whose_answer_is_lost_is_recognised_and_sent_once(emulator, path):
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
            worker = path.over(gateway.messages, provider)
            response = await worker.accept(request(*to), LICENSEE)
            await path.run(worker, await path.job_of(response.comm_id, 5))
        finally:
            await gateway.close()
    assert proxy.lost == 1
    assert sorted(provider.calls) == sorted(to)
    async with TableServiceClient.from_connection_string(emulator.connection_string) as tables:
        rows = [e async for e in tables.get_table_client(MESSAGES_TABLE).query_entities(
            "PartitionKey eq @pk and RowKey ge 'r' and RowKey lt 's'", parameters={"pk": response.comm_id})]
    assert [(e["Status"], e["Attempts"]) for e in rows] == [("sent", 1)] * 5


class RecordedPuts(JobQueue):
    """A job queue that keeps what is put on it (job, delay) and puts it on the real one too."""

    def __init__(self, queue: JobQueue):
        self.queue, self.jobs = queue, []

    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        self.jobs.append((job, delay_seconds))
        await self.queue.put(job, delay_seconds=delay_seconds)


async def test_with_a_rate_limit_the_sweeper_fails_nothing_still_being_sent(emulator, gw, path):
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
    # The sweeper scans every message in the table, other tests' too: the jobs it re-queues go to a queue of the
    # sweeping worker's own, and only this message's are run.
    jobs = RecordedPuts(path.jobs)
    live = path.over(gw.messages, provider, jobs=jobs, send_rate_per_second=settings.rate_limit_per_second, sending_lease=lease)
    other = sms_over(gw.messages, InMemoryJobQueue(), provider, sending_lease=lease)
    response = await live.accept(request(*to), LICENSEE)
    sending = asyncio.create_task(path.run(live, await path.job_of(response.comm_id, 8)))

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
    # The job as accepted (today's path: a one-call accept puts its whole job on sms-accept), and its retry after
    # the backoff: a version-1 job on sms-send, as for any message whose rows exist.
    job = SendJob(response.comm_id, 0, 7)
    assert jobs.jobs == ([] if path.one_call else [(job, 0)]) + [(job, 30)]


async def test_a_crash_mid_job_leaves_only_the_send_in_flight_unknown_and_the_rest_are_sent(gw, path):
    """A worker with a rate limit dies during its 3rd provider call; the others wait for their
    turns. The queue redelivers the job: while the 3rd is within its lease the rest are sent and the
    job is handed back; after the lease the 3rd becomes "outcome unknown". Counts: 7 provider calls
    for 7 recipients (none twice), 6 sent, 1 failed with outcome unknown, 0 queued or sending."""
    to = numbers(111, 7)
    crashed = RecordingProvider(stall_on_call=3)
    # Turns 0.2 s apart: each outcome is written long before the next call, so the one in flight is
    # the only recipient the crash leaves `sending`.
    worker = path.over(gw.messages, crashed, send_rate_per_second=5)
    response = await worker.accept(request(*to), LICENSEE)
    job = await path.job_of(response.comm_id, 7)
    dispatching = asyncio.create_task(path.run(worker, job))
    await crashed.stalled.wait()
    dispatching.cancel()  # the worker process dies
    with contextlib.suppress(asyncio.CancelledError):
        await dispatching

    restarted = RecordingProvider()
    with pytest.raises(RecipientsInFlight):
        await path.run(path.over(gw.messages, restarted, sending_lease=timedelta(minutes=5)), job, dequeue_count=2)
    await age_claims(gw.messages, response.comm_id)  # past the lease
    await path.run(path.over(gw.messages, restarted, sending_lease=timedelta(minutes=5)), job, dequeue_count=3)

    assert crashed.calls == to[:3] and sorted(restarted.calls) == to[3:]
    assert set(await partition(path.connection, response.comm_id)) == path.rows(7)
    _, recipients = await gw.messages.load(response.comm_id)
    assert Counter(r.status for r in recipients) == {Status.SENT: 6, Status.FAILED: 1}
    assert [(r.phone_number, r.last_error) for r in recipients if r.status is Status.FAILED] == [(to[2], OUTCOME_UNKNOWN)]


async def test_a_keyed_request_whose_message_write_failed_part_way_is_finished_by_its_retry(gw, path, monkeypatch):
    """Issue 12, item 6: 150 recipients are two transactions; the first (100 recipient rows) lands and
    the second (the last 50 and the message row) fails. The retry with the same Idempotency-Key used
    to hit EntityAlreadyExists on the rows left behind and answer 409 for the key's whole life, and
    nothing was ever sent. Now it rewrites those invisible rows and finishes the message. A keyed request
    (of more than a whole job's recipients, too) takes today's path with the one-call accept on: its jobs are
    on sms-send, none on sms-accept."""
    from sms.usecases import idempotency as idempotency_module

    provider, key = RecordingProvider(), f"half-written-{uuid.uuid4().hex}"  # each path's run its own key
    sms = path.over(gw.messages, provider, idempotency=gw.idempotency)
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
        await sms.accept(request(*people), LICENSEE, key)
    assert failed  # the message row's transaction was the one refused

    monkeypatch.setattr(idempotency_module, "IN_PROGRESS_GRACE", timedelta(0))  # the client retries later
    answer = await sms.accept(request(*people), LICENSEE, key)
    assert answer.ok is True and answer.summary == "Queued for 150 recipients"
    message, recipients = await gw.messages.load(answer.comm_id)
    assert message.recipient_count == 150 and [r.seq for r in recipients] == list(range(150))
    assert {r.status for r in recipients} == {Status.QUEUED}

    queued = await path.queued(answer.comm_id)
    assert queued[path.accept_queue] == []
    first = lambda job: job.first  # noqa: E731
    assert sorted(map(parse_job, queued[path.send_queue]), key=first) == sorted(SendJob.covering(answer.comm_id, 150) * 2, key=first)
    for body in queued[path.send_queue]:  # the first attempt's copies of the jobs come round too
        await path.run(sms, body)
    assert Counter(s.to for s in provider.sent) == Counter(people)  # each of 150 texted once
    assert await sms.accept(request(*people), LICENSEE, key) == answer  # and the key answers as it did


async def test_a_worker_that_dies_before_its_ledger_write_leaves_it_to_the_redelivery(gw, path):
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
    sms = path.over(gw.messages, provider, ledger=gw.ledger)
    response = await sms.accept(request(*numbers(120, 2)), licensee)
    job = await path.job_of(response.comm_id, 2)
    with pytest.raises(asyncio.CancelledError):
        await path.run(sms, job)
    assert (await sms.use.ledger.page(LedgerQuery(licensee), 10))[0] == []
    await path.run(path.over(gw.messages, provider, ledger=gw.ledger), job, dequeue_count=2)  # the redelivery
    [entry], _ = await sms.use.ledger.page(LedgerQuery(licensee), 10)
    assert entry.comm_id == response.comm_id and counts(entry) == {"sent": 2}
    assert len(provider.sent) == 2

    never = SendJob(uuid.uuid4().hex, 0, 0)  # a job whose message was never committed
    with pytest.raises(MessageNotWritten):
        await service_over(gw, provider, ledger=gw.ledger).dispatch(never)
    assert [e.comm_id for e in (await sms.use.ledger.page(LedgerQuery(licensee), 10))[0]] == [response.comm_id]


# -- issue 30: the faults of each path's own writes, and the cancel racing the worker -------------------


def proxied(connection: str, port: int, proxy) -> str:
    return connection.replace(f":{port}/", f":{proxy.port}/")


async def test_a_put_whose_answer_is_lost_is_put_again_and_each_recipient_sent_once(emulator, gw, path):
    """The accept's put lands on the queue and its answer is lost: the put is sent again (the queue client retries
    after a connection error), so the job is on the queue twice (today's path: after its rows; one-call: the
    message's only copy, twice). Both copies run at once, as two workers would. Counts: 1 answer lost, 2 copies of the
    job, 1 provider call per recipient, one set of rows."""
    to, provider = numbers(121, 4), RecordingProvider()
    async with AnswerLosingProxy(emulator.queue_port, marker=b"<MessageText>") as proxy:
        async with QueueServiceClient.from_connection_string(proxied(emulator.connection_string, emulator.queue_port, proxy)) as service:
            jobs, accept_jobs = path.queues(service)
            response = await path.over(gw.messages, provider, jobs=jobs, accept_jobs=accept_jobs).accept(request(*to), LICENSEE)
    assert proxy.lost == 1
    queued = await path.queued(response.comm_id)
    assert len(queued[path.queue]) == 2 and len(set(queued[path.queue])) == 1 and sum(map(len, queued.values())) == 2
    results = await asyncio.gather(*(path.run(path.over(gw.messages, provider), body) for body in queued[path.queue]),
                                   return_exceptions=True)
    assert all(r is None or isinstance(r, RecipientsInFlight) for r in results), results
    await path.run(path.over(gw.messages, provider), queued[path.queue][0], dequeue_count=2)  # whichever was handed back

    assert sorted(provider.calls) == sorted(to)
    assert set(await partition(path.connection, response.comm_id)) == path.rows(4)
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.attempts) for r in recipients] == [(Status.SENT, 1)] * 4


async def test_a_worker_that_dies_before_its_first_provider_call_leaves_every_recipient_to_the_redelivery(gw, path, monkeypatch):
    """The worker has read the rows (today's path) or written them (one-call: its write is done), and dies before it
    claims any recipient. Counts: the rows there, every recipient queued and not called; the redelivery sends each
    once."""
    to = numbers(122, 3)
    dying, after_restart = RecordingProvider(), RecordingProvider()
    sms = path.over(gw.messages, dying)
    response = await sms.accept(request(*to), LICENSEE)
    job = await path.job_of(response.comm_id, 3)

    async def dies(*args):
        raise asyncio.CancelledError  # the process is killed between the rows and the first claim

    monkeypatch.setattr(sms.use.dispatch, "send", dies)
    with pytest.raises(asyncio.CancelledError):
        await path.run(sms, job)
    assert set(await partition(path.connection, response.comm_id)) == path.rows(3)
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.attempts) for r in recipients] == [(Status.QUEUED, 0)] * 3

    await path.run(path.over(gw.messages, after_restart), job, dequeue_count=2)
    assert dying.calls == [] and sorted(after_restart.calls) == sorted(to)
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.attempts) for r in recipients] == [(Status.SENT, 1)] * 3


async def test_the_write_of_the_rows_whose_answer_is_lost_leaves_one_set_sent_once(emulator, path):
    """The transaction that writes the message's rows lands and its answer is lost; it is not sent again (an insert
    may have landed). Today's path: that is the accept's commit, so the accept answers 503 while its job (put first)
    sends the message. One-call: that is the worker's write, so its run fails and the queue runs the job again, whose
    write meets a 409 and goes on from the rows. Counts: 1 answer lost, 1 provider call per recipient, one set of rows."""
    to, provider = numbers(123, 4), RecordingProvider()
    async with AnswerLosingProxy(emulator.table_port, marker=b"$batch") as proxy:  # the first transaction: the rows'
        gateway = build(Settings.from_env({"AzureWebJobsStorage": proxied(emulator.connection_string, emulator.table_port, proxy)}))
        try:
            await gateway.ensure_storage()
            worker = path.over(gateway.messages, provider)
            if path.one_call:
                response = await worker.accept(request(*to), LICENSEE)
                comm_id = response.comm_id
                job = await path.job_of(comm_id, 4)
                with pytest.raises(StorageUnavailable):
                    await path.run(worker, job)
                assert provider.calls == []
            else:
                with pytest.raises(StorageUnavailable):
                    await worker.accept(request(*to), LICENSEE)
                [text] = (await path.waiting())[path.send_queue]
                comm_id = parse_job(text).comm_id
                job = await path.job_of(comm_id, 4)  # the rows are there: the commit landed
            await path.run(worker, job, dequeue_count=2)
        finally:
            await gateway.close()
    assert proxy.lost == 1
    assert sorted(provider.calls) == sorted(to)
    rows = await partition(path.connection, comm_id)
    assert set(rows) == path.rows(4)
    assert [(e["Status"], e["Attempts"]) for key, e in sorted(rows.items()) if key.startswith("r")] == [("sent", 1)] * 4


async def test_a_job_redelivered_after_its_visibility_timeout_sends_nothing_twice(gw, path):
    """A worker takes the job off its queue (hidden for a second) and dies while the provider takes the second
    recipient; the job is never deleted, so it reappears when its visibility lapses and the dev host's listener runs
    it with the app's trigger, in a worker whose sending lease is a second: handed back while the dead claim is within
    its lease, then the claim is traced (this provider cannot say: outcome unknown). Counts: 1 provider call per
    recipient, none after the restart; rows [sent, unknown, sent]; both queues and the poison queue empty."""
    to = numbers(124, 3)

    crashed, after_restart = DiesAfterTaking(to[1]), RecordingProvider()
    response = await path.over(gw.messages, crashed).accept(request(*to), LICENSEE)
    await path.job_of(response.comm_id, 3)
    restarted = path.over(gw.messages, after_restart, sending_lease=timedelta(seconds=1))
    functions, name = functions_over(restarted), path.queue
    async with QueueServiceClient.from_connection_string(path.connection) as service:
        poison = queue_client(service, f"{name}-poison", "base64")
        await poison.create_queue()  # so that it is seen to stay empty
        [taken] = [m async for m in queue_client(service, name, "base64").receive_messages(visibility_timeout=1)]
        with pytest.raises(asyncio.CancelledError):
            await path.run(path.over(gw.messages, crashed), taken.content.encode())
        semantics = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.1, visibility_timeout=1, max_dequeue_count=5)
        runner = QueueListener(QueueTrigger(path.trigger, name, "AzureWebJobsStorage", "msg", functions[path.trigger]),
                               service.get_queue_client(name), service.get_queue_client(f"{name}-poison"), semantics)
        task = asyncio.create_task(runner.run())

        async def settled():
            _, rows = await gw.messages.load(response.comm_id)
            return not any(r.status in (Status.QUEUED, Status.SENDING) for r in rows)

        async with asyncio.timeout(30):
            while not await settled() or (await path.waiting())[name]:
                await asyncio.sleep(0.1)
        runner.stop()
        await task
        assert await poison.peek_messages() == []
    assert await path.waiting() == {path.send_queue: [], path.accept_queue: []}
    assert sorted(crashed.calls) == sorted(to) and after_restart.calls == []
    assert set(await partition(path.connection, response.comm_id)) == path.rows(3)
    _, recipients = await gw.messages.load(response.comm_id)
    assert [(r.status, r.last_error) for r in recipients] == [(Status.SENT, None), (Status.FAILED, OUTCOME_UNKNOWN), (Status.SENT, None)]


@pytest.mark.parametrize("head_start", [None, 0, 2, 5, 8])
async def test_a_cancel_racing_the_worker_never_lets_a_cancelled_recipient_be_sent(gw, path, head_start):
    """A cancel right after the accept, before the worker (`head_start` None), or the worker given `head_start`
    event-loop turns before the cancel, to meet the race at different points (today's path: over the rows' claims;
    one-call: also the gate, the cancel's insert against the worker's write of the rows). Whichever wins, each
    recipient ends sent or cancelled, a cancelled one is never handed to the provider, none is sent twice, and the
    cancel answers the number it cancelled. Cancelled first: every recipient cancelled, no provider call."""
    count = 5
    provider = RecordingProvider(delay=0.002)
    worker, canceller = path.over(gw.messages, provider), path.over(gw.messages, RecordingProvider())
    response = await worker.accept(request(*numbers(130 + (head_start or 0), count)), LICENSEE)
    comm_id = response.comm_id
    job = await path.job_of(comm_id, count)

    async def cancel():
        for _ in range(head_start or 0):
            await asyncio.sleep(0)
        try:
            return await canceller.use.cancel.cancel(LICENSEE, comm_id)
        except StillChanging:  # lost every write to the claims: cancelling again is safe, and what it said is all
            return None

    if head_start is None:
        answer = await cancel()
        assert (await canceller.status(comm_id, LICENSEE)).status == "cancelled"
        await path.run(worker, job)
    else:
        _, answer = await asyncio.gather(path.run(worker, job), cancel())
    await path.run(worker, job, dequeue_count=2)  # a redelivery finishes whatever the race left (and sends nothing twice)

    rows = await partition(path.connection, comm_id)
    assert set(rows) == path.rows(count)
    statuses = {e["PhoneNumber"]: e["Status"] for key, e in rows.items() if key.startswith("r")}
    assert set(statuses.values()) <= {"sent", "cancelled"}
    assert sorted(provider.calls) == sorted(n for n, s in statuses.items() if s == "sent")  # each sent once, none cancelled
    cancelled = sum(1 for s in statuses.values() if s == "cancelled")
    assert answer is None or answer.cancelled == cancelled
    if head_start is None:
        assert (answer.cancelled, provider.calls) == (count, [])
