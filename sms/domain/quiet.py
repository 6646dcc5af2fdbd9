"""Quiet hours: the part of the day a licensee's messages wait out, in each recipient's own local time.

A recipient's time zone comes from its number (libphonenumber's time zone data, through
`phonenumbers`); a number whose range spans several zones (an Australian or a North American mobile,
say), or none the data knows, is taken to be in the licensee's own zone. A window may cross midnight
(21:00-08:00): a send inside it waits for its end, that local morning. Zones come from the IANA
database (`zoneinfo`, with the `tzdata` package where the system has none), so daylight saving is
what it is on that day.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_UNKNOWN = "Etc/Unknown"


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: str  # the licensee's own: for numbers that do not tell their zone

    @classmethod
    def parse(cls, window: str, zone: str) -> "QuietHours":
        """"21:00-08:00" in `zone`; ValueError naming what is wrong."""
        match = _WINDOW.match(window or "")
        if not match:
            raise ValueError(f"quiet hours are a window like 21:00-08:00, not {window[:40]!r}")
        start, end = time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))
        if start == end:
            raise ValueError("quiet hours must not start and end at the same time")
        return cls(start, end, checked_zone(zone))

    @property
    def window(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def __str__(self) -> str:
        return f"{self.window} ({self.zone})"

    def wait_until(self, number: str, now: datetime) -> datetime | None:
        """When a send to `number` at `now` may go: the end of the window it falls in, or None when it
        falls outside (send now)."""
        zone = ZoneInfo(zone_of(number) or self.zone)
        local = now.astimezone(zone)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside, end_day = self.start <= t < self.end, local.date()
        else:  # across midnight
            inside = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not inside:
            return None
        end = datetime.combine(end_day, self.end, zone)
        # A clock change inside the window can make a wall time that never happens (02:30 on the night
        # the clocks go forward): the round trip through UTC lands on the first instant that does.
        return max(end.astimezone(timezone.utc), now)


def held_reason(hours: QuietHours) -> str:
    """What a recipient held by quiet hours carries as its reason (and what tells that it is held)."""
    return f"{HELD_PREFIX} ({hours.window}, the recipient's local time) to end"


HELD_PREFIX = "Waiting for the licensee's quiet hours"


def is_held(reason: str | None) -> bool:
    return bool(reason) and reason.startswith(HELD_PREFIX)


@lru_cache(maxsize=65_536)
def zone_of(number: str) -> str | None:
    """The one time zone a number's range is in, or None when it spans several or is unknown."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return None
    return zones[0] if len(zones) == 1 and zones[0] != _UNKNOWN else None


def checked_zone(zone: str) -> str:
    """An IANA zone name ("Australia/Sydney"); ValueError when it is not one."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # OSError: a name too long for a file, or a directory
        raise ValueError(f"{str(zone)[:64]!r} is not a time zone (an IANA name such as Australia/Sydney)") from None
    if zone not in _zones():
        raise ValueError(f"{zone!r} is not a time zone (an IANA name such as Australia/Sydney)")
    return zone


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())
