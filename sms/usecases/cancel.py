"""Cancel a message: every recipient still scheduled or queued ends `cancelled`; one already handed to
the provider (claimed), or past it, stays as it is. The answer says how many of each.

A cancel racing a dispatch cannot let a cancelled recipient go out: both change a recipient with an
ETag-checked write of its row (sms/usecases/job_rows.py), so whichever writes first wins and the
other, refused, reads the row again and applies its rule to what is there. A dispatch that finds a
recipient cancelled does not claim it (and leaves the rest of the job: it steps aside); a cancel that
finds it claimed leaves it.

A cancel writes a job's waiting recipients in one transaction. A dispatch running meanwhile claims
them one at a time, each claim a write that lands between the cancel's read and its write, so that
cancel can lose every race until there is nothing left to cancel (issue 23: five lost writes, then a
500). So a job that is being sent (a recipient is `sending`), or one whose dispatch started under the
cancel's first write, has each waiting recipient cancelled in a write of its own, all at once: a claim
then costs the cancel only the recipient it took. A cancel that still loses (a row that keeps changing
while it waits, or the ledger's entry: sms/usecases/ledger.py) answers 409 with Retry-After
(StillChanging), never 500; cancelling again is safe.

A message accepted in one storage call (issue 30) has no rows until the worker writes them from its job. A cancel
that finds none, for a tagged commId minted for this licensee (sms/domain/comm_ids.py), inserts the message's gate
row `cancelled` (MessageStore.close_gate). The worker's write of the rows inserts the same row, in one transaction
with them, so exactly one of the two inserts lands: the cancel's, and the worker writes every recipient cancelled
(none was ever claimable); or the worker's, and the cancel goes on as above over the rows. Spend room reserved at
accept is not given back, as for any cancel. The message's ledger entry then appears when the worker writes the
rows, not with the cancel.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Sequence

from ..domain.comm_ids import CommIdKeys, recognised_by
from ..domain.errors import AlreadyExists, NotFound, RecordChanged, StillChanging
from ..domain.model import JOB_SIZE, WAITING, Message, Recipient, Status, utcnow
from ..storage import MessageStore
from .job_rows import JobRows
from .ledger import Ledger

log = logging.getLogger("sms.cancel")


@dataclass(frozen=True)
class CancelResult:
    comm_id: str
    cancelled: int  # by this request
    unaffected: dict[str, int] = field(default_factory=dict)  # the others, by the status they are in


class Cancel:
    def __init__(self, messages: MessageStore, ledger: Ledger, sending_lease: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] = utcnow, comm_ids: CommIdKeys | None = None):
        self._messages, self._ledger, self._lease, self._clock = messages, ledger, sending_lease, clock
        self._comm_ids = comm_ids

    async def cancel(self, licensee_id: str, comm_id: str) -> CancelResult:
        """NotFound, worded as for a missing one, for another licensee's message; StillChanging when its
        writes kept losing races (see above)."""
        message = await self._messages.message(comm_id)
        if message is None:
            unwritten = await self._before_rows(licensee_id, comm_id)
            if isinstance(unwritten, CancelResult):
                return unwritten
            message = unwritten
        if message is None or message.licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        cancelled, unaffected = 0, {}
        try:
            for first in range(0, message.recipient_count, JOB_SIZE):
                last = min(first + JOB_SIZE, message.recipient_count) - 1
                done = await self._cancel_job(comm_id, first, last)
                if done is None:
                    continue
                rows, mine = done
                cancelled += len(mine)
                for r in rows:
                    if r.seq not in mine:
                        unaffected[r.status.value] = unaffected.get(r.status.value, 0) + 1
                await self._ledger.record(message, rows)
        except RecordChanged as lost:
            log.warning("cancel of %s gave up: %s", comm_id, lost)
            raise StillChanging(f"Message {comm_id} kept changing while it was being cancelled (it is being sent now): "
                                "cancel it again") from None
        log.info("message %s cancelled for %d recipient(s); %d unaffected", comm_id, cancelled, sum(unaffected.values()))
        return CancelResult(comm_id, cancelled, unaffected)

    async def _before_rows(self, licensee_id: str, comm_id: str) -> CancelResult | Message | None:
        """A message with no rows: cancelled by its gate when its id is this licensee's tagged one (the answer), or
        the message the worker wrote meanwhile (for the cancel to go on over its rows); None for any other id."""
        tagged = recognised_by(self._comm_ids, comm_id, licensee_id, self._clock())
        if tagged is None:
            return None
        try:
            await self._messages.close_gate(comm_id, licensee_id, self._clock())
        except AlreadyExists:
            gate = await self._messages.gate(comm_id)
            if gate is not None and gate.cancelled_by(licensee_id):
                # An earlier cancel's: cancelling again cancels nothing more (every recipient is or will be cancelled).
                return CancelResult(comm_id, 0, {Status.CANCELLED.value: tagged.recipient_count})
            message = await self._messages.message(comm_id)  # the worker's write of the rows came first
            if message is None:
                # Another licensee's gate (a made-up id that passed for theirs, sms/domain/comm_ids.py): the worker
                # ignores it and writes the rows queued; cancel them then.
                raise StillChanging(f"Message {comm_id} is being written now: cancel it again") from None
            return message
        log.info("message %s cancelled before its rows were written: %d recipient(s)", comm_id, tagged.recipient_count)
        return CancelResult(comm_id, tagged.recipient_count)

    async def _cancel_job(self, comm_id: str, first: int, last: int) -> tuple[list[Recipient], set[int]] | None:
        """Cancel what waits among one job's recipients: the job's rows as they now stand, and the seqs
        this cancel cancelled. None when the rows are not there."""
        loaded = await self._messages.load(comm_id, first, last)
        if loaded is not None and not any(r.status is Status.SENDING for r in loaded[1]):
            together = self._cancelling(comm_id, loaded[1], first, last, [r.seq for r in loaded[1] if _cancellable(r)])
            try:
                await together.flush()
                return together.current(), _cancelled_by(together)
            except RecordChanged:  # a dispatch started meanwhile
                loaded = await self._messages.load(comm_id, first, last)
        return await self._one_by_one(comm_id, loaded[1], first, last) if loaded is not None else None

    async def _one_by_one(self, comm_id: str, recipients: Sequence[Recipient], first: int, last: int) -> tuple[list[Recipient], set[int]]:
        """A job being sent (a recipient is with the provider): each waiting recipient cancelled in a
        write of its own, all at once, so that a claim costs the cancel only the recipient it took."""
        rows = {r.seq: r for r in recipients}
        each = {seq: self._cancelling(comm_id, recipients, first, last, [seq]) for seq, r in rows.items() if _cancellable(r)}
        failures = [f for f in await asyncio.gather(*(one.flush() for one in each.values()), return_exceptions=True) if f is not None]
        if failures:
            raise failures[0]
        mine: set[int] = set()
        for seq, one in each.items():
            rows[seq] = next(r for r in one.current() if r.seq == seq)
            mine |= _cancelled_by(one)
        return [rows[seq] for seq in sorted(rows)], mine

    def _cancelling(self, comm_id: str, recipients: Sequence[Recipient], first: int, last: int, seqs: list[int]) -> JobRows:
        rows = JobRows(self._messages, comm_id, recipients, first, last, self._lease, self._clock)
        for seq in seqs:
            rows.cancel(seq)
        return rows


def _cancellable(row: Recipient) -> bool:
    """Waiting (it is cancelled), or claimed and not yet marked (it is marked: transitions.cancelled)."""
    return row.status in WAITING or (row.status is Status.SENDING and not row.cancel_requested)


def _cancelled_by(rows: JobRows) -> set[int]:
    return {r.seq for r in rows.settled() if r.status is Status.CANCELLED}
