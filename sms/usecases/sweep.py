"""The safety net: queue a job again for recipients left behind (queued or scheduled with no job coming,
or sending past their lease), so every accepted SMS ends in a final status. Dispatch is idempotent, so a
job queued twice does no harm. It also moves opt-outs a process of the version before wrote in the old
layout during an upgrade.

What it reads: not every message (a filter over the whole messages table grows with the table, and ran
every five minutes), but a time-bucketed index of the messages that may still be pending (PendingIndex,
sms/storage/pending.py). Accept notes each message there, due when something of it could first be left
behind; a sweep reads only the marks now due, loads each one's message (one partition query), queues the
jobs it needs, and moves the mark on while anything of it is still to send, or drops it.

What the index costs: no storage call at accept. Its marks are written behind, up to 100 in one
transaction per partition, once a second at most (an index partition is a time bucket and a shard, never
the message's own partition, so a mark cannot ride in the message's transaction: Azure's entity-group
transactions hold one partition). A process that stops loses what it noted in its last second: those
messages' jobs are on the queue already (Accept queues them before the commit), so only a job lost as
well (a queue cleared by hand, a poison message's give-up failing five times) would go unswept. Then, per
message: one load when it falls due, and one mark written and one deleted each time it is seen still
pending (every SWEEP_PATIENCE while it waits: a rate-limited or quiet-hours job).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Callable

from ..domain.model import JOB_SIZE, WAITING, Message, SendJob, Status, utcnow
from ..domain.transitions import stranded
from ..storage import JobQueue, MessageStore, PendingIndex, PendingMark
from .optouts import OptOuts

log = logging.getLogger("sms.sweep")

# A queued recipient is left behind once it has waited this long with no job coming.
QUEUED_FOR = timedelta(minutes=10)
# Marks one sweep takes on (the rest wait for the next, five minutes on), and messages it loads at once.
MARKS_PER_SWEEP = 2000
LOADS_AT_ONCE = 16


class PendingMessages:
    """When the sweeper should first look at a message, and again while it is pending: as soon as any of
    its recipients could be left behind (queued for QUEUED_FOR, or claimed past the sending lease)."""

    def __init__(self, index: PendingIndex, sending_lease: timedelta):
        self.index = index
        self.patience = min(QUEUED_FOR, sending_lease)

    def note(self, message: Message) -> None:
        """A message just accepted: looked at once its jobs should have run."""
        self.index.note(message.comm_id, (message.send_at or message.created_at) + self.patience)


class Sweep:
    def __init__(self, messages: MessageStore, jobs: JobQueue, pending: PendingMessages, opt_outs: OptOuts,
                 sending_lease: timedelta = timedelta(minutes=5), clock: Callable[[], datetime] = utcnow):
        self._store, self._queue, self._pending, self._opt_outs = messages, jobs, pending, opt_outs
        self._sending_lease, self._clock = sending_lease, clock

    async def run(self, queued_for: timedelta = QUEUED_FOR) -> list[SendJob]:
        """Queue the jobs of what was left behind. `queued_for`: how long a queued recipient may wait
        with no job coming; shorter than QUEUED_FOR, marks are read that much earlier too."""
        now = self._clock()
        index = self._pending.index
        await self._backfill(now)
        ahead = self._pending.patience - min(queued_for, self._pending.patience)
        marks = await index.due(now + ahead, MARKS_PER_SWEEP)
        loads = asyncio.Semaphore(LOADS_AT_ONCE)
        looked = await asyncio.gather(*(self._look(mark, now, queued_for, loads) for mark in marks))
        jobs = sorted({job for needed, _ in looked for job in needed}, key=lambda j: (j.comm_id, j.first))
        # The jobs first: a sweep stopped after them looks at the same marks again, never at none.
        await asyncio.gather(*(self._queue.put(job) for job in jobs))
        await index.moved([(mark, again) for mark, (_, again) in zip(marks, looked, strict=True) if again is not None])
        await index.done([mark for mark, (_, again) in zip(marks, looked, strict=True) if again is None])
        if jobs:
            log.warning("sweeper re-queued %d job(s) for recipients left behind", len(jobs))
        if moved := await self._opt_outs.migrate():
            log.warning("sweeper moved the opt-outs of %d number(s) written in the old layout", moved)
        return jobs

    async def _look(self, mark: PendingMark, now: datetime, queued_for: timedelta,
                    loads: asyncio.Semaphore) -> tuple[list[SendJob], datetime | None]:
        """The jobs the mark's message needs, and when to look again (None: nothing of it is pending)."""
        async with loads:
            loaded = await self._store.load(mark.comm_id)
        if loaded is None:
            return [], None  # gone (retention), or never committed: nothing to send
        message, recipients = loaded
        left = [r for r in recipients
                if stranded(r, message.send_at, queued_before=now - queued_for, sending_before=now - self._sending_lease)]
        jobs = {SendJob(message.comm_id, r.seq // JOB_SIZE * JOB_SIZE, r.seq // JOB_SIZE * JOB_SIZE + JOB_SIZE - 1) for r in left}
        if not any(r.status in WAITING or r.status is Status.SENDING for r in recipients):
            return list(jobs), None
        again = now + self._pending.patience
        if message.send_at is not None and message.send_at > now:
            again = max(again, message.send_at + self._pending.patience)
        return list(jobs), again

    async def _backfill(self, now: datetime) -> None:
        """Once: index the messages accepted before the index existed (a scan of the messages table)."""
        index = self._pending.index
        if await index.backfilled():
            return
        unfinished = await self._store.unfinished()
        for comm_id in unfinished:
            index.note(comm_id, now)
        await index.flush()
        await index.mark_backfilled()
        log.warning("sweeper indexed %d message(s) accepted before its index existed", len(unfinished))
