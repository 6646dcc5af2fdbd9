"""A licensee's days: the calendar days of its own time zone (`licensees set --time-zone`), which its
usage is counted by. A day runs from one local midnight to the next, so the days the clocks change are
23 and 25 hours long (23.5 and 24.5 where they move half an hour). Where a zone's clocks jump over
midnight itself (America/Santiago's do), the day starts at the first instant it has: the local wall
time read with the offset from before the jump (`fold=0`) lands exactly on the jump. Every instant is
in exactly one day, and each day ends where the next begins.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from .quiet import checked_zone


@dataclass(frozen=True)
class LocalDays:
    zone: str  # an IANA name: ValueError naming it when it is not one
    _info: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_info", ZoneInfo(checked_zone(self.zone)))

    def start(self, day: date) -> datetime:
        """The instant (UTC) the day begins."""
        return datetime.combine(day, time(), self._info).astimezone(timezone.utc)

    def span(self, day: date) -> tuple[datetime, datetime]:
        """The day's instants, UTC: from its start (included) to the next day's (excluded)."""
        return self.start(day), self.start(day + timedelta(days=1))

    def day_of(self, instant: datetime) -> date:
        return instant.astimezone(self._info).date()

    def overlapping(self, start: datetime, end: datetime) -> list[date]:
        """The days holding any instant from `start` (included) to `end` (excluded), in order."""
        days, day = [], self.day_of(start)
        while start < end and self.start(day) < end:
            days.append(day)
            day += timedelta(days=1)
        return days
