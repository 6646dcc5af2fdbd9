"""Adversarial review of the crash recovery (issue 23, items 1-4): claims a dead worker left `sending`
traced with the provider, races between the dispatches, cancels and give-ups that meet them, and the
immediate route's quiet-hours refusal and idempotent replays.

A test whose docstring gives an interleaving showed a defect and failed before its fix (each was
written first as a strict xfail); the rest pin down behaviour the change relies on."""
import asyncio
import random
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain import transitions
from sms.domain.comm_ids import CommIdKeys
from sms.domain.commands import Party, RequestKey, SendMessage
from sms.domain.errors import RecordChanged, StorageUnavailable
from sms.domain.model import NOT_ATTEMPTED, WAITING, SendJob, Status, utcnow
from sms.domain.transitions import NOT_HANDED_OVER, OUTCOME_UNKNOWN
from sms.providers import Found, SendOutcome, Trace
from sms.usecases.dispatch import RecipientsInFlight
from tests.fakes import (
    EVERY_COUNTRY,
    InMemoryIdempotencyStore,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryLicenseeSettingsStore,
    InMemoryMessageStore,
    InMemoryOptOutStore,
    InMemoryWholeJobQueue,
    RecordingProvider,
    TracingProvider,
    VendorRecord,
    assembled,
)

LICENSEE = "a" * 32
LEASE = timedelta(minutes=5)
KEYS = CommIdKeys(b"k" * 32)  # the deployment's SMS_COMMID_KEY, for the one-call accept (issue 30)
DEAD = "claim-of-a-worker-that-died"
BODY = "Your appointment is at 10am"
# A Wednesday: 11:00 UTC is 22:00 in Sydney (AEDT, +11); 11:00 in London.
T0 = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
AU_MOBILE, LONDON = "+61412345678", "+442079460000"


def au(i: int) -> str:
    return f"+614123{i:05d}"


def command(*numbers, body=BODY, **timing) -> SendMessage:
    return SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body=body, **timing)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def world(provider=None, store=None, clock=None, **options):
    store = store or InMemoryMessageStore()
    queue = InMemoryJobQueue()
    provider = provider or RecordingProvider()
    use = assembled(store, queue, provider, sending_lease=LEASE, default_guard=EVERY_COUNTRY, **({"clock": clock} if clock else {}),
                    **options)
    return store, queue, use


async def accepted(use, queue, *numbers, **timing) -> tuple[str, SendJob]:
    result = await use.accept.queue(command(*numbers, **timing), LICENSEE)
    return result.comm_id, [job for job, _ in queue.jobs if job.comm_id == result.comm_id][0]


def leave_behind(store: InMemoryMessageStore, comm_id: str, seqs, vendor: VendorRecord | None = None, handed_over=(),
                 claim_id: str = DEAD, age: timedelta = timedelta(hours=1), now: datetime | None = None):
    """Recipients `seqs` claimed by a worker that then died `age` before `now` (the dispatch's clock; the
    wall clock by default); those in `handed_over` reached the vendor (it keeps a record of each, as
    Twilio's list or the console outbox does)."""
    rows = store.recipients[comm_id]
    at = (now or utcnow()) - age
    for seq in seqs:
        claimed = transitions.claimed(rows[seq], claim_id, at=at)
        rows[seq] = replace(claimed, first_attempt_at=at, etag=f"dead-{seq}-{claim_id}")
        if seq in handed_over:
            vendor.ids[rows[seq].recipient_id] = f"vendor-{seq}"
            vendor.sends[rows[seq].recipient_id] = vendor.sends.get(rows[seq].recipient_id, 0) + 1


def statuses(store, comm_id):
    return [r.status for _, r in sorted(store.recipients[comm_id].items())]


# -- 1. a delivery receipt landing while claims left behind are traced ---------------------------------


