"""Accept a send: check it, save it and queue its jobs, then answer; or, sent now, send it within the
request and answer with the outcome. ServiceStack's auto-batch accepts several in turn.

The ordering rule lives here, in `_save`: a message's jobs are queued before the message becomes
visible (the store's commit), so a message is never stored without its jobs and nothing is stranded.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from opentelemetry import trace

from .. import telemetry
from ..errors import Conflict, FieldError, GatewayError, RecordChanged, StorageUnavailable, ValidationFailed
from ..model import JOB_SIZE, Message, Recipient, SendJob, Status, reference_for, utcnow
from ..storage import JobQueue, MessageStore
from ..validation import Limits, message_from
from .commands import RequestKey, SendMessage, SendResult
from .dispatch import Dispatch, queue_delay
from .idempotency import STILL_RUNNING, OncePerKey

# An immediate send also queues its jobs, made visible only after this delay: if the process dies
# mid-request the worker finishes the send; if not, the job finds nothing left queued and sends nothing.
IMMEDIATE_SAFETY_NET_SECONDS = 120

log = logging.getLogger("sms.accept")


class Accept:
    def __init__(self, messages: MessageStore, jobs: JobQueue, dispatch: Dispatch, once: OncePerKey,
                 limits: Limits = Limits(), provider_name: str = "", clock: Callable[[], datetime] = utcnow):
        self._messages, self._queue, self._dispatch, self._once = messages, jobs, dispatch, once
        self._limits, self._provider_name, self._clock = limits, provider_name, clock

    def _checked(self, command: SendMessage, licensee_id: str, comm_id: str | None = None) -> tuple[Message, list[Recipient]]:
        return message_from(command, licensee_id, self._limits, comm_id, self._clock())

    def _job_delay(self, message: Message) -> int:
        """A scheduled message's jobs wait on the queue until its sendAt (one hop of it at most)."""
        return queue_delay(message.send_at, message.created_at) if message.send_at is not None else 0

    def _under(self, checked: tuple[Message, list[Recipient]], command: SendMessage, licensee_id: str,
               comm_id: str | None) -> tuple[Message, list[Recipient]]:
        """An auto-batch item, checked already, under `comm_id` (its Idempotency-Key's): checked again for it."""
        return checked if comm_id in (None, checked[0].comm_id) else self._checked(command, licensee_id, comm_id)

    async def queue(self, command: SendMessage, licensee_id: str, key: RequestKey | None = None,
                    checked: tuple[Message, list[Recipient]] | None = None) -> SendResult:
        """Save the SMS and queue it; the worker sends it in the background. `checked`: the command as
        already checked (an auto-batch checks every item first)."""

        async def check(comm_id: str | None) -> tuple[Message, list[Recipient]]:
            return self._under(checked, command, licensee_id, comm_id) if checked else self._checked(command, licensee_id, comm_id)

        async def work(prepared: tuple[Message, list[Recipient]]) -> SendResult:
            message, recipients = prepared
            await self._save_queued(message, recipients)
            return _queued(message, len(recipients))

        with telemetry.span("sms.accept"):
            return await self._once.run(licensee_id, key, "send", check, work,
                                        lambda message, recipients: _queued(message, len(recipients)))

    async def queue_each(self, commands: Sequence[SendMessage], licensee_id: str,
                         keys: Sequence[RequestKey] | None = None) -> list[SendResult]:
        """ServiceStack's auto-batch: every command is checked before any is saved, then each is accepted
        in turn. Items live in different partitions, so a batch cannot be one transaction: an error
        part-way says how many items were done (GatewayError.batch_completed), and with an idempotency
        key each item is remembered under its own (`keys`, one an item: the batch's key and the item's
        position), so resending the batch finishes it without saving any item twice."""
        prepared, errors = [], []
        for i, command in enumerate(commands):
            try:
                prepared.append(self._checked(command, licensee_id))
            except ValidationFailed as exc:
                errors += [replace(e, field_name=f"[{i}].{e.field_name}", message=f"[{i}].{e.message}") for e in exc.field_errors]
        if errors:
            raise ValidationFailed(errors, batch_completed=0)
        results: list[SendResult] = []
        for i, (command, (message, recipients)) in enumerate(zip(commands, prepared, strict=True)):
            try:
                if keys is None:
                    await self._save_queued(message, recipients)
                    results.append(_queued(message, len(recipients)))
                else:
                    results.append(await self.queue(command, licensee_id, keys[i], (message, recipients)))
            except GatewayError as error:
                error.batch_completed, error.batch_index = i, i
                raise
        return results

    async def send_now(self, command: SendMessage, licensee_id: str, key: RequestKey | None = None) -> SendResult:
        """Save the SMS and send it within the request; answer with the real outcome."""

        async def check(comm_id: str | None) -> tuple[Message, list[Recipient]]:
            message, recipients = self._checked(command, licensee_id, comm_id)
            if message.send_at is not None:
                raise ValidationFailed([FieldError("SMSModel.SendAt", "NotAllowed",
                                                   "SMSModel.SendAt schedules a message: send it to /api/sms/send, not to an immediate send")])
            await self._now_or_not_at_all(message, recipients)
            return message, recipients

        async def work(prepared: tuple[Message, list[Recipient]]) -> SendResult:
            message, recipients = prepared
            jobs, stored = await self._save(message, recipients, IMMEDIATE_SAFETY_NET_SECONDS)
            batches = [stored[i : i + JOB_SIZE] for i in range(0, len(stored), JOB_SIZE)]
            sent = await asyncio.gather(*(self._dispatch.send(message, b, job) for b, job in zip(batches, jobs, strict=True)))
            for job, each in zip(jobs, sent, strict=True):
                try:
                    await self._dispatch.record(message, each.rows)
                except (StorageUnavailable, RecordChanged):
                    # The SMS went out: the answer must say so, not 503 (a client would send again).
                    # The job's safety-net copy, due in IMMEDIATE_SAFETY_NET_SECONDS, records it.
                    log.warning("ledger not updated for %s[%d..%d]; its safety-net job will", message.comm_id, job.first, job.last)
            return _outcome(message.comm_id, [r for each in sent for r in each.rows])

        def answer(message: Message, recipients: list[Recipient]) -> SendResult:
            if any(r.status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING) for r in recipients):
                # Its answer is not known yet: "Sent to 0 of 3" would invite a resend of what is
                # being sent now. (A recipient waiting for a retry after a transient failure counts
                # as in progress too, until the retry settles it.)
                raise Conflict(STILL_RUNNING)
            return _outcome(message.comm_id, recipients)

        with telemetry.span("sms.send_now"):
            return await self._once.run(licensee_id, key, "send_now", check, work, answer)

    async def _now_or_not_at_all(self, message: Message, recipients: list[Recipient]) -> None:
        """An immediate send goes now or not at all: recipients inside the licensee's quiet hours refuse
        it (nothing is stored), unless it is urgent. Holding them and answering "Sent to 0" would invite
        a resend that texts them twice once the window ends."""
        quiet, held = await self._dispatch.held_of_those_texted(message, recipients, self._clock())
        if not held:
            return
        window = quiet[quiet.index("("):quiet.index(")") + 1]
        first = min(held.values()).astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        who = (f"1 of {_plural(len(recipients), 'recipient')} is" if len(held) == 1
               else f"{len(held)} of {len(recipients)} recipients are")
        until = f"until {first}" if len(held) == 1 else f"the first of them until {first}"
        raise ValidationFailed([FieldError(
            "SMSModel.Urgent", "QuietHours",
            f"{who} inside the licensee's quiet hours {window} {until}. An immediate send goes now or not at all: "
            "send it with Urgent: true to send it now, or to /api/sms/send to have it wait for the window's end")])

    async def _save_queued(self, message: Message, recipients: list[Recipient]) -> None:
        """Save a message for the worker to send: now, or at its sendAt. A scheduled one is recorded in
        the ledger at once (listed as scheduled for the days it waits); that write is not part of the
        commit, and a failure of it is not the request's: its job records it at the latest when it
        runs (each hop of a long wait, and at the time)."""
        jobs, stored = await self._save(message, recipients, self._job_delay(message))
        if message.send_at is not None:
            try:
                await self._dispatch.record(message, stored)
            except (StorageUnavailable, RecordChanged):
                log.warning("ledger not updated for scheduled message %s; its job will", message.comm_id)

    async def _save(self, message: Message, recipients: list[Recipient], job_delay: int = 0) -> tuple[list[SendJob], list[Recipient]]:
        """Stage the message's rows and queue its jobs (one after the other, or together when staging
        writes rows), then commit: the commit point.

        Jobs first: a message never becomes visible without its jobs, so nothing can be stranded. A job
        whose message then fails to commit finds no message, and retries until the queue parks it (its
        give-up finds nothing to fail). Returns the jobs and the recipients as stored."""
        traceparent = None
        if telemetry.tracing():
            span = trace.get_current_span()
            span.set_attribute("sms.comm_id", message.comm_id)
            span.set_attribute("sms.recipients", len(recipients))
            traceparent = telemetry.current_traceparent()
        telemetry.accepted.add(len(recipients), {"provider": self._provider_name})
        jobs = SendJob.covering(message.comm_id, len(recipients), traceparent)
        if len(jobs) == 1 and len(recipients) <= self._messages.commit_room:
            # One job and no row to write before the commit, the usual message: the rows staged (built,
            # and refused here if storage would refuse them, before any job is queued), then its put, in
            # this task. A task to overlap the two would cost more CPU (a task, a gather and two turns of
            # the loop) than the overlap saves, with nothing to overlap but building the commit.
            staged = await self._messages.stage(message, recipients)
            await self._queue.put(jobs[0], delay_seconds=job_delay)
        else:
            # The puts go out at the stage's first wait for storage (its earlier rows), beside those writes.
            puts = asyncio.gather(*(self._queue.put(job, delay_seconds=job_delay) for job in jobs), return_exceptions=True)
            try:
                staged = await self._messages.stage(message, recipients)
            except asyncio.CancelledError:
                puts.cancel()  # the request is cancelled (its host stopping): its puts with it, not waited out
                raise
            finally:
                # Both settle before anything is raised: no put is left running unawaited behind a failed request.
                put_results = await puts
            if failure := next((r for r in put_results if isinstance(r, BaseException)), None):
                raise failure
        return jobs, await self._messages.commit(staged)


