import asyncio
import contextlib
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain.commands import Party, SendMessage
from sms.domain.errors import Forbidden, NotFound, RecordChanged, StorageUnavailable, ValidationFailed
from sms.domain.model import SendJob, Status, utcnow
from sms.domain.pacing import RetryPolicy, SenderRateLimiter
from sms.domain.transitions import NOT_HANDED_OVER, OUTCOME_UNKNOWN
from sms.domain.validation import Limits
from sms.providers import SendOutcome
from sms.usecases.dispatch import MISSING_MESSAGE_CHECKS, MessageNotWritten, RecipientsInFlight
from sms.usecases.send_now import IMMEDIATE_SAFETY_NET_SECONDS
from tests.fakes import EVERY_COUNTRY, RecordingProvider, TracingProvider, VendorRecord, age_claims, command, sms_over
from tests.unit.conftest import LICENSEE, OTHER_LICENSEE


def request(*numbers, body="Your appointment is at 10am", **fields) -> SendMessage:
    return command(*(Party(f"person {i}", n) for i, n in enumerate(numbers)), body=body, **fields)


def au(i: int) -> str:
    return f"+614123{i:05d}"


async def test_accept_saves_recipients_in_e164_and_queues_a_job(store, queue, provider):
    service = sms_over(store, queue, provider, default_guard=EVERY_COUNTRY)  # a US number too
    response = await service.accept(request("0412 345 678", "+1 650 253 0000"), LICENSEE)

    assert response.ok is True and response.summary == "Queued for 2 recipients"
    message, recipients = await store.load(response.comm_id)
    assert message.licensee_id == LICENSEE
    assert [r.phone_number for r in recipients] == ["+61412345678", "+16502530000"]
    assert {r.status for r in recipients} == {Status.QUEUED}
    assert len({r.recipient_id for r in recipients}) == 2
    # One moment for the message and every recipient: accepted together, not one by one.
    assert {message.created_at} == {r.created_at for r in recipients} == {r.updated_at for r in recipients}
    assert queue.jobs == [(SendJob(response.comm_id, 0, 1), 0)]
    assert provider.sent == []  # nothing is sent within an accept


async def test_duplicate_recipients_are_sent_once(service, store):
    response = await service.accept(request("0412 345 678", "+61412345678", "+61 412 345 678", "0412345679"), LICENSEE)
    _, recipients = await store.load(response.comm_id)
    assert [r.phone_number for r in recipients] == ["+61412345678", "+61412345679"]
    assert recipients[0].name == "person 0"  # the first listing wins


async def test_licensee_is_filled_from_the_key_and_a_different_one_is_refused(service, store, queue):
    same = await service.accept(request("0412345678", licensee_id=LICENSEE), LICENSEE)
    assert (await store.load(same.comm_id))[0].licensee_id == LICENSEE
    with pytest.raises(Forbidden):
        await service.accept(request("0412345678", licensee_id=OTHER_LICENSEE), LICENSEE)
    assert len(store.messages) == 1 and len(queue.jobs) == 1


@pytest.mark.parametrize("send, field, fragment", [
    (SendMessage(missing=True), "SMSModel", "required"),
    (request(), "SMSModel.To", "at least one recipient"),
    (request("0412345678", body="  "), "SMSModel.MessageBody", "must not be empty"),
    (request("0412345678", body="x" * 1601), "SMSModel.MessageBody", "limit is 1600"),
    (request("0412345678", body="😀" * 400), "SMSModel.MessageBody", "needs 13 SMS segments (UCS-2); the limit is 10"),
    (request("0412345678", "12345", "nonsense"), "SMSModel.To[1].PhoneNumber", "'12345' is not a valid phone number"),
    (request("0412345678", sender=Party(phone_number="not-a-sender!")), "SMSModel.From.PhoneNumber", "alphanumeric sender id"),
    (request("0412345678", notes="n" * 4001), "SMSModel.Notes", "4001 characters; the limit is 4000"),
    (request("0412345678", sender=Party(name="c" * 201)), "SMSModel.From.Name", "201 characters; the limit is 200"),
    (command(Party("s" * 201, "0412345678"), body="hi"), "SMSModel.To[0].Name", "201 characters; the limit is 200"),
])
async def test_invalid_requests_name_the_field_and_change_nothing(service, store, queue, send, field, fragment):
    with pytest.raises(ValidationFailed) as caught:
        await service.accept(send, LICENSEE)
    matching = [e for e in caught.value.field_errors if e.field_name == field]
    assert matching and fragment in matching[0].message
    assert store.messages == {} and queue.jobs == []