async def test_a_receipt_landing_while_claims_are_traced_strands_no_recipient():
    """A worker died holding three claims: R0 had reached the provider, R1 and R2 had not. The
    redelivery traces them; while it does, R0's delivery receipt lands (the SMS R0's worker handed
    over was delivered). The settle write (R0 found sent, R1 and R2 back to queued) meets R0's new
    ETag, so JobRows reads the job again; R1 and R2 are still `sending` under the dead claim, and
    `read()` takes that for "another worker has claimed them": `yielded`. The write then lands on the
    second round (R1 and R2 queued, NOT_HANDED_OVER), but `_send_each` stops at once because the
    dispatch yielded, and `_dispatch` returns normally (a yielding copy neither raises nor puts the
    job back). Nobody else is sending the job. R1 and R2 stay `queued` with last_error set, which
    the sweeper reads as "a retry job is pending" (transitions.stranded skips queued rows with an error),
    so no job ever comes for them: never sent, never failed.

    Suggested fix (sms/usecases/job_rows.py, `read()`): count as yielding only claim rules (those
    awaited by `claim()`), not found_not_sent/hold, e.g. `claims = [seq for seq, (_, settles, waiting)
    in batch.items() if not settles and waiting is not None]`; and/or let the sweeper re-queue
    NOT_HANDED_OVER rows."""
    vendor = VendorRecord()
    store, queue, use = world(TracingProvider(vendor))
    comm_id, job = await accepted(use, queue, au(0), au(1), au(2))
    leave_behind(store, comm_id, [0, 1, 2], vendor, handed_over={0})

    class ReceiptMeanwhile(TracingProvider):
        async def find(self, sms):
            trace = await super().find(sms)
            if sms.reference.endswith(":0"):  # R0's delivery receipt lands while the dispatch asks
                row = store.recipients[comm_id][0]
                delivered = transitions.receipt(row, Status.DELIVERED, "vendor-0", None, at=utcnow())
                await store.update_recipients(comm_id, [delivered])
            return trace

    restarted = ReceiptMeanwhile(vendor)
    _, _, again = world(restarted, store=store)
    await again.dispatch.dispatch(job)
    for swept in await again.sweep.run(queued_for=timedelta(0)):  # the safety net, as late as it likes
        await again.dispatch.dispatch(swept)

    assert statuses(store, comm_id) == [Status.DELIVERED, Status.SENT, Status.SENT]
    assert vendor.sends == {r.recipient_id: 1 for r in store.recipients[comm_id].values()}


# -- 2. an answer about one claim applied to a claim made since --------------------------------------


async def test_an_unknown_answer_about_one_claim_leaves_a_claim_made_since_untouched():
    """The threat model: "the answer applies only to the claim it was asked about, so a claim made
    since is untouched". found_sent / found_not_sent check the claim id; fail_left_behind does not.
    Interleaving: dispatch A traces claim C0 (waiting for a send slot behind a busy process, then for
    the provider); meanwhile dispatch B traced C0 as not sent, put it back, claimed it as C1 and died
    mid-call (B's SMS may well have gone out). A's answer about C0 is UNKNOWN; its write meets the
    changed ETag, the rule is applied again to the re-read row, and `left_behind` fails C1 as
    "outcome unknown" without C1 ever being asked about (it may be SENT with an id, or NOT_SENT and
    sendable). Fix: fail_left_behind(seq, claim_id) -> left_behind only when row.claim_id == claim_id."""
    store, queue, use = world()
    comm_id, job = await accepted(use, queue, au(0))
    leave_behind(store, comm_id, [0])

    class UnknownWhileAnotherReclaims(RecordingProvider):
        async def find(self, sms):
            # Meanwhile B released C0, claimed it as C1, and died long enough ago for C1's lease to run out.
            row = store.recipients[comm_id][0]
            released = transitions.found_not_sent(row, DEAD, at=utcnow())
            reclaimed = transitions.claimed(released, "C1", at=utcnow())
            store.recipients[comm_id][0] = replace(reclaimed, updated_at=utcnow() - LEASE - timedelta(seconds=1), etag="by-B")
            return Trace(Found.UNKNOWN)

    _, _, a = world(UnknownWhileAnotherReclaims(), store=store)
    await a.dispatch.dispatch(job)
    row = store.recipients[comm_id][0]
    assert (row.status, row.claim_id) == (Status.SENDING, "C1")  # left for its own trace


