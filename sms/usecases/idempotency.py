"""Run a send once per Idempotency-Key: a retry answers as the first request did and changes nothing.

The key's record binds it to the request it first came with (a fingerprint) and to the commId the
first request saves under, before anything is saved: a retry then finds the message, or finds none
and finishes the first request's work under the same commId.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

from ..errors import AlreadyExists, Conflict, KeyReused
from ..model import Message, Recipient, utcnow
from ..storage import IdempotencyRecord, IdempotencyStore, MessageStore

# A replay that finds no message this soon after the first request is racing it, not resuming it.
IN_PROGRESS_GRACE = timedelta(seconds=30)

STILL_RUNNING = "The first request with this Idempotency-Key is still being processed; retry shortly"

Answer = TypeVar("Answer")


class OncePerKey:
    def __init__(self, keys: IdempotencyStore | None, messages: MessageStore, window: timedelta = timedelta(hours=24)):
        self._keys, self._messages, self._window = keys, messages, window

    async def run(self, licensee_id: str, key: str | None, kind: str, as_sent: Callable[[], str],
                  work: Callable[[str | None], Awaitable[Answer]],
                  answer: Callable[[Message, list[Recipient]], Answer], comm_id: str | None = None) -> Answer:
        """`work(comm_id)` does the send (under `comm_id`, or a new one when None); `answer` says what a
        retry answers from the message the first request saved. `kind` keeps a key used for one kind of
        send from replaying another. `comm_id`: the one a first request saves under (new when None).

        The caller checks the request before calling: a request refused as it stands claims no key,
        so its corrected resend under the same key is a first request, not a different one."""
        if key is None or self._keys is None:
            return await work(None)
        fingerprint = hashlib.sha256(f"{kind}\n{as_sent()}".encode()).hexdigest()
        now = utcnow()
        record = IdempotencyRecord(licensee_id, key, fingerprint, comm_id or uuid.uuid4().hex, now, now + self._window)
        existing = await self._keys.claim(record)
        if existing is None:
            return await work(record.comm_id)
        if existing.expires_at <= now:  # an old key used again: a new request
            if not await self._keys.take_over(existing, record):
                raise Conflict("This Idempotency-Key is being used by another request; retry shortly")
            return await work(record.comm_id)
        if existing.request_hash != fingerprint:
            raise KeyReused("This Idempotency-Key was used with a different request; use a new key for a new request")
        loaded = await self._messages.load(existing.comm_id)
        if loaded is not None:
            return answer(*loaded)
        if utcnow() - existing.created_at < IN_PROGRESS_GRACE:
            raise Conflict(STILL_RUNNING)
        try:  # the first request died before saving anything: finish it under the same commId
            return await work(existing.comm_id)
        except AlreadyExists:
            raise Conflict(STILL_RUNNING) from None