async def test_every_invalid_number_is_reported_at_once(service):
    with pytest.raises(ValidationFailed) as caught:
        await service.accept(request("0412345678", "12345", "nonsense"), LICENSEE)
    assert [e.field_name for e in caught.value.field_errors] == ["SMSModel.To[1].PhoneNumber", "SMSModel.To[2].PhoneNumber"]


async def test_recipient_limit_is_a_setting(store, queue, provider):
    service = sms_over(store, queue, provider, limits=Limits(max_recipients=2))
    with pytest.raises(ValidationFailed, match="limit is 2 per request"):
        await service.accept(request(au(1), au(2), au(3)), LICENSEE)


async def test_alphanumeric_and_numeric_senders_are_kept(service, store):
    alpha = await service.accept(request(au(1), sender=Party("Clinic", "Clinic")), LICENSEE)
    numeric = await service.accept(request(au(1), sender=Party(phone_number="0412 000 111")), LICENSEE)
    assert store.messages[alpha.comm_id].sender.phone_number == "Clinic"
    assert store.messages[numeric.comm_id].sender.phone_number == "+61412000111"


async def test_a_job_per_hundred_recipients_and_one_store_transaction_up_to_99(service, store, queue):
    small = await service.accept(request(*(au(i) for i in range(99))), LICENSEE)
    assert store.round_trips == 1
    large = await service.accept(request(*(au(i) for i in range(250))), LICENSEE)
    assert store.round_trips == 1 + 3  # ceil(251 / 100) transactions for 250 recipients and the message
    assert [job for job, _ in queue.jobs if job.comm_id == large.comm_id] == [
        SendJob(large.comm_id, 0, 99), SendJob(large.comm_id, 100, 199), SendJob(large.comm_id, 200, 249)
    ]
    assert [job for job, _ in queue.jobs if job.comm_id == small.comm_id] == [SendJob(small.comm_id, 0, 98)]


async def test_dispatch_sends_each_recipient_and_records_the_outcome(service, store, queue, provider):
    response = await service.accept(request(au(1), au(2), body="Hi"), LICENSEE)
    (job, _), = queue.jobs
    store.round_trips = 0

    outcomes = await service.dispatch(job)

    assert sorted(s.to for s in provider.sent) == [au(1), au(2)]
    assert {s.body for s in provider.sent} == {"Hi"}
    _, recipients = await store.load(response.comm_id)
    assert [r.status for r in recipients] == [Status.SENT, Status.SENT]
    assert all(r.provider_message_id and r.attempts == 1 for r in recipients)
    assert len(outcomes) == 2
    assert store.round_trips == 1 + 1 + 1 + 1  # load, claim, record outcomes (+ the load above)


async def test_a_redelivered_job_sends_nothing_twice(service, queue, provider):
    await service.accept(request(au(1), au(2)), LICENSEE)
    (job, _), = queue.jobs
    await service.dispatch(job)
    assert await service.dispatch(job) == []
    assert len(provider.sent) == 2


async def test_two_workers_on_the_same_job_send_each_recipient_once(store, queue):
    provider = RecordingProvider(delay=0.01)
    worker_a = sms_over(store, queue, provider)
    worker_b = sms_over(store, queue, provider)
    await worker_a.accept(request(*(au(i) for i in range(20))), LICENSEE)
    (job, _), = queue.jobs

    results = await asyncio.gather(worker_a.dispatch(job), worker_b.dispatch(job), return_exceptions=True)

    # The loser sees the winner's live claim and hands the job back to the queue rather than finish it.
    assert sum(isinstance(r, RecipientsInFlight) for r in results) <= 1
    assert await worker_b.dispatch(job) == []  # the queue's retry, once the winner is done
    assert sorted(s.to for s in provider.sent) == sorted(au(i) for i in range(20))


