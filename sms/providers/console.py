"""The provider used when none is configured: logs each send instead of texting a phone.

With SMS_CONSOLE_OUTBOX set it also appends one JSON line per send to that file, so a
person (or an end-to-end test in another process) can see exactly what would have gone out.
That file is also its record after a crash (`find`): a recipient is in it exactly when it was
"sent", since the line is written before the send returns. Without it, it cannot tell.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

from ..domain.model import utcnow
from ..domain.phone import mask
from . import Found, OutgoingSms, SendOutcome, SmsProvider, Trace

log = logging.getLogger("sms.providers.console")


class ConsoleProvider(SmsProvider):
    name = "console"

    def __init__(self, outbox_path: str | None = None):
        self._outbox = Path(outbox_path) if outbox_path else None

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        provider_id = f"console-{uuid.uuid4().hex}"
        log.info("SMS to %s (%d chars) accepted as %s", mask(sms.to), len(sms.body), provider_id)
        if self._outbox:
            line = {
                "providerMessageId": provider_id,
                "recipientId": sms.recipient_id,
                "to": sms.to,
                "from": sms.sender,
                "body": sms.body,
                "at": utcnow().isoformat(),
            }
            # One small append per send, written whole in one call so concurrent sends never interleave.
            with self._outbox.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return SendOutcome(provider_message_id=provider_id)

    async def find(self, sms: OutgoingSms) -> Trace:
        if self._outbox is None:
            return Trace(Found.UNKNOWN)  # its only other record, the log, went with the process
        return await asyncio.to_thread(self._find_in_outbox, sms.recipient_id)

    def _find_in_outbox(self, recipient_id: str) -> Trace:
        needle = json.dumps({"recipientId": recipient_id})[1:-1]  # '"recipientId": "<id>"', as each line spells it
        try:
            with self._outbox.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    if needle not in line:
                        continue
                    try:
                        return Trace(Found.SENT, json.loads(line).get("providerMessageId"))
                    except ValueError:  # a line cut short by the crash: the send had begun writing it
                        return Trace(Found.SENT)
        except FileNotFoundError:
            pass
        return Trace(Found.NOT_SENT)
