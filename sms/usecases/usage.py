"""Daily usage: what each licensee sent per day, added up from its ledger entries (sms/usecases/ledger.py)
by a timer's roll-up and saved, and read back by GET /api/usage and `python -m sms usage`.

A day is the licensee's own: a calendar day of the zone it has set (`licensees set --time-zone`; UTC
until it sets one), 23 or 25 hours long when the clocks change (sms/domain/local_days.py). A day is
counted in the zone the licensee has when it is counted, and saved with it: a change of zone leaves the
days already rolled up as they were counted (each names its zone) until they are counted again.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from ..domain.local_days import LocalDays
from ..domain.model import BILLED, STATUS_OF_LETTER, utcnow
from ..storage import DayUsage, LedgerEntry, LedgerQuery, LedgerStore, LicenseeSettingsStore
from .ledger import MAX_TAKE, counts

# The roll-up counts the last few days again each night: late receipts still move their statuses.
ROLL_UP_DAYS = 3
# The days counted when asked, today included, while the roll-up has not saved them: it saves a day the
# night after it ends, by UTC's clock, so a licensee's day ended after the last run can be the one
# before yesterday (a 23-hour day's).
COUNTED_WHEN_ASKED = 3


@dataclass(frozen=True)
class UsageCalendar:
    """A licensee's days as its usage is counted now: its zone's, and which of them is today."""

    licensee_id: str
    days: LocalDays
    today: date


class Usage:
    def __init__(self, ledger: LedgerStore, licensees: LicenseeSettingsStore, clock: Callable[[], datetime] = utcnow):
        self._store = ledger
        self._licensees = licensees
        self._clock = clock

    async def calendar(self, licensee_id: str) -> UsageCalendar:
        settings = await self._licensees.get(licensee_id)
        days = LocalDays(settings.time_zone if settings else "UTC")
        return UsageCalendar(licensee_id, days, days.day_of(self._clock()))

    async def days(self, calendar: UsageCalendar, first: date, last: date) -> list[DayUsage]:
        """The licensee's days from `first` to `last`, those with messages: as the roll-up saved them, and
        counted now from the entries for today and the days before it the roll-up has not saved yet
        (older days are rolled up, and days with no messages have nothing to count)."""
        saved = {u.day: u for u in await self._store.usage(calendar.licensee_id, first, last)}
        for back in range(COUNTED_WHEN_ASKED):
            day = calendar.today - timedelta(days=back)
            if first <= day <= last and (day not in saved or day == calendar.today):
                counted = await self._count(calendar.licensee_id, calendar.days, day)
                if counted.messages:
                    saved[day] = counted
        return [saved[day] for day in sorted(saved)]

    async def _count(self, licensee_id: str, days: LocalDays, day: date) -> DayUsage:
        """Add up one of the licensee's days from its entries (a page of 200 at a time)."""
        start, end = days.span(day)
        usage = DayUsage(licensee_id, day, time_zone=days.zone)
        query, token = LedgerQuery(licensee_id, created_from=start, created_to=end), None
        while True:
            entries, token = await self._store.page(query, MAX_TAKE, token)
            for entry in entries:
                usage = _counted(usage, entry)
            if token is None:
                return usage

    async def roll_up(self) -> int:
        """Save the usage of every licensee's days that have ended and have messages created in the last
        ROLL_UP_DAYS UTC days before today (again: late receipts change statuses for a day or two). How
        many licensee-days it saved."""
        now = self._clock()
        noted = await self._store.days(before=now.date(), after=now.date() - timedelta(days=ROLL_UP_DAYS + 1))
        utc_days: dict[str, list[date]] = defaultdict(list)
        for day, licensee_id in noted:
            utc_days[licensee_id].append(day)
        saved = 0
        for licensee_id, touched in utc_days.items():
            calendar = await self.calendar(licensee_id)
            for day in _local_days(calendar, touched):
                usage = await self._count(licensee_id, calendar.days, day)
                if usage.messages:
                    await self._store.save_usage(replace(usage, counted_at=now))
                    saved += 1
        return saved


def _local_days(calendar: UsageCalendar, utc_days: list[date]) -> list[date]:
    """The licensee's days that hold any instant of these UTC days and have ended, in order."""
    found: set[date] = set()
    for day in utc_days:
        start = datetime.combine(day, time(), timezone.utc)
        found.update(d for d in calendar.days.overlapping(start, start + timedelta(days=1)) if d < calendar.today)
    return sorted(found)


def _counted(usage: DayUsage, entry: LedgerEntry) -> DayUsage:
    """`usage` with the entry added: every recipient in `recipients` and `by_status`; segments and
    `by_provider` only for the recipients a provider accepted (BILLED), what providers bill. Both the
    roll-up and the days counted when asked add up their entries here."""
    by_status, by_provider = dict(usage.by_status), dict(usage.by_provider)
    for status, n in counts(entry).items():
        by_status[status] = by_status.get(status, 0) + n
    billed = sum(1 for letter in entry.statuses if STATUS_OF_LETTER[letter] in BILLED)
    if billed:
        provider = entry.provider or "unknown"
        by_provider[provider] = by_provider.get(provider, 0) + billed
    return replace(usage, messages=usage.messages + 1, recipients=usage.recipients + entry.recipient_count,
                   segments=usage.segments + entry.segments * billed, by_status=by_status, by_provider=by_provider)