async def test_a_refused_send_fails_with_the_reason_a_crashed_one_is_retried_and_the_rest_still_go(store, queue):
    provider = RecordingProvider(refuse={au(1): "number is blocked"}, raise_for={au(2)})
    service = sms_over(store, queue, provider, retry=RetryPolicy(max_attempts=3, base_delay_seconds=30))
    response = await service.accept(request(au(1), au(2), au(3)), LICENSEE)
    job = queue.jobs[0][0]
    await service.dispatch(job)

    _, (blocked, crashed, fine) = await store.load(response.comm_id)
    assert (blocked.status, blocked.last_error) == (Status.FAILED, "number is blocked")
    assert crashed.status is Status.QUEUED and "ConnectionError" in crashed.last_error and crashed.attempts == 1
    assert fine.status is Status.SENT
    assert queue.jobs[-1] == (job, 30)  # the same job again, after the backoff


async def test_transient_failures_back_off_then_give_up_after_max_attempts(store, queue):
    provider = RecordingProvider(raise_for={au(1)})
    service = sms_over(store, queue, provider, retry=RetryPolicy(max_attempts=3, base_delay_seconds=10))
    response = await service.accept(request(au(1)), LICENSEE)
    job = queue.jobs[0][0]

    for _ in range(5):  # the queue redelivering the retry job each time
        await service.dispatch(job)

    _, (recipient,) = await store.load(response.comm_id)
    assert recipient.status is Status.FAILED and recipient.attempts == 3
    assert recipient.last_error.endswith("(gave up after 3 attempts)")
    assert [delay for _, delay in queue.jobs[1:]] == [10, 20]  # retries scheduled after attempts 1 and 2 only


async def test_a_providers_retry_after_is_honoured(store, queue):
    class Throttled(RecordingProvider):
        async def send(self, sms):
            return SendOutcome(error="429 Too Many Requests", transient=True, retry_after_seconds=300)

    service = sms_over(store, queue, Throttled(), retry=RetryPolicy(base_delay_seconds=5))
    await service.accept(request(au(1)), LICENSEE)
    await service.dispatch(queue.jobs[0][0])
    assert queue.jobs[-1][1] == 300


async def test_the_rate_limiter_hands_out_slots_in_order_per_sender(monkeypatch):
    waits: list[float] = []

    async def record_sleep(seconds):
        waits.append(round(seconds, 6))

    monkeypatch.setattr("sms.domain.pacing.asyncio.sleep", record_sleep)
    limiter = SenderRateLimiter(per_second=50)
    await asyncio.gather(*(limiter.wait_turn("+61400000000") for _ in range(5)), limiter.wait_turn("Clinic"))
    # Five sends from one sender are spaced 20 ms apart; another sender does not wait behind them.
    assert sorted(waits) == pytest.approx([0.02, 0.04, 0.06, 0.08], abs=0.005)
    assert await SenderRateLimiter(0).wait_turn("x") is None


async def test_concurrent_sends_are_bounded_by_the_setting(store, queue):
    provider = RecordingProvider(delay=0.01)
    service = sms_over(store, queue, provider, send_concurrency=5)
    await service.accept(request(*(au(i) for i in range(40))), LICENSEE)
    await service.dispatch(queue.jobs[0][0])
    assert len(provider.sent) == 40
    assert provider.max_in_flight == 5


async def test_an_outcome_never_overwrites_a_later_status(store, queue):
    """A delivery receipt that lands while the send is being recorded keeps its status."""

    class ReceiptDuringSend(RecordingProvider):
        async def send(self, sms):
            outcome = await super().send(sms)
            comm_id = next(iter(store.messages))
            row = next(r for r in store.recipients[comm_id].values() if r.recipient_id == sms.recipient_id)
            await store.update_recipients(comm_id, [row.moved_to(Status.DELIVERED, at=utcnow())])
            return outcome

    service = sms_over(store, queue, ReceiptDuringSend())
    response = await service.accept(request(au(1)), LICENSEE)
    await service.dispatch(queue.jobs[0][0])

    _, (recipient,) = await store.load(response.comm_id)
    assert recipient.status is Status.DELIVERED
    assert recipient.provider_message_id == "rec-1"


