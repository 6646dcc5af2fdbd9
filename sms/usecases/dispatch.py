"""Send a job's recipients: claim each just before its provider call, call the provider, record the
outcome; and, for a job the queue parked, fail what it left behind so nothing waits forever.

Safe to run twice for the same job (a redelivery, the sweeper's copy, an immediate send's safety net):
a recipient is only sent from `queued`, claimed with an ETag-checked write (sms/usecases/job_rows.py).
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Sequence

from .. import telemetry
from ..domain import transitions
from ..domain.breaker import Breakers, delivery_key
from ..domain.errors import RecordChanged, StorageUnavailable
from ..domain.jobs import WholeJob
from ..domain.model import WAITING, Message, Recipient, SendJob, Status, queue_delay, utcnow
from ..domain.pacing import RetryPolicy, SenderRateLimiter
from ..domain.phone import mask, mask_numbers
from ..domain.quiet import held_reason
from ..domain.routing import Rule, region_of
from ..domain.simulated import SIMULATOR
from ..logs import log_unexpected
from ..providers import Failure, Found, OutgoingSms, ProviderSet, SendOutcome, SmsProvider, Trace
from ..storage import InboundStore, JobQueue, MessageStore, ReplyRoute
from .guard import Screening
from .job_rows import JobRows
from .ledger import Ledger
from .licensees import Licensees
from .materialize import Materialize
from .optouts import OptOuts

log = logging.getLogger("sms.dispatch")

# A job can be picked up between the API queueing it and writing its message: look again this often.
MISSING_MESSAGE_CHECKS = 3
# A job still starting sends this long after it began (a slow rate limit) records what it has settled
# so far in the ledger, and again each time as long: a listing shows those recipients sent meanwhile,
# not `queued` until the job ends (issue 25). A job done sooner records once, at its end, as before.
PROGRESS_EVERY = timedelta(seconds=5)
# Why a claim was released without a provider call (see Dispatch._too_late_to_call).
CLAIM_TOO_SLOW = "Its claim took too long to be written for the provider call to end well inside the sending lease: not sent, retried"


class MessageNotWritten(Exception):
    """A job's message is not (yet) in storage; raising lets the queue retry the job later."""


class RecipientsInFlight(Exception):
    """Some of a job's recipients are claimed by a worker that may still be sending; retry later."""


@dataclass(frozen=True)
class Sent:
    settled: list[Recipient]  # the recipients this dispatch settled
    yielded: bool  # it stepped aside for another worker sending the same job
    rows: list[Recipient]  # every row of the job as last read or written
    unanswered: bool = False  # the provider did not answer for a claim a dead worker left: still sending


