"""What comes back from carriers and phones: delivery receipts, replies, opt-out keywords."""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime
from typing import Callable

from .. import telemetry
from ..domain import transitions
from ..domain.breaker import Breakers, delivery_key
from ..domain.events import EventBatch, Reply, batch_id, reply_events
from ..domain.model import InboundSms, Message, Recipient, Status, utcnow
from ..domain.phone import mask, mask_numbers
from ..domain.routing import region_of
from ..storage import EVERY_LICENSEE, EventStore, InboundStore, MessageStore, ReplyRoute
from .announce import Announcer
from .ledger import Ledger
from .optimistic import update_optimistically
from .optouts import OptOuts, keyword
from .pumping import PumpingProtection

log = logging.getLogger("sms.inbound")

_REFERENCE = re.compile(r"^([0-9a-f]{32}):(\d{1,6})$")
ATTEMPTS = 3


class Inbound:
    def __init__(self, messages: MessageStore, inbound: InboundStore, opt_outs: OptOuts, ledger: Ledger,
                 events: EventStore, announcer: Announcer, breakers: Breakers, clock: Callable[[], datetime] = utcnow,
                 pumping: PumpingProtection | None = None):
        self._messages = messages
        self._pumping = pumping  # a receipt tells whether a prefix's SMS are confirmed
        self._breakers = breakers  # a receipt tells the provider's health to that country
        self._inbound = inbound
        self._opt_outs = opt_outs
        self._ledger = ledger
        self._events = events
        self._announcer = announcer
        self._clock = clock

    async def apply_receipt(self, reference: str, status: Status, provider_message_id: str | None = None,
                            detail: str | None = None, provider: str = "") -> bool:
        """Move the referenced recipient to the receipt's status, unless it is already there or beyond.

        Receipts arrive late, twice and out of order: only a forward move is written (ETag-checked),
        so a late "sent" never overwrites "delivered". False when nothing changed.
        """
        match = _REFERENCE.match(reference or "")
        if not match:
            log.warning("receipt with an unknown reference %s ignored", mask_numbers(repr((reference or "")[:64])))
            return False
        comm_id, seq = match.group(1), int(match.group(2))

        found: list[tuple[Message, Recipient]] = []

        async def read() -> Recipient | None:
            loaded = await self._messages.load(comm_id, seq, seq)
            if not loaded or not loaded[1]:
                return None
            found[:] = [(loaded[0], loaded[1][0])]
            return loaded[1][0]

        def change(current: Recipient | None) -> Recipient | None:
            if current is None:
                log.warning("receipt for unknown recipient %s ignored", reference)
                return None
            return transitions.receipt(current, status, provider_message_id, detail, at=self._clock())

        async def write(updated: Recipient) -> bool:
            [stored] = await self._messages.update_recipients(comm_id, [updated])
            found[:] = [(found[0][0], stored)]
            if status is Status.DELIVERED:
                telemetry.delivered.add(1, {"provider": provider})
            if status in (Status.DELIVERED, Status.UNDELIVERED, Status.FAILED) and stored.provider:
                key = delivery_key(stored.provider, region_of(stored.phone_number))
                if change := self._breakers.delivered(key, status is Status.DELIVERED):
                    log.warning("%s", change)
            return True

        # The worker or another receipt may write first: then it looks again.
        changed = bool(await update_optimistically(read, change, write, attempts=ATTEMPTS, what=f"recipient {reference}"))
        if found:
            # Even when nothing changed: a resent receipt finishes what a failed ledger write left.
            message, recipient = found[0]
            await self._ledger.record(message, [recipient])  # a receipt says nothing of who sent it
            if changed and self._pumping is not None and status in (Status.DELIVERED, Status.UNDELIVERED, Status.FAILED):
                await self._pumping.receipt(message, recipient, status is Status.DELIVERED)  # never raises
        return changed

    async def receive(self, sms: InboundSms) -> InboundSms:
        """Store an inbound SMS, linked to the message it answers, and act on STOP / START.

        STOP and START apply to the number they were sent to (`to`), for every licensee texting from
        it, and to the licensee whose message they answer.
        """
        route = await self._inbound.route_for(sms.from_number)
        message = await self._messages.message(route.comm_id) if route else None
        if route is not None and message is None:
            # A route lasts no longer than its message: retention removes it with the message, and this
            # one was left (written before it did, or in the moment before the message went). A reply
            # stored under a message that is gone would sit in its partition for good.
            await self._inbound.forget_routes(route.comm_id, [sms.from_number])
            route = None
        licensee_id = route.licensee_id if route else None
        action = keyword(sms.body)
        if action == "out":
            scopes = await self._opt_outs.opt_out(sms.from_number, sms.to_number, licensee_id, sms.received_at)
            log.info("%s opted out of %s", mask(sms.from_number), "every licensee" if scopes == [EVERY_LICENSEE]
                     else f"licensee {licensee_id} and every licensee texting from {mask(sms.to_number)}")
        elif action == "in":
            await self._opt_outs.opt_in(sms.from_number, sms.to_number, licensee_id, sms.received_at)
            log.info("%s opted back in to %s", mask(sms.from_number), mask(sms.to_number))
        stored = replace(sms, comm_id=route.comm_id if route else None)
        if route is not None and message is not None:
            # Before the SMS is stored: a vendor resends what we did not answer with a 2xx, and a resend
            # makes the same batch (its id is the SMS's time and provider id; Twilio's carries no time,
            # so a resend after a lost answer can make a second batch: the payload's providerMessageId
            # says it is the same SMS).
            await self._tell(route, message, stored, "opted_out" if action == "out" else "opted_in" if action == "in" else None)
        await self._inbound.add(stored)
        return stored

    async def _tell(self, route: ReplyRoute, message: Message, sms: InboundSms, opt_out: str | None) -> None:
        """reply.received (and optout.changed for STOP/START) for the licensee whose message it answers.
        An SMS we cannot place tells nobody: whose it is is unknown."""
        if not await self._announcer.endpoints(route.licensee_id):
            return
        batch = batch_id(sms.received_at, f"{sms.provider}:{sms.provider_message_id}")
        events = reply_events(batch, Reply(
            route.comm_id, sms.from_number, sms.to_number, sms.body, sms.received_at, sms.provider, sms.provider_message_id,
            opt_out, route.recipient_id, route.contact_id, message.linked_object_id, message.suite_id))
        if await self._announcer.announce(route.licensee_id, route.comm_id, batch, events):
            await self._events.add(EventBatch(route.licensee_id, route.comm_id, batch, tuple(events)))
