"""The gateway's use cases: accept a send request, send it now, dispatch a job, report status.

Knows nothing of HTTP or Azure: it works through the storage and provider ports.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Awaitable, Callable, Sequence

from opentelemetry import trace

from . import telemetry
from .errors import AlreadyExists, Conflict, GatewayError, KeyReused, NotFound, StorageUnavailable, ValidationFailed
from .job_rows import JobRows
from .model import JOB_SIZE, Message, Recipient, SendJob, Status, message_status, utcnow
from .pacing import RetryPolicy, SenderRateLimiter
from .logs import log_unexpected
from .phone import mask, mask_numbers
from .providers import OutgoingSms, SendOutcome, SmsProvider
from .optouts import OptOuts
from .storage import IdempotencyRecord, IdempotencyStore, InboundStore, JobQueue, MessageStore, ReplyRoute
from .validation import Limits, message_from
from .wire import CommResponse, MessageState, RecipientState, ReplyState, SMSSend

log = logging.getLogger("sms.service")

# An immediate send also queues its jobs, made visible only after this delay: if the
# process dies mid-request the worker finishes the send; if not, the job finds nothing
# left queued and sends nothing.
IMMEDIATE_SAFETY_NET_SECONDS = 120

# A replay that finds no message this soon after the first request is racing it, not resuming it.
IN_PROGRESS_GRACE = timedelta(seconds=30)

# A job can be picked up between the API queueing it and writing its message: look again this often.
MISSING_MESSAGE_CHECKS = 3


class MessageNotWritten(Exception):
    """A job's message is not (yet) in storage; raising lets the queue retry the job later."""


class RecipientsInFlight(Exception):
    """Some of a job's recipients are claimed by a worker that may still be sending; retry later."""


def reference_for(comm_id: str) -> str:
    """A short reference a person can quote; it is the commId's prefix, so it finds the message."""
    return f"SMS-{comm_id[:8].upper()}"


