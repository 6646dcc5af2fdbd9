"""Daily usage: what each licensee sent per day, added up from its ledger entries (sms/usecases/ledger.py)
by an hourly roll-up and saved, read back by GET /api/usage and `python -m sms usage`, and counted again
on an operator's word by `python -m sms usage rebuild`.

A day is the licensee's own: a calendar day of the zone it has set (`licensees set --time-zone`; UTC
until it sets one), 23 or 25 hours long when the clocks change (sms/domain/local_days.py). A day is
counted in the zone the licensee has when it is counted, and saved with it: a change of zone leaves the
days already rolled up as they were counted (each names its zone) until they are counted again.

The roll-up finds its work in the UTC days the ledger notes for each licensee with messages, each
remembering when the roll-up last counted it (sms/storage/ledger.py): never, or counted about daily
for a few days for late receipts, is due. So a run after the timer was down finds every day it missed,
back to retention, and no day needs a scan to be found.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from typing import Callable

from ..domain.errors import FieldError, ValidationFailed
from ..domain.local_days import LocalDays
from ..domain.model import BILLED, STATUS_OF_LETTER, utcnow
from ..storage import DayUsage, LedgerEntry, LedgerQuery, LedgerStore, LicenseeSettingsStore, NotedDay
from .ledger import MAX_TAKE, billed_by_provider, counts

# The roll-up counts a day again about daily until this many days after it ended: late receipts still
# move statuses. "About daily": an hourly timer's run a day later, whatever seconds it starts late.
ROLL_UP_DAYS = 3
RECOUNT_AFTER = timedelta(hours=23, minutes=30)
# Ledger entries a roll-up run reads at most (it starts no further day past it), so a run after a long
# outage ends well inside the Functions timeout (5 minutes by default on the Consumption plan); what is
# left waits for the next run.
ROLL_UP_BUDGET = 200_000
# The days counted when asked, today included, while the roll-up has not saved them: it saves a day at
# its first run after the UTC day holding the day's last hour has ended, up to a day and a quarter of an
# hour after the day itself, when the licensee's today can be the day after next (sooner after a
# 23-hour day).
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
            for local in _local_days(calendar.days, day.day):
                if run.spent:
                    return RollUp(run.counted, len(due) - i)
                if local < calendar.today and local >= self._first_recountable(calendar.days, now):
                    await self._recount(calendar, local, run)
            await self._store.mark_rolled_up(day, now)  # refused when the day was noted again meanwhile: counted next run
        return RollUp(run.counted, 0)

    async def rebuild(self, first: date, last: date, licensee_id: str | None = None) -> list[Rebuilt]:
        """`usage rebuild`: count the licensee's days from `first` to `last` again (every licensee's with
        messages in them, without one), in its zone of now, and replace their totals: days with messages
        get new ones, days without lose theirs. The days that have not ended in a licensee's zone are left
        to the roll-up. ValidationFailed for a range that cannot be recounted, saying why."""
        now = self._clock()
        self._check_range(first, last, (await self.calendar(licensee_id)).days if licensee_id else None, now)
        # The UTC days that can hold a licensee's days from first to last, in any zone (a day or so off UTC).
        noted = await self._store.noted_days(before=last + timedelta(days=2), after=first - timedelta(days=2))
        licensees = [licensee_id] if licensee_id else sorted({n.licensee_id for n in noted})
        rebuilt, run = [], _Run(now, budget=sys.maxsize)
        for licensee in licensees:
            calendar = await self.calendar(licensee)
            mine = [n for n in noted if n.licensee_id == licensee]
            touched = {n: [d for d in _local_days(calendar.days, n.day) if first <= d <= last] for n in mine}
            saved = {u.day for u in await self._store.usage(licensee, first, last)}
            days = sorted(saved.union(*touched.values()))
            not_ended = [d for d in days if d >= calendar.today]
            counted = [await self._recount(calendar, d, run) for d in days if d < calendar.today]
            for n in mine:  # the noted days whose every local day this counted: nothing left for the roll-up
                if len(touched[n]) == len(_local_days(calendar.days, n.day)) and all(d < calendar.today for d in touched[n]):
                    await self._store.mark_rolled_up(n, now)
            rebuilt.append(Rebuilt(licensee, calendar.days.zone, saved=sum(1 for u in counted if u.messages),
                                   removed=sum(1 for u in counted if not u.messages and u.day in saved), not_ended=not_ended))
        return rebuilt

    async def _recount(self, calendar: UsageCalendar, day: date, run: "_Run") -> DayUsage:
        """Count the licensee's day again and replace its total (a day counted in this run is not counted
        twice); one found empty loses its total (counted in another zone, say)."""
        usage = run.done.get((calendar.licensee_id, day))
        if usage is not None:
            return usage
        usage = replace(await self._count(calendar.licensee_id, calendar.days, day), counted_at=run.now)
        if usage.messages:
            await self._store.save_usage(usage)
        else:
            await self._store.delete_usage(calendar.licensee_id, day)
        run.done[calendar.licensee_id, day] = usage
        run.read += usage.messages
        run.counted += 1
        return usage

    def _check_range(self, first: date, last: date, days: LocalDays | None, now: datetime) -> None:
        """ValidationFailed naming `from` or `to` for days a rebuild cannot count again: in the licensee's
        zone (`days`), or for every licensee, in any zone."""
        if last < first:
            raise ValidationFailed([FieldError("to", "InvalidValue", "to: must not be before from")])
        if (last - first).days + 1 > MAX_REBUILD_DAYS:
            raise ValidationFailed([FieldError("to", "InvalidValue", f"to: at most {MAX_REBUILD_DAYS} days from from")])
        errors = []
        oldest = self._first_recountable(days or _ahead(), now)
        if first < oldest:
            kept = self._oldest_kept(now)
            errors.append(FieldError("from", "InvalidValue", (
                f"from: {first.isoformat()} is past retention: messages created before {kept:%Y-%m-%d %H:%M} UTC "
                f"(SMS_RETENTION_DAYS, {self._retention_days} days) are being deleted, so no day before {oldest.isoformat()} "
                f"can be recounted {f'in {days.zone}' if days else 'in every zone'}")))
        if days is not None and last >= days.day_of(now):
            errors.append(FieldError("to", "InvalidValue", f"to: {last.isoformat()} has not ended in {days.zone}: it is counted "
                                                           "when asked, and rolled up once it has"))
        elif days is None and last >= _ahead().day_of(now):
            errors.append(FieldError("to", "InvalidValue", f"to: {last.isoformat()} has not ended in any zone"))
        if errors:
            raise ValidationFailed(errors)

    def _oldest_kept(self, now: datetime) -> datetime:
        """Retention deletes the messages created before this instant (sms/usecases/retention.py: whole
        UTC days, SMS_RETENTION_DAYS back from today), a batch at a time."""
        return datetime.combine(now.date() - timedelta(days=self._retention_days), time(), timezone.utc)

    def _first_recountable(self, days: LocalDays, now: datetime) -> date:
        """The first of these days that starts a whole day after what retention may be deleting: a day it
        has begun on would be counted short, and its total replaced by less. The day more is for a count
        that goes on past midnight, when retention's cutoff moves."""
        safe = self._oldest_kept(now) + timedelta(days=1)
        day = days.day_of(safe)
        return day if days.start(day) >= safe else day + timedelta(days=1)


