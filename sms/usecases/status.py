"""Where a message stands: the read model behind GET /api/sms/{commId} (and its replies and webhook events).

A message accepted in one storage call (issue 30) has no rows for about a second, until the worker writes them from
its job. Its commId is tagged (sms/domain/comm_ids.py): when no row is found and the id is recognised as one minted
for this licensee, the answer is what the id says (ProvisionalReport) and its replies and events are none yet, not
404. An id not recognised (made up, too old, minted for another licensee, or any version-4 id) answers 404 as before;
a stored message of another licensee answers 404 before its id is looked at.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from ..domain.comm_ids import CommIdKeys, Tagged, recognised_by
from ..domain.commands import MessageReport, ProvisionalReport
from ..domain.errors import FieldError, NotFound, ValidationFailed
from ..domain.events import WebhookEvent
from ..domain.model import InboundSms, Status, message_status, reference_for, utcnow
from ..storage import EventStore, InboundStore, MessageStore
from .paging import bind, unbind

DEFAULT_EVENTS_TAKE = 100
MAX_EVENTS_TAKE = 500
# A message's events are read from its creation on, less this: a batch is named by the clock of the worker that wrote it
# (or by the vendor's time of a reply), and those clocks may be a little behind the one that accepted the message.
EVENT_CLOCK_SLACK = timedelta(minutes=5)


class MessageStatus:
    def __init__(self, messages: MessageStore, replies: InboundStore, events: EventStore, comm_ids: CommIdKeys | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self._store, self._inbound, self._events = messages, replies, events
        self._comm_ids, self._clock = comm_ids, clock

    def _unwritten(self, comm_id: str, licensee_id: str) -> Tagged | None:
        """What the id says, when it is one the gateway minted for this licensee in the last days (no storage call)."""
        return recognised_by(self._comm_ids, comm_id, licensee_id, self._clock())

    async def report(self, comm_id: str, licensee_id: str) -> MessageReport | ProvisionalReport:
        loaded = await self._store.load(comm_id)
        if loaded is None and (tagged := self._unwritten(comm_id, licensee_id)) is not None:
            gate = await self._store.gate(comm_id)
            if gate is None or not gate.materialized:
                # No rows yet: queued, unless this licensee's cancel came first (the worker then writes every recipient
                # cancelled; another licensee's gate is ignored by the worker, sms/usecases/materialize.py).
                cancelled = gate is not None and gate.cancelled_by(licensee_id)
                return ProvisionalReport(comm_id, reference_for(comm_id), (Status.CANCELLED if cancelled else Status.QUEUED).value,
                                         licensee_id, tagged.accepted_at, tagged.recipient_count)
            loaded = await self._store.load(comm_id)  # the worker wrote them between the two reads
        # Another licensee's message answers exactly as a missing one: its existence is not revealed.
        if loaded is None or loaded[0].licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        message, recipients = loaded
        replies = None
        if message.reply_is_allowed or message.reply_is_required:
            replies = await self._inbound.replies(comm_id)
        return MessageReport(message, reference_for(comm_id), message_status(recipients), recipients, replies)

    async def replies(self, comm_id: str, licensee_id: str) -> list[InboundSms]:
        """GET /api/sms/{commId}/replies: the replies linked to one of the licensee's messages, oldest first."""
        message = await self._store.message(comm_id)
        if message is None and self._unwritten(comm_id, licensee_id) is not None:
            return []  # accepted, its rows not yet written: no reply can be linked to it yet
        if message is None or message.licensee_id != licensee_id or self._inbound is None:
            raise NotFound(f"No message with commId {comm_id}")
        return await self._inbound.replies(comm_id)

    async def events(self, comm_id: str, licensee_id: str, take: int | None = None,
                     token: str | None = None) -> tuple[list[WebhookEvent], str | None]:
        """GET /api/sms/{commId}/events: the webhook events one of the licensee's messages produced, oldest first, a page
        at a time, as its endpoints were sent them. Events are kept only while the licensee has a webhook endpoint
        (sms/usecases/announce.py): a change made while it had none made none."""
        take = DEFAULT_EVENTS_TAKE if take is None else take
        if not 1 <= take <= MAX_EVENTS_TAKE:
            raise ValidationFailed([FieldError("take", "InvalidValue", f"take must be from 1 to {MAX_EVENTS_TAKE}")])
        after = unbind(token, licensee_id, comm_id)  # a token that is not this message's is a 400 before any read
        message = await self._store.message(comm_id)
        if message is None and self._unwritten(comm_id, licensee_id) is not None:
            return [], None  # accepted, its rows not yet written: nothing has happened to it that makes an event
        if message is None or message.licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        events, more = await self._events.of_message(licensee_id, comm_id, message.created_at - EVENT_CLOCK_SLACK, take, after)
        return events, bind(more, licensee_id, comm_id)
