"""NCRONTAB, the Functions host's timer schedule format: six fields, seconds first.

`0 */5 * * * *` is every five minutes. Fields take *, a number, a range a-b, a step */n or a-b/n,
and comma lists of those. Day of week 0 is Sunday. Used by the dev host to run timer triggers.
"""
from __future__ import annotations

from datetime import datetime, timedelta

_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))


def parse(expression: str) -> list[frozenset[int]]:
    parts = expression.split()
    if len(parts) != 6:
        raise ValueError(f"NCRONTAB needs 6 fields (seconds first), got {len(parts)}: {expression!r}")
    return [_field(part, name, low, high) for part, (name, low, high) in zip(parts, _FIELDS, strict=True)]


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (int(x) for x in span.split("-", 1))
        else:
            start = end = int(span)
            if step_text:
                end = high
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"NCRONTAB {name} field {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def next_after(schedule: list[frozenset[int]], after: datetime) -> datetime:
    """The first moment strictly after `after` that the schedule matches (searched a year ahead)."""
    seconds, minutes, hours, days, months, weekdays = schedule
    moment = after.replace(microsecond=0) + timedelta(seconds=1)
    limit = moment + timedelta(days=366)
    while moment < limit:
        if moment.month not in months or moment.day not in days or (moment.weekday() + 1) % 7 not in weekdays:
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        elif moment.hour not in hours:
            moment = (moment + timedelta(hours=1)).replace(minute=0, second=0)
        elif moment.minute not in minutes:
            moment = (moment + timedelta(minutes=1)).replace(second=0)
        elif moment.second not in seconds:
            moment += timedelta(seconds=1)
        else:
            return moment
    raise ValueError("the schedule never matches")
