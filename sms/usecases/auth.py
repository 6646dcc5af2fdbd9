"""API keys: each bound to one licensee, stored only as a hash, checked in constant time.

A key has a role (licensee: its own licensee's data; admin: every licensee's data and keys) and may be read-only;
what each may call is decided where the HTTP API checks the key (sms.entrypoints.api, by sms.entrypoints.routes'
READ_KINDS and ADMIN_KINDS). These functions serve the CLI (`python -m sms keys`) and the API's key routes alike.

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cachetools import TLRUCache

from ..domain.errors import FieldError, LimitReached, NotFound, Unauthenticated, ValidationFailed
from ..domain.model import utcnow
from ..storage import KEY_ROLE_ADMIN, KEY_ROLE_LICENSEE, KEY_ROLES, ApiKeyRecord, ApiKeyStore

_KEY = re.compile(r"^sms_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


def _hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}.{secret}".encode()).hexdigest()


# Active keys a licensee may have of one kind (one role, read-only or not), each kind counted apart.
# Two full-access keys, so a key can be rotated without downtime (the new one works before the old one stops),
# and no more: a key that can send or change settings is what a leak costs most on, so there are few of them.
MAX_ACTIVE_KEYS = 2
# Ten read-only keys: one for each of a licensee's staff who watch its messages in the console, each revocable
# on its own when that person leaves, while none of them can send.
MAX_READ_ONLY_KEYS = 10


def _limit(read_only: bool) -> int:
    return MAX_READ_ONLY_KEYS if read_only else MAX_ACTIVE_KEYS


def _kind(role: str, read_only: bool) -> str:
    return f"{'read-only' if read_only else 'full-access'} {role} keys"


def _same_kind(records: list[ApiKeyRecord], role: str, read_only: bool) -> list[ApiKeyRecord]:
    return [k for k in records if (k.role, k.read_only) == (role, read_only)]


class KeyLimitReached(LimitReached):
    """The licensee has as many active keys of this kind as it may (409 over HTTP, exit 2 in the CLI)."""


class KeyNotChosen(Exception):
    """A rotation that could replace either of two keys: which one must be said."""


def new_key(licensee_id: str, name: str | None = None, expires_at: datetime | None = None, role: str = KEY_ROLE_LICENSEE,
            read_only: bool = False) -> tuple[str, ApiKeyRecord]:
    """A fresh key (shown once) and the record to store (which cannot recreate it)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(key_id=key_id, licensee_id=licensee_id, secret_hash=_hash(key_id, secret), created_at=utcnow(),
                          name=name, expires_at=expires_at, role=role, read_only=read_only)
    return f"sms_{key_id}.{secret}", record


async def issue_key(store: ApiKeyStore, licensee_id: str, name: str | None = None, expires_at: datetime | None = None,
                    role: str = KEY_ROLE_LICENSEE, read_only: bool = False) -> str:
    """Store and return a new key, unless the licensee already has as many working keys of its kind as it may."""
    if role not in KEY_ROLES:
        shown = role if len(role) <= 40 else role[:40] + "..."
        raise ValidationFailed([FieldError("Role", "InvalidValue", f"Role '{shown}' is not one of {', '.join(KEY_ROLES)}")])
    now = utcnow()
    active = _same_kind([k for k in await store.list(licensee_id) if k.active(now)], role, read_only)
    if len(active) >= _limit(read_only):
        raise KeyLimitReached(f"licensee {licensee_id} already has {len(active)} active keys of this kind ({_kind(role, read_only)}: "
                              f"{', '.join(k.key_id for k in active)}): revoke one, or let it expire, first")
    key, record = new_key(licensee_id, name, expires_at, role, read_only)
    await store.add(record)
    return key


@dataclass(frozen=True)
class Rotation:
    key: str  # the new key: shown this once
    key_name: str | None  # its name: the one given, else the replaced key's
    replaced: ApiKeyRecord | None  # the key it replaces; None when the licensee had no active key
    replaced_until: datetime | None  # when the replaced key stops working
    record: ApiKeyRecord  # the new key's, as stored


