"""What comes back from carriers and phones: delivery receipts, replies, opt-out keywords."""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from . import telemetry
from .errors import NotFound, RecordChanged
from .model import Status
from .optouts import OptOuts, keyword
from .phone import mask, mask_numbers
from .storage import EVERY_LICENSEE, InboundSms, InboundStore, MessageStore

log = logging.getLogger("sms.inbound")

_REFERENCE = re.compile(r"^([0-9a-f]{32}):(\d{1,6})$")
ATTEMPTS = 3


class InboundService:
    def __init__(self, messages: MessageStore, inbound: InboundStore, opt_outs: OptOuts):
        self._messages = messages
        self._inbound = inbound
        self._opt_outs = opt_outs

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
        for _ in range(ATTEMPTS):
            loaded = await self._messages.load(comm_id, seq, seq)
            if not loaded or not loaded[1]:
                log.warning("receipt for unknown recipient %s ignored", reference)
                return False
            current = loaded[1][0]
            if status is Status.QUEUED or not current.status.can_become(status):
                return False
            failed = status in (Status.FAILED, Status.UNDELIVERED)
            updated = current.moved_to(
                status,
                provider_message_id=current.provider_message_id or provider_message_id,
                last_error=(detail or status.value) if failed else current.last_error,
            )
            try:
                await self._messages.update_recipients(comm_id, [updated])
                if status is Status.DELIVERED:
                    telemetry.delivered.add(1, {"provider": provider})
                return True
            except RecordChanged:
                continue  # the worker or another receipt wrote first: look again
        raise RecordChanged(f"could not apply a receipt to {reference}")

    async def receive(self, sms: InboundSms) -> InboundSms:
        """Store an inbound SMS, linked to the message it answers, and act on STOP / START.

        STOP and START apply to the number they were sent to (`to`), for every licensee texting from
        it, and to the licensee whose message they answer.
        """
        route = await self._inbound.route_for(sms.from_number)
        licensee_id = route.licensee_id if route else None
        action = keyword(sms.body)
        if action == "out":
            scopes = await self._opt_outs.opt_out(sms.from_number, sms.to_number, licensee_id)
            log.info("%s opted out of %s", mask(sms.from_number), "every licensee" if scopes == [EVERY_LICENSEE]
                     else f"licensee {licensee_id} and every licensee texting from {mask(sms.to_number)}")
        elif action == "in":
            await self._opt_outs.opt_in(sms.from_number, sms.to_number, licensee_id)
            log.info("%s opted back in to %s", mask(sms.from_number), mask(sms.to_number))
        stored = replace(sms, comm_id=route.comm_id if route else None)
        await self._inbound.add(stored)
        return stored

    async def replies(self, comm_id: str, licensee_id: str) -> list[InboundSms]:
        message = await self._messages.message(comm_id)
        if message is None or message.licensee_id != licensee_id:
            raise NotFound(f"No message with commId {comm_id}")
        return await self._inbound.replies(comm_id)
