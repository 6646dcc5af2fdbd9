"""Retention: what the gateway keeps, and for how long. A timer runs it every hour; each part is
restartable (a run cut short is finished by the next) and reads, where the layout allows, only what it
deletes.

- Messages older than SMS_RETENTION_DAYS (whole UTC days) go, with their recipients, replies, ledger
  rows and reply routes, a bounded batch per run, found through the ledger's days so nothing is
  scanned. The daily usage roll-ups stay: they hold counts, not messages.
- Reply routes (a number's route to the last message sent to it that takes replies) last as long as
  that message can be answered, which is as long as it is kept: a reply is stored in its message's
  partition. They go with the message, before it, a point read per recipient (and a delete of each
  route still leading to it; one a later message took stays). A reply that still finds a route to a
  message gone is kept unlinked (sms/usecases/inbound.py).
- Inbound SMS that answer no message are kept as long as messages, by the UTC day they were received:
  one PartitionKey range (sms/storage/inbound.py).
- Idempotency-Key records go once expired (SMS_IDEMPOTENCY_HOURS after their first request). Their
  layout allows only a scan (sms/storage/idempotency.py): each run reads one 24th of them, so every
  record is read once a day and an expired one goes within a day of expiring.
- Webhook events and delivery logs older than messages go too, for every licensee with endpoints or
  messages that old: a RowKey range of each of their partitions.
- Pumping protection's prefix blocks go once they ended (dispatch ignores them from then on): one
  filtered query of their small table (sms/storage/guard_blocks.py).

Per message, in an order where a run cut short leaves nothing unfindable and no index pointing at
nothing for long: the ledger's per-recipient rows and the reply routes (which name phone numbers, read
from the message), then the message with its recipients and replies, then the ledger entry, found
again by the next run while it is there.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone

from ..storage import (
    DeliveryLogStore,
    EventStore,
    GuardBlockStore,
    IdempotencyStore,
    InboundStore,
    LedgerEntry,
    LedgerQuery,
    LedgerRecipient,
    LedgerStore,
    MessageStore,
    WebhookEndpointStore,
)

log = logging.getLogger("sms.retention")

BATCH = 500  # messages a run removes at most
PAGE = 100
# The idempotency records are swept in this many shares, one a run: the timer runs hourly, so all in a day.
IDEMPOTENCY_SHARES = 24


class Retention:
    def __init__(self, messages: MessageStore, ledger: LedgerStore, keep_days: int, batch: int = BATCH, *,
                 webhooks: WebhookEndpointStore | None = None, events: EventStore | None = None,
                 delivery_log: DeliveryLogStore | None = None, inbound: InboundStore | None = None,
                 idempotency: IdempotencyStore | None = None, guard_blocks: GuardBlockStore | None = None):
        self._messages, self._ledger, self._keep_days, self._batch = messages, ledger, keep_days, batch
        self._webhooks, self._events, self._delivery_log = webhooks, events, delivery_log
        self._inbound, self._idempotency = inbound, idempotency
        self._guard_blocks = guard_blocks

    async def run(self, now: datetime) -> int:
        """Remove up to a batch of messages created before `now` minus the retention period (whole
        UTC days), and what else is due by the rules above. How many messages it removed."""
        cutoff = now.date() - timedelta(days=self._keep_days)
        removed = routes = 0
        days = await self._ledger.days(before=cutoff)
        await self._purge_webhooks(datetime.combine(cutoff, time(), timezone.utc), {licensee for _, licensee in days})
        for day, licensee_id in days:
            start = datetime.combine(day, time(), timezone.utc)
            query = LedgerQuery(licensee_id, created_from=start, created_to=start + timedelta(days=1))
            while removed < self._batch:
                entries, _ = await self._ledger.page(query, min(PAGE, self._batch - removed))
                if not entries:
                    await self._ledger.forget_day(licensee_id, day)
                    break
                for entry in entries:
                    routes += await self._remove(entry)
                    removed += 1
            if removed >= self._batch:
                break
        if removed:
            log.info("retention: removed %d message(s) created before %s (SMS_RETENTION_DAYS=%d) and %d reply route(s) to them",
                     removed, cutoff, self._keep_days, routes)
        if self._inbound is not None:
            if unlinked := await self._inbound.purge_unlinked(before=cutoff):
                log.info("retention: removed %d inbound SMS answering no message, received before %s", unlinked, cutoff)
        if self._idempotency is not None:
            if expired := await self._idempotency.purge_expired(now, now.hour % IDEMPOTENCY_SHARES, IDEMPOTENCY_SHARES):
                log.info("retention: removed %d expired Idempotency-Key record(s)", expired)
        if self._guard_blocks is not None:
            if ended := await self._guard_blocks.purge(now):
                log.info("retention: removed %d ended pumping-protection block(s) and index mark(s)", ended)
        return removed

    async def _purge_webhooks(self, cutoff: datetime, licensees: set[str]) -> None:
        """Events written and delivery attempts made before `cutoff`."""
        if self._webhooks is None or self._events is None or self._delivery_log is None:
            return
        endpoints = await self._webhooks.every()
        attempts = sum([await self._delivery_log.purge(e.licensee_id, e.endpoint_id, cutoff) for e in endpoints])
        events = sum([await self._events.purge(licensee, cutoff) for licensee in sorted(licensees | {e.licensee_id for e in endpoints})])
        if attempts or events:
            log.info("retention: removed %d webhook event row(s) and %d delivery attempt(s) from before %s", events, attempts, cutoff)

    async def _remove(self, entry: LedgerEntry) -> int:
        """Remove one message and what names it; how many reply routes went with it."""
        routes = 0
        loaded = await self._messages.load(entry.comm_id)
        if loaded is not None:
            message, recipients = loaded
            rows = [LedgerRecipient(r.seq, r.phone_number, r.contact_id, r.status.value) for r in recipients]
            await self._ledger.delete_recipients(entry, rows)
            # Dispatch writes routes only for a message that takes replies: no reads for the others.
            if self._inbound is not None and (message.reply_is_allowed or message.reply_is_required):
                routes = await self._inbound.forget_routes(message.comm_id, [r.phone_number for r in recipients])
            await self._messages.delete(entry.comm_id)
        await self._ledger.delete_entry(entry)
        return routes
