"""Deliver webhook events to a licensee's endpoint, keep the log of every attempt, replay on request.

One queue message (a `Delivery`) sends one batch's events to one endpoint, in order, each signed
afresh (Standard Webhooks: a new timestamp each attempt, the same `webhook-id` always). The first
event that fails stops the rest, so a receiver that is down costs one timeout per batch, not one per
event; what is left goes back on the queue, made visible after the schedule's next delay
(sms/domain/webhook_backoff.py, about a day in all, a receiver's Retry-After honoured). A message the worker
dies on comes back from the queue and is sent again: at least once, never lost.

An endpoint is disabled, with the reason kept, when it answers 410 Gone, and when its deliveries have
failed `disable_after_failures` times in a row over at least `disable_after` (one success resets the
count). Nothing is sent to a disabled endpoint; its events are still kept, for a replay once it is
enabled again.
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Mapping, Protocol

from ..domain.errors import FieldError, NotFound, RecordChanged, ValidationFailed
from ..domain.events import Delivery, WebhookEvent, located
from ..domain.model import utcnow
from ..domain.webhook_attempts import DeliveryAttempt, Outcome
from ..domain.webhook_backoff import delay_before
from ..domain.webhook_signing import sign
from ..storage import DeliveryLogStore, DeliveryQueue, DeliveryRecord, EventStore, WebhookEndpoint, WebhookEndpointStore
from .optimistic import update_optimistically
from .paging import bind, unbind

log = logging.getLogger("sms.webhooks")

# A delivery is queued just before the write that makes its batch; one that finds no batch looks
# again (after 2 s, then as long again as it has waited) for this long, and is then dropped (the write
# never happened, or lost a race; whatever retried it announced its own batch).
NOT_WRITTEN_YET_DELAY = 2
COMMIT_GRACE = timedelta(minutes=2)
# The host parks a delivery that raised maxDequeueCount times (storage down); it is put back this
# much later, so many times, before it is given up.
PARKED_DELAY = 600
MAX_PARKED = 6
DISABLE_AFTER_FAILURES = 10
DISABLE_AFTER = timedelta(hours=24)
MAX_LOG_TAKE, DEFAULT_LOG_TAKE = 200, 50
# Batches one replay request queues at most; the answer says where to go on from.
REPLAY_BATCHES = 1000
ENDPOINT_WRITES = 3


class Transport(Protocol):
    async def send(self, url: str, headers: Mapping[str, str], body: str | bytes) -> DeliveryAttempt: ...


class WebhookDelivery:
    def __init__(self, endpoints: WebhookEndpointStore, events: EventStore, delivery_log: DeliveryLogStore,
                 queue: DeliveryQueue, transport: Transport, *, disable_after_failures: int = DISABLE_AFTER_FAILURES,
                 disable_after: timedelta = DISABLE_AFTER, clock: Callable[[], datetime] = utcnow,
                 rand: Callable[[], float] = random.random):
        self._endpoints = endpoints
        self._events = events
        self._log = delivery_log
        self._queue = queue
        self._transport = transport
        self.disable_after_failures = disable_after_failures
        self.disable_after = disable_after
        self._clock = clock
        self._rand = rand

    async def deliver(self, delivery: Delivery) -> int:
        """Send the delivery's events to its endpoint; how many were delivered."""
        endpoint = await self._endpoints.get(delivery.licensee_id, delivery.endpoint_id)
        if endpoint is None:
            log.info("webhook delivery to removed endpoint %s dropped", delivery.endpoint_id)
            return 0
        if endpoint.disabled_at is not None:
            log.info("webhook endpoint %s is disabled: batch %s not sent (replay it once the endpoint is enabled)",
                     endpoint.endpoint_id, delivery.batch)
            return 0
        events = await self._events.batch(delivery.licensee_id, delivery.comm_id, delivery.batch)
        if events is None:
            waited = self._clock() - delivery.queued_at
            if waited < COMMIT_GRACE:  # looked for again after as long as it has waited: 7 looks in all
                await self._queue.put(delivery, delay_seconds=max(NOT_WRITTEN_YET_DELAY, math.ceil(waited.total_seconds())))
            else:
                log.info("webhook batch %s of %s was never written; its delivery is dropped", delivery.batch, delivery.comm_id)
            return 0
        wanted = [e for e in events if endpoint.wants(e.type) and (delivery.only is None or e.id in delivery.only)]
        delivered = 0
        last: DeliveryAttempt | None = None
        for event in wanted:
            last = await self._send(endpoint, event)
            # Logged as soon as its answer is in, before the next event is sent: a worker stopped mid-batch
            # (killed, or cancelled by the host) leaves a row for every attempt it made but the one it was
            # writing. One write an attempt, beside one POST an attempt.
            await self._log.add([self._record(endpoint, event, delivery, last)])
            if last.outcome is not Outcome.DELIVERED:
                break
            delivered += 1
        left = wanted[delivered:]
        await self._note(endpoint, last if left else None, delivered > 0)
        if left and last is not None:
            await self._retry_later(delivery, left, last)
        return delivered

    async def _send(self, endpoint: WebhookEndpoint, event: WebhookEvent) -> DeliveryAttempt:
        now = self._clock()
        headers = sign(endpoint.signing_secrets(now), event.id, now, event.body)
        return await self._transport.send(endpoint.url, headers, event.body)

    def _record(self, endpoint: WebhookEndpoint, event: WebhookEvent, delivery: Delivery, attempt: DeliveryAttempt) -> DeliveryRecord:
        return DeliveryRecord(endpoint.licensee_id, endpoint.endpoint_id, self._clock(), event.id, event.type,
                              delivery.attempt, attempt.outcome.value, attempt.status, attempt.latency_ms, attempt.error,
                              attempt.response_body, delivery.replay)

    async def _retry_later(self, delivery: Delivery, left: list[WebhookEvent], failed: DeliveryAttempt) -> None:
        if not failed.should_retry:  # 410 (the endpoint is now disabled) or a destination never to reach
            log.warning("webhook endpoint %s: %d event(s) of batch %s not sent: %s", delivery.endpoint_id, len(left),
                        delivery.batch, failed.error)
            return
        delay = delay_before(delivery.attempt + 1, retry_after=failed.retry_after_seconds, rand=self._rand)
        if delay is None:
            log.warning("webhook endpoint %s: gave up on %d event(s) of batch %s after %d attempts; last: %s",
                        delivery.endpoint_id, len(left), delivery.batch, delivery.attempt, failed.error)
            return
        await self._queue.put(replace(delivery, attempt=delivery.attempt + 1, only=tuple(e.id for e in left), parked=0),
                              delay_seconds=math.ceil(delay))

    async def _note(self, endpoint: WebhookEndpoint, failed: DeliveryAttempt | None, delivered: bool) -> None:
        """Keep the endpoint's run of failures, and disable it by the rules above. Written only when it
        changes; a write that keeps losing races is skipped (the next delivery counts again)."""
        now = self._clock()

        def change(current: WebhookEndpoint | None) -> WebhookEndpoint | None:
            if current is None or current.disabled_at is not None:
                return None
            if failed is None:
                return replace(current, consecutive_failures=0, failing_since=None) if current.consecutive_failures else None
            if failed.outcome is Outcome.GONE:
                return replace(current, disabled_at=now, disabled_reason=f"the receiver answered {failed.error}")
            if delivered:  # it took some: the run of failures starts again with this one
                current = replace(current, consecutive_failures=0, failing_since=None)
            count, since = current.consecutive_failures + 1, current.failing_since or now
            if count >= self.disable_after_failures and now - since >= self.disable_after:
                reason = (f"{count} failed deliveries in a row since {since.isoformat(timespec='seconds')}; "
                          f"the last: {failed.error or failed.outcome.value}")
                return replace(current, consecutive_failures=count, failing_since=since, disabled_at=now, disabled_reason=reason)
            return replace(current, consecutive_failures=count, failing_since=since)

        async def read() -> WebhookEndpoint | None:
            return await self._endpoints.get(endpoint.licensee_id, endpoint.endpoint_id)

        try:
            written = await update_optimistically(read, change, self._endpoints.replace, attempts=ENDPOINT_WRITES,
                                                  what=f"webhook endpoint {endpoint.endpoint_id}", current=endpoint)
        except RecordChanged:
            return
        if written is not None and written.disabled_at is not None:
            log.warning("webhook endpoint %s of licensee %s disabled: %s", written.endpoint_id, written.licensee_id,
                        written.disabled_reason)

    async def parked(self, delivery: Delivery) -> bool:
        """A delivery the host parked (it raised maxDequeueCount times: storage was unreachable): put
        it back a while later, up to MAX_PARKED times. False when it is given up."""
        if delivery.parked >= MAX_PARKED:
            log.error("webhook delivery of batch %s to endpoint %s given up after being parked %d times",
                      delivery.batch, delivery.endpoint_id, delivery.parked)
            return False
        await self._queue.put(replace(delivery, parked=delivery.parked + 1), delay_seconds=PARKED_DELAY)
        return True

    # -- the delivery log and replay -------------------------------------------------------------

    async def attempts(self, endpoint: WebhookEndpoint, take: int | None = None,
                       token: str | None = None) -> tuple[list[DeliveryRecord], str | None]:
        """The endpoint's delivery log, newest first; a token goes on with this endpoint's log only."""
        take = DEFAULT_LOG_TAKE if take is None else take
        if not 1 <= take <= MAX_LOG_TAKE:
            raise ValidationFailed([FieldError("take", "InvalidValue", f"take must be from 1 to {MAX_LOG_TAKE}")])
        query = ("deliveries", endpoint.endpoint_id)
        records, token = await self._log.page(endpoint.licensee_id, endpoint.endpoint_id, take, unbind(token, *query))
        return records, bind(token, *query)

    async def replay_event(self, endpoint: WebhookEndpoint, event_id: str) -> WebhookEvent:
        """Send one event to the endpoint again (the same id: a receiver that has it ignores it)."""
        _check_enabled(endpoint)
        where = located(event_id.strip())
        events = await self._events.batch(endpoint.licensee_id, where[1], where[0]) if where else None
        event = next((e for e in events or () if e.id == event_id.strip()), None)
        if event is None:
            raise NotFound(f"No event with id {event_id.strip()[:80]}")
        if not endpoint.wants(event.type):
            raise ValidationFailed([FieldError("EventId", "InvalidValue",
                                               f"EventId: the endpoint does not take {event.type} events")])
        batch, comm_id = where
        await self._queue.put(Delivery(endpoint.licensee_id, endpoint.endpoint_id, comm_id, batch, only=(event.id,), replay=True))
        return event

    async def replay_range(self, endpoint: WebhookEndpoint, start: datetime, end: datetime,
                           token: str | None = None) -> tuple[int, str | None]:
        """Send every event written in [start, end) that the endpoint takes to it again, a batch a
        delivery; how many batches were queued, and a token to go on with (the same range) when there
        were more than REPLAY_BATCHES, which goes on with this endpoint and range only."""
        _check_enabled(endpoint)
        if start >= end:
            raise ValidationFailed([FieldError("From", "InvalidValue", "From must be before To")])
        query = ("replay", endpoint.endpoint_id, start, end)
        token = unbind(token, *query)
        queued = 0
        while queued < REPLAY_BATCHES:
            found, token = await self._events.batches(endpoint.licensee_id, start, end, min(200, REPLAY_BATCHES - queued), token)
            for comm_id, batch in found:
                await self._queue.put(Delivery(endpoint.licensee_id, endpoint.endpoint_id, comm_id, batch, replay=True))
                queued += 1
            if token is None:
                break
        return queued, bind(token, *query)


def _check_enabled(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        raise ValidationFailed([FieldError("EndpointId", "InvalidValue",
                                           "EndpointId: the endpoint is disabled; enable it before replaying events to it")])
