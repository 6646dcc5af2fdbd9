"""Table Storage adapters for what comes back from phones: replies, reply routes and opt-outs.

- Linked replies live in their message's partition (SmsMessages, RowKey "x<provider>:<its message id>"),
  so a message's replies are one range query away and a vendor's redelivery of the same SMS is the
  same row; unlinked inbound SMS go to SmsInbound, by number.
- SmsReplyRoutes: PartitionKey is a phone number, so both the write (one per recipient of a message
  that allows replies) and the lookup (one per inbound SMS) touch one small partition.
- SmsOptOuts: a licensee's list is its partition (RowKey the number), one query. The scopes every
  licensee shares live together in partition "*", so dispatch reads them in one query too, not one
  per scope (a query stops at each partition boundary with a continuation token: Microsoft's "Query
  Timeout and Pagination"). Their RowKey is the number for EVERY_LICENSEE, as it always was, and
  "<scope>|<number>" for a sender number's scope ("*+61400000000|+61412345678").
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Sequence

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from . import EVERY_LICENSEE, InboundSms, InboundStore, OptOutStore, ReplyRoute
from .tables import MESSAGES_TABLE, create_table, storage_errors

INBOUND_TABLE = "SmsInbound"
REPLY_ROUTES_TABLE = "SmsReplyRoutes"
OPT_OUTS_TABLE = "SmsOptOuts"
REPLY_PREFIX = "x"
_SCOPE_END = "|"  # ends a sender number's scope in a shared opt-out's RowKey; no number or scope contains it


def _reply_row(sms: InboundSms) -> str:
    return f"{REPLY_PREFIX}{sms.provider}:{sms.provider_message_id}"


class TableInboundStore(InboundStore):
    def __init__(self, messages: TableClient, inbound: TableClient, routes: TableClient):
        self._messages, self._inbound, self._routes = messages, inbound, routes

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableInboundStore":
        return cls(service.get_table_client(MESSAGES_TABLE), service.get_table_client(INBOUND_TABLE),
                   service.get_table_client(REPLY_ROUTES_TABLE))

    async def create_tables(self) -> None:
        await asyncio.gather(create_table(self._inbound), create_table(self._routes))

    @storage_errors
    async def remember_routes(self, routes: Sequence[ReplyRoute]) -> None:
        await asyncio.gather(*(
            self._routes.upsert_entity({"PartitionKey": r.number, "RowKey": "", "CommId": r.comm_id, "LicenseeId": r.licensee_id},
                                       mode=UpdateMode.REPLACE)
            for r in routes
        ))

    @storage_errors
    async def route_for(self, number: str) -> ReplyRoute | None:
        try:
            e = await self._routes.get_entity(number, "")
        except ResourceNotFoundError:
            return None
        return ReplyRoute(number, e["CommId"], e["LicenseeId"])

    @storage_errors
    async def add(self, sms: InboundSms) -> bool:
        entity = {
            "PartitionKey": sms.comm_id or sms.from_number, "RowKey": _reply_row(sms), "From": sms.from_number,
            "To": sms.to_number, "Body": sms.body, "ReceivedAt": sms.received_at, "Provider": sms.provider,
            "ProviderMessageId": sms.provider_message_id,
        }
        try:
            await (self._messages if sms.comm_id else self._inbound).create_entity(entity)
        except ResourceExistsError:  # the vendor delivered the same SMS twice
            return False
        return True

    @storage_errors
    async def replies(self, comm_id: str) -> list[InboundSms]:
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": comm_id, "lo": REPLY_PREFIX, "hi": chr(ord(REPLY_PREFIX) + 1)}
        replies = [
            InboundSms(e["From"], e["To"], e["Body"], e["ReceivedAt"], e["Provider"], e["ProviderMessageId"], comm_id)
            async for e in self._messages.query_entities(query, parameters=params)
        ]
        return sorted(replies, key=lambda r: r.received_at)


class TableOptOutStore(OptOutStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableOptOutStore":
        return cls(service.get_table_client(OPT_OUTS_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @staticmethod
    def _keys(scope: str, number: str) -> tuple[str, str]:
        if scope.startswith(EVERY_LICENSEE) and scope != EVERY_LICENSEE:
            return EVERY_LICENSEE, f"{scope}{_SCOPE_END}{number}"
        return scope, number

    @storage_errors
    async def add(self, scope: str, number: str, when: datetime) -> None:
        partition, row = self._keys(scope, number)
        await self._table.upsert_entity({"PartitionKey": partition, "RowKey": row, "OptedOutAt": when}, mode=UpdateMode.REPLACE)

    @storage_errors
    async def remove(self, scope: str, number: str) -> None:
        await self._table.delete_entity(*self._keys(scope, number))  # deleting what is not there is not an error

    @storage_errors
    async def numbers(self, scope: str) -> set[str]:
        if scope.startswith(EVERY_LICENSEE):
            return (await self.shared_scopes()).get(scope, set())
        return {e["RowKey"] async for e in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": scope}, select=["RowKey"])}

    @storage_errors
    async def shared_scopes(self) -> dict[str, set[str]]:
        scopes: dict[str, set[str]] = {}
        query = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": EVERY_LICENSEE}, select=["RowKey"])
        async for e in query:
            scope, _, number = e["RowKey"].rpartition(_SCOPE_END)
            scopes.setdefault(scope or EVERY_LICENSEE, set()).add(number)
        return scopes
