"""Wake the jobs a licensee's quiet hours held, when those hours change.

A dispatch holds a recipient inside the quiet hours by putting its job back on the queue, hidden until
the window's end as the hours then stood. If an operator removes or shortens the window, nothing would
look at those recipients again until that old end (issue 23, item 8). So a change re-queues the jobs
of the licensee's messages that still have recipients waiting, found through the ledger: each dispatch
then decides again under the new hours (sends, or holds until the new end). A job queued twice does no
harm: dispatch sends nothing twice. The candidates come from the ledger (messages with a recipient
queued or scheduled); each candidate job's rows are read to keep only those holding a recipient for
quiet hours: one read a candidate job, for an operator's change.
"""
from __future__ import annotations

import asyncio

from ..domain.model import STATUS_LETTERS, WAITING, SendJob, Status
from ..domain.quiet import is_held
from ..storage import JobQueue, LedgerEntry, LedgerQuery, MessageStore
from .ledger import MAX_TAKE, Ledger

_WAITING_LETTERS = frozenset(STATUS_LETTERS[s] for s in WAITING)


class HeldMessages:
    def __init__(self, ledger: Ledger, messages: MessageStore, jobs: JobQueue):
        self._ledger, self._store, self._queue = ledger, messages, jobs

    async def wake(self, licensee_id: str, after_seconds: int) -> int:
        """Queue again, due in `after_seconds`, every job of the licensee's messages with a recipient held
        by quiet hours. How many jobs it queued."""
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
        """The entry's jobs with a recipient held by quiet hours, read from the rows themselves: the ledger
        does not tell a held recipient from one waiting for its provider's retry (whose own job is due
        then: waking it would call the provider early), nor from one scheduled for later."""
        due = []
        for job in SendJob.covering(entry.comm_id, entry.recipient_count):
            if not _WAITING_LETTERS.intersection(entry.statuses[job.first:job.last + 1]):
                continue
            loaded = await self._store.load(job.comm_id, job.first, job.last)
            if loaded is not None and any(r.status in WAITING and is_held(r.last_error) for r in loaded[1]):
                due.append(job)
        return due
