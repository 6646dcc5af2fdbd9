"""GET /api/usage over the fakes (issue 23, item 9): `segments` and `byProvider` count the recipients a
provider accepted (sent, delivered, undelivered), what providers bill; `recipients` and `byStatus` count
every recipient. Both ways a day is counted: when asked (today, the two days before until rolled up) and
by the roll-up. Issue 25: a day is the licensee's local calendar day, in the zone it has set."""
import uuid
from datetime import date, datetime, time, timedelta, timezone

import pytest

from sms.domain.local_days import LocalDays
from sms.domain.model import Contact, Message, Recipient, Status, utcnow
from sms.storage import LicenseeSettings
from sms.usecases.ledger import Ledger
from sms.usecases.usage import Usage
from tests.fakes import LICENSEE, Clock, InMemoryLedgerStore, InMemoryLicenseeSettingsStore

UTC = timezone.utc
TODAY = datetime(2026, 11, 25, tzinfo=UTC).date()
BILLED = {Status.SENT, Status.DELIVERED, Status.UNDELIVERED}
SYDNEY = "Australia/Sydney"


async def recorded(ledger: Ledger, day, statuses: list[Status], segments: int, provider: str | None = "twilio",
                   at: datetime | None = None) -> None:
    """A message of `segments` segments, created `at` (09:00 UTC on `day` by default), whose recipients
    the ledger has at these statuses."""
    created_at = at or datetime.combine(day, time(9), UTC)
    comm_id = uuid.uuid4().hex
    first = Status.SCHEDULED if Status.SCHEDULED in statuses or Status.CANCELLED in statuses else Status.QUEUED
    message = Message(comm_id=comm_id, licensee_id=LICENSEE, body="Your results are ready", sender=Contact(),
                      recipient_count=len(statuses), encoding="GSM-7", segments=segments, created_at=created_at,
                      send_at=created_at + timedelta(hours=1) if first is Status.SCHEDULED else None)
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=uuid.uuid4().hex, phone_number=f"+6141255{i:04d}",
                            status=first, created_at=created_at, updated_at=created_at) for i in range(len(statuses))]
    await ledger.record(message, [r if s is first else r.moved_to(s, at=utcnow()) for r, s in zip(recipients, statuses,
                                                                                                  strict=True)], provider)


async def in_zone(zone: str | None) -> InMemoryLicenseeSettingsStore:
    """The licensees' settings, LICENSEE's zone set (None: never set, so UTC)."""
    licensees = InMemoryLicenseeSettingsStore()
    if zone is not None:
        await licensees.put(LicenseeSettings(LICENSEE, time_zone=zone))
    return licensees


async def both_ways(store: InMemoryLedgerStore, day, licensees: InMemoryLicenseeSettingsStore | None = None,
                    first=None, last=None) -> list[list]:
    """The licensee's days from `first` to `last` (`day` alone by default) counted when asked on `day`'s
    next day, then as the roll-up saved them, read four days later."""
    licensees = licensees or InMemoryLicenseeSettingsStore()
    first, last = first or day, last or day
    clock = Clock(datetime.min.replace(tzinfo=UTC))
    usage = Usage(store, licensees, clock=clock)
    zone = LocalDays((await licensees.get(LICENSEE) or LicenseeSettings(LICENSEE)).time_zone)
    clock.at = zone.start(day + timedelta(days=1)) + timedelta(hours=1)
    calendar = await usage.calendar(LICENSEE)
    assert calendar.today == day + timedelta(days=1)
    asked = await usage.days(calendar, first, last)
    clock.at = zone.start(last + timedelta(days=2)) + timedelta(hours=1)  # every day asked for has ended
    await usage.roll_up()
    clock.at += timedelta(days=4)
    rolled_up = await usage.days(await usage.calendar(LICENSEE), first, last)
    assert all(u.counted_at is None for u in asked) and all(u.counted_at is not None for u in rolled_up)
    return [asked, rolled_up]


@pytest.mark.parametrize("status", list(Status), ids=[s.value for s in Status])
async def test_a_recipient_counts_its_segments_and_provider_only_when_a_provider_accepted_it(status):
    store = InMemoryLedgerStore()
    await recorded(Ledger(store), TODAY, [status], segments=3, provider="console")
    for [usage] in await both_ways(store, TODAY):
        assert (usage.messages, usage.recipients, usage.by_status) == (1, 1, {status.value: 1})
        if status in BILLED:
            assert (usage.segments, usage.by_provider) == (3, {"console": 1})
        else:
            assert (usage.segments, usage.by_provider) == (0, {})