async def test_send_now_answers_with_the_real_outcome_and_leaves_a_safety_net_job(store, queue):
    provider = RecordingProvider(refuse={au(2): "unreachable"})
    service = sms_over(store, queue, provider)

    response = await service.send_now(request(au(1), au(2)), LICENSEE)

    assert response.ok is False
    assert response.summary == "Sent to 1 of 2 recipients; 1 failed: unreachable"
    _, recipients = await store.load(response.comm_id)
    assert [r.status for r in recipients] == [Status.SENT, Status.FAILED]
    (job, delay), = queue.jobs
    assert delay == IMMEDIATE_SAFETY_NET_SECONDS
    assert await service.dispatch(job) == [] and len(provider.sent) == 2  # the net catches nothing: all done


async def test_send_now_reports_success_when_all_are_sent(service):
    response = await service.send_now(request(au(1)), LICENSEE)
    assert (response.ok, response.summary) == (True, "Sent to 1 of 1 recipient")


async def test_status_shows_each_recipient_to_its_licensee_only(service, queue):
    response = await service.accept(request(au(1), au(2), body="€10 off"), LICENSEE)
    await service.dispatch(queue.jobs[0][0])

    report = await service.status(response.comm_id, LICENSEE)
    message = report.message
    assert (report.status, message.encoding, message.segments, message.recipient_count) == ("sent", "GSM-7", 1, 2)
    assert [(r.phone_number, r.status) for r in report.recipients] == [(au(1), Status.SENT), (au(2), Status.SENT)]
    assert report.reference == response.reference

    with pytest.raises(NotFound):
        await service.status(response.comm_id, OTHER_LICENSEE)
    with pytest.raises(NotFound):
        await service.status("c" * 32, LICENSEE)


async def test_a_job_whose_message_is_not_written_is_retried_by_the_queue(store, queue, provider):
    service = sms_over(store, queue, provider, missing_message_wait=0)
    with pytest.raises(MessageNotWritten):
        await service.dispatch(SendJob("d" * 32, 0, 5))
    assert provider.sent == [] and store.round_trips == 1 + MISSING_MESSAGE_CHECKS


async def test_a_job_picked_up_before_its_message_lands_waits_for_it(store, queue, provider):
    service = sms_over(store, queue, provider, missing_message_wait=0.01)
    original_commit = store.commit

    async def slow_commit(staged):  # the job is queued; the write is on its way
        await asyncio.sleep(0.015)
        return await original_commit(staged)

    store.commit = slow_commit
    accepting = asyncio.create_task(service.accept(request(au(1)), LICENSEE))
    while not queue.jobs:  # the job is queued before the message is written
        await asyncio.sleep(0)
    (job, _), = queue.jobs
    assert store.messages == {}
    await service.dispatch(job)
    await accepting
    assert [s.to for s in provider.sent] == [au(1)]


async def test_jobs_are_queued_before_the_message_is_written(store, queue, provider):
    """If the write fails the client gets an error and the job, finding nothing, sends nothing."""

    async def storage_down(staged):
        # The use case finishes the jobs before the write that makes the message visible.
        assert queue.jobs, "the job must already be queued"
        raise StorageUnavailable()

    store.commit = storage_down
    with pytest.raises(StorageUnavailable):
        await sms_over(store, queue, provider).accept(request(au(1)), LICENSEE)
    with pytest.raises(MessageNotWritten):
        await sms_over(store, queue, provider, missing_message_wait=0).dispatch(queue.jobs[0][0])
    assert provider.sent == []


