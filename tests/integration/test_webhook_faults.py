"""Webhook delivery across a worker that dies, against real Azurite: the app's own `deliver_webhooks`
function, the real sender, a real receiver verifying every request, and the delivery's own queue
message taken, lost and taken again as the queue does it.

A worker that dies holding a queue message neither deletes nor releases it: the message stays hidden
until the visibility it was taken with lapses, then the queue hands it out again with its dequeue
count up. Here the dying worker takes the message through the SDK with a 2 s visibility (the Functions
host takes it for 10 minutes, which is the only difference), runs the real function on it and is
cancelled (as tests/integration/test_faults.py cancels a send job) mid-send, or finishes and never
deletes it; then the dev host's queue listener, the Functions host's stand-in, takes it again once it
is visible and runs the same function. Every event must then have been answered 200 at least once,
and any event sent twice must have been sent as the same bytes under the same id.
"""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage  # the type the Python worker hands to queue triggers
from azure.storage.queue.aio import QueueServiceClient
from standardwebhooks import Webhook

from sms.bootstrap import build
from sms.config import WEBHOOK_QUEUE, Settings
from sms.dev import azurite
from sms.dev.host.app import QueueTrigger
from sms.dev.host.queues import QueueListener, QueueSemantics
from sms.domain.events import Delivery
from sms.domain.model import SendJob, Status
from sms.entrypoints import worker
from sms.providers import ProviderSet
from sms.storage.queues import queue_client
from sms.usecases.inbound import Inbound
from tests.fakes import RecordingProvider, SmsOverCommands, command
from tests.webhook_receiver import webhook_receiver_fixture  # noqa: F401 - the webhook_receiver fixture

DYING_VISIBILITY_SECONDS = 2  # how long the dying worker's message stays hidden (the host: 600)


@pytest.fixture
def storage():
    """An Azurite of the test's own: the delivery queue holds only the test's messages."""
    with azurite.start() as instance:
        yield instance


@pytest.fixture
async def app(storage):
    adapters = build(Settings.from_env({"AzureWebJobsStorage": storage.connection_string, "SMS_WEBHOOKS_ALLOW_PRIVATE": "true"}))
    await adapters.ensure_storage()
    gateway = adapters.gateway()

    async def the_gateway():
        return gateway

    functions = func.FunctionApp()
    functions.register_functions(worker.blueprint(the_gateway))
    try:
        yield gateway, {fn.get_function_name(): fn.get_user_function() for fn in functions.get_functions()}
    finally:
        await adapters.close()


async def a_batch_of_three_events(gateway, receiver, licensee: str) -> str:
    """An endpoint at the receiver, and a message to three people sent: its job's ledger write makes
    one batch of three message.sent events and queues one delivery. The message's commId."""
    endpoint = await gateway.use.webhooks.add(licensee, receiver.url)
    receiver.secret = endpoint.secret.value
    sent = command(*(f"+6141280000{i}" for i in range(3)), body="Webhook fault test")
    response = await SmsOverCommands(gateway.use).accept(sent, licensee)
    await gateway.use.dispatch.dispatch(SendJob(response.comm_id, 0, 99))
    return response.comm_id


def as_the_host_hands_it(message) -> QueueMessage:
    """The SDK's message as the Python worker hands it to a queue trigger (as sms/dev/host/queues.py does)."""
    return QueueMessage(id=message.id, body=message.content.encode(), dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
                        insertion_time=message.inserted_on, expiration_time=message.expires_on, time_next_visible=message.next_visible_on)


async def listen_until(storage, function, done) -> list[int]:
    """The dev host's queue listener on the delivery queue, running `function` until `done()`; the
    dequeue count of each message it ran."""
    seen: list[int] = []

    async def recording(msg: func.QueueMessage) -> None:
        seen.append(msg.dequeue_count)
        await function(msg)

    async with QueueServiceClient.from_connection_string(storage.connection_string) as service:
        semantics = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.2, visibility_timeout=0, max_dequeue_count=5)
        listener = QueueListener(QueueTrigger("deliver_webhooks", WEBHOOK_QUEUE, "AzureWebJobsStorage", "msg", recording),
                                 service.get_queue_client(WEBHOOK_QUEUE), service.get_queue_client(f"{WEBHOOK_QUEUE}-poison"), semantics)
        running = asyncio.create_task(listener.run())
        try:
            async with asyncio.timeout(30):
                while not done():
                    await asyncio.sleep(0.05)
                # ...and until the message is deleted: nothing left for anyone to run.
                while (await service.get_queue_client(WEBHOOK_QUEUE).get_queue_properties()).approximate_message_count:
                    await asyncio.sleep(0.05)
        finally:
            listener.stop()
            await running
    return seen


