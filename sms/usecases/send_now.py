"""Send now: save an SMS and send it within the request, then answer with what happened.

It saves through Accept's commit point (its jobs queued, hidden for IMMEDIATE_SAFETY_NET_SECONDS, before
the message is visible) and sends through Dispatch, as the worker would: if the process dies mid-request,
the job finishes the send; if not, the job finds nothing left queued and sends nothing. It goes now or
not at all: recipients inside the licensee's quiet hours refuse it (see `_now_or_not_at_all`).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Callable, Sequence

from .. import telemetry
from ..domain.commands import RequestKey, SendMessage, SendResult, estimate_of
from ..domain.errors import Conflict, FieldError, RecordChanged, StorageUnavailable, ValidationFailed
from ..domain.model import JOB_SIZE, Message, Recipient, Status, reference_for, utcnow
from .accept import Accept, Checked, plural
from .dispatch import Dispatch
from .idempotency import STILL_RUNNING, OncePerKey

# An immediate send also queues its jobs, made visible only after this delay: if the process dies
# mid-request the worker finishes the send; if not, the job finds nothing left queued and sends nothing.
IMMEDIATE_SAFETY_NET_SECONDS = 120

log = logging.getLogger("sms.send_now")


class SendNow:
    def __init__(self, accept: Accept, dispatch: Dispatch, once: OncePerKey, clock: Callable[[], datetime] = utcnow):
        self._accept, self._dispatch, self._once, self._clock = accept, dispatch, once, clock

    async def send(self, command: SendMessage, licensee_id: str, key: RequestKey | None = None) -> SendResult:
        """Save the SMS and send it within the request; answer with the real outcome."""

        async def check(comm_id: str | None) -> Checked:
            checked = await self._accept.checked(command, licensee_id, comm_id)
            message, recipients = checked
            if message.send_at is not None:
                raise ValidationFailed([FieldError(
                    "SMSModel.SendAt", "NotAllowed",
                    "SMSModel.SendAt schedules a message: send it to /api/sms/send, not to an immediate send")])
            await self._now_or_not_at_all(message, recipients)
            return checked

        async def work(prepared: Checked) -> SendResult:
            message, recipients = prepared
            jobs, stored = await self._accept.within_caps(
                prepared, lambda point: self._accept.save(message, recipients, IMMEDIATE_SAFETY_NET_SECONDS, point))
            batches = [stored[i : i + JOB_SIZE] for i in range(0, len(stored), JOB_SIZE)]
            sent = await asyncio.gather(*(self._dispatch.send(message, b, job) for b, job in zip(batches, jobs, strict=True)))
            for job, each in zip(jobs, sent, strict=True):
                try:
                    await self._dispatch.record(message, each.rows)
                except (StorageUnavailable, RecordChanged):
                    # The SMS went out: the answer must say so, not 503 (a client would send again).
                    # The job's safety-net copy, due in IMMEDIATE_SAFETY_NET_SECONDS, records it.
                    log.warning("ledger not updated for %s[%d..%d]; its safety-net job will", message.comm_id, job.first, job.last)
            return _outcome(message, [r for each in sent for r in each.rows])

        def answer(message: Message, recipients: list[Recipient]) -> SendResult:
            if any(r.status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING) for r in recipients):
                # Its answer is not known yet: "Sent to 0 of 3" would invite a resend of what is
                # being sent now. (A recipient waiting for a retry after a transient failure counts
                # as in progress too, until the retry settles it.)
                raise Conflict(STILL_RUNNING)
            return _outcome(message, recipients)

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
        who = (f"1 of {plural(len(recipients), 'recipient')} is" if len(held) == 1
               else f"{len(held)} of {len(recipients)} recipients are")
        until = f"until {first}" if len(held) == 1 else f"the first of them until {first}"
        raise ValidationFailed([FieldError(
            "SMSModel.Urgent", "QuietHours",
            f"{who} inside the licensee's quiet hours {window} {until}. An immediate send goes now or not at all: "
            "send it with Urgent: true to send it now, or to /api/sms/send to have it wait for the window's end")])


def _outcome(message: Message, recipients: Sequence[Recipient]) -> SendResult:
    """An immediate send's answer: how many were sent, are still to be sent (a retry, quiet hours that
    began meanwhile: not failures, and never to be sent again by the client), opted out, blocked by the
    licensee's guard (and why), failed (and why)."""
    sent = sum(1 for r in recipients if r.status in (Status.SENT, Status.DELIVERED))
    text = f"Sent to {sent} of {plural(len(recipients), 'recipient')}"
    waiting = [r for r in recipients if r.status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING)]
    if waiting:
        text += f"; {len(waiting)} still to be sent (not a failure: do not send it again)"
        text += f": {waiting[0].last_error}" if waiting[0].last_error else ""
    opted_out = sum(1 for r in recipients if r.status is Status.OPTED_OUT)
    if opted_out:
        text += f"; {opted_out} opted out"
    blocked = [r for r in recipients if r.status is Status.BLOCKED]
    if blocked:
        text += f"; {len(blocked)} blocked by the guard: {blocked[0].last_error}"
    failures = [r for r in recipients if r.status in (Status.FAILED, Status.UNDELIVERED)]
    if failures:
        text += f"; {len(failures)} failed: {failures[0].last_error}"
    return SendResult(message.comm_id, reference_for(message.comm_id), sent == len(recipients), text, estimate_of(message))
