"""How many SMS segments a body costs, and in which encoding (GSM 03.38 7-bit or UCS-2)."""
from __future__ import annotations

from dataclasses import dataclass

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table characters cost two septets (escape + character).
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7_ALL = _GSM7_BASIC | _GSM7_EXTENSION


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def count(body: str) -> SegmentInfo:
    # Where every character is one septet or one UTF-16 unit, no pair can straddle a segment boundary
    # and the count is arithmetic; the loops cost about 0.1 us a character.
    characters = set(body)
    if characters <= _GSM7_BASIC:
        return SegmentInfo("GSM-7", _even(len(body), single=160, multi=153), len(body))
    if characters <= _GSM7_ALL:
        widths = [2 if c in _GSM7_EXTENSION else 1 for c in body]
        return SegmentInfo("GSM-7", _pack(widths, single=160, multi=153), sum(widths))
    if max(characters) <= "\uffff":  # no character needs a surrogate pair
        return SegmentInfo("UCS-2", _even(len(body), single=70, multi=67), len(body))
    widths = [2 if ord(c) > 0xFFFF else 1 for c in body]
    return SegmentInfo("UCS-2", _pack(widths, single=70, multi=67), sum(widths))


def _even(units: int, *, single: int, multi: int) -> int:
    """_pack when every character is one unit wide."""
    return 0 if units == 0 else 1 if units <= single else -(-units // multi)


def _pack(widths: list[int], *, single: int, multi: int) -> int:
    """Characters are never split across segments (escape pairs, surrogate pairs)."""
    total = sum(widths)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for w in widths:
        if used + w > multi:
            segments, used = segments + 1, 0
        used += w
    return segments
