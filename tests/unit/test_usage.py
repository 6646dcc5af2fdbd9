"""GET /api/usage over the fakes (issue 23, item 9): `segments` and `byProvider` count the recipients a
provider accepted (sent, delivered, undelivered), what providers bill; `recipients` and `byStatus` count
every recipient. Both ways a day is counted: when asked (today, the two days before until rolled up) and
by the roll-up. Issue 25: a day is the licensee's local calendar day, in the zone it has set."""
import uuid
from datetime import date, datetime, time, timedelta, timezone

import pytest

from sms.domain.errors import ValidationFailed
from sms.domain.local_days import LocalDays
from sms.domain.model import Contact, Message, Recipient, Status, utcnow
from sms.storage import DayUsage, LicenseeSettings
from sms.usecases.ledger import Ledger
from sms.usecases.usage import Usage
from tests.fakes import LICENSEE, OTHER, Clock, InMemoryLedgerStore, InMemoryLicenseeSettingsStore

UTC = timezone.utc
TODAY = datetime(2026, 11, 25, tzinfo=UTC).date()
BILLED = {Status.SENT, Status.DELIVERED, Status.UNDELIVERED}
SYDNEY = "Australia/Sydney"


async def recorded(ledger: Ledger, day, statuses: list[Status], segments: int, provider: str | None = "twilio",
                   at: datetime | None = None, licensee: str = LICENSEE) -> tuple[Message, list[Recipient]]:
    """A message of `segments` segments, created `at` (09:00 UTC on `day` by default), whose recipients
    the ledger has at these statuses; and those recipients."""
    created_at = at or datetime.combine(day, time(9), UTC)
    comm_id = uuid.uuid4().hex
    first = Status.SCHEDULED if Status.SCHEDULED in statuses or Status.CANCELLED in statuses else Status.QUEUED
    message = Message(comm_id=comm_id, licensee_id=licensee, body="Your results are ready", sender=Contact(),
                      recipient_count=len(statuses), encoding="GSM-7", segments=segments, created_at=created_at,
                      send_at=created_at + timedelta(hours=1) if first is Status.SCHEDULED else None)
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=uuid.uuid4().hex, phone_number=f"+6141255{i:04d}",
                            status=first, created_at=created_at, updated_at=created_at) for i in range(len(statuses))]
    recipients = [r if s is first else r.moved_to(s, at=utcnow()) for r, s in zip(recipients, statuses, strict=True)]
    await ledger.record(message, recipients, provider)
    return message, recipients


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


def at_hour(day: date, hour: int = 0, minute: int = 15) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


async def test_a_roll_up_after_the_timer_was_down_fills_every_day_it_missed():
    """Issue 25: the roll-up counted the last three days only, so days before them kept no totals once its
    timer had been down longer. A run counts every noted day it has not counted yet, back to retention."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    missed = [TODAY - timedelta(days=back) for back in range(40, 0, -3)]
    for day in missed:
        await recorded(ledger, day, [Status.SENT], segments=1)
    clock = Clock(at_hour(TODAY))
    usage = Usage(store, await in_zone(None), clock=clock)
    assert (await usage.roll_up()).left == 0
    days = await usage.days(await usage.calendar(LICENSEE), TODAY - timedelta(days=60), TODAY)
    assert [(u.day, u.counted_at) for u in days] == [(day, clock.at) for day in missed]


async def test_a_day_is_counted_about_daily_until_three_days_after_it_ended_then_kept():
    """Late receipts move statuses for a day or two: an hourly run counts each day again about once a
    day until it has counted it three days after it ended, and leaves it then."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    message, recipients = await recorded(ledger, TODAY, [Status.SENT, Status.SENT], segments=1)
    clock = Clock(at_hour(TODAY + timedelta(days=1)))
    usage = Usage(store, await in_zone(None), clock=clock)
    counted_at = []
    for _ in range(24 * 7):  # a week of hourly runs
        if clock.at == at_hour(TODAY + timedelta(days=2), 6):  # a receipt a day late: the first recipient delivered
            await ledger.record(message, [recipients[0].moved_to(Status.DELIVERED, at=clock.at)])
        if clock.at == at_hour(TODAY + timedelta(days=6), 6):  # one five days late: too late to be counted
            await ledger.record(message, [recipients[1].moved_to(Status.DELIVERED, at=clock.at)])
        await usage.roll_up()
        [day] = await usage.days(await usage.calendar(LICENSEE), TODAY, TODAY)
        if not counted_at or counted_at[-1] != day.counted_at:
            counted_at.append(day.counted_at)
        clock.at += timedelta(hours=1)
    assert counted_at == [at_hour(TODAY + timedelta(days=n)) for n in (1, 2, 3, 4)]
    assert day.by_status == {"delivered": 1, "sent": 1}


