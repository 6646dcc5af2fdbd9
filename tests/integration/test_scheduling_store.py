"""Scheduling on Azurite (issue 16): what a scheduled message stores and reads back, a job hidden for
the longest hop Azure allows, licensee settings, and cancels racing dispatches on real ETags."""
import asyncio
import random
from datetime import timedelta

from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import SEND_QUEUE, Settings
from sms.gateway import assemble
from sms.model import SendJob, Status, utcnow
from sms.storage import LicenseeSettings
from sms.storage.queues import queue_client
from sms.usecases.commands import Party, SendMessage
from sms.usecases.dispatch import MAX_QUEUE_DELAY
from tests.fakes import LICENSEE, RecordingProvider

import pytest


@pytest.fixture
async def adapters(emulator):
    built = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    await built.ensure_storage()
    yield built
    await built.close()


def command(*numbers, **timing) -> SendMessage:
    return SendMessage(lambda: "", to=tuple(Party(phone_number=n) for n in numbers), body="Your appointment", **timing)


async def test_a_scheduled_message_stores_its_timing_and_its_job_hides_for_the_longest_hop(adapters, emulator):
    use = adapters.gateway().use
    send_at = utcnow() + timedelta(days=20)
    result = await use.accept.queue(command("+61412000001", send_at=send_at.isoformat(), validity_period=3600, urgent=True), LICENSEE)
    message, [row] = await adapters.messages.load(result.comm_id)
    assert abs(message.send_at - send_at) < timedelta(milliseconds=1)
    assert message.valid_until == message.send_at + timedelta(seconds=3600) and message.urgent is True
    assert row.status is Status.SCHEDULED and [e.status for e in row.timeline] == [Status.SCHEDULED]
    # Azurite took the put with a visibility of nearly 7 days (the message never expires), and hides it.
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        peeked = await queue_client(service, SEND_QUEUE, "base64").peek_messages(max_messages=32)
    assert all(SendJob.from_json(m.content).comm_id != result.comm_id for m in peeked)
    assert MAX_QUEUE_DELAY < timedelta(days=7)


async def test_licensee_settings_round_trip(adapters):
    assert await adapters.licensees.get("f" * 32) is None
    settings = LicenseeSettings("f" * 32, "21:00-08:00", "Australia/Sydney", utcnow())
    await adapters.licensees.put(settings)
    assert await adapters.licensees.get("f" * 32) == settings


async def test_cancels_racing_dispatches_on_real_etags_never_let_a_cancelled_recipient_go_out(adapters):
    split = 0
    for trial in range(12):
        rng = random.Random(trial)
        provider = RecordingProvider(delay=0.004)
        use = assemble(adapters.messages, adapters.jobs, provider, ledger=adapters.ledger, send_concurrency=2)
        numbers = [f"+6141{trial:02d}{i:05d}" for i in range(10)]
        result = await use.accept.queue(command(*numbers), LICENSEE)
        job = SendJob(result.comm_id, 0, len(numbers) - 1)

        async def cancel_after(seconds: float, use=use, comm_id=result.comm_id):
            await asyncio.sleep(seconds)
            return await use.cancel.cancel(LICENSEE, comm_id)

        _, cancel = await asyncio.gather(use.dispatch.dispatch(job), cancel_after(rng.uniform(0, 0.06)))
        rows = (await adapters.messages.load(result.comm_id))[1]
        cancelled = {r.phone_number for r in rows if r.status is Status.CANCELLED}
        called = set(provider.calls)
        assert cancelled.isdisjoint(called), f"trial {trial}: a cancelled recipient was sent"
        assert cancel.cancelled == len(cancelled) and cancelled | called == set(numbers)
        split += bool(cancelled) and bool(called)
    assert split >= 3