@dataclass(frozen=True)
class RollUp:
    counted: int  # licensee-days counted (and saved, or removed when found empty)
    left: int  # noted days due that the run's budget left for the next run


@dataclass(frozen=True)
class Rebuilt:
    licensee_id: str
    zone: str  # the zone its days were counted in: its own, now
    saved: int  # days with messages, their totals replaced
    removed: int  # days that had a total and now have no messages (in this zone)
    not_ended: list[date]  # days of the range not over yet in its zone: left to the roll-up


@dataclass
class _Run:
    now: datetime
    budget: int
    read: int = 0  # ledger entries read
    counted: int = 0
    done: dict[tuple[str, date], DayUsage] = field(default_factory=dict)  # what this run counted, by licensee and day

    @property
    def spent(self) -> bool:
        return self.read >= self.budget


# At most this many days a rebuild: a bound on one command's work (retention is usually shorter).
MAX_REBUILD_DAYS = 400


@cache
def _ahead() -> LocalDays:
    """The zone furthest ahead of UTC (UTC+14, Kiribati's Line Islands): its days begin before every other
    zone's of the same date, so its today is the last day that may have ended anywhere, and its oldest day
    retention leaves whole is the latest of any zone's. Made on first use: checking a zone name reads the
    zone database, and importing the app must do no I/O."""
    return LocalDays("Etc/GMT-14")


def _local_days(days: LocalDays, utc_day: date) -> list[date]:
    """The local days holding any instant of the UTC day."""
    start = datetime.combine(utc_day, time(), timezone.utc)
    return days.overlapping(start, start + timedelta(days=1))


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
    for provider, n in billed_by_provider(entry).items():  # by the provider that sent each recipient
        by_provider[provider] = by_provider.get(provider, 0) + n
    return replace(usage, messages=usage.messages + 1, recipients=usage.recipients + entry.recipient_count,
                   segments=usage.segments + entry.segments * billed, by_status=by_status, by_provider=by_provider)