async def test_a_claim_left_by_a_crashed_worker_is_failed_after_its_lease_never_resent(store, queue):
    class Crashing(RecordingProvider):
        async def send(self, sms):
            raise asyncio.CancelledError  # the worker process dies mid-send

    response = await sms_over(store, queue, RecordingProvider()).accept(request(au(1), au(2)), LICENSEE)
    job = queue.jobs[0][0]
    with pytest.raises(asyncio.CancelledError):
        await sms_over(store, queue, Crashing()).dispatch(job)
    _, left = await store.load(response.comm_id)
    assert [r.status for r in left] == [Status.SENDING, Status.SENDING]

    provider = RecordingProvider()
    within_lease = sms_over(store, queue, provider, sending_lease=timedelta(minutes=5))
    with pytest.raises(RecipientsInFlight):  # the job comes back while the lease still runs
        await within_lease.dispatch(job)
    await age_claims(store, response.comm_id)  # their lease has run out
    past_lease = sms_over(store, queue, provider, sending_lease=timedelta(minutes=5))
    await past_lease.dispatch(job)

    _, settled = await store.load(response.comm_id)
    assert [(r.status, r.last_error) for r in settled] == [(Status.FAILED, OUTCOME_UNKNOWN)] * 2
    assert provider.sent == []  # at most once: an unknown outcome is not sent again


async def _crash_mid_job(store, queue, vendor, to, hang_after, hang_before):
    """A worker claims `to` four at a time and dies while its calls hang: those in `hang_after` were
    taken by the vendor, those in `hang_before` never reached it."""
    crashed = TracingProvider(vendor, hang_after=hang_after, hang_before=hang_before)
    worker = sms_over(store, queue, crashed, send_concurrency=4)
    response = await worker.accept(request(*to), LICENSEE)
    job = queue.jobs[0][0]
    dispatching = asyncio.create_task(worker.dispatch(job))
    while len(vendor.ids) < len(hang_after) or len(crashed.started) < len(hang_after) + len(hang_before):
        await asyncio.sleep(0.001)
    dispatching.cancel()  # kill -9
    with contextlib.suppress(asyncio.CancelledError):
        await dispatching
    return response.comm_id, job


async def test_after_a_crash_the_provider_is_asked_and_each_recipient_is_sent_once_none_unknown(store, queue):
    """Issue 23, item 2: after a kill -9 mid-dispatch, recipients claimed but never handed over ended
    "outcome unknown" beside those the provider had. Now the provider is asked: what it has is recorded
    sent with its id, what it never had is sent now. Counts: 10 recipients, each sent exactly once,
    10 sent, 0 failed, 0 unknown."""
    vendor, to = VendorRecord(), [au(i) for i in range(10)]
    comm_id, job = await _crash_mid_job(store, queue, vendor, to, hang_after={to[0], to[1]}, hang_before={to[2], to[3]})
    _, left = await store.load(comm_id)
    assert Counter(r.status for r in left) == {Status.SENDING: 4, Status.QUEUED: 6}
    assert sorted(vendor.ids) == sorted(r.recipient_id for r in left[:2])

    restarted = TracingProvider(vendor)
    with pytest.raises(RecipientsInFlight):  # inside the lease: nobody asks yet, the queued ones go
        await sms_over(store, queue, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)
    assert restarted.traced == []
    await age_claims(store, comm_id)  # their lease has run out
    await sms_over(store, queue, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)

    assert sorted(restarted.traced) == sorted(to[:4])
    _, settled = await store.load(comm_id)
    assert Counter(r.status for r in settled) == {Status.SENT: 10}
    assert sorted(vendor.sends.values()) == [1] * 10  # every recipient sent exactly once
    assert [r.provider_message_id for r in settled[:2]] == [vendor.ids[r.recipient_id] for r in settled[:2]]
    resent = [r for r in settled if any(e.error == NOT_HANDED_OVER for e in r.events)]
    assert [r.phone_number for r in resent] == to[2:4] and all(r.attempts == 2 for r in resent)


