"""The safety net: re-queue the jobs of recipients left behind (queued too long with no job in sight,
or sending past their lease). Dispatch is idempotent, so a job queued twice does no harm. It also
moves opt-outs a process of the version before wrote in the old layout during an upgrade."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ..domain.model import JOB_SIZE, SendJob, utcnow
from ..storage import JobQueue, MessageStore
from .optouts import OptOuts

log = logging.getLogger("sms.sweep")


class Sweep:
    def __init__(self, messages: MessageStore, jobs: JobQueue, opt_outs: OptOuts, sending_lease: timedelta = timedelta(minutes=5)):
        self._store, self._queue, self._sending_lease, self._opt_outs = messages, jobs, sending_lease, opt_outs

    async def run(self, queued_for: timedelta = timedelta(minutes=10)) -> list[SendJob]:
        now = utcnow()
        left = await self._store.stale_recipients(queued_before=now - queued_for, sending_before=now - self._sending_lease)
        jobs = sorted({SendJob(r.comm_id, r.seq // JOB_SIZE * JOB_SIZE, r.seq // JOB_SIZE * JOB_SIZE + JOB_SIZE - 1) for r in left},
                      key=lambda j: (j.comm_id, j.first))
        await asyncio.gather(*(self._queue.put(job) for job in jobs))
        if jobs:
            log.warning("sweeper re-queued %d job(s) for %d recipient(s) left behind", len(jobs), len(left))
        if moved := await self._opt_outs.migrate():
            log.warning("sweeper moved the opt-outs of %d number(s) written in the old layout", moved)
        return jobs