# -- 3. a cancel answered before the recovery ---------------------------------------------------------


async def test_a_message_cancelled_while_a_dead_claim_waits_for_its_trace_is_not_texted_after_the_cancel():
    """A worker claimed R0 and died before its call went out. The client cancels the message: the
    cancel leaves R0 alone ("sending": with the provider, or past it) and answers 200 with
    {"sending": 1}. Five minutes later the redelivery asks the provider, which never had R0, puts it
    back to queued and sends it: the first and only SMS to R0 goes out minutes after the cancel was
    answered. Before this change R0 would have ended "outcome unknown", never sent. Either the
    recovery should settle a not-handed-over claim of a cancelled message as cancelled (the cancel
    could leave a mark on the message, or on the rows it could not cancel), or the cancel's answer
    must not call R0 'sending'."""
    vendor = VendorRecord()
    store, queue, use = world(TracingProvider(vendor))
    comm_id, job = await accepted(use, queue, au(0), au(1))
    leave_behind(store, comm_id, [0], vendor)  # R0 never reached the vendor; R1 was never claimed

    result = await use.cancel.cancel(LICENSEE, comm_id)
    assert (result.cancelled, result.unaffected) == (1, {"sending": 1})

    restarted = TracingProvider(vendor)
    _, _, again = world(restarted, store=store)
    await again.dispatch.dispatch(job)
    assert restarted.calls == [], "texted after its message was cancelled"
    assert statuses(store, comm_id)[0] in NOT_ATTEMPTED


async def test_a_cancel_racing_the_recovery_leaves_no_recipient_queued_forever():
    """S (seq 0) was never claimed; R (seq 1) was claimed by a worker that died before its call. The
    redelivery traces R; meanwhile a cancel reads the job (R `sending`, so one write per waiting row),
    cancels S and answers {"cancelled": 1, "sending": 1}. The redelivery puts R back (queued,
    NOT_HANDED_OVER: that write does not meet the cancel), then claims S and R in one write, which meets
    S's cancel: read again, S is not waiting and not its own, so it steps aside, and R's claim is dropped
    with it. It returns normally (its queue message is deleted), puts nothing back, and the cancel is
    long done. R stays `queued` with an error, which the sweeper takes for "a retry job is pending", so
    it is never sent, never cancelled, and the message reads `partially` queued forever (until some
    later quiet-hours change wakes it and texts R after the cancel). Same root as the receipt case: a
    row this dispatch put back is abandoned when it steps aside, and the sweeper cannot see it."""
    vendor = VendorRecord()
    store, queue, use = world(TracingProvider(vendor))
    comm_id, job = await accepted(use, queue, au(0), au(1))
    leave_behind(store, comm_id, [1], vendor)
    answers = []

    class CancelWhileTracing(TracingProvider):
        async def find(self, sms):
            answers.append(await use.cancel.cancel(LICENSEE, comm_id))
            return await super().find(sms)

    restarted = CancelWhileTracing(vendor)
    _, _, again = world(restarted, store=store)
    await again.dispatch.dispatch(job)
    assert [(a.cancelled, a.unaffected) for a in answers] == [(1, {"sending": 1})]
    for swept in await again.sweep.run(queued_for=timedelta(0)):
        await again.dispatch.dispatch(swept)
    assert statuses(store, comm_id)[0] is Status.CANCELLED
    assert statuses(store, comm_id)[1] not in WAITING, "left queued, with no job to send or settle it"


# -- 4. what a recovered recipient meets before it is sent again (passes) ---------------------------------


