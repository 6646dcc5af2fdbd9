"""Wake the jobs a licensee's quiet hours held, when those hours change.

A dispatch holds a recipient inside the quiet hours by putting its job back on the queue, hidden until
the window's end as the hours then stood. If an operator removes or shortens the window, nothing would
look at those recipients again until that old end (issue 23, item 8). So a change re-queues the jobs
of the licensee's messages that still have recipients waiting, found through the ledger: each dispatch
then decides again under the new hours (sends, or holds until the new end). A job queued twice does no
harm: dispatch sends nothing twice.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Callable

from ..model import STATUS_LETTERS, WAITING, SendJob, Status, utcnow
from ..storage import JobQueue, LedgerEntry, LedgerQuery, MessageStore
from .ledger import MAX_TAKE, Ledger

_WAITING_LETTERS = frozenset(STATUS_LETTERS[s] for s in WAITING)


class HeldMessages:
    def __init__(self, ledger: Ledger, messages: MessageStore, jobs: JobQueue, clock: Callable[[], datetime] = utcnow):
        self._ledger, self._store, self._queue, self._clock = ledger, messages, jobs, clock

    async def wake(self, licensee_id: str, after_seconds: int) -> int:
        """Queue again, due in `after_seconds`, every job of the licensee's messages with recipients still
        waiting (queued, or scheduled for a time that has come). How many jobs it queued."""
        jobs: dict[tuple[str, int], SendJob] = {}
        for status in (Status.QUEUED, Status.SCHEDULED):
            token = None
            while True:
                entries, token = await self._ledger.page(LedgerQuery(licensee_id, status=status.value), MAX_TAKE, token)
                for entry in entries:
                    for job in await self._due(entry):
                        jobs[(job.comm_id, job.first)] = job
                if token is None:
                    break
        await asyncio.gather(*(self._queue.put(job, delay_seconds=after_seconds) for job in jobs.values()))
        return len(jobs)

    async def _due(self, entry: LedgerEntry) -> list[SendJob]:
        """The entry's jobs that cover a waiting recipient. A recipient still `scheduled` is held only once
        its message's sendAt has come; before it, its own job is on the queue for that time."""
        waiting = [job for job in SendJob.covering(entry.comm_id, entry.recipient_count)
                   if _WAITING_LETTERS.intersection(entry.statuses[job.first:job.last + 1])]
        if waiting and STATUS_LETTERS[Status.QUEUED] not in entry.statuses:
            message = await self._store.message(entry.comm_id)
            if message is None or (message.send_at is not None and message.send_at > self._clock()):
                return []
        return waiting
