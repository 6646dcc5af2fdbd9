"""API keys: each bound to one licensee, stored only as a hash, checked in constant time.

A key reads `sms_<keyid>.<secret>`. The key id finds the record; the secret is 256 random
bits, so a single SHA-256 is enough to make the stored hash useless to a thief (there is
nothing to brute-force), and it keeps verification cheap on every request.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict

from .errors import Unauthenticated
from .model import utcnow
from .storage import ApiKeyRecord, ApiKeyStore

_KEY = re.compile(r"^sms_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


def _hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}.{secret}".encode()).hexdigest()


def new_key(licensee_id: str, name: str | None = None) -> tuple[str, ApiKeyRecord]:
    """A fresh key (shown once) and the record to store (which cannot recreate it)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(key_id=key_id, licensee_id=licensee_id, secret_hash=_hash(key_id, secret), created_at=utcnow(), name=name)
    return f"sms_{key_id}.{secret}", record


class Authenticator:
    """Turns a presented key into its licensee id, or raises Unauthenticated.

    Records are cached per process for `cache_seconds` so a request does not pay a storage
    round trip for its key; a revocation therefore takes up to that long to take effect.
    """

    def __init__(self, store: ApiKeyStore, cache_seconds: float = 60.0, max_cached: int = 10_000):
        self._store = store
        self._ttl = cache_seconds
        self._max = max_cached
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord]] = OrderedDict()

    async def licensee_for(self, key: str) -> str:
        match = _KEY.match(key)
        if not match:
            raise Unauthenticated("Invalid API key: it is not in the form this gateway issues")
        key_id, secret = match.groups()
        record = await self._record(key_id)
        if record is None or not hmac.compare_digest(record.secret_hash, _hash(key_id, secret)):
            raise Unauthenticated("Invalid API key")
        if record.revoked_at is not None:
            raise Unauthenticated("This API key has been revoked")
        return record.licensee_id

    async def _record(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        record = await self._store.get(key_id)
        if record is not None and self._ttl > 0:
            self._cache[key_id] = (now, record)
            self._cache.move_to_end(key_id)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return record