@pytest.mark.parametrize("meets", ["opted_out", "expired", "quiet_hours"])
async def test_a_claim_put_back_meets_opt_outs_validity_and_quiet_hours_before_it_is_sent_again(meets):
    """A claim the provider never had goes back to queued and is sent by the same dispatch: only after the
    opt-outs, the message's validUntil and the licensee's quiet hours have been applied to it."""
    vendor = VendorRecord()
    clock = Clock(T0 - timedelta(hours=2))  # 20:00 in Sydney: outside 22:00-08:00
    opt_outs, settings = InMemoryOptOutStore(), InMemoryLicenseeSettingsStore()
    store, queue, use = world(TracingProvider(vendor), clock=clock, opt_outs=opt_outs, licensees=settings,
                              ledger=InMemoryLedgerStore())
    await use.licensees.set(LICENSEE, quiet_hours="22:00-08:00", time_zone="Australia/Sydney")
    comm_id, job = await accepted(use, queue, AU_MOBILE, **({"validity_period": 3600} if meets == "expired" else {}))
    leave_behind(store, comm_id, [0], vendor, now=clock.at)  # its worker died between the claim and the call
    if meets == "opted_out":
        await opt_outs.add(LICENSEE, AU_MOBILE, utcnow())  # a STOP came meanwhile
        clock.at += timedelta(minutes=10)
    elif meets == "expired":
        clock.at += timedelta(minutes=61)  # 21:01 in Sydney: outside quiet hours, past validUntil
    else:
        clock.at = T0  # 22:00 in Sydney

    restarted = TracingProvider(vendor)
    _, queue2, again = world(restarted, store=store, clock=clock, opt_outs=opt_outs, licensees=settings,
                             ledger=InMemoryLedgerStore())
    await again.dispatch.dispatch(job)
    assert restarted.traced == [AU_MOBILE] and restarted.calls == [] and vendor.sends == {}
    row = store.recipients[comm_id][0]
    if meets == "opted_out":
        assert row.status is Status.OPTED_OUT
    elif meets == "expired":
        assert row.status is Status.EXPIRED
    else:
        assert row.status is Status.QUEUED and row.last_error.startswith("Waiting for the licensee's quiet hours")
        assert queue2.jobs == [(job, 10 * 3600)]  # woken at 08:00 in Sydney
        clock.at = T0 + timedelta(hours=10)
        await again.dispatch.dispatch(job)
        assert restarted.calls == [AU_MOBILE] and statuses(store, comm_id) == [Status.SENT]


# -- 5. a cancel slipping in between the put-back and the claim (passes) ---------------------------------------


async def test_a_cancel_landing_between_the_put_back_and_the_claim_refuses_the_claim():
    vendor = VendorRecord()
    cancels: list = []

    class CancelAfterThePutBack(InMemoryMessageStore):
        async def update_recipients(self, comm_id, recipients):
            written = await super().update_recipients(comm_id, recipients)
            if not cancels and any(r.last_error == NOT_HANDED_OVER and r.status is Status.QUEUED for r in recipients):
                cancels.append(await use.cancel.cancel(LICENSEE, comm_id))
            return written

    store = CancelAfterThePutBack()
    restarted = TracingProvider(vendor)
    store, queue, use = world(restarted, store=store)
    comm_id, job = await accepted(use, queue, au(0), au(1))
    leave_behind(store, comm_id, [0, 1], vendor)
    await use.dispatch.dispatch(job)
    assert restarted.traced == [au(0), au(1)] and restarted.calls == []
    assert [(c.cancelled, c.unaffected) for c in cancels] == [(2, {})]
    assert statuses(store, comm_id) == [Status.CANCELLED, Status.CANCELLED]


# -- 6. seeded races: redeliveries, sweeper copies, give-ups, cancels and lost answers (passes) ------------


class JitteryStore(InMemoryMessageStore):
    """Each read and write takes a random number of turns of the event loop on the way there and back;
    some writes land but their answer is lost (the $batch retry meets 412: RecordChanged)."""

    def __init__(self, rng: random.Random, lost: float):
        super().__init__()
        self.rng, self.lost, self.lost_answers = rng, lost, 0

    async def _turns(self):
        for _ in range(self.rng.randint(0, 4)):
            await asyncio.sleep(0)

    async def load(self, comm_id, first=0, last=None):
        await self._turns()
        loaded = await super().load(comm_id, first, last)
        await self._turns()
        return loaded

    async def update_recipients(self, comm_id, recipients):
        await self._turns()
        written = await super().update_recipients(comm_id, recipients)
        await self._turns()
        if self.rng.random() < self.lost:
            self.lost_answers += 1
            raise RecordChanged("412 on the repeat of a transaction that had landed")
        return written


