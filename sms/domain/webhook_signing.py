"""Standard Webhooks signatures (https://www.standardwebhooks.com), symmetric scheme "v1".

A receiver built on the `standardwebhooks` package verifies these headers unchanged; the tests
check exactly that. Signing is HMAC-SHA256 from the standard library: the gateway needs no
webhook package of its own.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Sequence
from datetime import datetime
from secrets import token_bytes

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# The spec's bounds for a symmetric key: at least 24 bytes, at most 512 bits.
_MIN_KEY_BYTES, _MAX_KEY_BYTES = 24, 64


def new_secret() -> str:
    """A fresh signing secret in the form the spec shows customers: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secrets: Sequence[str], msg_id: str, timestamp: int | float | datetime, body: str | bytes) -> dict[str, str]:
    """The three webhook-* headers for one attempt of one message.

    `secrets`: the endpoint's current secret, then during a rotation's grace period the old one; the
    signature header carries one "v1,<base64>" per secret, space-separated, so a receiver holding
    either verifies. `msg_id` stays the same across retries (receivers dedupe on it); `timestamp` is
    the attempt's, renewed on each retry (receivers refuse old ones). `body` must be the exact bytes
    sent: the signature covers them, not a re-serialisation.
    """
    if not secrets:
        raise ValueError("signing needs at least one secret")
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        # The signed content is "{id}.{timestamp}.{body}": a "." in the id would make it ambiguous.
        raise ValueError("a webhook id must be non-empty, without '.' or whitespace")
    seconds = math.floor(timestamp.timestamp() if isinstance(timestamp, datetime) else timestamp)
    payload = body.encode("utf-8") if isinstance(body, str) else body
    signed = f"{msg_id}.{seconds}.".encode() + payload
    signatures = (
        "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode("ascii") for secret in secrets
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(seconds), "webhook-signature": " ".join(signatures)}


def _key(secret: str) -> bytes:
    """The HMAC key a whsec_ secret stands for. Errors never quote the secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX):]
    try:
        # Unpadded base64 is accepted, as the reference library accepts it.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(f"a webhook secret holds {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes")
    return key
