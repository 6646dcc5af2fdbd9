"""A licensee's spend caps (issue 27), as pure rules: which day and month of its own time zone an instant
counts in, whether a request fits the room its caps leave, and which warning thresholds it crosses.

The caps are `Guard.caps` (sms/domain/guard.py): daily and monthly, in segments and in estimated cost
(millionths of the price table's currency). A day is a calendar day of the licensee's zone, read as its
usage reads it (sms/domain/local_days.py); a month runs from the first local midnight of the month to the
next month's. What is used is counted per period (sms/usecases/spend.py keeps the counters): a request
goes when, for every cap set, what is used plus what it needs is at most the cap; exactly at the cap goes.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .errors import TooManyRequests
from .guard import Caps, money_text
from .local_days import LocalDays

THRESHOLDS = (50, 80, 100)  # percent of a cap: each crossing is told once (usage.threshold)


class Cap(enum.Enum):
    """The four caps: (the Caps field, its period, what it counts, its name in errors and events)."""

    DAILY_SEGMENTS = ("daily_segments", "day", "segments", "DailySegmentCap", "dailySegments")
    DAILY_COST = ("daily_cost", "day", "cost", "DailyCostCap", "dailyCost")
    MONTHLY_SEGMENTS = ("monthly_segments", "month", "segments", "MonthlySegmentCap", "monthlySegments")
    MONTHLY_COST = ("monthly_cost", "month", "cost", "MonthlyCostCap", "monthlyCost")

    def __init__(self, field: str, period: str, counts: str, error_code: str, wire: str):
        self.field, self.period, self.counts, self.error_code, self.wire = field, period, counts, error_code, wire

    def limit(self, caps: Caps) -> int | None:
        return getattr(caps, self.field)

    @property
    def words(self) -> str:
        return f"{'Daily' if self.period == 'day' else 'Monthly'} {'segment' if self.counts == 'segments' else 'cost'} cap"

    def amount(self, value: int, currency: str | None = None) -> str:
        """A figure of this cap as said to people: segments as a count, cost as money."""
        if self.counts == "segments":
            return str(value)
        return f"{money_text(value)}{f' {currency}' if currency else ''}"


@dataclass(frozen=True)
class Period:
    """One day or month of the licensee's zone: its counter's key and when it ends (the cap resets)."""

    key: str  # "day-YYYYMMDD" or "month-YYYYMM": the counter row's RowKey
    name: str  # "2026-12-07" or "2026-12"
    resets_at: datetime  # the next period's first instant, in the licensee's zone


def periods(zone: str, now: datetime) -> tuple[Period, Period]:
    """The day and the month of the licensee's zone that `now` is in."""
    days = LocalDays(zone)
    day = days.day_of(now)
    next_month = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    info = ZoneInfo(days.zone)
    return (Period(f"day-{day:%Y%m%d}", day.isoformat(), days.start(day + timedelta(days=1)).astimezone(info)),
            Period(f"month-{day:%Y%m}", f"{day:%Y-%m}", days.start(next_month).astimezone(info)))


@dataclass(frozen=True)
class Used:
    """What a period's counter holds: segments and cost (millionths) reserved in it."""

    segments: int = 0
    cost: int = 0

    def of(self, cap: Cap) -> int:
        return self.segments if cap.counts == "segments" else self.cost

    def plus(self, segments: int, cost: int) -> "Used":
        """Added to (a give-back adds negatives), never below nothing."""
        return Used(max(0, self.segments + segments), max(0, self.cost + cost))


class CapReached(TooManyRequests):
    """A request that would take a licensee past one of its caps: nothing is stored. 429, Retry-After the
    seconds until the cap resets, errorCode the cap (DailySegmentCap, MonthlyCostCap, ...)."""

    def __init__(self, cap: Cap, limit: int, used: int, needs: int, resets_at: datetime, now: datetime,
                 currency: str | None = None):
        message = (f"{cap.words} of {cap.amount(limit, currency)} reached: {cap.amount(used, currency)} used, this request "
                   f"needs {cap.amount(needs, currency)}; it resets at {resets_at.isoformat(timespec='seconds')}")
        super().__init__(message, max(1, math.ceil((resets_at - now).total_seconds())))
        self.error_code = cap.error_code
        self.cap, self.limit, self.used, self.needs, self.resets_at = cap, limit, used, needs, resets_at


def refusal(caps: Caps, day: Used, month: Used, segments: int, cost: int, resets: tuple[datetime, datetime],
            now: datetime, currency: str | None = None) -> CapReached | None:
    """Why a request needing `segments` and `cost` does not fit (None: it fits). When it is over several
    caps, the one that resets last is named (retrying at an earlier reset would only be refused again), the
    monthly one when a month and its last day end together."""
    over = []
    for cap in Cap:
        limit = cap.limit(caps)
        used = day if cap.period == "day" else month
        needs = segments if cap.counts == "segments" else cost
        if limit is not None and needs > 0 and used.of(cap) + needs > limit:
            over.append(CapReached(cap, limit, used.of(cap), needs, resets[0] if cap.period == "day" else resets[1], now, currency))
    return max(over, key=lambda e: (e.resets_at, e.cap.period == "month")) if over else None


@dataclass(frozen=True)
class Crossing:
    """A cap's threshold crossed by one reservation: what the usage.threshold event tells."""

    cap: Cap
    percent: int
    limit: int
    used: int
    period: Period


def crossings(caps: Caps, before: tuple[Used, Used], after: tuple[Used, Used], day: Period, month: Period) -> list[Crossing]:
    """The thresholds (50, 80, 100 % of each cap set) that going from `before` to `after` crossed. Writes to
    a counter take turns (its ETag), so each crossing belongs to exactly the one write that made it. (A
    give-back that takes usage back under a threshold lets the next crossing of it be told again.)"""
    found = []
    for cap in Cap:
        limit = cap.limit(caps)
        if not limit:
            continue
        i = 0 if cap.period == "day" else 1
        was, now = before[i].of(cap), after[i].of(cap)
        for percent in THRESHOLDS:
            if was * 100 < percent * limit <= now * 100:
                found.append(Crossing(cap, percent, limit, now, day if i == 0 else month))
    return found