class JitteryVendor(TracingProvider):
    def __init__(self, vendor, rng, log):
        super().__init__(vendor)
        self.rng, self.log = rng, log

    async def find(self, sms):
        self.log.append(("find", sms.recipient_id))
        for _ in range(self.rng.randint(0, 6)):
            await asyncio.sleep(0)
        return await super().find(sms)

    async def send(self, sms):
        for _ in range(self.rng.randint(0, 6)):
            await asyncio.sleep(0)
        self.log.append(("send", sms.recipient_id))
        return await super().send(sms)


async def _race(seed: int, one_call: bool = False) -> dict:
    """`one_call`: the message accepted as its whole job alone (issue 30), so every dispatch and give-up of it is
    of that job (dispatch_whole, give_up_whole). In 3 seeds of 10 its rows are not written when the race starts:
    the dispatches race each other's write of them, the give-up's write of them failed and the cancel's gate.
    Otherwise a worker wrote them and died leaving claims, as on today's path."""
    rng = random.Random(seed)
    store = JitteryStore(rng, lost=0.08)
    vendor, log = VendorRecord(), []
    opt_outs = InMemoryOptOutStore()
    accept_jobs = InMemoryWholeJobQueue()
    paths = dict(accept_jobs=accept_jobs, comm_id_keys=KEYS, accept_one_call=True) if one_call else {}
    _, queue, use = world(store=store, **paths)
    numbers = [au(i) for i in range(rng.randint(2, 7))]
    if one_call:
        result = await use.accept.queue(command(*numbers), LICENSEE)
        [whole] = accept_jobs.jobs
        comm_id, job = result.comm_id, whole
        assert queue.jobs == [] and store.recipients.get(comm_id) is None  # the one-call path, no fall back
    else:
        comm_id, job = await accepted(use, queue, *numbers)
    unwritten = one_call and rng.random() < 0.3
    fates = {seq: "queued" if unwritten else rng.choice(["queued", "handed_over", "not_handed_over", "not_handed_over"])
             for seq in range(len(numbers))}
    if not unwritten and all(f == "queued" for f in fates.values()):
        fates[0] = "not_handed_over"
    if one_call and not unwritten:
        await use.dispatch._materialize.queued(job)  # the write of the worker that then died
    if not unwritten:
        leave_behind(store, comm_id, [s for s, f in fates.items() if f != "queued"], vendor,
                     handed_over={s for s, f in fates.items() if f == "handed_over"})
    before = dict(vendor.sends)
    opted = set(rng.sample(numbers, 1)) if rng.random() < 0.3 else set()
    for number in opted:
        await opt_outs.add(LICENSEE, number, utcnow())

    actors = []
    for _ in range(rng.randint(2, 3)):  # a redelivery and sweeper / safety-net copies, each its own process
        _, _, other = world(JitteryVendor(vendor, rng, log), store=store, opt_outs=opt_outs, send_concurrency=rng.randint(1, 4))
        actors.append((other.dispatch.dispatch_whole(job) if one_call else other.dispatch.dispatch(job)))
    gave_up = rng.random() < 0.3
    if gave_up:
        _, _, parked = world(JitteryVendor(vendor, rng, log), store=store, opt_outs=opt_outs)
        reason = "Gave up after 5 failed deliveries of its job"
        actors.append(parked.dispatch.give_up_whole(job, reason) if one_call else parked.dispatch.give_up(job, reason))
    cancelled = rng.random() < 0.3
    if cancelled:
        async def cancel_later():
            for _ in range(rng.randint(0, 30)):
                await asyncio.sleep(0)
            return await use.cancel.cancel(LICENSEE, comm_id)
        actors.append(cancel_later())
    rng.shuffle(actors)
    results = await asyncio.gather(*actors, return_exceptions=True)
    for r in results:
        assert not isinstance(r, BaseException) or isinstance(r, (RecipientsInFlight, RecordChanged)) \
            or type(r).__name__ == "StillChanging", f"seed {seed}: {r!r}"

    # Then the queue runs the job again until it settles, one dispatch at a time, nothing lost.
    store.lost = 0
    for _ in range(3):
        _, _, last = world(JitteryVendor(vendor, rng, log), store=store, opt_outs=opt_outs)
        try:
            await (last.dispatch.dispatch_whole(job) if one_call else last.dispatch.dispatch(job))
        except RecipientsInFlight:
            continue

    rows = dict(store.recipients[comm_id])
    for seq, row in rows.items():
        rid, sends = row.recipient_id, vendor.sends.get(row.recipient_id, 0)
        where = f"seed {seed}, recipient {seq} ({fates[seq]}, {row.status.value}, {row.last_error!r})"
        assert sends <= 1, f"{where}: texted {sends} times"
        if row.status is Status.SENT:
            assert sends == 1 and row.provider_message_id == vendor.ids[rid], where
        elif row.status in NOT_ATTEMPTED or row.status in WAITING:
            assert sends == 0, where
        elif row.status is Status.FAILED:
            assert sends == 0 or row.last_error == OUTCOME_UNKNOWN, where
        assert row.status not in WAITING and row.status is not Status.SENDING, f"{where}: never settled"
        if row.phone_number in opted:
            assert sends == before.get(rid, 0), f"{where}: texted after opting out"
    traced = Counter(rid for what, rid in log if what == "find")
    assert len(rows) == len(numbers)  # one set of rows
    return {"traced_twice": any(n > 1 for n in traced.values()), "lost": store.lost_answers}