async def rotate_key(store: ApiKeyStore, licensee_id: str, grace: timedelta, name: str | None = None,
                     key_id: str | None = None) -> Rotation:
    """A new key replacing one of the licensee's: `key_id`, or its only active key. The replaced key keeps working for
    `grace`, so for that time the licensee has one key more than before; the new key takes its name unless given one,
    and always its role and read-only flag (a licensee with no key to replace gets a full-access licensee key).

    Refused when the licensee has two active keys and `key_id` does not say which one goes (KeyNotChosen), when
    `key_id` is not one of its active keys (NotFound), and when two keys besides the one replaced would stay
    (KeyLimitReached: revoke one first).
    """
    now = utcnow()
    active = [k for k in await store.list(licensee_id) if k.active(now)]
    if key_id is not None:
        replaced = next((k for k in active if k.key_id == key_id), None)
        if replaced is None:
            raise NotFound(f"Licensee {licensee_id} has no active key {key_id}")
    elif len(active) > 1:
        raise KeyNotChosen(f"licensee {licensee_id} has {len(active)} active keys ("
                           + ", ".join(f"{k.key_id} '{k.name or ''}'" for k in active) + "): say which one to replace")
    else:
        replaced = active[0] if active else None
    role, read_only = (replaced.role, replaced.read_only) if replaced else (KEY_ROLE_LICENSEE, False)
    staying = _same_kind([k for k in active if k is not replaced], role, read_only)
    if len(staying) >= _limit(read_only):
        raise KeyLimitReached(f"licensee {licensee_id} would have {len(staying)} active keys besides the one replaced "
                              f"({', '.join(k.key_id for k in staying)}): revoke one, or let it expire, first")
    key, record = new_key(licensee_id, name if name is not None else replaced.name if replaced else None, role=role,
                          read_only=read_only)
    await store.add(record)
    if replaced is None:
        return Rotation(key, record.name, None, None, record)
    until = now + grace
    if replaced.expires_at is None or replaced.expires_at > until:
        await store.expire(replaced.key_id, until)
    else:
        until = replaced.expires_at  # it was ending sooner anyway
    return Rotation(key, record.name, replaced, until, record)


async def rotate_key_of(store: ApiKeyStore, key_id: str, grace: timedelta) -> Rotation:
    """rotate_key for the key `key_id`, whichever licensee's it is (the API's route names only the key)."""
    record = await store.get(key_id)
    if record is None:
        raise NotFound(f"No API key with id {key_id}")
    return await rotate_key(store, record.licensee_id, grace, key_id=key_id)


async def revoke_key(store: ApiKeyStore, key_id: str) -> ApiKeyRecord:
    """Revoke the key (again, if it was already: the first revocation's time is kept); NotFound when there is no such key."""
    record = await store.get(key_id)
    if record is None:
        raise NotFound(f"No API key with id {key_id}")
    if record.revoked_at is not None:
        return record
    when = utcnow()
    await store.revoke(key_id, when)
    return replace(record, revoked_at=when)


@dataclass(frozen=True)
class Principal:
    """Who a request is from: its key's licensee, and what the key may do."""

    key_id: str
    licensee_id: str
    role: str
    read_only: bool

    @property
    def is_admin(self) -> bool:
        return self.role == KEY_ROLE_ADMIN


class Authenticator:
    """Turns a presented key into its principal (or just its licensee id), or raises Unauthenticated.

    Records are cached per process for `cache_seconds` so a request does not pay a storage
    round trip for its key; a revocation therefore takes up to that long to take effect.
    """

    def __init__(self, store: ApiKeyStore, cache_seconds: float = 60.0, max_cached: int = 10_000):
        self._store = store
        self._ttl = cache_seconds
        # Each record expires `cache_seconds` after its read *started* (a TLRU cache's per-item time):
        # a revocation written while a slow read was in flight still takes effect within that time.
        # At most `max_cached` records, the least recently used dropped first; 0 seconds keeps none.
        self._cache: TLRUCache[str, tuple[float, ApiKeyRecord]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _key, entry, _now: entry[0] + self._ttl, timer=lambda: time.monotonic())

    @property
    def keys(self) -> ApiKeyStore:
        """The store the keys are checked against: where the key routes manage them."""
        return self._store

    def forget(self, key_id: str) -> None:
        """Drop this process's copy of the key's record, so that a revocation made here takes effect here at once."""
        self._cache.pop(key_id, None)

    async def licensee_for(self, key: str) -> str:
        return (await self.principal_for(key)).licensee_id

    async def principal_for(self, key: str) -> Principal:
        match = _KEY.match(key)
        if not match:
            raise Unauthenticated("Invalid API key: it is not in the form this gateway issues")
        key_id, secret = match.groups()
        record = await self._record(key_id)
        if record is None or not hmac.compare_digest(record.secret_hash, _hash(key_id, secret)):
            raise Unauthenticated("Invalid API key")
        if record.revoked_at is not None:
            raise Unauthenticated("This API key has been revoked")
        if record.expires_at is not None and record.expires_at <= utcnow():
            raise Unauthenticated(f"This API key expired at {record.expires_at.isoformat(timespec='seconds')}")
        return Principal(record.key_id, record.licensee_id, record.role, record.read_only)

    async def _record(self, key_id: str) -> ApiKeyRecord | None:
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached[1]
        started = time.monotonic()
        record = await self._store.get(key_id)
        if record is not None:  # a key not found is not kept, so one issued a moment later works at once
            self._cache[key_id] = (started, record)  # kept only while started + cache_seconds is ahead
        return record
