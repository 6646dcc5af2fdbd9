"""Accept a send: check it, save it and queue its jobs, then answer. ServiceStack's auto-batch accepts
several in turn; an immediate send (sms/usecases/send_now.py) saves through the same commit point.

The ordering rule lives here, in `save`: a message's jobs are queued before the message becomes
visible (the store's commit), so a message is never stored without its jobs and nothing is stranded.

The one-call accept (issue 30; on with SMS_ACCEPT_ONE_CALL): a message that needs nothing but its job is saved
as its job alone, a version-2 job carrying the whole message (sms/domain/jobs.py) put on sms-accept: one storage
call, and the worker writes the rows (sms/usecases/materialize.py). Such a message gets a tagged commId
(sms/domain/comm_ids.py), minted only here, so GET and DELETE recognise it before its rows exist. It takes that
path when nothing asks for more: no Idempotency-Key (a retry is answered from the stored message), no
createCommunicationReferencesImmediately (its records must exist when the answer comes), no sendAt (listed in the
ledger at accept), no recipient the guard blocked (a timeline step), one transaction's recipients (WHOLE_JOB_SIZE),
and a job that fits the queue message (else today's save, under the same id). An immediate send never does.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import replace
from datetime import datetime
from typing import Awaitable, Callable, Iterator, Sequence, TypeVar

from opentelemetry import trace

from .. import telemetry
from ..domain.comm_ids import CommIdKeys, to_millisecond
from ..domain.commands import RequestKey, SendMessage, SendResult, estimate_of
from ..domain.errors import AlreadyExists, GatewayError, RecordChanged, StorageUnavailable, ValidationFailed
from ..domain.jobs import WHOLE_JOB_SIZE, NotWhole, WholeJob
from ..domain.model import Message, Recipient, SendJob, evolved, queue_delay, reference_for, utcnow
from ..domain.validation import Limits, max_price_of, message_from
from ..storage import JobQueue, MessageStore, WholeJobQueue
from .guard import Screened, Screening
from .idempotency import OncePerKey
from .ledger import Ledger
from .spend import SpendCaps
from .sweep import PendingMessages

log = logging.getLogger("sms.accept")
T = TypeVar("T")

Saved = TypeVar("Saved")


class Checked:
    """A command checked: the message and recipient records it becomes (it unpacks as that pair), and how
    the guard screened them (what the recipients still to go take of the licensee's caps)."""

    __slots__ = ("message", "recipients", "screened")

    def __init__(self, message: Message, recipients: list[Recipient], screened: Screened):
        self.message, self.recipients, self.screened = message, recipients, screened

    def __iter__(self) -> Iterator:
        return iter((self.message, self.recipients))


class CommitPoint:
    """Whether a save has reached its commit. From then on its message may be stored even when the save fails
    (a commit storage applied but never answered: a timeout, a reset, the request cancelled while it waited),
    and its jobs would send it."""

    __slots__ = ("reached",)

    def __init__(self) -> None:
        self.reached = False


class Accept:
    def __init__(self, messages: MessageStore, jobs: JobQueue, ledger: Ledger, once: OncePerKey, pending: PendingMessages,
                 screening: Screening, spend: SpendCaps, limits: Limits = Limits(), provider_name: str = "",
                 clock: Callable[[], datetime] = utcnow, whole_jobs: WholeJobQueue | None = None, comm_ids: CommIdKeys | None = None):
        """`whole_jobs` and `comm_ids`: the one-call accept's queue and the deployment's commId keys; with both, an
        eligible message takes it (see above), without either none does."""
        self._messages, self._queue, self._ledger, self._once, self._pending = messages, jobs, ledger, once, pending
        self._screening, self._spend, self._limits, self._provider_name, self._clock = screening, spend, limits, provider_name, clock
        self._whole_jobs, self._comm_ids = (whole_jobs, comm_ids) if whole_jobs is not None and comm_ids is not None else (None, None)

    async def checked(self, command: SendMessage, licensee_id: str, comm_id: str | None = None) -> Checked:
        """The command checked, as the message and recipient records it becomes (ValidationFailed naming each
        problem), its recipients screened by the licensee's guard (those it refuses `blocked`, with why), and
        the message carrying what it costs (its answer, and a retry's under its Idempotency-Key)."""
        screened = await self.estimate(command, licensee_id, comm_id)
        cost = screened.estimate
        message = evolved(screened.message, blocked=cost.blocked, estimated_cost=cost.cost, currency=cost.currency)
        return Checked(message, screened.recipients, screened)

    async def estimate(self, command: SendMessage, licensee_id: str, comm_id: str | None = None) -> Screened:
        """The command checked and its recipients screened and priced, as a send would be; nothing is stored,
        queued or claimed (POST /api/sms/estimate answers this)."""
        message, recipients = message_from(command, licensee_id, self._limits, self._clock(), comm_id)
        return await self._screening.screen(message, recipients, max_price_of(command.max_price))

    async def within_caps(self, checked: Checked, save: Callable[[CommitPoint], Awaitable[Saved]]) -> Saved:
        """`save` once the recipients still to go have room under the licensee's spend caps, reserved for
        them (sms/usecases/spend.py); CapReached, nothing saved, when they have not. A save that fails before
        its commit gives the room back; one that fails at or after it keeps it (its message may be stored, and
        sent: a cap never under-counts). Inside the idempotency `work`: a keyed retry of a saved message
        reserves nothing."""
        screened = checked.screened
        reservation = await self._spend.reserve(checked.message.licensee_id, screened.guard.caps, checked.message.comm_id,
                                                screened.segments, screened.cost)
        point = CommitPoint()
        try:
            return await save(point)
        except BaseException:
            if not point.reached:
                self._spend.give_back(reservation)  # in the background: a cancelled request cannot wait for it
            raise

    def _job_delay(self, message: Message) -> int:
        """A scheduled message's jobs wait on the queue until its sendAt (one hop of it at most)."""
        return queue_delay(message.send_at, message.created_at) if message.send_at is not None else 0

    async def _under(self, checked: Checked, command: SendMessage, licensee_id: str, comm_id: str | None) -> Checked:
        """An auto-batch item, checked already, under `comm_id` (its Idempotency-Key's): checked again for it."""
        return checked if comm_id in (None, checked.message.comm_id) else await self.checked(command, licensee_id, comm_id)

    async def queue(self, command: SendMessage, licensee_id: str, key: RequestKey | None = None,
                    checked: Checked | None = None) -> SendResult:
        """Save the SMS and queue it; the worker sends it in the background. `checked`: the command as
        already checked (an auto-batch checks every item first)."""

        async def check(comm_id: str | None) -> Checked:
            if checked:
                return await self._under(checked, command, licensee_id, comm_id)
            return await self.checked(command, licensee_id, comm_id)

        async def work(prepared: Checked) -> SendResult:
            return await self._reserve_and_save(command, key, prepared)

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
        prepared = await _each(commands, lambda command: self.checked(command, licensee_id))
        results: list[SendResult] = []
        for i, (command, checked) in enumerate(zip(commands, prepared, strict=True)):
            try:
                if keys is None:
                    results.append(await self._reserve_and_save(command, None, checked))
                else:
                    results.append(await self.queue(command, licensee_id, keys[i], checked))
            except GatewayError as error:
                error.batch_completed, error.batch_index = i, i
                raise
        return results

    async def estimate_each(self, commands: Sequence[SendMessage], licensee_id: str) -> list[Screened]:
        """An auto-batch's estimates: each item's, as `estimate`; every item's errors named by its position."""
        return await _each(commands, lambda command: self.estimate(command, licensee_id))

    async def _reserve_and_save(self, command: SendMessage, key: RequestKey | None, checked: Checked) -> SendResult:
        """A checked message saved to be sent, in one storage call when it can be (see above), within the caps."""
        job = None
        if (one_call := self._one_call(command, key, checked)) is not None:
            checked, job = one_call
        message, recipients = checked
        if job is not None:
            await self.within_caps(checked, functools.partial(self._save_whole, job))
        else:
            await self.within_caps(checked, functools.partial(self._save_queued, message, recipients))
        return _queued(message, len(recipients))

    def _one_call(self, command: SendMessage, key: RequestKey | None, checked: Checked) -> tuple[Checked, WholeJob | None] | None:
        """None for a message that takes today's path. Else the message under a tagged commId, its time to the
        millisecond the id carries, and its job (None when the job does not fit the queue message: saved as today,
        under that id)."""
        message, recipients = checked
        if (self._comm_ids is None or key is not None or command.references_now or message.send_at is not None or message.blocked
                or not 1 <= len(recipients) <= WHOLE_JOB_SIZE):
            return None
        at = to_millisecond(message.created_at)
        comm_id = self._comm_ids.mint(message.licensee_id, at, len(recipients))
        message = evolved(message, comm_id=comm_id, created_at=at)
        recipients = [evolved(r, comm_id=comm_id, created_at=at, updated_at=at) for r in recipients]
        tagged = Checked(message, recipients, checked.screened)
        try:
            job = WholeJob.of(message, recipients, telemetry.current_traceparent() if telemetry.tracing() else None)
        except NotWhole as why:  # what the checks above missed: today's path, never a refusal
            log.warning("message %s taken the usual way: %s", comm_id, why)
            return tagged, None
        return tagged, job if self._whole_jobs.fits(job) else None

    async def _save_whole(self, job: WholeJob, point: CommitPoint) -> None:
        """The one-call save: the job put, and that is all. The put is the commit: once it is sent the message may
        be stored (a put that landed unanswered), so its spend room is kept from then on, unless the put that
        failed is withdrawn (below)."""
        self._accepted(job.message, len(job.recipients))
        point.reached = True
        try:
            await self._whole_jobs.put(job)
        except StorageUnavailable:
            if await self._withdrawn(job):
                point.reached = False  # nothing of it will ever be sent: its room goes back
                raise StorageUnavailable("Storage is unavailable; the message was withdrawn: nothing will be sent, "
                                         "so send it again shortly") from None
            # The worker had written it already: accepted after all.

    async def _withdrawn(self, job: WholeJob) -> bool:
        """After a put that failed, which may have landed (the service applied it, its answer was lost): close the
        message's gate as cancelled, as a DELETE before its rows would (sms/usecases/cancel.py), so that if it did
        land the worker writes every recipient cancelled and sends none. Then a 503 says what happened, and the
        client's resend is the only SMS (the commit of today's path has the same unknown, but its job finds no rows
        only when the commit failed: there a 503 after a landed commit is sent). True: withdrawn. False: the gate
        was already the worker's, the rows written: the message is accepted. A gate that cannot be closed, or one another
        licensee closed, raises the put's failure: unknown, as a lost commit's answer is."""
        message = job.message
        try:
            await self._messages.close_gate(message.comm_id, message.licensee_id, self._clock())
        except AlreadyExists:
            gate = await self._messages.gate(message.comm_id)
            if gate is not None and not gate.materialized and not gate.cancelled_by(message.licensee_id):
                # Another licensee's cancel (a made-up id that passed for theirs, once in 2**21): the worker ignores it
                # and would send a landed job (sms/usecases/materialize.py). Not withdrawn: unknown, as a lost commit.
                log.warning("one-call message %s: its put failed and another licensee's gate holds its id; it may still be sent",
                            message.comm_id)
                raise StorageUnavailable() from None
            return gate is None or not gate.materialized
        except StorageUnavailable:
            log.warning("one-call message %s: its put failed and its gate could not be closed; it may still be sent", message.comm_id)
            raise
        log.warning("one-call message %s withdrawn: its put failed, and if it landed the worker will write it cancelled", message.comm_id)
        return True

    def _accepted(self, message: Message, recipient_count: int) -> None:
        """What telemetry counts of an accept, as it is saved."""
        if telemetry.tracing():
            span = trace.get_current_span()
            span.set_attribute("sms.comm_id", message.comm_id)
            span.set_attribute("sms.recipients", recipient_count)
        telemetry.accepted.add(recipient_count, {"provider": self._provider_name})

    async def _save_queued(self, message: Message, recipients: list[Recipient], point: CommitPoint | None = None) -> None:
        """Save a message for the worker to send: now, or at its sendAt. A scheduled one is recorded in
        the ledger at once (listed as scheduled for the days it waits); that write is not part of the
        commit, and a failure of it is not the request's: its job records it at the latest when it
        runs (each hop of a long wait, and at the time)."""
        jobs, stored = await self.save(message, recipients, self._job_delay(message), point)
        if message.send_at is not None:
            try:
                await self._ledger.record(message, stored, self._provider_name)
            except (StorageUnavailable, RecordChanged):
                log.warning("ledger not updated for scheduled message %s; its job will", message.comm_id)

    async def save(self, message: Message, recipients: list[Recipient], job_delay: int = 0,
                   point: CommitPoint | None = None) -> tuple[list[SendJob], list[Recipient]]:
        """Stage the message's rows and queue its jobs (one after the other, or together when staging
        writes rows), then commit: the commit point.

        Jobs first: a message never becomes visible without its jobs, so nothing can be stranded. A job
        whose message then fails to commit finds no message, and retries until the queue parks it (its
        give-up finds nothing to fail). Once committed, it is noted for the sweeper (written behind: no
        storage call here). Returns the jobs and the recipients as stored. `point` is marked as the commit is sent."""
        self._accepted(message, len(recipients))
        traceparent = telemetry.current_traceparent() if telemetry.tracing() else None
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
        if point is not None:
            point.reached = True
        stored = await self._messages.commit(staged)
        self._pending.note(message)
        return jobs, stored


async def _each(commands: Sequence[SendMessage], check: Callable[[SendMessage], Awaitable[T]]) -> list[T]:
    """Every item of an auto-batch checked, before any is used: ValidationFailed naming each item's errors by its position."""
    checked, errors = [], []
    for i, command in enumerate(commands):
        try:
            checked.append(await check(command))
        except ValidationFailed as exc:
            errors += [replace(e, field_name=f"[{i}].{e.field_name}", message=f"[{i}].{e.message}") for e in exc.field_errors]
    if errors:
        raise ValidationFailed(errors, batch_completed=0)
    return checked


def _queued(message: Message, recipient_count: int) -> SendResult:
    if message.send_at is not None:
        when = message.send_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        return SendResult(message.comm_id, reference_for(message.comm_id), True,
                          f"Scheduled for {plural(recipient_count, 'recipient')} at {when}", estimate_of(message))
    return SendResult(message.comm_id, reference_for(message.comm_id), True, f"Queued for {plural(recipient_count, 'recipient')}",
                      estimate_of(message))


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
