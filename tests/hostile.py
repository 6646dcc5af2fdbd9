"""Hostile values for the query parameters that hold an instant or a continuation token (issue 23): one
list each, sent by the unit tests to every route and by the integration tests to the stores."""
import base64


def encoded(raw: bytes) -> str:
    """Bytes as a token of ours is written: base64url without its padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Instants and days a datetime holds but the gateway must not compute with: at the ends of what a datetime
# holds (converting to UTC, or a microsecond either side, overflows), before 1970 and past 2286 (where the
# stores' keys, microseconds since 1970 in 16 digits, no longer sort), and text that is no instant at all.
INSTANTS = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "0001-01-01", "1969-12-31T23:59:59.999999Z", "1900-01-01",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999Z", "9999-12-31", "2300-01-01",
    "2026-11-25T09:00:00", "\udcff", "2026-11-25\x00", "9" * 5000,
]

# Continuation tokens no answer gave: ones that decode to JSON nested past the reader's depth, to a lone
# surrogate (JSON's \ud800) as a key or a value, to control characters or to other shapes, and text
# that is not base64 at all, or too long; and those behind what looks like a query's digest.
_DECODING = [
    encoded(b"[" * 3000), encoded(b'{"a":' * 3000), encoded(b'{"' + b"a" * 32 + b'|0":"\\ud800"}'),
    encoded(b'{"\\ud800":"x"}'), encoded(b'{"' + b"a" * 32 + b'|1":"m|\\u0000\\u001f"}'), encoded(b'{"x":1}'),
    encoded(b"[]"), encoded(b'"x"'), encoded(b"\xff\xfe"), encoded(b'{"a":"' + b"9" * 5000 + b'"}'),
]
TOKENS = [
    *_DECODING, *(f"{'0' * 12}.{token}" for token in _DECODING[:3]), "\udcff" * 12 + ".1",
    "\udcff", "!!", ".", "0.0", "a" * 100_000, "9" * 5000,
]
