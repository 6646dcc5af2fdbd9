"""Run a send once per Idempotency-Key: a retry answers as the first request did and changes nothing.

The key's record binds it to the request it first came with (a fingerprint) and to the commId the
first request saves under, before anything is saved: a retry then finds the message, or finds none
and finishes the first request's work under the same commId.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

from ..domain.commands import RequestKey
from ..domain.errors import AlreadyExists, Conflict, KeyReused, StorageUnavailable
from ..domain.model import Message, Recipient, utcnow
from ..domain.spend import CapReached
from ..storage import IdempotencyRecord, IdempotencyStore, MessageStore

# A replay that finds no message this soon after the first request is racing it, not resuming it.
IN_PROGRESS_GRACE = timedelta(seconds=30)

STILL_RUNNING = "The first request with this Idempotency-Key is still being processed; retry shortly"

Answer = TypeVar("Answer")
Checked = TypeVar("Checked")

log = logging.getLogger("sms.idempotency")


class OncePerKey:
    def __init__(self, keys: IdempotencyStore, messages: MessageStore, window: timedelta = timedelta(hours=24)):
        self._keys, self._messages, self._window = keys, messages, window

    async def run(self, licensee_id: str, key: RequestKey | None, kind: str,
                  check: Callable[[str | None], Awaitable[Checked]], work: Callable[[Checked], Awaitable[Answer]],
                  answer: Callable[[Message, list[Recipient]], Answer]) -> Answer:
        """`check(comm_id)` checks the request as it stands, under `comm_id` (a new one when None), and
        raises its refusal; `work(checked)` does the send; `answer` says what a retry answers from the
        message the first request saved. `kind` keeps a key used for one kind of send from replaying another.

        Only a first request is checked: a retry answers as the first did, even once its sendAt has passed
        or quiet hours have begun. A first request refused as it stands frees its key, so the corrected
        request under the same key is a first request too."""
        if key is None:
            return await work(await check(None))
        fingerprint = hashlib.sha256(f"{kind}\n{key.request}".encode()).hexdigest()
        now = utcnow()
        record = IdempotencyRecord(licensee_id, key.key, fingerprint, uuid.uuid4().hex, now, now + self._window)
        existing = await self._keys.claim(record)
        if existing is None:
            return await self._refused_frees(record, work, await self._checked_first(record, check))
        if existing.expires_at <= now:  # an old key used again: a new request
            if not await self._keys.take_over(existing, record):
                raise Conflict("This Idempotency-Key is being used by another request; retry shortly")
            return await self._refused_frees(record, work, await self._checked_first(record, check))
        if existing.request_hash != fingerprint:
            raise KeyReused("This Idempotency-Key was used with a different request; use a new key for a new request")
        loaded = await self._messages.load(existing.comm_id)
        if loaded is not None:
            return answer(*loaded)
        if utcnow() - existing.created_at < IN_PROGRESS_GRACE:
            raise Conflict(STILL_RUNNING)
        try:  # the first request died before saving anything: finish it under the same commId
            return await self._refused_frees(existing, work, await check(existing.comm_id))
        except AlreadyExists:
            raise Conflict(STILL_RUNNING) from None

    async def _checked_first(self, record: IdempotencyRecord, check: Callable[[str | None], Awaitable[Checked]]) -> Checked:
        try:
            return await check(record.comm_id)
        except Exception:
            # Refused before anything was stored: the key is freed (a retry racing this sees it claimed
            # for a moment, and is told to retry shortly).
            await self._free(record)
            raise

    async def _refused_frees(self, record: IdempotencyRecord, work: Callable[[Checked], Awaitable[Answer]], checked: Checked) -> Answer:
        """`work`, whose refusal at a spend cap (made before it stores anything: sms/usecases/spend.py) frees
        the key as a refused check does: the same request once there is room is a first request."""
        try:
            return await work(checked)
        except CapReached:
            await self._free(record)
            raise

    async def _free(self, record: IdempotencyRecord) -> None:
        try:
            await self._keys.release(record)
        except StorageUnavailable:
            log.warning("could not free an Idempotency-Key after its request was refused; it frees itself when it expires")