def _queued(message: Message, recipient_count: int) -> SendResult:
    if message.send_at is not None:
        when = message.send_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        return SendResult(message.comm_id, reference_for(message.comm_id), True,
                          f"Scheduled for {_plural(recipient_count, 'recipient')} at {when}")
    return SendResult(message.comm_id, reference_for(message.comm_id), True, f"Queued for {_plural(recipient_count, 'recipient')}")


def _outcome(comm_id: str, recipients: Sequence[Recipient]) -> SendResult:
    """An immediate send's answer: how many were sent, are still to be sent (a retry, quiet hours that
    began meanwhile: not failures, and never to be sent again by the client), opted out, failed (and why)."""
    sent = sum(1 for r in recipients if r.status in (Status.SENT, Status.DELIVERED))
    text = f"Sent to {sent} of {_plural(len(recipients), 'recipient')}"
    waiting = [r for r in recipients if r.status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING)]
    if waiting:
        text += f"; {len(waiting)} still to be sent (not a failure: do not send it again)"
        text += f": {waiting[0].last_error}" if waiting[0].last_error else ""
    opted_out = sum(1 for r in recipients if r.status is Status.OPTED_OUT)
    if opted_out:
        text += f"; {opted_out} opted out"
    failures = [r for r in recipients if r.status in (Status.FAILED, Status.UNDELIVERED)]
    if failures:
        text += f"; {len(failures)} failed: {failures[0].last_error}"
    return SendResult(comm_id, reference_for(comm_id), sent == len(recipients), text)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
