"""Daily usage: what each licensee sent per day, added up from its ledger entries (sms/usecases/ledger.py)
by a timer's roll-up and saved, and read back by GET /api/usage and `python -m sms usage`.

A day is the licensee's own: a calendar day of the zone it has set (`licensees set --time-zone`; UTC
until it sets one), 23 or 25 hours long when the clocks change (sms/domain/local_days.py). A day is
counted in the zone the licensee has when it is counted, and saved with it: a change of zone leaves the
days already rolled up as they were counted (each names its zone) until they are counted again.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from ..domain.local_days import LocalDays
from ..domain.model import BILLED, STATUS_OF_LETTER, utcnow
from ..storage import DayUsage, LedgerEntry, LedgerQuery, LedgerStore, LicenseeSettingsStore, NotedDay
from .ledger import MAX_TAKE, counts

# The roll-up counts a day again about daily until this many days after it ended: late receipts still
# move statuses. "About daily": an hourly timer's run a day later, whatever seconds it starts late.
ROLL_UP_DAYS = 3
RECOUNT_AFTER = timedelta(hours=23, minutes=30)
# Ledger entries a roll-up run reads at most (it starts no further day past it), so a run after a long
# outage ends well inside the Functions timeout (5 minutes by default on the Consumption plan); what is
# left waits for the next run.
ROLL_UP_BUDGET = 200_000
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
    def __init__(self, ledger: LedgerStore, licensees: LicenseeSettingsStore, clock: Callable[[], datetime] = utcnow, *,
                 retention_days: int = 90, budget: int = ROLL_UP_BUDGET):
        self._store = ledger
        self._licensees = licensees
        self._clock = clock
        self._retention_days = retention_days
        self._budget = budget

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

    async def roll_up(self) -> RollUp:
        """Count, and save, the days of every noted day that is due (see `_due`): the ones never counted
        first, oldest first (retention takes them first), then the ones counted again for late receipts.
        A run starts no further licensee-day once it has read `budget` entries; the next goes on."""
        now = self._clock()
        noted = await self._store.noted_days(before=now.date(), after=self._oldest_kept(now).date() - timedelta(days=2))
        due = sorted((n for n in noted if _due(n, now)), key=lambda n: (n.rolled_up_at is not None, n.day, n.licensee_id))
        run = _Run(now, self._budget)
        calendars: dict[str, UsageCalendar] = {}
        for i, day in enumerate(due):
            if day.licensee_id not in calendars:
                calendars[day.licensee_id] = await self.calendar(day.licensee_id)
            calendar = calendars[day.licensee_id]
            start = datetime.combine(day.day, time(), timezone.utc)
            for local in calendar.days.overlapping(start, start + timedelta(days=1)):
                if run.spent:
                    return RollUp(run.counted, len(due) - i)
                if local < calendar.today and self._recountable(calendar.days, local, now):
                    await self._recount(calendar, local, run)
            await self._store.mark_rolled_up(day, now)  # refused when the day was noted again meanwhile: counted next run
        return RollUp(run.counted, 0)

    async def _recount(self, calendar: UsageCalendar, day: date, run: "_Run") -> None:
        """Count the licensee's day again and replace its total (a day counted in this run is not counted
        twice); one found empty loses its total (counted in another zone, say)."""
        if (calendar.licensee_id, day) in run.done:
            return
        usage = await self._count(calendar.licensee_id, calendar.days, day)
        if usage.messages:
            await self._store.save_usage(replace(usage, counted_at=run.now))
        else:
            await self._store.delete_usage(calendar.licensee_id, day)
        run.done.add((calendar.licensee_id, day))
        run.read += usage.messages
        run.counted += 1

    def _oldest_kept(self, now: datetime) -> datetime:
        """Retention deletes the messages created before this instant (sms/usecases/retention.py: whole
        UTC days, SMS_RETENTION_DAYS back from today), a batch at a time."""
        return datetime.combine(now.date() - timedelta(days=self._retention_days), time(), timezone.utc)

    def _recountable(self, days: LocalDays, day: date, now: datetime) -> bool:
        """Whether the day starts a whole day after what retention may be deleting: a day it has begun on
        would be counted short, and its total replaced by less. The day more is for a run that goes on
        past midnight, when retention's cutoff moves."""
        return days.start(day) >= self._oldest_kept(now) + timedelta(days=1)


@dataclass(frozen=True)
class RollUp:
    counted: int  # licensee-days counted (and saved, or removed when found empty)
    left: int  # noted days due that the run's budget left for the next run


@dataclass
class _Run:
    now: datetime
    budget: int
    read: int = 0  # ledger entries read
    counted: int = 0
    done: set[tuple[str, date]] = field(default_factory=set)

    @property
    def spent(self) -> bool:
        return self.read >= self.budget


def _due(noted: NotedDay, now: datetime) -> bool:
    """Whether the roll-up counts the noted (UTC) day's licensee-days now: when it never has (or the day was
    noted again since), and again about daily, for late receipts, until it has counted them ROLL_UP_DAYS
    days after the UTC day ended. A local day holding any of it has ended by then too (zones are at most
    a day off UTC), counted that long after, or nearly: a local day's last hours can fall on a UTC day
    with no messages of its own."""
    if noted.rolled_up_at is None:
        return True
    settled = datetime.combine(noted.day + timedelta(days=1 + ROLL_UP_DAYS), time(), timezone.utc)
    return noted.rolled_up_at < settled and now - noted.rolled_up_at >= RECOUNT_AFTER


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
