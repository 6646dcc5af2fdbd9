"""Instants as clients write them: ISO 8601 with an offset from UTC of `Z` or hours and minutes
(`+11:00`, `-05:30`), RFC 3339's offsets. One reader for every instant a request carries (SendAt,
ValidUntil, GET /api/sms's from and to, a replay's From and To), so they all take the same text.

Python's own reader takes more: seconds in an offset (`+10:00:30`), the basic form (`+1000`), hours
alone (`+10`). No client means those, README documents none of them, and a second reader taking them
would make one route accept what another refuses.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

OFFSETS = "Z, +HH:MM or -HH:MM"
EXAMPLE = f"e.g. 2026-11-26T09:00:00+11:00 or 2026-11-25T22:00:00Z (its offset {OFFSETS})"
_OFFSET = re.compile(r"(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z")
_LONGEST = 64  # the longest instant written with seven fractional digits is 33 characters


class NotAnInstant(ValueError):
    """Why a text is not an instant: `code` is NoOffset (a time, but whose?) or InvalidValue."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def parse_instant(text: str) -> datetime:
    """The instant `text` names, in UTC; NotAnInstant when it is not one with its offset."""
    text = text.strip()
    if len(text) > _LONGEST:
        raise NotAnInstant("InvalidValue")
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("z", "Z") else text)
    except ValueError:
        raise NotAnInstant("InvalidValue") from None
    if parsed.tzinfo is None:
        raise NotAnInstant("NoOffset")
    if not _OFFSET.search(text):
        raise NotAnInstant("InvalidValue")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # past year 9999, or before year 1, once in UTC
        raise NotAnInstant("InvalidValue") from None
