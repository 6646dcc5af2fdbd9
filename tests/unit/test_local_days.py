"""A licensee's days (sms/domain/local_days.py): the calendar days of its zone, which usage counts by.
Each runs from one local midnight to the next, so the days the clocks change are 23 and 25 hours long;
the days tile time with no gap and no overlap, whatever the zone does at midnight."""
from datetime import date, datetime, timedelta, timezone

import pytest

from sms.domain.local_days import LocalDays

UTC = timezone.utc


def hours(span) -> float:
    start, end = span
    return (end - start) / timedelta(hours=1)


@pytest.mark.parametrize(("zone", "short", "long"), [
    ("Australia/Sydney", date(2026, 10, 4), date(2026, 4, 5)),  # clocks forward 02:00 -> 03:00, back 03:00 -> 02:00
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
    ("America/Santiago", date(2026, 9, 6), date(2026, 4, 4)),  # its clocks change at midnight itself
])
def test_the_days_the_clocks_change_are_23_and_25_hours_long(zone, short, long):
    days = LocalDays(zone)
    assert hours(days.span(short)) == 23
    assert hours(days.span(long)) == 25
    assert hours(days.span(short - timedelta(days=1))) == hours(days.span(long + timedelta(days=1))) == 24


def test_sydney_days_start_at_its_midnight_in_utc_summer_and_winter():
    days = LocalDays("Australia/Sydney")
    assert days.span(date(2026, 1, 15)) == (datetime(2026, 1, 14, 13, tzinfo=UTC), datetime(2026, 1, 15, 13, tzinfo=UTC))
    assert days.span(date(2026, 7, 15)) == (datetime(2026, 7, 14, 14, tzinfo=UTC), datetime(2026, 7, 15, 14, tzinfo=UTC))
    # The 25-hour day: from 00:00 AEDT (+11) to 00:00 AEST (+10) the next day.
    assert days.span(date(2026, 4, 5)) == (datetime(2026, 4, 4, 13, tzinfo=UTC), datetime(2026, 4, 5, 14, tzinfo=UTC))


def test_a_midnight_the_clocks_skip_starts_the_day_at_the_first_instant_there_is():
    """Santiago's clocks go from 23:59:59 to 01:00 on 2026-09-06: that day starts at 01:00 local (04:00 UTC)."""
    days = LocalDays("America/Santiago")
    start, _ = days.span(date(2026, 9, 6))
    assert start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert days.day_of(start) == date(2026, 9, 6) and days.day_of(start - timedelta(microseconds=1)) == date(2026, 9, 5)


@pytest.mark.parametrize("zone", ["UTC", "Australia/Sydney", "America/Santiago", "Australia/Lord_Howe", "Pacific/Kiritimati",
                                  "Etc/GMT+12", "Asia/Kathmandu"])
def test_the_days_tile_time_and_every_instant_falls_in_its_own_day(zone):
    days = LocalDays(zone)
    day = date(2026, 1, 1)
    while day.year == 2026:
        start, end = days.span(day)
        assert end == days.span(day + timedelta(days=1))[0]
        assert days.day_of(start) == day and days.day_of(end - timedelta(microseconds=1)) == day
        assert 23 <= hours((start, end)) <= 25
        day += timedelta(days=1)


def test_the_days_an_instant_range_touches():
    sydney = LocalDays("Australia/Sydney")
    # A UTC day touches two Sydney days: until 13:00 UTC (in summer) it is already the next day there.
    utc_day = datetime(2026, 1, 15, tzinfo=UTC)
    assert sydney.overlapping(utc_day, utc_day + timedelta(days=1)) == [date(2026, 1, 15), date(2026, 1, 16)]
    assert LocalDays("UTC").overlapping(utc_day, utc_day + timedelta(days=1)) == [date(2026, 1, 15)]
    assert sydney.overlapping(utc_day, utc_day) == []
    # Around a 23-hour day a UTC day can touch three local days: Santiago's 2026-09-06 runs 04:00 to 03:00 UTC.
    santiago = LocalDays("America/Santiago")
    assert santiago.overlapping(datetime(2026, 9, 6, 3, 30, tzinfo=UTC), datetime(2026, 9, 7, 3, 30, tzinfo=UTC)) == [
        date(2026, 9, 5), date(2026, 9, 6), date(2026, 9, 7)]


def test_an_unknown_zone_is_refused_by_name():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        LocalDays("Mars/Olympus")
