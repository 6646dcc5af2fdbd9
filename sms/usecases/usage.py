"""Daily usage: what each licensee sent per day, added up from its ledger entries (sms/usecases/ledger.py)
by a timer's roll-up and saved, and read back by GET /api/usage and `python -m sms usage`.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from ..domain.model import BILLED, STATUS_OF_LETTER, utcnow
from ..storage import DayUsage, LedgerEntry, LedgerQuery, LedgerStore
from .ledger import MAX_TAKE, counts

# The usage roll-up counts the last few days each night: late receipts still move their statuses.
ROLL_UP_DAYS = 3


class Usage:
    def __init__(self, ledger: LedgerStore, clock: Callable[[], datetime] = utcnow):
        self._store = ledger
        self._clock = clock

    async def usage(self, licensee_id: str, first: date, last: date, today: date) -> list[DayUsage]:
        """The licensee's days from `first` to `last`, those with messages: from the nightly roll-up,
        and counted now from the entries for the days it has not rolled up yet (today and yesterday
        at most: older days are rolled up, and days with no messages have nothing to count)."""
        saved = {u.day: u for u in await self._store.usage(licensee_id, first, last)}
        recent = [today - timedelta(days=1), today]
        for day in recent:
            if first <= day <= last and (day not in saved or day == today):
                counted = await self.count_day(licensee_id, day)
                if counted.messages:
                    saved[day] = counted
        return [saved[day] for day in sorted(saved)]

    async def count_day(self, licensee_id: str, day: date) -> DayUsage:
        """Add up one of the licensee's days from its entries (a page of 200 at a time)."""
        start = datetime.combine(day, time(), timezone.utc)
        usage = DayUsage(licensee_id, day)
        query, token = LedgerQuery(licensee_id, created_from=start, created_to=start + timedelta(days=1)), None
        while True:
            entries, token = await self._store.page(query, MAX_TAKE, token)
            for entry in entries:
                usage = _counted(usage, entry)
            if token is None:
                return usage

    async def roll_up(self, today: date, days_back: int = ROLL_UP_DAYS) -> int:
        """Save the usage of every licensee-day in the last `days_back` days before today (again: late
        receipts change statuses for a day or two). How many licensee-days it saved."""
        days = await self._store.days(before=today, after=today - timedelta(days=days_back + 1))
        for day, licensee_id in days:
            await self._store.save_usage(replace(await self.count_day(licensee_id, day), counted_at=self._clock()))
        return len(days)


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
