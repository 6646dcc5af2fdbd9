"""Cancel a message: every recipient still scheduled or queued ends `cancelled`; one already handed to
the provider (claimed), or past it, stays as it is. The answer says how many of each.

A cancel racing a dispatch cannot let a cancelled recipient go out: both change a recipient with an
ETag-checked write of its row (sms/usecases/job_rows.py), so whichever writes first wins and the
other, refused, reads the row again and applies its rule to what is there. A dispatch that finds a
recipient cancelled does not claim it; a cancel that finds it claimed leaves it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from ..errors import NotFound
from ..model import JOB_SIZE, WAITING, Status
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
    def __init__(self, messages: MessageStore, ledger: Ledger | None = None, sending_lease: timedelta = timedelta(minutes=5)):
        self._messages, self._ledger, self._lease = messages, ledger, sending_lease

    async def cancel(self, licensee_id: str, comm_id: str) -> CancelResult:
        """NotFound, worded as for a missing one, for another licensee's message."""
        message = await self._messages.message(comm_id)
        if message is None or message.licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        cancelled, unaffected = 0, {}
        for first in range(0, message.recipient_count, JOB_SIZE):
            last = min(first + JOB_SIZE, message.recipient_count) - 1
            loaded = await self._messages.load(comm_id, first, last)
            if loaded is None:
                continue
            rows = JobRows(self._messages, comm_id, loaded[1], first, last, self._lease)
            for r in loaded[1]:
                if r.status in WAITING:
                    rows.cancel(r.seq)
            await rows.flush()
            mine = {r.seq for r in rows.settled() if r.status is Status.CANCELLED}
            cancelled += len(mine)
            for r in rows.current():
                if r.seq not in mine:
                    unaffected[r.status.value] = unaffected.get(r.status.value, 0) + 1
            if self._ledger is not None:
                await self._ledger.record(message, rows.current())
        log.info("message %s cancelled for %d recipient(s); %d unaffected", comm_id, cancelled, sum(unaffected.values()))
        return CancelResult(comm_id, cancelled, unaffected)
