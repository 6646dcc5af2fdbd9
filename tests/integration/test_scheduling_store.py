"""Scheduling on Azurite (issue 16): what a scheduled message stores and reads back, a job hidden for
the longest hop Azure allows, licensee settings, and cancels racing dispatches on real ETags."""
import asyncio
import json
import random
from collections import Counter
from datetime import timedelta

import azure.functions as func
from azure.storage.queue.aio import QueueServiceClient

from sms.config import SEND_QUEUE
from sms.domain.commands import Party, SendMessage
from sms.domain.model import MAX_QUEUE_DELAY, STATUS_LETTERS, SendJob, Status, reference_for, utcnow
from sms.domain.pacing import RequestRateLimiter
from sms.storage import LedgerQuery, LicenseeSettings
from sms.storage.queues import queue_client
from sms.usecases.auth import Authenticator, new_key
from tests.fakes import LICENSEE, FakeGateway, InMemoryApiKeyStore, RecordingProvider, assembled


def command(*numbers, **timing) -> SendMessage:
    return SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Your appointment", **timing)


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
        use = assembled(adapters.messages, adapters.jobs, provider, ledger=adapters.ledger, send_concurrency=2)
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


async def ledger_says(use, comm_id: str) -> str:
    [entry], _ = await use.ledger.page(LedgerQuery(LICENSEE, reference=reference_for(comm_id)), 5)
    return entry.statuses


async def test_concurrent_cancels_of_one_message_each_answer_and_together_cancel_every_waiting_recipient_once(adapters):
    """Issue 23: five cancels of one message at once answered one 200 and four 500s. The cancels that
    lost the race to write the ledger entry met Azure's 404 for a status row the winner had deleted."""
    use = assembled(adapters.messages, adapters.jobs, RecordingProvider(), ledger=adapters.ledger)
    send_at = (utcnow() + timedelta(hours=1)).isoformat()
    results = [await use.accept.queue(command(*(f"+614130{m:02d}{i:03d}" for i in range(3)), send_at=send_at), LICENSEE)
               for m in range(10)]
    answers = await asyncio.gather(*(use.cancel.cancel(LICENSEE, r.comm_id) for r in results for _ in range(5)),
                                   return_exceptions=True)
    assert Counter(type(a).__name__ for a in answers) == {"CancelResult": 50}
    for result in results:
        mine = [a for a in answers if a.comm_id == result.comm_id]
        assert len(mine) == 5 and sum(a.cancelled for a in mine) == 3
        assert all(a.cancelled + sum(a.unaffected.values()) == 3 and set(a.unaffected) <= {"cancelled"} for a in mine)
        assert {r.status for r in (await adapters.messages.load(result.comm_id))[1]} == {Status.CANCELLED}
        assert await ledger_says(use, result.comm_id) == "ccc"


class CallCounting(RecordingProvider):
    """Sets `reached` as the dispatch makes its `n`-th provider call: when the cancels start."""

    def __init__(self, n: int, **options):
        super().__init__(**options)
        self.n, self.reached = n, asyncio.Event()

    async def send(self, sms):
        if len(self.calls) + 1 >= self.n:
            self.reached.set()
        return await super().send(sms)


async def test_cancels_racing_a_dispatch_each_answer_and_cancel_exactly_what_was_not_sent(adapters):
    """Three cancels and the job's dispatch at once, on real ETags, the cancels starting after a
    random number of the dispatch's provider calls: every cancel answers (the cancel that lost five
    writes in a row to the dispatch's claims raised, a 500), the job ends without an error (its
    ledger write failed as the cancels' did: 28 jobs in issue 23), the cancels' counts add up to the
    recipients that ended cancelled, none of them was sent, nor is by the job's redelivery, and the
    ledger says what the rows say."""
    split = 0
    for trial in range(10):
        rng = random.Random(100 + trial)
        provider = CallCounting(rng.randint(1, 12), delay=0.004)
        use = assembled(adapters.messages, adapters.jobs, provider, ledger=adapters.ledger, send_concurrency=4)
        numbers = [f"+6142{trial:02d}{i:05d}" for i in range(30)]
        result = await use.accept.queue(command(*numbers), LICENSEE)
        job = SendJob(result.comm_id, 0, len(numbers) - 1)

        async def cancel_when_reached(use=use, provider=provider, comm_id=result.comm_id):
            await provider.reached.wait()
            return await use.cancel.cancel(LICENSEE, comm_id)

        _, *cancels = await asyncio.gather(use.dispatch.dispatch(job), *(cancel_when_reached() for _ in range(3)))
        rows = (await adapters.messages.load(result.comm_id))[1]
        cancelled = {r.phone_number for r in rows if r.status is Status.CANCELLED}
        called = list(provider.calls)
        assert cancelled.isdisjoint(called), f"trial {trial}: a cancelled recipient was sent"
        assert sum(c.cancelled for c in cancels) == len(cancelled) and cancelled | set(called) == set(numbers)
        assert all(c.cancelled + sum(c.unaffected.values()) == len(numbers) for c in cancels)
        await use.dispatch.dispatch(job)  # the job delivered again
        assert provider.calls == called
        assert await ledger_says(use, result.comm_id) == "".join(STATUS_LETTERS[r.status] for r in rows)
        split += bool(cancelled) and bool(called)
    assert split >= 8


async def test_five_parallel_deletes_over_the_api_answer_five_200s_whose_counts_add_up(adapters):
    """The attack of issue 23 through the app's own DELETE /api/sms/{commId} function, over Azurite."""
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    await keys.add(record)
    use = assembled(adapters.messages, adapters.jobs, RecordingProvider(), ledger=adapters.ledger)
    gw = FakeGateway(use, Authenticator(keys), RequestRateLimiter(0), adapters.settings)
    send_at = (utcnow() + timedelta(hours=1)).isoformat()
    results = [await use.accept.queue(command(*(f"+614131{m:02d}{i:03d}" for i in range(4)), send_at=send_at), LICENSEE)
               for m in range(6)]

    def delete(comm_id: str):
        return gw.functions["sms_cancel"](func.HttpRequest("DELETE", f"http://localhost/api/sms/{comm_id}", body=b"",
                                                           headers={"Authorization": f"Bearer {key}"}, route_params={"commId": comm_id}))

    responses = await asyncio.gather(*(delete(r.comm_id) for r in results for _ in range(5)))
    assert Counter(r.status_code for r in responses) == {200: 30}
    answers = [json.loads(r.get_body()) for r in responses]
    for result in results:
        mine = [a for a in answers if a["commId"] == result.comm_id]
        assert sorted(a["cancelled"] for a in mine) == [0, 0, 0, 0, 4]
        assert all(a["unaffected"] == ({} if a["cancelled"] else {"cancelled": 4}) for a in mine)
