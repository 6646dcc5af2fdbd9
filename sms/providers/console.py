"""The provider used when none is configured: logs each send instead of texting a phone.

With SMS_CONSOLE_OUTBOX set it also appends one JSON line per send to that file, so a
person (or an end-to-end test in another process) can see exactly what would have gone out.
"""
from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from ..model import utcnow
from ..phone import mask
from . import OutgoingSms, SendOutcome, SmsProvider

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