@pytest.mark.parametrize("accept_path", ["two_call", "one_call"])
async def test_two_hundred_seeded_races_over_claims_left_behind_never_text_anyone_twice(accept_path):
    """200 seeds: a job whose dead worker left claims (some handed over, some not) and never-claimed
    rows; 2-3 dispatches of it at once (a redelivery, sweeper and safety-net copies), sometimes a
    give-up of the parked job and a cancel among them, an opt-out, reads and writes interleaved at
    random and 8% of writes landing with their answer lost. Then the queue runs the job until it
    settles. On both of accept's paths (issue 30; one-call: see _race). Every recipient is texted at most
    once; a `sent` row carries the vendor's id; nothing cancelled, opted out, expired or failed with a reason
    was texted; nothing is left waiting; one set of rows."""
    summary = [await _race(seed, accept_path == "one_call") for seed in range(200)]
    assert sum(s["traced_twice"] for s in summary) >= 50  # the same claim really is traced concurrently
    assert sum(s["lost"] for s in summary) >= 50


# -- 7/8. keyed replays answer as the first request did --------------------------------------------------


async def test_a_keyed_replay_of_an_immediate_send_made_just_before_quiet_hours_answers_as_the_first():
    """The client's immediate send goes at 21:59:50 (Sydney), the answer is lost on the way back, and the
    client retries with the same Idempotency-Key at 22:00:05. The README: "A retry with the same key
    answers exactly as the first request did". It gets 400 QuietHours instead ("send it with Urgent:
    true"): a client that follows the advice, under a new key (a changed request under the same key is
    422), texts the person a second time. `_now_or_not_at_all` must not refuse a request whose key has
    a message already (run it inside `work`, or after the key's lookup)."""
    clock = Clock(T0 - timedelta(seconds=10))
    store, queue, use = world(clock=clock, licensees=InMemoryLicenseeSettingsStore(), ledger=InMemoryLedgerStore(),
                              idempotency=InMemoryIdempotencyStore())
    await use.licensees.set(LICENSEE, quiet_hours="22:00-08:00", time_zone="Australia/Sydney")
    first = await use.send_now.send(command(AU_MOBILE), LICENSEE, RequestKey("order-1", "same request"))
    assert first.summary == "Sent to 1 of 1 recipient"
    clock.at = T0 + timedelta(seconds=5)
    assert await use.send_now.send(command(AU_MOBILE), LICENSEE, RequestKey("order-1", "same request")) == first


