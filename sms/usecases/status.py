"""Where a message stands: the read model behind GET /api/sms/{commId}."""
from __future__ import annotations

from ..domain.commands import MessageReport
from ..domain.errors import NotFound
from ..domain.model import InboundSms, message_status, reference_for
from ..storage import InboundStore, MessageStore


class MessageStatus:
    def __init__(self, messages: MessageStore, replies: InboundStore):
        self._store, self._inbound = messages, replies

    async def report(self, comm_id: str, licensee_id: str) -> MessageReport:
        loaded = await self._store.load(comm_id)
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
        if message is None or message.licensee_id != licensee_id or self._inbound is None:
            raise NotFound(f"No message with commId {comm_id}")
        return await self._inbound.replies(comm_id)