async def test_a_message_recorded_for_a_day_already_rolled_up_has_the_day_counted_again():
    """A job held up for days records its message's first entry long after the day it was accepted on
    was rolled up for good: noting that day again (another process's ledger) has the next run count it."""
    store = InMemoryLedgerStore()
    day = TODAY - timedelta(days=10)
    await recorded(Ledger(store), day, [Status.SENT], segments=1)
    clock = Clock(at_hour(day + timedelta(days=1)))
    usage = Usage(store, await in_zone(None), clock=clock)
    while clock.at < at_hour(TODAY):
        await usage.roll_up()
        clock.at += timedelta(days=1)
    await recorded(Ledger(store), None, [Status.SENT], segments=2, at=at_hour(day, 10))
    await usage.roll_up()
    [counted] = await usage.days(await usage.calendar(LICENSEE), day, day)
    assert (counted.messages, counted.segments, counted.counted_at) == (2, 3, clock.at)


async def test_a_run_stops_at_its_budget_and_the_next_goes_on_from_the_oldest_day_left():
    """Bounded: a run starts no further day once it has read `budget` entries; what is left waits for the
    next run (hourly), oldest first: the days retention will take first."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    days = [TODAY - timedelta(days=back) for back in range(30, 10, -1)]
    for day in days:
        for _ in range(3):
            await recorded(ledger, day, [Status.SENT], segments=1)
    clock = Clock(at_hour(TODAY))
    usage = Usage(store, await in_zone(None), clock=clock, budget=7)  # three days of three entries a run
    calendar = await usage.calendar(LICENSEE)
    runs = [await usage.roll_up()]
    assert (runs[0].counted, runs[0].left) == (3, 17)
    assert [u.day for u in await usage.days(calendar, days[0], days[-1])] == days[:3]
    while runs[-1].left:
        clock.at += timedelta(hours=1)
        runs.append(await usage.roll_up())
    assert [run.counted for run in runs] == [3, 3, 3, 3, 3, 3, 2]
    assert [u.day for u in await usage.days(calendar, days[0], days[-1])] == days


async def test_the_roll_up_never_counts_a_day_retention_may_be_deleting():
    """Retention deletes messages from before its cutoff (SMS_RETENTION_DAYS whole UTC days back) in
    batches: a day it has begun on would be saved short. The roll-up counts no day starting less than a
    day after that cutoff."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    for back in (91, 90, 89):
        await recorded(ledger, TODAY - timedelta(days=back), [Status.SENT], segments=1)
    usage = Usage(store, await in_zone(None), clock=Clock(at_hour(TODAY)), retention_days=90)
    assert (await usage.roll_up()).left == 0
    assert [u.day for u in await usage.days(await usage.calendar(LICENSEE), TODAY - timedelta(days=100), TODAY)] == [
        TODAY - timedelta(days=89)]


