"""The one-call accept (issue 30) on Azurite: its put is the accept's one storage call, and the worker writes and
sends from the job as the queue holds it. A cancel racing the worker that writes the rows: both insert the message's
gate row, so exactly one wins. The cancel's: every recipient ends cancelled and none is sent. The worker's: the
cancel goes on over the rows as for any message (ETag-checked against the claims), so a recipient is sent or
cancelled, never both, and never sent twice. Counts asserted: provider calls per number, each row's status, the
gate's state, what the cancel answered."""
import asyncio

import pytest
from azure.storage.queue.aio import QueueServiceClient

from sms.domain.comm_ids import CommIdKeys
from sms.domain.commands import Party, SendMessage
from sms.domain.errors import StillChanging
from sms.domain.jobs import GATE_CANCELLED, GATE_MATERIALIZED, parse_job
from sms.domain.model import utcnow
from sms.storage.queues import StorageWholeJobQueue, queue_client
from tests.fakes import InMemoryJobQueue, RecordingProvider, assembled, whole_job
from tests.integration.test_materialize_store import partition

LICENSEE = "e2" * 16
KEYS = CommIdKeys(b"k" * 32)


def numbers(message: int, count: int) -> list[str]:
    return [f"+6149{message:03d}{i:04d}" for i in range(count)]


def gateway(store, provider):
    """One process's use cases over the real message store, recognising this deployment's tagged ids."""
    return assembled(store, InMemoryJobQueue(), provider, missing_message_wait=0, comm_id_keys=KEYS)


def tagged_job(message: int, count: int):
    at = utcnow()
    return whole_job(*numbers(message, count), licensee=LICENSEE, comm_id=KEYS.mint(LICENSEE, at, count), at=at)


async def test_a_cancel_before_the_worker_cancels_every_recipient_and_the_worker_sends_none(adapters, emulator):
    job, provider = tagged_job(1, 3), RecordingProvider()
    use = gateway(adapters.messages, provider)
    comm_id = job.message.comm_id

    assert (await use.cancel.cancel(LICENSEE, comm_id)).cancelled == 3
    assert (await use.status.report(comm_id, LICENSEE)).status == "cancelled"
    await use.dispatch.dispatch_whole(job)
    again = await use.cancel.cancel(LICENSEE, comm_id)
    assert (again.cancelled, again.unaffected) == (0, {"cancelled": 3})
    assert provider.calls == []
    rows = await partition(emulator.connection_string, comm_id)
    assert rows["gate"]["State"] == GATE_CANCELLED
    assert [e["Status"] for key, e in sorted(rows.items()) if key.startswith("r")] == ["cancelled"] * 3


@pytest.mark.parametrize("head_start", [0, 1, 2, 3, 5, 8])
async def test_a_cancel_racing_the_worker_either_cancels_all_or_goes_on_over_its_rows(adapters, emulator, head_start):
    """The worker starts `head_start` event-loop turns before the cancel, to meet the race at different points; the
    invariants hold whichever insert wins."""
    count = 5
    job, provider = tagged_job(10 + head_start, count), RecordingProvider(delay=0.002)
    worker, canceller = gateway(adapters.messages, provider), gateway(adapters.messages, RecordingProvider())
    comm_id = job.message.comm_id

    async def cancel():
        for _ in range(head_start):
            await asyncio.sleep(0)
        try:
            return await canceller.cancel.cancel(LICENSEE, comm_id)
        except StillChanging:  # lost every write to the claims: cancelling again is safe, and what it said is all
            return None

    _, answer = await asyncio.gather(worker.dispatch.dispatch_whole(job), cancel())
    await worker.dispatch.dispatch_whole(job)  # a redelivery finishes whatever the race left (and sends nothing twice)

    rows = await partition(emulator.connection_string, comm_id)
    statuses = {e["PhoneNumber"]: e["Status"] for key, e in rows.items() if key.startswith("r")}
    assert len(statuses) == count and set(statuses.values()) <= {"sent", "cancelled"}
    assert sorted(provider.calls) == sorted(n for n, s in statuses.items() if s == "sent")  # each sent once, none cancelled
    cancelled = sum(1 for s in statuses.values() if s == "cancelled")
    if rows["gate"]["State"] == GATE_CANCELLED:  # the cancel's insert won
        assert (answer.cancelled, cancelled, provider.calls) == (count, count, [])
    else:
        assert rows["gate"]["State"] == GATE_MATERIALIZED
        assert answer is None or answer.cancelled == cancelled


async def test_a_one_call_accept_puts_its_job_alone_and_the_worker_writes_and_sends_it(adapters, emulator, unique_name):
    """The writer on, over Azurite: the accept's one storage call is the put (no row until the worker writes them),
    GET answers from the id meanwhile, and the job as the queue holds it (base64) is what the worker sends from."""
    name, provider = unique_name("accept"), RecordingProvider()
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        queue = StorageWholeJobQueue(service, name, "base64")
        await queue.create_queue()
        use = assembled(adapters.messages, InMemoryJobQueue(), provider, accept_jobs=queue, comm_id_keys=KEYS, accept_one_call=True)
        to = numbers(90, 3)
        answer = await use.accept.queue(SendMessage(to=tuple(Party(phone_number=n) for n in to), body="Hello"), LICENSEE)
        assert await partition(emulator.connection_string, answer.comm_id) == {}
        assert (await use.status.report(answer.comm_id, LICENSEE)).status == "queued"
        received = [m async for m in queue_client(service, name, "base64").receive_messages()]
    assert len(received) == 1
    job = parse_job(received[0].content)
    assert job.message.comm_id == answer.comm_id
    await use.dispatch.dispatch_whole(job)
    assert sorted(provider.calls) == sorted(to)
    report = await use.status.report(answer.comm_id, LICENSEE)
    assert (report.status, report.message.created_at) == ("sent", job.message.created_at)