class Dispatch:
    def __init__(
        self,
        messages: MessageStore,
        jobs: JobQueue,
        providers: ProviderSet,
        *,
        opt_outs: OptOuts,
        reply_routes: InboundStore,
        ledger: Ledger,
        licensees: Licensees,
        screening: Screening,
        materialize: Materialize,
        send_concurrency: int = 16,
        retry: RetryPolicy = RetryPolicy(),
        rate_limiter: SenderRateLimiter = SenderRateLimiter(0),
        provider_rates: dict[str, float] | None = None,
        breakers: Breakers | None = None,
        missing_message_wait: float = 0.5,
        sending_lease: timedelta = timedelta(minutes=5),
        progress_every: timedelta = PROGRESS_EVERY,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._store = messages
        self._queue = jobs
        self._providers = providers
        self._retry = retry
        self._rate = rate_limiter
        # Each provider instance's own limit (its SMS_PROVIDER_<NAME>_RATE_LIMIT_PER_SECOND), per process.
        self._provider_rates = {name: SenderRateLimiter(rate) for name, rate in (provider_rates or {}).items() if rate > 0}
        self._breakers = breakers or Breakers(clock)
        self._opt_outs = opt_outs
        self._inbound = reply_routes
        self._missing_message_wait = missing_message_wait
        self._sending_lease = sending_lease
        self._ledger = ledger
        self._licensees = licensees  # their quiet hours
        self._screening = screening  # their guards, and their routes
        self._materialize = materialize  # a one-call accept's rows, from its job
        self._clock = clock
        self._progress_every = progress_every
        # Bounds concurrent provider calls across every job this process runs.
        self._send_slots = asyncio.Semaphore(send_concurrency)

    @property
    def provider_names(self) -> list[str]:
        """The deployment's provider instances, in the order the settings name them."""
        return self._providers.names

    async def dispatch(self, job: SendJob) -> list[Recipient]:
        """Send the job's recipients that are still queued; safe to run twice for the same job."""
        attributes = {"sms.comm_id": job.comm_id, "sms.first": job.first, "sms.last": job.last}
        with telemetry.span("sms.dispatch", attributes, job.traceparent):
            return await self._dispatch(job)

    async def _dispatch(self, job: SendJob) -> list[Recipient]:
        loaded = await self._store.load(job.comm_id, job.first, job.last)
        for _ in range(MISSING_MESSAGE_CHECKS):
            if loaded is not None:
                break
            # The API queues jobs just before it writes the message: give the write a moment to land.
            await asyncio.sleep(self._missing_message_wait)
            loaded = await self._store.load(job.comm_id, job.first, job.last)
        if loaded is None:
            raise MessageNotWritten(f"no message {job.comm_id} (yet): the queue will retry, then park the job")
        return await self._dispatch_rows(job, *loaded)

    async def dispatch_whole(self, job: WholeJob) -> list[Recipient]:
        """A one-call accept's job: write its rows (or find them written), then send as `dispatch` does. Its rows'
        write takes the place of `dispatch`'s load, so it costs the same round trips. Safe to run twice."""
        attributes = {"sms.comm_id": job.message.comm_id, "sms.first": 0, "sms.last": len(job.recipients) - 1}
        with telemetry.span("sms.dispatch", attributes, job.traceparent):
            return await self._dispatch_rows(job.ids(), *await self._materialize.queued(job))

    async def _dispatch_rows(self, job: SendJob, message: Message, recipients: list[Recipient]) -> list[Recipient]:
        now = self._clock()
        if message.send_at is not None and now < message.send_at and any(r.status is Status.SCHEDULED for r in recipients):
            # Early: one hop of a wait longer than a queue message can hide, or clocks apart. Put back,
            # and make sure the ledger lists it (accept's write of it may have failed).
            await self._queue.put(job, delay_seconds=queue_delay(message.send_at, now))
            await self.record(message, recipients)
            return []
        sent = await self.send(message, recipients, job)
        # Raised, if it fails: the queue runs the job again, which sends nothing twice and records it then.
        await self.record(message, sent.rows)
        if sent.unanswered:
            # The provider could not say whether it has a claim a dead worker left: ask again later (and,
            # should the queue park the job, once more when giving up).
            raise RecipientsInFlight(f"{job.comm_id}[{job.first}..{job.last}]: the provider did not say whether it has "
                                     "what a stopped worker left sending; asking again later")
        outcomes, stepped_aside = sent.settled, sent.yielded
        if stepped_aside:
            # Another dispatch is sending this job (this is a copy from the sweeper or a safety net, or
            # that one is): the rest is left to it, and this copy ends. Not raised: a raise counts
            # towards maxDequeueCount, and a copy that kept meeting a long (rate-limited) job would be
            # parked, and give_up would fail what the live dispatch was about to send. Nor put back:
            # copies would pile up behind a long job. If that dispatch dies, its own queue message
            # comes back; an immediate send has none, and the sweeper finds what it left queued.
            return outcomes
        lease_start = self._clock() - self._sending_lease
        if any(r.status is Status.SENDING and r.updated_at > lease_start for r in recipients):
            # Another worker holds a live claim on some of these (a redelivery while it still runs).
            # Retrying later either finds them settled or, if that worker died, past their lease.
            raise RecipientsInFlight(f"{job.comm_id}[{job.first}..{job.last}] is partly being sent elsewhere; retry later")
        return outcomes

    async def record(self, message: Message, rows: Sequence[Recipient]) -> None:
        """Bring the ledger in line with a job's rows as stored."""
        provider = next((r.provider for r in rows if r.provider), None) or self._providers.first.name
        await self._ledger.record(message, rows, provider)

    async def send(self, message: Message, recipients: Sequence[Recipient], job: SendJob) -> "Sent":
        """Send the job's queued recipients and record each outcome. Returns the recipients it settled,
        whether it stepped aside for another worker sending the same job (see JobRows), and the job's
        rows as they now stand, for the ledger (the caller records them: `record`).

        A recipient is claimed (queued -> sending, with this dispatch's claim id) in the write made
        just before its provider call: once its turn under the sender's rate limit has come and a
        send slot is free. So `sending` means "handed to the provider". Nothing waits while holding
        a claim, so the sending lease only has to cover one provider call and the write of its
        outcome, however long the rate limit makes the job; and a worker that dies leaves every
        recipient it had not handed over `queued`, for the job's redelivery to send. Only a recipient
        it had handed over can end "outcome unknown".

        What it costs: storage requests, not entity writes. Each row is still written twice (claim,
        outcome), but no longer in one transaction for the whole job each: a job is one load, then
        one write per group of provider calls that start together, with the outcomes recorded
        meanwhile (JobRows joins whatever is waiting into one transaction). At best 3 requests (every
        recipient gets a send slot at once), at most 1 + 2 x recipients (calls one at a time, as under a
        rate limit slower than a storage round trip). docs/scaling.md (Dispatch) has what the dispatch
        benchmark measured of it, against claiming everything up front.
        """
        rows = JobRows(self._store, message.comm_id, recipients, job.first, job.last, self._sending_lease, self._clock)
        recipients, unanswered = await self._settle_left_behind(message, recipients, rows)
        now = self._clock()
        expired = message.valid_until is not None and now >= message.valid_until
        waiting = [r for r in recipients if r.status in WAITING]
        routes = await self.routes_of(message, waiting) if waiting and not expired else {}
        # The numbers it may text: an expired message's need no opt-out read.
        blocked = await self._blocked(message, waiting, routes) if routes else set()
        # What the licensee's guard says now of the rest (it may have changed since the message was accepted).
        guarded, flagged = await self._screening.at_dispatch(
            message, [r for r in waiting if routes.get(r.seq) is not None and r.seq not in blocked]) if routes else ({}, {})
        quiet, held = await self.held(message, [r for r in waiting if r.seq in routes and r.seq not in blocked and r.seq not in guarded],
                                      now) if not expired else ("", {})
        for r in recipients:
            if r.status in WAITING and expired:
                rows.expire(r.seq)
            elif r.status in WAITING and routes.get(r.seq) is None:
                rows.no_route(r.seq)
            elif r.status in WAITING and r.seq in blocked:
                rows.opt_out(r.seq)
            elif r.status in WAITING and r.seq in guarded:
                rows.block(r.seq, guarded[r.seq])
            elif r.seq in held:
                rows.hold(r.seq, quiet)
        to_send = [(r.seq, routes[r.seq]) for r in waiting if not expired and routes.get(r.seq) is not None
                   and r.seq not in blocked and r.seq not in guarded and r.seq not in held]
        retry_delays = await self._send_each(message, to_send, rows, flagged)
        await rows.flush()  # opt-outs, expiries, holds and failures not yet written with a claim
        settled = rows.settled()
        # The job again, once the first of these comes: a retry's delay (the released recipients are
        # queued again), the end of a recipient's quiet hours, or the message's validUntil (what is
        # still waiting then expires).
        wakes = [now + timedelta(seconds=delay) for delay in retry_delays] + list(held.values())
        if wakes:
            wake = min(wakes) if message.valid_until is None else min(*wakes, message.valid_until)
            await self._queue.put(job, delay_seconds=queue_delay(wake, now))
        if message.reply_is_allowed or message.reply_is_required:
            await self._remember_reply_routes(message, settled)
        return Sent(settled, rows.yielded, rows.current(), unanswered)

    async def routes_of(self, message: Message, recipients: Sequence[Recipient]) -> dict[int, Rule | None]:
        """Each recipient's routing rule (None: no rule matches its number), from the licensee's table."""
        return await self._screening.routing.routes_of(message, recipients)

    def _sender_of(self, message: Message, rule: Rule) -> str | None:
        """The number a recipient's SMS goes out from: the message's own From, else its rule's pinned
        sender, else its first provider's own (None: that provider picks one). A STOP sent to it applies."""
        first = self._providers.get(rule.providers[0])
        return message.sender.phone_number or rule.sender or (first.default_sender if first is not None else None)

    async def _blocked(self, message: Message, recipients: Sequence[Recipient], routes: dict[int, Rule | None]) -> set[int]:
        """The recipients (by seq) who opted out of texts from the number their SMS would go out from:
        one read of each number's opt-outs per sender (recipients routed apart may go out from different numbers)."""
        return await self._opted_out(message, [(self._sender_of(message, rule), r) for r in recipients
                                               if (rule := routes.get(r.seq)) is not None])

    async def _opted_out(self, message: Message, sent_from: Sequence[tuple[str | None, Recipient]]) -> set[int]:
        """Of these (sender, recipient) pairs, the recipients (by seq) whose number opted out of texts from
        that sender: one read of the numbers' opt-outs per sender."""
        by_sender: dict[str | None, list[Recipient]] = {}
        for sender, r in sent_from:
            by_sender.setdefault(sender, []).append(r)
        found = await asyncio.gather(*(self._opt_outs.blocked(message.licensee_id, sender, [r.phone_number for r in group])
                                       for sender, group in by_sender.items()))
        return {r.seq for (_, group), numbers in zip(by_sender.items(), found, strict=True) for r in group if r.phone_number in numbers}

    def _provider_of(self, recipient: Recipient) -> SmsProvider | None:
        """The provider a claim was handed to: the one it names, or the first for a claim made before
        claims named theirs (a deployment of one provider). None: a provider no longer configured."""
        return self._providers.get(recipient.provider) if recipient.provider else self._providers.first

    async def _settle_left_behind(self, message: Message, recipients: Sequence[Recipient],
                                  rows: JobRows) -> tuple[list[Recipient], bool]:
        """Claims a stopped worker left `sending` past their lease (a crash between the claim and
        recording the provider's answer): ask the provider whether it has each, and settle it so. One
        it has is sent (its id recorded); one it never had goes back to queued and is sent now, by this
        dispatch; one the provider cannot tell about fails as outcome unknown, never sent again. The
        rows as they then stand, and whether the provider left any question unanswered (those stay as
        they are, to be asked again)."""
        lease_start = self._clock() - self._sending_lease
        left = [r for r in recipients if r.status is Status.SENDING and r.updated_at <= lease_start]
        if not left:
            return list(recipients), False
        traces = await self._traced(message, left)
        unanswered = False
        for r, trace in zip(left, traces, strict=True):
            if trace.found is Found.SENT:
                rows.found_sent(r.seq, r.claim_id, trace.provider_message_id)
            elif trace.found is Found.NOT_SENT:
                rows.found_not_sent(r.seq, r.claim_id, trace.error)
            elif trace.found is Found.UNKNOWN:
                rows.found_unknown(r.seq, r.claim_id)
            else:
                unanswered = True
        log.warning("%s: %d recipient(s) left sending by a stopped worker, traced: %s", message.comm_id, len(left),
                    ", ".join(f"{f.value} {n}" for f, n in Counter(t.found for t in traces).items()))
        await rows.flush()
        return rows.current(), unanswered

    async def _traced(self, message: Message, left: Sequence[Recipient]) -> list[Trace]:
        """What the provider says of each claim left behind. A provider whose question is a repeat of the
        send (ACS) is not asked about one that must not go now: it ends unknown rather than sent late."""
        must_not_go: set[int] = set()
        repeating = [r for r in left if (p := self._provider_of(r)) is not None and p.find_sends]
        if repeating:
            expired = message.valid_until is not None and self._clock() >= message.valid_until
            blocked = await self._opted_out(message, [(r.sent_from or message.sender.phone_number or self._provider_of(r).default_sender, r)
                                                      for r in repeating]) if not expired else set()
            must_not_go = {r.seq for r in repeating if expired or r.cancel_requested or r.seq in blocked}
        return list(await asyncio.gather(*(self._find(message, r) if r.seq not in must_not_go else _unknown() for r in left)))

    async def _find(self, message: Message, recipient: Recipient) -> Trace:
        """What the provider the claim was handed to says of it, asked with a send slot (it is a provider
        call). A claim naming a provider no longer configured cannot be asked: unknown."""
        provider = self._provider_of(recipient)
        if provider is None:
            return Trace(Found.UNKNOWN)
        async with self._send_slots:
            try:
                return await provider.find(self._outgoing(message, recipient))
            except Exception as exc:  # an adapter bug: leave the row as it is, to be asked again
                log_unexpected(log, f"provider {provider.name} raised tracing {mask(recipient.phone_number)}", exc)
                return Trace(Found.ASK_AGAIN, error=f"provider error ({type(exc).__name__})")

    async def held(self, message: Message, waiting: Sequence[Recipient], now: datetime) -> tuple[str, dict[int, datetime]]:
        """The recipients inside the licensee's quiet hours in their own local time (unless the message
        is urgent): the reason kept on their rows, and seq -> when each one's window ends."""
        hours = await self._licensees.quiet_hours(message.licensee_id) if not message.urgent and waiting else None
        if hours is None:
            return "", {}
        held = {}
        for r in waiting:
            until = hours.wait_until(r.phone_number, now)
            if until is not None and until > now:
                held[r.seq] = until
        return held_reason(hours), held

    async def held_of_those_texted(self, message: Message, recipients: Sequence[Recipient],
                                   now: datetime) -> tuple[str, dict[int, datetime]]:
        """`held`, leaving out the recipients who opted out (they are not texted at all): what an
        immediate send would have to hold."""
        quiet, held = await self.held(message, recipients, now)
        if held:
            in_held = [r for r in recipients if r.seq in held]
            blocked = await self._blocked(message, in_held, await self.routes_of(message, in_held))
            held = {seq: until for seq, until in held.items() if seq not in blocked}
        return quiet, held

    async def _send_each(self, message: Message, to_send: Sequence[tuple[int, Rule]], rows: JobRows,
                         flagged: dict[int, str] | None = None) -> list[int]:
        """Start each recipient's send once its turn under the sender's rate limit has come, the sends
        overlapping. Returns the retry delays of those released for a retry.

        A job takes its turns one at a time, so it never holds more than one turn ahead: jobs from one
        sender share the rate in turn, and one that stops early leaves no turns reserved and unused.
        Each send then waits for a send slot (process-wide, first come first served, so a job started
        earlier gets the slots that free up before one started later: its claims share writes).
        """
        sends: list[asyncio.Task] = []
        progress = Progress(self.record, message, rows, self._progress_every, self._clock)
        try:
            for seq, rule in to_send:
                if rows.error or rows.yielded:
                    break  # storage refused a write, or another worker is on this job: the rest stay queued
                if not rows.queued(seq):
                    continue  # another worker took it meanwhile: no turn spent on it
                await self._rate.wait_turn(message.sender.phone_number)
                await self._provider_turn(rule.providers[0])
                progress.check()
                sends.append(asyncio.create_task(self._send_one(message, seq, rule, rows, (flagged or {}).get(seq))))
            results = await asyncio.gather(*sends, return_exceptions=True)
        except BaseException:
            for send in sends:  # the dispatch is cancelled (its host is stopping it): so are its sends
                send.cancel()
            progress.cancel()
            raise
        await progress.done()
        if failure := next((r for r in results if isinstance(r, BaseException)), None):
            raise failure
        return [delay for delay in results if delay is not None]

    async def _remember_reply_routes(self, message: Message, recipients: Sequence[Recipient]) -> None:
        routes = [ReplyRoute(r.phone_number, message.comm_id, message.licensee_id, r.recipient_id, r.contact_id)
                  for r in recipients if r.status is Status.SENT]
        try:
            await self._inbound.remember_routes(routes)
        except StorageUnavailable:  # the SMS went out; a reply that cannot be linked is still stored
            log.warning("could not record reply routes for %s", message.comm_id)

    def _next_healthy(self, names: Sequence[str], country: str | None) -> str | None:
        """The first of `names` whose breakers (the provider's, and its deliveries to `country`) let a call through."""
        return next((n for n in names if self._breakers.allows(delivery_key(n, country)) and self._breakers.allows(n)), None)

    async def _provider_turn(self, name: str) -> None:
        """Wait for the provider instance's own rate limit, if it has one."""
        if (limiter := self._provider_rates.get(name)) is not None:
            await limiter.wait_turn(name)

    async def _send_one(self, message: Message, seq: int, rule: Rule, rows: JobRows, flagged: str | None = None) -> int | None:
        """With a send slot: claim one recipient for the first provider of its route and hand it over;
        if that provider refuses it before accepting it (Failure.NOT_TAKEN), hand it to the next, the
        claim naming each before its call; then record the outcome. An ambiguous outcome (it may have
        been sent) goes to no other provider. Returns the retry delay when it is to be tried again."""
        async with self._send_slots:
            if message.valid_until is not None and self._clock() >= message.valid_until:
                rows.expire(seq)  # its validity ran out while it waited for its turn (a slow rate limit)
                return None
            names = list(rule.providers)  # every one configured (routes_of leaves out the rest)
            country = region_of(rows.row(seq).phone_number)
            # The first provider whose breakers let a call through; when every one is open, the first all the same.
            name = self._next_healthy(names, country) or names[0]
            claimed = await rows.claim(seq, name, message.sender.phone_number or rule.sender, flagged)
            if claimed is None:
                return None  # another worker claimed or settled it first
            while True:
                provider = self._providers.get(name)
                if self._too_late_to_call(claimed, provider):
                    outcome = SendOutcome(error=CLAIM_TOO_SLOW, transient=True)  # not called: nothing was sent
                    break
                outcome = await self._call_provider(message, claimed, provider)
                healthy = outcome.accepted or outcome.failure is Failure.REFUSED  # it answered for the SMS
                # The simulator's refusals are scripted by the number: they say nothing of its health.
                if name != SIMULATOR and (change := self._breakers.called(name, healthy, outcome.error)):
                    log.warning("%s", change)
                if outcome.accepted or outcome.failure is not Failure.NOT_TAKEN:
                    break
                after = self._next_healthy(names[names.index(name) + 1:], country)
                if after is None:
                    break
                await self._provider_turn(after)
                passed = await rows.pass_on(seq, after, f"Not taken by {name}: {outcome.error}; passed to {after}", outcome.code)
                if passed is None or passed.status is not Status.SENDING or passed.claim_id != claimed.claim_id:
                    return None  # moved on meanwhile (a cancel: nothing went out, so it ended cancelled)
                claimed, name = passed, after
            if outcome.failure is Failure.AMBIGUOUS:
                return await self._ambiguous(message, claimed, provider, outcome, rows)
        settled, delay = self._settle(claimed, outcome, provider)
        await rows.record(settled)
        if settled.status is Status.SENT and self._screening.pumping is not None:
            await self._screening.pumping.sent(message, settled)  # pumping protection counts it (never raises)
        return delay

    async def _ambiguous(self, message: Message, claimed: Recipient, provider: SmsProvider, outcome: SendOutcome,
                         rows: JobRows) -> int | None:
        """A call that may have sent the SMS: never handed to another provider, never sent blind again.
        A provider that answers a repeat of the request under its own idempotency key (ACS) is asked at
        once, the call being over; any other keeps the claim as it is (`sending`), and the job comes back
        once its lease has run out, when the claim is traced as a stopped worker's would be (Twilio reads
        its own record of what it sent)."""
        log.warning("%s gave an ambiguous answer for %s (%s): asking it before anything else", provider.name,
                    mask(claimed.phone_number), mask_numbers(outcome.error or ""))
        if provider.find_sends:
            trace = await self._find(message, claimed)
            if trace.found is Found.SENT:
                await rows.record(transitions.sent(claimed, trace.provider_message_id, at=self._clock()))
                return None
            if trace.found is Found.UNKNOWN:
                rows.found_unknown(claimed.seq, claimed.claim_id)
                return None
        return math.ceil(self._sending_lease.total_seconds()) + 1

    def _too_late_to_call(self, claimed: Recipient, provider: SmsProvider) -> bool:
        """Whether a call started now could still be running past the first half of the claim's lease.
        A call in flight when the lease runs out could be traced as "never reached the provider" and
        sent again; the second half of the lease covers clocks apart between workers. A claim whose
        write took that long (storage slow, its answer lost and retried) is released instead."""
        elapsed = (self._clock() - claimed.updated_at).total_seconds()
        return elapsed + provider.longest_call > self._sending_lease.total_seconds() / 2

    @staticmethod
    def _outgoing(message: Message, recipient: Recipient) -> OutgoingSms:
        """The SMS for a claimed recipient; the same for the call and, after a crash, for tracing it."""
        return OutgoingSms(
            recipient.recipient_id, recipient.phone_number, message.body, recipient.sent_from or message.sender.phone_number,
            reference=f"{recipient.comm_id}:{recipient.seq}", attempt=recipient.attempts,
            first_attempt_at=recipient.first_attempt_at, attempt_at=recipient.updated_at, valid_until=message.valid_until,
        )

    async def _call_provider(self, message: Message, recipient: Recipient, provider: SmsProvider) -> SendOutcome:
        sms = self._outgoing(message, recipient)
        span_attributes = {"sms.provider": provider.name, "sms.recipient_id": recipient.recipient_id,
                           "sms.attempt": recipient.attempts}
        with telemetry.span("sms.provider.send", span_attributes) as span:
            try:
                outcome = await provider.send(sms)
            except Exception as exc:  # an adapter bug must not leave the whole batch in `sending`
                log_unexpected(log, f"provider {provider.name} raised for {mask(recipient.phone_number)}", exc)
                outcome = SendOutcome(error=f"provider error ({type(exc).__name__})", transient=True)
            span.set_attribute("sms.outcome", "sent" if outcome.accepted else "retry" if outcome.transient else "failed")
        return outcome

    def _settle(self, recipient: Recipient, outcome: SendOutcome, sent_by: SmsProvider) -> tuple[Recipient, int | None]:
        """The recipient as the outcome leaves it, and the retry delay when it is to be tried again."""
        provider = {"provider": sent_by.name}
        if outcome.accepted:
            telemetry.sent.add(1, provider)
            return transitions.sent(recipient, outcome.provider_message_id, at=self._clock()), None
        if outcome.transient and recipient.attempts < self._retry.max_attempts:
            # Nothing was sent: release the claim so the retry job picks the recipient up again.
            delay = self._retry.delay_seconds(recipient.attempts, outcome.retry_after_seconds)
            log.info("transient failure for %s (attempt %d), retrying in %ds: %s",
                     mask(recipient.phone_number), recipient.attempts, delay, mask_numbers(outcome.error or ""))
            return transitions.released(recipient, outcome.error, at=self._clock(), outcome=outcome.failure.value, code=outcome.code), delay
        error = outcome.error if not outcome.transient else f"{outcome.error} (gave up after {recipient.attempts} attempts)"
        telemetry.failed.add(1, provider)
        return transitions.failed(recipient, error, at=self._clock(), outcome=outcome.failure.value, code=outcome.code), None

    async def give_up(self, job: SendJob, reason: str) -> list[Recipient]:
        """A job the queue parked as poison: fail what it left behind, so nothing waits forever.

        A queued recipient fails with `reason` (it was never attempted). One left `sending` past its
        lease was claimed when its worker stopped: the provider is asked whether it has it; it is sent
        if it has, failed with `reason` if it never had it, failed as outcome unknown if it cannot
        tell. One whose lease still runs is left alone: its worker is alive and records what the
        provider answered (if that worker dies, the sweeper finds the recipient once the lease has run out)."""
        loaded = await self._store.load(job.comm_id, job.first, job.last)
        if loaded is None:
            return []  # its message was never written: there is nothing to fail
        return (await self._give_up_rows(job, *loaded, reason)).settled()

    async def give_up_whole(self, job: WholeJob, reason: str) -> list[Recipient]:
        """A one-call accept's job the queue parked: its rows written with every recipient failed with `reason` if
        they were not (cancelled, if a cancel came first), then what is left given up on as `give_up` does. Returns
        every row of the job as it now stands (those the write ended are no dispatch's to settle)."""
        return (await self._give_up_rows(job.ids(), *await self._materialize.failed(job, reason), reason)).current()

    async def _give_up_rows(self, job: SendJob, message: Message, recipients: list[Recipient], reason: str) -> JobRows:
        rows = JobRows(self._store, job.comm_id, recipients, job.first, job.last, self._sending_lease, self._clock)
        lease_start = self._clock() - self._sending_lease
        left = [r for r in recipients if r.status is Status.SENDING and r.updated_at <= lease_start]
        traces = dict(zip((r.seq for r in left), await self._traced(message, left), strict=True))
        for r in recipients:
            trace = traces.get(r.seq)
            if trace is not None and trace.found is Found.SENT:
                rows.found_sent(r.seq, r.claim_id, trace.provider_message_id)
            elif trace is not None and trace.found is Found.NOT_SENT:
                rows.found_not_sent(r.seq, r.claim_id, trace.error or reason)
            elif trace is not None:  # the provider cannot tell, or did not answer: it is parked either way
                rows.found_unknown(r.seq, r.claim_id)
            else:
                rows.give_up(r.seq, reason)
        await rows.flush()
        await self.record(message, rows.current())
        return rows


class Progress:
    """A long job's record of what it has settled so far, in the ledger: every PROGRESS_EVERY while the
    job is still starting sends, one write at a time, of the rows changed since the last (the job's own
    record at its end still writes them all). A failed write is the next one's to make, and never the
    job's failure: the SMS went out, and the end of the job records it."""

    def __init__(self, record: Callable[[Message, Sequence[Recipient]], Awaitable[None]], message: Message, rows: JobRows,
                 every: timedelta, clock: Callable[[], datetime]):
        self._record, self._message, self._rows, self._every, self._clock = record, message, rows, every, clock
        self._recorded = {r.seq: r.status for r in rows.current()}
        self._next = clock() + every
        self._writing: asyncio.Task | None = None

    def check(self) -> None:
        """Start a write of the progress if one is due and none is under way."""
        now = self._clock()
        if now < self._next or (self._writing is not None and not self._writing.done()):
            return
        self._next = now + self._every
        changed = [r for r in self._rows.current() if self._recorded.get(r.seq) is not r.status]
        if changed:
            self._writing = asyncio.create_task(self._write(changed))

    async def _write(self, changed: list[Recipient]) -> None:
        try:
            await self._record(self._message, changed)
        except (StorageUnavailable, RecordChanged) as exc:
            log.info("progress of %s not recorded (%s); the next record will", self._message.comm_id, type(exc).__name__)
            return
        except Exception as exc:  # a bug: logged, and the job's own record still comes
            log_unexpected(log, f"progress of {self._message.comm_id} not recorded", exc)
            return
        self._recorded.update({r.seq: r.status for r in changed})

    async def done(self) -> None:
        if self._writing is not None:
            await self._writing  # never raises: the job's own record comes after it, not beside it

    def cancel(self) -> None:
        if self._writing is not None:
            self._writing.cancel()


async def _unknown() -> Trace:
    return Trace(Found.UNKNOWN)