@pytest.mark.parametrize("timing", ["send_at", "valid_until"])
async def test_a_keyed_replay_after_its_send_at_or_valid_until_answers_as_the_first(timing):
    """Before f7e6469 the request was checked inside `work`, after the key's lookup, so a replay found
    the first request's message and answered from it. Now it is checked first, with the clock of the
    replay: a send scheduled a minute ahead (or valid for a minute), replayed twenty minutes later under
    the same key, is a 400 (SendAt "in the past" / ValidUntil "not in the future") although it was
    accepted and is being sent. A client that reads the 400 as "not accepted" and corrects the time
    under a new key texts the recipient twice."""
    clock = Clock(utcnow())
    store, queue, use = world(clock=clock, idempotency=InMemoryIdempotencyStore())
    when = (clock.at + timedelta(minutes=1)).isoformat()
    first = await use.accept.queue(command(AU_MOBILE, **{timing: when}), LICENSEE, RequestKey("order-2", "same request"))
    clock.at += timedelta(minutes=20)  # past SEND_AT_SKEW too
    assert await use.accept.queue(command(AU_MOBILE, **{timing: when}), LICENSEE, RequestKey("order-2", "same request")) == first
    assert len(store.messages) == 1


# -- 9. the immediate route's refusal and who is opted out -------------------------------------------------


async def test_an_opted_out_recipient_inside_quiet_hours_does_not_refuse_an_immediate_send():
    """AU_MOBILE opted out (STOP) and is inside quiet hours (22:00 in Sydney); LONDON is at 11:00. Only
    LONDON would be texted, now; yet the send is refused "1 of 2 recipients is inside the licensee's
    quiet hours", and the client is told to resend it as urgent or queued."""
    opt_outs = InMemoryOptOutStore()
    await opt_outs.add(LICENSEE, AU_MOBILE, utcnow())
    store, queue, use = world(clock=Clock(T0), licensees=InMemoryLicenseeSettingsStore(), ledger=InMemoryLedgerStore(),
                              opt_outs=opt_outs)
    await use.licensees.set(LICENSEE, quiet_hours="21:00-08:00", time_zone="Australia/Sydney")
    answer = await use.send_now.send(command(AU_MOBILE, LONDON), LICENSEE)
    assert answer.summary == "Sent to 1 of 2 recipients; 1 opted out"


# -- 10. waking held jobs --------------------------------------------------------------------------------


async def test_a_quiet_hours_change_does_not_cut_short_a_providers_retry_after():
    """The provider throttled a recipient with Retry-After 600 s; the dispatch released it and queued the
    job for T0+600. An operator changes the licensee's quiet hours: every queued job of the licensee is
    woken at T0+31 s, this one too, and the provider is called again 9 minutes early (and the attempt
    counts towards SMS_MAX_SEND_ATTEMPTS). held.py could wake only jobs with held rows (last_error is
    the quiet-hours reason)."""
    calls: list[datetime] = []
    clock = Clock(T0)

    class Throttling(RecordingProvider):
        async def send(self, sms):
            calls.append(clock())
            return SendOutcome(error="429 Too Many Requests", transient=True, retry_after_seconds=600)

    settings = InMemoryLicenseeSettingsStore()
    store, queue, use = world(Throttling(), clock=clock, licensees=settings, ledger=InMemoryLedgerStore())
    comm_id, job = await accepted(use, queue, LONDON)
    await use.dispatch.dispatch(job)
    assert [delay for _, delay in queue.jobs] == [0, 600]
    await use.licensees.set(LICENSEE, quiet_hours="01:00-02:00", time_zone="Europe/London")
    woken = [(j, d) for j, d in queue.jobs[2:]]
    assert woken == [], f"woken {woken} though nothing was held"