async def test_a_provider_that_does_not_answer_leaves_the_claim_to_be_asked_again_never_failed(store, queue):
    vendor, to = VendorRecord(), [au(i) for i in range(3)]
    comm_id, job = await _crash_mid_job(store, queue, vendor, to, hang_after={to[0]}, hang_before={to[1]})
    down = TracingProvider(vendor)
    down.unreachable = True
    await age_claims(store, comm_id)
    with pytest.raises(RecipientsInFlight, match="did not say"):
        await sms_over(store, queue, down).dispatch(job)
    _, rows = await store.load(comm_id)
    assert [r.status for r in rows] == [Status.SENDING, Status.SENDING, Status.SENT]  # the third was queued: it went

    # Parked before the provider answered: what cannot be traced ends unknown, never resent.
    await sms_over(store, queue, down).give_up(job, "Gave up after 5 failed deliveries")
    _, rows = await store.load(comm_id)
    assert [(r.status, r.last_error) for r in rows[:2]] == [(Status.FAILED, OUTCOME_UNKNOWN)] * 2
    assert sorted(vendor.sends.values()) == [1, 1]


async def test_a_parked_job_asks_the_provider_about_claims_left_behind(store, queue):
    vendor, to = VendorRecord(), [au(i) for i in range(3)]
    comm_id, job = await _crash_mid_job(store, queue, vendor, to, hang_after={to[0]}, hang_before={to[1], to[2]})
    reason = "Gave up after 5 failed deliveries of its job"
    await age_claims(store, comm_id)
    failed = await sms_over(store, queue, TracingProvider(vendor)).give_up(job, reason)
    _, rows = await store.load(comm_id)
    assert [(r.status, r.last_error) for r in rows] == [(Status.SENT, None), (Status.FAILED, reason), (Status.FAILED, reason)]
    assert rows[0].provider_message_id == vendor.ids[rows[0].recipient_id]
    assert [r.seq for r in failed] == [0, 1, 2]


async def test_a_parked_job_fails_what_it_left_behind(service, store, queue):
    response = await service.accept(request(au(1), au(2)), LICENSEE)
    job = queue.jobs[0][0]
    _, (first, second) = await store.load(response.comm_id)
    await store.update_recipients(response.comm_id, [first.moved_to(Status.SENT, at=utcnow())])

    failed = await service.give_up(job, "Gave up after 5 failed deliveries of its job")

    assert [r.seq for r in failed] == [1]
    _, (sent, gave_up) = await store.load(response.comm_id)
    assert sent.status is Status.SENT and (gave_up.status, gave_up.last_error) == (Status.FAILED,
                                                                                   "Gave up after 5 failed deliveries of its job")
    assert await service.give_up(SendJob("e" * 32, 0, 99), "x") == []


async def test_the_sweeper_requeues_what_was_left_behind(store, queue, provider):
    service = sms_over(store, queue, provider, sending_lease=timedelta(minutes=5))
    left_queued = await service.accept(request(*(au(i) for i in range(150))), LICENSEE)
    fresh = await service.accept(request(au(900)), LICENSEE)
    queue.jobs.clear()  # as if the jobs were lost
    old = utcnow() - timedelta(hours=1)
    for row in store.recipients[left_queued.comm_id].values():
        store.recipients[left_queued.comm_id][row.seq] = replace(row, updated_at=old)

    jobs = await service.sweep(queued_for=timedelta(minutes=10))

    assert jobs == [SendJob(left_queued.comm_id, 0, 99), SendJob(left_queued.comm_id, 100, 199)]
    assert [job for job, _ in queue.jobs] == jobs
    assert fresh.comm_id not in {j.comm_id for j in jobs}


async def test_a_providers_huge_error_text_is_recorded_cut_short(store, queue, limits):
    """Vendor error text is not ours to bound: a 100,000-character one would break Azure's 64 KiB
    property limit, and the outcome write would fail after the attempt was made."""
    from sms.domain.model import MAX_ERROR_CHARS

    provider = RecordingProvider(refuse={"+61412345678": "Invalid 'To' number: " + "x" * 100_000})
    service = sms_over(store, queue, provider, limits=limits, send_concurrency=8)
    response = await service.accept(request("0412 345 678"), LICENSEE)
    await service.dispatch(SendJob(response.comm_id, 0, 0))
    _, [recipient] = await store.load(response.comm_id)
    assert recipient.status is Status.FAILED
    assert len(recipient.last_error) == MAX_ERROR_CHARS and recipient.last_error.startswith("Invalid 'To' number: xxx")
    assert recipient.last_error.endswith("…")


# -- issue 12: the dispatch path under rate limits, crashes and lost answers -------------------------


