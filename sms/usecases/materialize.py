"""The worker's first step for a one-call accept's job (issue 30): write the message's rows from its version-2 job.

A one-call accept's only durable write is its job (sms/domain/jobs.py, WholeJob), so the worker writes the rows:
the recipients, the message row and the gate row in one entity-group transaction (MessageStore.stage with a
`materialized` gate). It is all or nothing, and its content is a function of the job alone, never of the worker's
clock or random numbers, and every repeat of it is an insert that fails (409): a redelivery, a second worker on
the same job, the same job put twice (a put is retried after a connection error), and a write that landed whose
answer was lost all end with exactly one set of rows. The one that loses reads what is there and goes on from it
as a version-1 job's dispatch does (its claims are ETag-checked: nothing is sent twice).

A cancel before the rows exist inserts the gate alone (MessageStore.close_gate): the write of the rows then fails
on it, and the rows are written `cancelled` instead, so nothing of the message can be claimed, ever. The gate is
honoured only when its licensee is the message's: a tagged commId's HMAC is per licensee, so a made-up id can be
taken for one of another licensee's once in 2^21 (sms/domain/comm_ids.py), and such a cancel must not touch it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Sequence

from ..domain import transitions
from ..domain.errors import AlreadyExists
from ..domain.jobs import GATE_MATERIALIZED, Gate, WholeJob
from ..domain.model import Message, Recipient, utcnow
from ..storage import MessageStore
from .sweep import PendingMessages

log = logging.getLogger("sms.materialize")


class NotMaterialized(Exception):
    """The rows could not be written and are not there (storage changed under the write): the queue runs the job
    again. Not a ValueError, so a poison handler never drops the job for it."""


class CommIdCollision(Exception):
    """Another message is stored under this job's commId (two tagged ids alike: 64 random bits and the time to the
    ms; see sms/domain/comm_ids.py). Detected, never repaired: the client holds the id. The job is left on its queue
    for a person."""


class Materialize:
    def __init__(self, messages: MessageStore, pending: PendingMessages, clock: Callable[[], datetime] = utcnow):
        self._store, self._pending, self._clock = messages, pending, clock

    async def queued(self, job: WholeJob) -> tuple[Message, list[Recipient]]:
        """The message and its rows as stored, with their ETags: written now from the job (every recipient
        queued), or as another write left them (found, or cancelled before they were written)."""
        return await self._materialize(job, job.recipients)

    async def failed(self, job: WholeJob, reason: str) -> tuple[Message, list[Recipient]]:
        """As `queued`, for a job the queue parked before its rows were written: every recipient failed with
        `reason` (never attempted), so nothing waits for good. Rows already there are returned as they are, for
        the caller to give up on as for a version-1 job."""
        at = self._clock()
        return await self._materialize(job, [transitions.given_up(r, reason, at, at=at) for r in job.recipients])

    async def _materialize(self, job: WholeJob, rows: Sequence[Recipient]) -> tuple[Message, list[Recipient]]:
        message = job.message
        try:
            stored = message, await self._store.add(message, rows, Gate(GATE_MATERIALIZED, message.licensee_id, message.created_at))
        except AlreadyExists:
            stored = await self._written_before(job, rows)
        # The sweeper's mark, now that there are rows for it to find (written behind: no storage call). On a
        # redelivery it writes the same mark again.
        self._pending.note(message)
        return stored

    async def _written_before(self, job: WholeJob, rows: Sequence[Recipient]) -> tuple[Message, list[Recipient]]:
        """After a 409: the rows as another write left them, or the cancelled rows after a cancel's gate."""
        message = job.message
        if (found := await self._found(job)) is not None:
            return found
        gate = await self._store.gate(message.comm_id)
        if gate is None or gate.materialized:
            # Neither the rows nor a cancel: nothing that could have refused the write is there (retention deletes
            # the gate only with the rows). Run again by the queue, which finds whichever it was.
            raise NotMaterialized(f"{message.comm_id}: its write was refused, yet neither its rows nor a cancel are there")
        if gate.cancelled_by(message.licensee_id):
            log.info("%s was cancelled before its rows were written: every recipient cancelled", message.comm_id)
            rows = [transitions.cancelled(r, at=gate.at) for r in job.recipients]
        else:
            log.warning("%s: a cancel by another licensee's key came first; not this message's, so ignored", message.comm_id)
        try:
            return message, await self._store.add(message, rows)  # the gate stays the cancel's
        except AlreadyExists:  # another worker wrote them meanwhile
            if (found := await self._found(job)) is not None:
                return found
            raise NotMaterialized(f"{message.comm_id}: its cancelled rows' write was refused, yet they are not there") from None

    async def _found(self, job: WholeJob) -> tuple[Message, list[Recipient]] | None:
        loaded = await self._store.load(job.message.comm_id)
        if loaded is None:
            return None
        stored, payload = loaded[0], job.message
        if (stored.licensee_id, stored.body, stored.created_at, stored.recipient_count) != (
                payload.licensee_id, payload.body, payload.created_at, payload.recipient_count):
            log.critical("commId %s is another message's: the job of licensee %s accepted at %s collides with the stored "
                         "message of %s; left on its queue", payload.comm_id, payload.licensee_id, payload.created_at.isoformat(),
                         stored.licensee_id)
            raise CommIdCollision(f"{payload.comm_id} is another message's")
        return loaded
