"""Tell a licensee's webhook endpoints that a batch of events is being written: one delivery queued
per endpoint that wants any of them, *before* the write that makes the batch (and the change it
reports) visible.

That order is what makes an event impossible to lose without a second write to track it: if the
queue put fails, the write is not made and the caller's retry (the job's redelivery, the vendor's
resent receipt) makes both again; if the process dies after the put, the write may or may not have
been made, and the delivery finds out (sms/usecases/delivery.py: a batch that never appears is
dropped once its grace period is over, and whatever wrote it retries with a new batch). A write
refused by a concurrent one (the ledger entry's ETag) is likewise made again under a new batch id, so
an event is in exactly one batch that exists.

Which endpoints: the licensee's, read at most every `cache_seconds` per process (most licensees have
none; a send must not pay a read for them, nor keep events nobody asked for). An endpoint added gets
its events once each process's cache has expired (at most `cache_seconds`; at once in the process
that added it).
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

from cachetools import TLRUCache

from ..domain.events import Delivery, WebhookEvent
from ..storage import DeliveryQueue, WebhookEndpoint, WebhookEndpointStore

log = logging.getLogger("sms.webhooks")

CACHE_SECONDS = 30.0


class Announcer:
    def __init__(self, endpoints: WebhookEndpointStore, queue: DeliveryQueue, *, cache_seconds: float = CACHE_SECONDS,
                 max_cached: int = 10_000):
        self._endpoints = endpoints
        self._queue = queue
        self._ttl = cache_seconds
        # licensee -> (when its read started, its endpoints)
        self._cache: TLRUCache[str, tuple[float, tuple[WebhookEndpoint, ...]]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _licensee, entry, _now: entry[0] + self._ttl, timer=time.monotonic)

    async def announce(self, licensee_id: str, comm_id: str, batch: str, events: Sequence[WebhookEvent]) -> bool:
        """Queue the batch for each of the licensee's enabled endpoints that wants one of `events`.
        True when the licensee has endpoints at all (a disabled one may ask for a replay): then the
        batch is to be written; a licensee without endpoints keeps no events. Raises when a put fails
        (the caller must then not write the batch)."""
        endpoints = await self.endpoints(licensee_id)
        types = {event.type for event in events}
        for endpoint in endpoints:
            if endpoint.disabled_at is None and any(endpoint.wants(t) for t in types):
                await self._queue.put(Delivery(licensee_id, endpoint.endpoint_id, comm_id, batch))
        return bool(endpoints)

    async def endpoints(self, licensee_id: str) -> tuple[WebhookEndpoint, ...]:
        cached = self._cache.get(licensee_id)
        if cached is not None:
            return cached[1]
        started = time.monotonic()
        found = tuple(await self._endpoints.list(licensee_id))
        self._cache[licensee_id] = (started, found)
        return found

    def forget(self, licensee_id: str) -> None:
        """The licensee's endpoints changed (in this process): read them again next time."""
        self._cache.pop(licensee_id, None)