async def test_setting_the_same_quiet_hours_again_after_a_failed_wake_wakes_the_held_jobs():
    """`licensees set --no-quiet-hours` writes the settings, then the wake's ledger read fails (503).
    The operator runs the command again: the settings now equal what is asked, so no wake, and the held
    recipients wait for the old window's end, as in issue 23 item 8."""
    clock = Clock(T0)
    ledger = InMemoryLedgerStore()
    store, queue, use = world(clock=clock, licensees=InMemoryLicenseeSettingsStore(), ledger=ledger)
    await use.licensees.set(LICENSEE, quiet_hours="21:00-08:00", time_zone="Australia/Sydney")
    comm_id, job = await accepted(use, queue, AU_MOBILE)
    await use.dispatch.dispatch(job)
    assert statuses(store, comm_id) == [Status.QUEUED]
    page = ledger.page

    async def down(*args, **kwargs):
        raise StorageUnavailable()

    ledger.page = down
    with pytest.raises(StorageUnavailable):
        await use.licensees.set(LICENSEE, no_quiet_hours=True)
    ledger.page = page
    puts = len(queue.jobs)
    await use.licensees.set(LICENSEE, no_quiet_hours=True)  # the operator runs it again
    assert [j.comm_id for j, _ in queue.jobs[puts:]] == [comm_id]


# -- 11. the lease against the longest claim-and-call ---------------------------------------------------------


async def test_a_lease_too_short_for_the_provider_is_refused_naming_the_setting():
    """Since this change a claim past its lease whose provider has no record of it is sent again. That
    is only safe if no call of ours for it can still be in flight (SmsProvider.find's docstring says so).
    The claim is stamped (updated_at) before its write goes out; its answer may come late, and the call
    then takes up to the provider's longest call (Twilio 15 s; ACS three tries of 5 + 15 s and two waits).
    Interleaving (Twilio, lease 30 s): worker A stamps its claim at t, its write's answer comes back at
    t+25 s, A calls Twilio; worker B (a sweeper copy) sees the claim past its lease at t+30 s, lists
    Twilio's messages: A's call has not reached Twilio yet, so NOT_SENT; B sends; A's call lands at
    t+32 s: texted twice. So a lease must be at least twice the provider's longest call and 10 s (the
    claim must be written and its call ended within half of it), checked where the app is wired."""
    from sms.bootstrap import build, shortest_lease
    from sms.config import ConfigError, Settings

    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SMS_SENDING_LEASE_SECONDS": "30", "SMS_PROVIDER": "twilio",
           "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "+61400000000"}
    twilio, enough = build(Settings.from_env(env)), build(Settings.from_env({**env, "SMS_SENDING_LEASE_SECONDS": "40"}))
    acs = build(Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SMS_PROVIDER": "acs",
                                   "ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=" + "a" * 44,
                                   "ACS_FROM_NUMBER": "+61400000000"}))
    try:
        assert shortest_lease(twilio.providers.first) == 40
        with pytest.raises(ConfigError, match="SMS_SENDING_LEASE_SECONDS=30 is too short for provider twilio"):
            twilio.gateway()
        assert enough.gateway() is not None
        assert acs.providers.first.longest_call == 3 * (5 + 15) + 2 * 5 and shortest_lease(acs.providers.first) == 150
        assert acs.gateway() is not None  # the default lease, 300 s, is long enough for ACS
    finally:
        for adapters in (twilio, enough, acs):
            await adapters.close()


async def test_a_claim_whose_write_took_too_long_is_released_not_called():
    """The other half of the rule: a claim whose write came back so late (storage slow, its answer lost
    and the write retried) that the call could run past the first half of the lease is not called on:
    it is released for a retry, nothing sent."""
    class Slow(InMemoryMessageStore):
        async def update_recipients(self, comm_id, rows):
            written = await super().update_recipients(comm_id, rows)
            if any(r.status is Status.SENDING for r in rows):
                await asyncio.sleep(0.2)  # the claim's answer comes back late
            return written

    store, provider = Slow(), RecordingProvider()
    provider.longest_call = 0.1
    _, queue, use = world(provider, store=store)
    use = assembled(store, queue, provider, sending_lease=timedelta(milliseconds=500))  # half: 250 ms < 200 + 100
    comm_id, job = await accepted(use, queue, au(0))
    await use.dispatch.dispatch(job)
    [row] = store.recipients[comm_id].values()
    assert provider.calls == [] and (row.status, row.attempts) == (Status.QUEUED, 1)
    from sms.usecases.dispatch import CLAIM_TOO_SLOW
    assert row.last_error == CLAIM_TOO_SLOW