async def test_a_rate_limited_job_is_not_failed_while_its_worker_is_still_sending(store, queue):
    """Issue 12, item 1: the job waits for its rate-limit turns far longer than the sending lease.
    The sweeper runs meanwhile and another worker takes every job it re-queues: none of them may
    fail a recipient the live worker is still sending, and nobody is texted twice."""
    provider = RecordingProvider()
    lease = timedelta(milliseconds=300)
    live = sms_over(store, queue, provider, send_rate_per_second=10, sending_lease=lease)
    other = sms_over(store, queue, provider, sending_lease=lease)
    to = [au(i) for i in range(12)]  # 12 turns at 10/s: over a second, more than three leases
    response = await live.accept(request(*to), LICENSEE)
    sending = asyncio.create_task(live.dispatch(queue.jobs[0][0]))

    while not sending.done():
        await asyncio.sleep(0.05)
        for job in await other.sweep():
            with contextlib.suppress(RecipientsInFlight):
                await other.dispatch(job)
    await sending

    _, recipients = await store.load(response.comm_id)
    assert Counter(r.status for r in recipients) == {Status.SENT: 12}  # none falsely failed
    assert sorted(provider.calls) == sorted(to)  # each texted once


async def test_a_parked_copy_of_a_job_leaves_a_send_in_flight_alone(store, queue):
    """Issue 12, item 1: giving up on a parked job must not fail a recipient whose lease still runs:
    its worker is alive, and records what the provider answered."""
    provider = RecordingProvider()
    answer = asyncio.Event()
    original_send = provider.send

    async def slow_send(sms):
        await answer.wait()
        return await original_send(sms)

    provider.send = slow_send
    service = sms_over(store, queue, provider, sending_lease=timedelta(minutes=5))
    response = await service.accept(request(au(1)), LICENSEE)
    job = queue.jobs[0][0]
    sending = asyncio.create_task(service.dispatch(job))
    while store.recipients[response.comm_id][0].status is not Status.SENDING:
        await asyncio.sleep(0.001)

    assert await service.give_up(job, "Gave up after 5 failed attempts to run its send job") == []
    answer.set()
    await sending

    _, (recipient,) = await store.load(response.comm_id)
    assert (recipient.status, recipient.last_error) == (Status.SENT, None)
    assert [s.to for s in provider.sent] == [au(1)]


async def test_after_a_crash_only_the_recipient_with_the_provider_is_outcome_unknown(store, queue):
    """Issue 12, item 2: the worker dies during its 4th provider call, the rest still waiting for
    their rate-limit turns. The three sent stay sent, the one with the provider becomes "outcome
    unknown" once its lease has run out, and the six never attempted are sent by the redelivery."""
    to = [au(i) for i in range(10)]
    crashed = RecordingProvider(stall_on_call=4)
    worker = sms_over(store, queue, crashed, send_rate_per_second=20)
    response = await worker.accept(request(*to), LICENSEE)
    job = queue.jobs[0][0]
    dispatching = asyncio.create_task(worker.dispatch(job))
    await crashed.stalled.wait()  # the worker is killed during its 4th call
    dispatching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dispatching

    restarted = RecordingProvider()
    with pytest.raises(RecipientsInFlight):  # redelivered while the 4th is within its lease: the rest go, it waits
        await sms_over(store, queue, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)
    await age_claims(store, response.comm_id)  # once its lease has run out
    await sms_over(store, queue, restarted, sending_lease=timedelta(minutes=5)).dispatch(job)

    _, recipients = await store.load(response.comm_id)
    assert Counter(r.status for r in recipients) == {Status.SENT: 9, Status.FAILED: 1}
    assert [(r.phone_number, r.last_error) for r in recipients if r.status is Status.FAILED] == [(to[3], OUTCOME_UNKNOWN)]
    assert crashed.calls == to[:4] and sorted(restarted.calls) == to[4:]  # each called once, the unknown one not again