class SmsService:
    def __init__(
        self,
        store: MessageStore,
        queue: JobQueue,
        provider: SmsProvider,
        limits: Limits = Limits(),
        send_concurrency: int = 16,
        retry: RetryPolicy = RetryPolicy(),
        rate_limiter: SenderRateLimiter | None = None,
        opt_outs: OptOuts | None = None,
        inbound: InboundStore | None = None,
        missing_message_wait: float = 0.5,
        sending_lease: timedelta = timedelta(minutes=5),
        idempotency: IdempotencyStore | None = None,
        idempotency_window: timedelta = timedelta(hours=24),
    ):
        self._store = store
        self._queue = queue
        self._provider = provider
        self._limits = limits
        self._retry = retry
        self._rate = rate_limiter or SenderRateLimiter(0)
        self._opt_outs = opt_outs
        self._inbound = inbound
        self._missing_message_wait = missing_message_wait
        self._sending_lease = sending_lease
        self._idempotency = idempotency
        self._idempotency_window = idempotency_window
        # Bounds concurrent provider calls across every job this process runs.
        self._send_slots = asyncio.Semaphore(send_concurrency)

    # -- accepting ---------------------------------------------------------------------------

    async def accept(self, request: SMSSend, licensee_id: str, idempotency_key: str | None = None) -> CommResponse:
        """Save the SMS and queue it; the worker sends it in the background."""

        async def run(comm_id: str | None) -> CommResponse:
            return await self._save_and_queue(*message_from(request, licensee_id, self._limits, comm_id))

        with telemetry.tracer.start_as_current_span("sms.accept"):
            return await self._once(request, licensee_id, idempotency_key, "send", run)

    async def accept_batch(self, requests: Sequence[SMSSend], licensee_id: str, idempotency_key: str | None = None) -> list[CommResponse]:
        """ServiceStack's auto-batch: every request is checked before any is saved, then each is accepted
        in turn. Items live in different partitions, so a batch cannot be one transaction: an error
        part-way says how many items were done (GatewayError.batch_completed), and with an idempotency
        key each item is remembered under the key and its position, so resending the batch finishes it
        without saving any item twice."""
        prepared, errors = [], []
        for i, request in enumerate(requests):
            try:
                prepared.append(message_from(request, licensee_id, self._limits))
            except ValidationFailed as exc:
                errors += [replace(e, field_name=f"[{i}].{e.field_name}", message=f"[{i}].{e.message}") for e in exc.field_errors]
        if errors:
            raise ValidationFailed(errors, batch_completed=0)
        responses: list[CommResponse] = []
        for i, (request, (message, recipients)) in enumerate(zip(requests, prepared, strict=True)):
            try:
                if idempotency_key is None:
                    responses.append(await self._save_and_queue(message, recipients))
                else:  # '\n' cannot occur in a key (printable only), so no client key collides with these
                    responses.append(await self.accept(request, licensee_id, f"{idempotency_key}\n[{i}]"))
            except GatewayError as error:
                error.batch_completed, error.batch_index = i, i
                raise
        return responses

    async def _save_and_queue(self, message: Message, recipients: list[Recipient]) -> CommResponse:
        # Jobs before the message becomes visible: a message is never stored without its jobs, so
        # nothing can be stranded. A job whose message write then fails finds no message, and
        # retries until the queue parks it. Recipient rows not yet visible are written meanwhile.
        self._note_accepted(message, recipients)
        jobs = asyncio.gather(*(self._queue.put(job) for job in SendJob.covering(message.comm_id, len(recipients), telemetry.current_traceparent())))
        await self._store.add(message, recipients, before_visible=jobs)
        return _queued(message.comm_id, len(recipients))

    async def send_now(self, request: SMSSend, licensee_id: str, idempotency_key: str | None = None) -> CommResponse:
        """Save the SMS and send it within the request; answer with the real outcome."""

        async def run(comm_id: str | None) -> CommResponse:
            return await self._send_now(*message_from(request, licensee_id, self._limits, comm_id))

        with telemetry.tracer.start_as_current_span("sms.send_now"):
            return await self._once(request, licensee_id, idempotency_key, "send_now", run)

    async def _send_now(self, message: Message, recipients: list[Recipient]) -> CommResponse:
        self._note_accepted(message, recipients)
        jobs = SendJob.covering(message.comm_id, len(recipients), telemetry.current_traceparent())
        safety_net = asyncio.gather(*(self._queue.put(job, delay_seconds=IMMEDIATE_SAFETY_NET_SECONDS) for job in jobs))
        stored = await self._store.add(message, recipients, before_visible=safety_net)
        batches = [stored[i : i + JOB_SIZE] for i in range(0, len(stored), JOB_SIZE)]
        sent = await asyncio.gather(*(self._send_batch(message, b, job) for b, job in zip(batches, jobs, strict=True)))
        outcomes = [r for batch, _ in sent for r in batch]
        return _outcome(message.comm_id, len(stored), outcomes)

    def _note_accepted(self, message: Message, recipients: list[Recipient]) -> None:
        span = trace.get_current_span()
        span.set_attribute("sms.comm_id", message.comm_id)
        span.set_attribute("sms.recipients", len(recipients))
        telemetry.accepted.add(len(recipients), {"provider": self._provider.name})

    async def _once(self, request: SMSSend, licensee_id: str, key: str | None, kind: str,
                    run: Callable[[str | None], Awaitable[CommResponse]]) -> CommResponse:
        """Run a send once per idempotency key: a retry answers as the original did and changes nothing."""
        if key is None or self._idempotency is None:
            return await run(None)
        fingerprint = hashlib.sha256(f"{kind}\n{request.model_dump_json()}".encode()).hexdigest()
        now = utcnow()
        record = IdempotencyRecord(licensee_id, key, fingerprint, uuid.uuid4().hex, now, now + self._idempotency_window)
        existing = await self._idempotency.claim(record)
        if existing is None:
            return await run(record.comm_id)
        if existing.expires_at <= now:  # an old key used again: a new request
            if not await self._idempotency.take_over(existing, record):
                raise Conflict("This Idempotency-Key is being used by another request; retry shortly")
            return await run(record.comm_id)
        if existing.request_hash != fingerprint:
            raise KeyReused("This Idempotency-Key was used with a different request; use a new key for a new request")
        return await self._replay(existing, kind, run)

    async def _replay(self, record: IdempotencyRecord, kind: str,
                      run: Callable[[str | None], Awaitable[CommResponse]]) -> CommResponse:
        loaded = await self._store.load(record.comm_id)
        if loaded is None:
            if utcnow() - record.created_at < IN_PROGRESS_GRACE:
                raise Conflict("The first request with this Idempotency-Key is still being processed; retry shortly")
            try:  # the first request died before saving anything: finish it under the same commId
                return await run(record.comm_id)
            except AlreadyExists:
                raise Conflict("The first request with this Idempotency-Key is still being processed; retry shortly") from None
        message, recipients = loaded
        if kind == "send_now":
            if any(r.status in (Status.QUEUED, Status.SENDING) for r in recipients):
                # Its answer is not known yet: "Sent to 0 of 3" would invite a resend of what is
                # being sent now. (A recipient waiting for a retry after a transient failure counts
                # as in progress too, until the retry settles it.)
                raise Conflict("The first request with this Idempotency-Key is still being processed; retry shortly")
            return _outcome(message.comm_id, len(recipients), recipients)
        return _queued(message.comm_id, len(recipients))

    # -- sending -----------------------------------------------------------------------------

    async def dispatch(self, job: SendJob) -> list[Recipient]:
        """Send the job's recipients that are still queued; safe to run twice for the same job."""
        attributes = {"sms.comm_id": job.comm_id, "sms.first": job.first, "sms.last": job.last}
        with telemetry.tracer.start_as_current_span("sms.dispatch", context=telemetry.continued(job.traceparent), attributes=attributes):
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
        message, recipients = loaded
        outcomes, stepped_aside = await self._send_batch(message, recipients, job)
        if stepped_aside:
            # Another dispatch is sending this job (this is a copy from the sweeper or a safety net, or
            # that one is): the rest is left to it, and this copy ends. Not raised: a raise counts
            # towards maxDequeueCount, and a copy that kept meeting a long (rate-limited) job would be
            # parked, and give_up would fail what the live dispatch was about to send. Nor put back:
            # copies would pile up behind a long job. If that dispatch dies, its own queue message
            # comes back; an immediate send has none, and the sweeper finds what it left queued.
            return outcomes
        lease_start = utcnow() - self._sending_lease
        if any(r.status is Status.SENDING and r.updated_at > lease_start for r in recipients):
            # Another worker holds a live claim on some of these (a redelivery while it still runs).
            # Retrying later either finds them settled or, if that worker died, past their lease.
            raise RecipientsInFlight(f"{job.comm_id}[{job.first}..{job.last}] is partly being sent elsewhere; retry later")
        return outcomes

    async def _send_batch(self, message: Message, recipients: Sequence[Recipient], job: SendJob) -> tuple[list[Recipient], bool]:
        """Send the job's queued recipients and record each outcome. Returns the recipients it settled,
        and whether it stepped aside for another worker sending the same job (see JobRows).

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
        rate limit slower than a storage round trip). The dispatch benchmark's 100-recipient jobs
        with 16 send slots took 57-90, where claiming everything up front took 3.
        """
        rows = JobRows(self._store, message.comm_id, recipients, job.first, job.last, self._sending_lease)
        sender = message.sender.phone_number or self._provider.default_sender  # a STOP sent to it applies
        queued = [r.phone_number for r in recipients if r.status is Status.QUEUED]  # the numbers it may text
        blocked = await self._opt_outs.blocked(message.licensee_id, sender, queued) if self._opt_outs else set()
        lease_start = utcnow() - self._sending_lease
        for r in recipients:
            if r.status is Status.SENDING and r.updated_at <= lease_start:
                rows.fail_left_behind(r.seq)
            elif r.status is Status.QUEUED and r.phone_number in blocked:
                rows.opt_out(r.seq)
        to_send = [r.seq for r in recipients if r.status is Status.QUEUED and r.phone_number not in blocked]
        retry_delays = await self._send_each(message, to_send, rows)
        await rows.flush()  # opt-outs and failures not yet written with a claim
        settled = rows.settled()
        if retry_delays:
            # The released recipients are queued again; this job finds them once the delay passes.
            await self._queue.put(job, delay_seconds=max(retry_delays))
        if self._inbound and (message.reply_is_allowed or message.reply_is_required):
            await self._remember_reply_routes(message, settled)
        return settled, rows.yielded

    async def _send_each(self, message: Message, seqs: Sequence[int], rows: JobRows) -> list[int]:
        """Start each recipient's send once its turn under the sender's rate limit has come, the sends
        overlapping. Returns the retry delays of those released for a retry.

        A job takes its turns one at a time, so it never holds more than one turn ahead: jobs from one
        sender share the rate in turn, and one that stops early leaves no turns reserved and unused.
        Each send then waits for a send slot (process-wide, first come first served, so a job started
        earlier gets the slots that free up before one started later: its claims share writes).
        """
        sends: list[asyncio.Task] = []
        try:
            for seq in seqs:
                if rows.error or rows.yielded:
                    break  # storage refused a write, or another worker is on this job: the rest stay queued
                if not rows.queued(seq):
                    continue  # another worker took it meanwhile: no turn spent on it
                await self._rate.wait_turn(message.sender.phone_number)
                sends.append(asyncio.create_task(self._send_one(message, seq, rows)))
            results = await asyncio.gather(*sends, return_exceptions=True)
        except BaseException:
            for send in sends:  # the dispatch is cancelled (its host is stopping it): so are its sends
                send.cancel()
            raise
        if failure := next((r for r in results if isinstance(r, BaseException)), None):
            raise failure
        return [delay for delay in results if delay is not None]

    async def _remember_reply_routes(self, message: Message, recipients: Sequence[Recipient]) -> None:
        routes = [ReplyRoute(r.phone_number, message.comm_id, message.licensee_id) for r in recipients if r.status is Status.SENT]
        try:
            await self._inbound.remember_routes(routes)
        except StorageUnavailable:  # the SMS went out; a reply that cannot be linked is still stored
            log.warning("could not record reply routes for %s", message.comm_id)

    async def _send_one(self, message: Message, seq: int, rows: JobRows) -> int | None:
        """With a send slot: claim one recipient, hand it to the provider; then record the outcome.
        Returns the retry delay when it is to be tried again."""
        async with self._send_slots:
            claimed = await rows.claim(seq)
            if claimed is None:
                return None  # another worker claimed or settled it first
            outcome = await self._call_provider(message, claimed)
        settled, delay = self._settle(claimed, outcome)
        await rows.record(settled)
        return delay

    async def _call_provider(self, message: Message, recipient: Recipient) -> SendOutcome:
        sms = OutgoingSms(
            recipient.recipient_id, recipient.phone_number, message.body, message.sender.phone_number,
            reference=f"{recipient.comm_id}:{recipient.seq}", attempt=recipient.attempts,
            first_attempt_at=recipient.first_attempt_at, attempt_at=recipient.updated_at,
        )
        span_attributes = {"sms.provider": self._provider.name, "sms.recipient_id": recipient.recipient_id, "sms.attempt": recipient.attempts}
        with telemetry.tracer.start_as_current_span("sms.provider.send", attributes=span_attributes) as span:
            try:
                outcome = await self._provider.send(sms)
            except Exception as exc:  # an adapter bug must not leave the whole batch in `sending`
                log_unexpected(log, f"provider {self._provider.name} raised for {mask(recipient.phone_number)}", exc)
                outcome = SendOutcome(error=f"provider error ({type(exc).__name__})", transient=True)
            span.set_attribute("sms.outcome", "sent" if outcome.accepted else "retry" if outcome.transient else "failed")
        return outcome

    def _settle(self, recipient: Recipient, outcome: SendOutcome) -> tuple[Recipient, int | None]:
        """The recipient as the outcome leaves it, and the retry delay when it is to be tried again."""
        provider = {"provider": self._provider.name}
        if outcome.accepted:
            telemetry.sent.add(1, provider)
            return recipient.moved_to(Status.SENT, provider_message_id=outcome.provider_message_id, last_error=None), None
        if outcome.transient and recipient.attempts < self._retry.max_attempts:
            # Nothing was sent: release the claim so the retry job picks the recipient up again.
            delay = self._retry.delay_seconds(recipient.attempts, outcome.retry_after_seconds)
            log.info("transient failure for %s (attempt %d), retrying in %ds: %s",
                     mask(recipient.phone_number), recipient.attempts, delay, mask_numbers(outcome.error or ""))
            return recipient.moved_to(Status.QUEUED, last_error=outcome.error), delay
        error = outcome.error if not outcome.transient else f"{outcome.error} (gave up after {recipient.attempts} attempts)"
        telemetry.failed.add(1, provider)
        return recipient.moved_to(Status.FAILED, last_error=error), None

    async def give_up(self, job: SendJob, reason: str) -> list[Recipient]:
        """A job the queue parked as poison: fail what it left behind, so nothing waits forever.

        A queued recipient fails with `reason` (it was never attempted); one left `sending` past its
        lease was with the provider when its worker stopped, so it fails as outcome unknown. One whose
        lease still runs is left alone: its worker is alive and records what the provider answered (if
        that worker dies, the sweeper finds the recipient once the lease has run out)."""
        loaded = await self._store.load(job.comm_id, job.first, job.last)
        if loaded is None:
            return []  # its message was never written: there is nothing to fail
        rows = JobRows(self._store, job.comm_id, loaded[1], job.first, job.last, self._sending_lease)
        for r in loaded[1]:
            rows.give_up(r.seq, reason)
        await rows.flush()
        return rows.settled()

    async def sweep(self, queued_for: timedelta = timedelta(minutes=10)) -> list[SendJob]:
        """Re-queue the jobs of recipients left behind: queued too long with no job in sight, or
        sending past their lease. Dispatch is idempotent, so a job queued twice does no harm."""
        now = utcnow()
        left = await self._store.stale_recipients(queued_before=now - queued_for, sending_before=now - self._sending_lease)
        jobs = sorted({SendJob(r.comm_id, r.seq // JOB_SIZE * JOB_SIZE, r.seq // JOB_SIZE * JOB_SIZE + JOB_SIZE - 1) for r in left},
                      key=lambda j: (j.comm_id, j.first))
        await asyncio.gather(*(self._queue.put(job) for job in jobs))
        if jobs:
            log.warning("sweeper re-queued %d job(s) for %d recipient(s) left behind", len(jobs), len(left))
        return jobs

    # -- reporting ---------------------------------------------------------------------------

    async def status(self, comm_id: str, licensee_id: str) -> MessageState:
        loaded = await self._store.load(comm_id)
        # Another licensee's message answers exactly as a missing one: its existence is not revealed.
        if loaded is None or loaded[0].licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        message, recipients = loaded
        replies = None
        if self._inbound and (message.reply_is_allowed or message.reply_is_required):
            replies = [ReplyState.of(r) for r in await self._inbound.replies(comm_id)]
        return MessageState(
            comm_id=message.comm_id,
            reference=reference_for(message.comm_id),
            status=message_status(recipients),
            licensee_id=message.licensee_id,
            created_at=message.created_at,
            encoding=message.encoding,
            segments=message.segments,
            recipient_count=message.recipient_count,
            recipients=[
                RecipientState(
                    id=r.recipient_id, phone_number=r.phone_number, name=r.name, contact_id=r.contact_id,
                    status=r.status.value, provider_message_id=r.provider_message_id, error=r.last_error,
                    attempts=r.attempts, updated_at=r.updated_at,
                )
                for r in recipients
            ],
            replies=replies,
        )


def _queued(comm_id: str, recipient_count: int) -> CommResponse:
    return CommResponse(comm_id=comm_id, reference=reference_for(comm_id), status=True,
                        message=f"Queued for {_plural(recipient_count, 'recipient')}")


def _outcome(comm_id: str, recipient_count: int, outcomes: Sequence[Recipient]) -> CommResponse:
    """An immediate send's answer: how many were sent, opted out, failed (and why)."""
    sent = sum(1 for r in outcomes if r.status in (Status.SENT, Status.DELIVERED))
    text = f"Sent to {sent} of {_plural(recipient_count, 'recipient')}"
    opted_out = sum(1 for r in outcomes if r.status is Status.OPTED_OUT)
    if opted_out:
        text += f"; {opted_out} opted out"
    failures = [r for r in outcomes if r.status in (Status.FAILED, Status.UNDELIVERED)]
    if failures:
        text += f"; {len(failures)} failed: {failures[0].last_error}"
    return CommResponse(comm_id=comm_id, reference=reference_for(comm_id), status=sent == recipient_count, message=text)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
