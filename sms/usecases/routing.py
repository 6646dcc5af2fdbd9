"""Which routing table a licensee's messages follow (sms/domain/routing.py): its own, when it has set
one, or the deployment's default (SMS_ROUTES; without it, everything through the first provider)."""
from __future__ import annotations

from typing import Awaitable, Callable

from ..domain.routing import RoutingTable


class Routes:
    def __init__(self, default: RoutingTable, own: Callable[[str], Awaitable[RoutingTable | None]] | None = None):
        self.default = default
        self._own = own

    async def table_for(self, licensee_id: str) -> RoutingTable:
        own = await self._own(licensee_id) if self._own is not None else None
        return own or self.default