async def test_a_claim_whose_answer_was_lost_is_recognised_as_the_workers_own(store, queue, provider):
    """Issue 12, item 4: the claim landed but its answer was lost; the $batch retry repeats it and
    storage refuses the repeat (412, RecordChanged). The rows carry this worker's claim: it sends them."""
    write = store.update_recipients
    lost: list[int] = []

    async def answer_lost_once(comm_id, rows):
        written = await write(comm_id, rows)
        if not lost and any(r.status is Status.SENDING for r in rows):
            lost.append(len(rows))
            raise RecordChanged("412 on the repeat of a transaction that had landed")
        return written

    store.update_recipients = answer_lost_once
    service = sms_over(store, queue, provider)
    response = await service.accept(request(au(1), au(2), au(3)), LICENSEE)
    await service.dispatch(queue.jobs[0][0])

    assert lost == [3]
    assert sorted(s.to for s in provider.sent) == [au(1), au(2), au(3)]
    _, recipients = await store.load(response.comm_id)
    assert [r.status for r in recipients] == [Status.SENT] * 3


async def test_what_claiming_next_to_each_provider_call_costs_in_round_trips(store, queue):
    """Dispatch.send's cost: calls that start together share one claim write and one outcome
    write; calls that start one at a time (a rate limit) cost a claim and an outcome write each, at most."""
    together = sms_over(store, queue, RecordingProvider(), send_concurrency=100)
    response = await together.accept(request(*(au(i) for i in range(100))), LICENSEE)
    store.round_trips = 0
    await together.dispatch(queue.jobs[-1][0])
    assert store.round_trips == 3  # load, claim all 100, record all 100
    assert Counter(r.status for r in (await store.load(response.comm_id))[1]) == {Status.SENT: 100}

    one_at_a_time = sms_over(store, queue, RecordingProvider(), send_rate_per_second=50)
    response = await one_at_a_time.accept(request(*(au(i) for i in range(5))), LICENSEE)
    store.round_trips = 0
    await one_at_a_time.dispatch(queue.jobs[-1][0])
    assert store.round_trips <= 1 + 2 * 5
    assert Counter(r.status for r in (await store.load(response.comm_id))[1]) == {Status.SENT: 5}


async def test_a_copy_of_a_job_that_loses_a_claim_steps_aside_and_ends(store, queue):
    """Two dispatches of one job (a sweeper's or safety net's copy of a long, rate-limited job, in
    another process): the one whose claim is refused leaves the rest to the other and ends normally.
    Raised, it would count towards host.json's maxDequeueCount: a copy that kept meeting the live
    worker would be parked, and give_up would fail the recipients that worker was about to send."""
    provider = RecordingProvider()
    lease = timedelta(minutes=5)
    worker_a = sms_over(store, queue, provider, send_rate_per_second=100, sending_lease=lease)
    worker_b = sms_over(store, queue, provider, send_rate_per_second=100, sending_lease=lease)
    to = [au(i) for i in range(10)]
    response = await worker_a.accept(request(*to), LICENSEE)
    (job, _), = queue.jobs

    results = await asyncio.gather(worker_a.dispatch(job), worker_b.dispatch(job), return_exceptions=True)

    assert [type(r) for r in results] == [list, list]
    assert queue.jobs[1:] == []  # no copy put back to pile up behind the job
    assert sorted(provider.calls) == sorted(to)
    assert Counter(r.status for r in (await store.load(response.comm_id))[1]) == {Status.SENT: 10}


async def test_an_absurdly_long_provider_message_id_is_kept_cut_short_and_the_sms_recorded_sent(store, queue, limits):
    from sms.domain.model import MAX_PROVIDER_ID_CHARS
    from sms.providers import SendOutcome

    class LongIds(RecordingProvider):
        async def send(self, sms):
            await super().send(sms)
            return SendOutcome(provider_message_id="SM" + "9" * 100_000)

    service = sms_over(store, queue, LongIds(), limits=limits, send_concurrency=8)
    response = await service.accept(request("0412 345 678"), LICENSEE)
    await service.dispatch(SendJob(response.comm_id, 0, 0))
    _, [recipient] = await store.load(response.comm_id)
    assert recipient.status is Status.SENT and recipient.provider_message_id == ("SM" + "9" * 100_000)[:MAX_PROVIDER_ID_CHARS]