@pytest.mark.parametrize("dies", ["mid-send", "before-deleting"])
async def test_a_delivery_whose_worker_dies_is_run_again_and_every_event_arrives(storage, app, webhook_receiver, dies):
    """mid-send: the receiver has answered the first event and holds the second when the worker is
    cancelled (the second's answer never read nor logged, the message neither deleted nor released).
    before-deleting: the function ran to its end, every event delivered, and the worker died before
    the host deleted the message."""
    gateway, functions = app
    licensee = uuid.uuid4().hex
    comm_id = await a_batch_of_three_events(gateway, webhook_receiver, licensee)
    if dies == "mid-send":
        webhook_receiver.answer_first(1, 200)
        webhook_receiver.answer("hang")

    async with QueueServiceClient.from_connection_string(storage.connection_string) as service:
        deliveries = queue_client(service, WEBHOOK_QUEUE, "base64")
        [taken] = [m async for m in deliveries.receive_messages(max_messages=32, visibility_timeout=DYING_VISIBILITY_SECONDS)]
        running = asyncio.create_task(functions["deliver_webhooks"](as_the_host_hands_it(taken)))
        if dies == "mid-send":
            async with asyncio.timeout(10):
                while len(webhook_receiver.verified) < 2:
                    await asyncio.sleep(0.01)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        else:
            await running
        first_run = list(webhook_receiver.verified)
        assert await deliveries.peek_messages(max_messages=32) == []  # hidden, not gone
    webhook_receiver.release()
    webhook_receiver.answer(200)

    answered = lambda: {d.webhook_id for d in webhook_receiver.verified if d.answered == 200}  # noqa: E731
    dequeue_counts = await listen_until(storage, functions["deliver_webhooks"], lambda: len(answered()) == 3)

    assert dequeue_counts == [2]  # the same queue message, handed out a second time
    got = webhook_receiver.verified
    assert webhook_receiver.rejected == []
    assert {(d.payload["data"]["commId"], d.payload["data"]["seq"]) for d in got if d.webhook_id in answered()} == {
        (comm_id, 0), (comm_id, 1), (comm_id, 2)}
    assert [d.answered for d in first_run] == ([200, "hang"] if dies == "mid-send" else [200, 200, 200])
    # The second run sends the whole batch again: what arrived twice arrived as the same bytes, each
    # time signed afresh and verifying.
    again = Counter(d.webhook_id for d in got)
    assert again == Counter({d.webhook_id: 2 for d in first_run}) + Counter({i: 1 for i in answered() - {d.webhook_id for d in first_run}})
    for webhook_id in again:
        sent = [d for d in got if d.webhook_id == webhook_id]
        assert len({d.body for d in sent}) == 1
        for d in sent:
            Webhook(webhook_receiver.secret).verify(d.body, d.headers)
    # The log holds every attempt that got its answer: the run that died mid-send logged the first
    # event's (issue 25: it used to log nothing), and not the one it was waiting on.
    [endpoint] = await gateway.use.webhooks.list(licensee)
    log, _ = await gateway.use.delivery.attempts(endpoint)
    assert Counter(r.outcome for r in log) == {"delivered": 1 + 3 if dies == "mid-send" else 6}
    assert Counter(r.event_id for r in log) == Counter(d.webhook_id for d in got if d.answered == 200)  # a row per answer


# -- a receipt that overtakes the job's own write ----------------------------------------------------------


async def queued_events(storage, events, licensee: str) -> list:
    """Every event of every batch announced on the delivery queue for `licensee`, in batch order."""
    async with QueueServiceClient.from_connection_string(storage.connection_string) as service:
        peeked = await queue_client(service, WEBHOOK_QUEUE, "base64").peek_messages(max_messages=32)
    deliveries = sorted((Delivery.from_json(m.content) for m in peeked), key=lambda d: d.batch)
    found = []
    for delivery in deliveries:
        if delivery.licensee_id == licensee:
            found += await events.batch(licensee, delivery.comm_id, delivery.batch) or []
    return found


async def test_a_receipt_that_arrives_before_the_job_records_the_send_still_leaves_sent_then_delivered(storage):
    """The carrier's "delivered" comes back while the job is still between the provider's answer and
    writing it (Twilio's callbacks can come within a second; a job writes its outcomes after the
    call). The recipient ends delivered either way; its endpoint must still be told message.sent
    (sequence 1) and message.delivered (2), once each, as for a receipt that comes after (sms/domain/events.py:
    '"sent" is then told first, from its timeline, as it would have been')."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": storage.connection_string, "SMS_WEBHOOKS_ALLOW_PRIVATE": "true"}))
    await adapters.ensure_storage()
    inbound: list[Inbound] = []

    class ReceiptFirst(RecordingProvider):
        async def send(self, sms):
            outcome = await super().send(sms)
            assert await inbound[0].apply_receipt(sms.reference, Status.DELIVERED, "SM-early", provider="twilio")
            return outcome

    adapters.providers = ProviderSet([ReceiptFirst()])
    gateway = adapters.gateway()
    inbound.append(gateway.use.inbound)
    licensee = uuid.uuid4().hex
    try:
        await gateway.use.webhooks.add(licensee, "https://hooks.example.org/sms")
        sent = command("+61412810001", "+61412810002", body="Receipt first")
        comm_id = (await SmsOverCommands(gateway.use).accept(sent, licensee)).comm_id
        await gateway.use.dispatch.dispatch(SendJob(comm_id, 0, 99))
        _, recipients = await adapters.messages.load(comm_id)
        assert [r.status for r in recipients] == [Status.DELIVERED] * 2  # the receipt's status stands

        events = await queued_events(storage, adapters.events, licensee)
        told = sorted((e.payload["data"]["seq"], e.payload["data"]["sequence"], e.type) for e in events)
        assert told == [(0, 1, "message.sent"), (0, 2, "message.delivered"), (1, 1, "message.sent"), (1, 2, "message.delivered")]
    finally:
        await adapters.close()