async def test_a_rebuild_recounts_the_days_in_the_licensees_zone_of_now_and_replaces_their_totals():
    """`usage rebuild`: the recount that fixes totals rolled up with old inflated figures, or in a zone the
    licensee has left. A UTC licensee's messages at 20:00 UTC fall on the next day in Sydney: rebuilt
    after its move to Sydney, the UTC days' totals go (no Sydney messages that day) and Sydney's come; and
    the noted days it covered are marked counted, so the roll-up does not count them again."""
    store, licensees = InMemoryLedgerStore(), await in_zone(None)
    ledger = Ledger(store)
    day = TODAY - timedelta(days=10)
    for back in (2, 0):
        await recorded(ledger, None, [Status.SENT], segments=1, at=at_hour(day - timedelta(days=back), 20))
    clock = Clock(at_hour(TODAY))
    usage = Usage(store, licensees, clock=clock)
    # Totals as an older gateway rolled them up: UTC's days, one inflated (issue 23), the noted days unmarked.
    for back, segments in ((2, 99), (0, 1)):
        await store.save_usage(DayUsage(LICENSEE, day - timedelta(days=back), 1, 1, segments, {"sent": 1}, {"twilio": 1}, clock.at))
    await licensees.put(LicenseeSettings(LICENSEE, time_zone=SYDNEY))
    clock.at += timedelta(hours=5)
    [rebuilt] = await usage.rebuild(day - timedelta(days=3), day + timedelta(days=1), LICENSEE)
    assert (rebuilt.licensee_id, rebuilt.zone, rebuilt.saved, rebuilt.removed, rebuilt.not_ended) == (LICENSEE, SYDNEY, 2, 2, [])
    days = await usage.days(await usage.calendar(LICENSEE), day - timedelta(days=5), day + timedelta(days=5))
    assert [(u.day, u.segments, u.time_zone, u.counted_at) for u in days] == [
        (day - timedelta(days=1), 1, SYDNEY, clock.at), (day + timedelta(days=1), 1, SYDNEY, clock.at)]
    clock.at += timedelta(hours=1)
    assert (await usage.roll_up()).counted == 0


async def test_a_rebuild_of_every_licensee_leaves_a_day_not_ended_in_its_zone_to_the_roll_up():
    """Without a licensee, every licensee with messages in the range: at 02:00 UTC yesterday (UTC's) has
    ended in UTC but not in Honolulu (10 hours behind), where it is left to the roll-up."""
    store, licensees = InMemoryLedgerStore(), InMemoryLicenseeSettingsStore()
    honolulu = OTHER
    await licensees.put(LicenseeSettings(honolulu, time_zone="Pacific/Honolulu"))
    yesterday = TODAY - timedelta(days=1)
    await recorded(Ledger(store), yesterday, [Status.SENT], segments=1)
    await recorded(Ledger(store), yesterday, [Status.SENT], segments=1, licensee=honolulu)
    usage = Usage(store, licensees, clock=Clock(at_hour(TODAY, 2)))
    rebuilt = {r.licensee_id: r for r in await usage.rebuild(yesterday, yesterday)}
    assert (rebuilt[LICENSEE].saved, rebuilt[LICENSEE].not_ended) == (1, [])
    assert (rebuilt[honolulu].zone, rebuilt[honolulu].saved, rebuilt[honolulu].not_ended) == ("Pacific/Honolulu", 0, [yesterday])


@pytest.mark.parametrize(("first", "last", "licensee", "field", "reason"), [
    (TODAY - timedelta(days=3), TODAY - timedelta(days=4), LICENSEE, "to", "to: must not be before from"),
    (TODAY - timedelta(days=500), TODAY - timedelta(days=99), None, "to", "to: at most 400 days from from"),
    (TODAY - timedelta(days=90), TODAY - timedelta(days=1), LICENSEE, "from",
     "from: 2026-08-27 is past retention: messages created before 2026-08-27 00:00 UTC (SMS_RETENTION_DAYS, 90 days) are "
     "being deleted, so no day before 2026-08-29 can be recounted in Australia/Sydney"),  # its 28th began at 14:00 UTC on the 27th
    (TODAY - timedelta(days=89), TODAY - timedelta(days=1), None, "from", "no day before 2026-08-29 can be recounted in every zone"),
    (TODAY - timedelta(days=3), TODAY, LICENSEE, "to",
     "to: 2026-11-25 has not ended in Australia/Sydney: it is counted when asked, and rolled up once it has"),
    (TODAY - timedelta(days=3), TODAY + timedelta(days=1), None, "to", "to: 2026-11-26 has not ended in any zone"),
    (date(1, 1, 1), date(9999, 12, 31), LICENSEE, "to", "to: at most 400 days from from"),
], ids=["to before from", "over 400 days", "past retention", "past retention in some zone", "today", "tomorrow",
        "the ends of the calendar"])
async def test_a_rebuild_refuses_a_range_it_cannot_recount_and_says_why(first, last, licensee, field, reason):
    usage = Usage(InMemoryLedgerStore(), await in_zone(SYDNEY), clock=Clock(at_hour(TODAY)), retention_days=90)
    with pytest.raises(ValidationFailed) as refused:
        await usage.rebuild(first, last, licensee)
    [error] = refused.value.field_errors
    assert error.field_name == field and reason in error.message, error.message