async def test_a_day_of_mixed_outcomes_bills_only_what_providers_accepted():
    """The issue's case: a cancelled scheduled message counted 3 segments and a provider with nothing sent."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    await recorded(ledger, TODAY, [Status.CANCELLED] * 3, segments=1, provider="console")
    await recorded(ledger, TODAY, [Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.OPTED_OUT], segments=2)
    await recorded(ledger, TODAY, [Status.EXPIRED, Status.SENT], segments=4, provider="acs")
    await recorded(ledger, TODAY, [Status.QUEUED, Status.SENDING], segments=1)
    await recorded(ledger, TODAY, [Status.DELIVERED], segments=1, provider=None)  # no provider recorded: "unknown"
    for [usage] in await both_ways(store, TODAY):
        assert (usage.messages, usage.recipients) == (5, 13)
        assert usage.segments == 3 * 2 + 1 * 4 + 1
        assert usage.by_provider == {"twilio": 3, "acs": 1, "unknown": 1}
        assert usage.by_status == {"cancelled": 3, "sent": 2, "delivered": 2, "undelivered": 1, "failed": 1, "opted_out": 1,
                                   "expired": 1, "queued": 1, "sending": 1}


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 10, 4), 23), (date(2026, 4, 5), 25)], ids=["23 hours", "25 hours"])
async def test_a_day_is_the_licensees_local_calendar_day_whatever_its_length(day, hours):
    """Sydney's clocks go forward on 2026-10-04 and back on 2026-04-05: a message in the day's first and
    last minute counts to it, one a minute before or after to the days either side; so does the roll-up."""
    store, licensees = InMemoryLedgerStore(), await in_zone(SYDNEY)
    ledger = Ledger(store)
    start, end = LocalDays(SYDNEY).span(day)
    assert end - start == timedelta(hours=hours)
    minute = timedelta(minutes=1)
    for at, segments in ((start - minute, 1), (start, 2), (end - minute, 3), (end, 4)):  # segments tell them apart
        await recorded(ledger, None, [Status.SENT], segments=segments, at=at)
    one_day = timedelta(days=1)
    for days in await both_ways(store, day, licensees, first=day - one_day, last=day + one_day):
        assert [(u.day, u.messages, u.segments, u.time_zone) for u in days] == [
            (day - one_day, 1, 1, SYDNEY), (day, 2, 2 + 3, SYDNEY), (day + one_day, 1, 4, SYDNEY)]


async def test_today_and_the_range_asked_for_are_the_licensees_days():
    """At 14:30 UTC on 2026-11-25 it is already 01:30 on the 26th in Sydney: a message sent a minute ago
    is today's there, and one sent at 12:00 UTC (23:00 in Sydney) yesterday's, counted when asked."""
    now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    await recorded(ledger, None, [Status.SENT], segments=1, at=now - timedelta(minutes=1))
    await recorded(ledger, None, [Status.SENT], segments=2, at=datetime(2026, 11, 25, 12, tzinfo=UTC))
    sydney = Usage(store, await in_zone(SYDNEY), clock=lambda: now)
    calendar = await sydney.calendar(LICENSEE)
    assert calendar.today == date(2026, 11, 26)
    days = await sydney.days(calendar, calendar.today - timedelta(days=29), calendar.today)
    assert [(u.day, u.segments, u.time_zone, u.counted_at) for u in days] == [
        (date(2026, 11, 25), 2, SYDNEY, None), (date(2026, 11, 26), 1, SYDNEY, None)]
    utc = Usage(store, await in_zone(None), clock=lambda: now)
    calendar = await utc.calendar(LICENSEE)
    assert calendar.today == date(2026, 11, 25)
    assert [(u.day, u.segments, u.time_zone) for u in await utc.days(calendar, calendar.today, calendar.today)] == [
        (date(2026, 11, 25), 3, "UTC")]
    assert await sydney.days(await sydney.calendar(LICENSEE), date(2026, 11, 26), date(2026, 11, 26)) == days[1:]


async def test_days_rolled_up_before_a_change_of_zone_keep_the_zone_they_were_counted_in():
    """A licensee that moves from UTC to Sydney: its days rolled up in UTC stay as counted, and say so;
    the days counted since are Sydney's, and say so."""
    store, licensees = InMemoryLedgerStore(), await in_zone(None)
    ledger = Ledger(store)
    for days_ago in (10, 2, 1, 0):
        await recorded(ledger, TODAY - timedelta(days=days_ago), [Status.SENT], segments=1)  # 09:00 UTC: 20:00 in Sydney
    clock = Clock(datetime.combine(TODAY - timedelta(days=9), time(1), UTC))
    usage = Usage(store, licensees, clock=clock)
    await usage.roll_up()  # the day ten days ago, in UTC
    await licensees.put(LicenseeSettings(LICENSEE, time_zone=SYDNEY))
    clock.at = datetime.combine(TODAY, time(10), UTC)  # 21:00 in Sydney
    days = await usage.days(await usage.calendar(LICENSEE), TODAY - timedelta(days=29), TODAY)
    assert [(u.day, u.time_zone, u.counted_at is None) for u in days] == [
        (TODAY - timedelta(days=10), "UTC", False), (TODAY - timedelta(days=2), SYDNEY, True),
        (TODAY - timedelta(days=1), SYDNEY, True), (TODAY, SYDNEY, True)]
