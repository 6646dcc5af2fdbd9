"""Timer triggers run on their NCRONTAB schedules, as the host runs them."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone

from azure.functions.timer import TimerRequest

from .. import ncrontab
from .app import TimerTrigger, invoke

log = logging.getLogger("sms.devhost")


class TimerRunner:
    """Runs one timer-triggered function on its NCRONTAB schedule, as the host does."""

    def __init__(self, trigger: TimerTrigger):
        self.trigger = trigger
        self._schedule = ncrontab.parse(trigger.schedule)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        if self.trigger.run_on_startup:
            await self._fire(past_due=False)
        while not self._stopping.is_set():
            now = datetime.now(timezone.utc)
            due = ncrontab.next_after(self._schedule, now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), (due - now).total_seconds())
            if not self._stopping.is_set():
                await self._fire(past_due=False)

    def stop(self) -> None:
        self._stopping.set()

    async def _fire(self, past_due: bool) -> None:
        try:
            await invoke(self.trigger.function, self.trigger.arg_name, TimerRequest(past_due=past_due))
        except Exception:
            log.exception("timer function %s failed", self.trigger.name)
