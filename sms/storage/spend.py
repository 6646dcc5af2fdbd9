"""Spend counters in Table Storage (table SmsSpend): PartitionKey the licensee, RowKey the period
("day-YYYYMMDD", "month-YYYYMM" of its zone), Segments and Cost (Int64, millionths) reserved in it.

A reservation writes the day's row and the month's together in one entity-group transaction: both rows
share the licensee's partition (Azure: one PartitionKey, at most 100 operations), each operation is an
Insert (a new period) or an Update conditional on the ETag read (If-Match), so the transaction fails whole
when another writer got there first ("Operations within a change set are processed atomically; that is,
all operations in the change set either succeed or fail", Performing entity group transactions,
learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions), and the writer reads
again and decides again. One round trip per reservation write, exact across processes.

The usual write (both rows there already: every write but a period's first) is a transaction of
conditional replaces, sent as the send path sends its own (SMS_STORAGE_REQUESTS: sms/storage/requests.py),
because a capped licensee's every accept makes one: through the SDK's submit_transaction it cost more CPU
than the rest of the accept. A period's first write (an insert beside a replace) goes through the SDK.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import AlreadyExists, RecordChanged
from . import SpendCounter, SpendStore
from .requests import StorageRequests
from .sdk_requests import submit_transaction
from .tables import create_table, storage_errors

SPEND_TABLE = "SmsSpend"


class TableSpendStore(SpendStore):
    def __init__(self, table: TableClient, requests: StorageRequests):
        self._table = table
        self._transactions = requests.transactions(table)

    @classmethod
    def from_service(cls, service: TableServiceClient, requests: StorageRequests) -> "TableSpendStore":
        return cls(service.get_table_client(SPEND_TABLE), requests)

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def read(self, licensee_id: str, keys: Sequence[str]) -> dict[str, SpendCounter]:
        async def one(key: str) -> SpendCounter:
            try:
                row = await self._table.get_entity(licensee_id, key)
            except ResourceNotFoundError:
                return SpendCounter(key)
            return SpendCounter(key, _int64(row.get("Segments")), _int64(row.get("Cost")), row.metadata["etag"])

        return {c.key: c for c in await asyncio.gather(*(one(key) for key in keys))}

    @storage_errors
    async def write(self, licensee_id: str, counters: Sequence[SpendCounter]) -> list[SpendCounter]:
        entities = [{"PartitionKey": licensee_id, "RowKey": c.key, "Segments": EntityProperty(c.segments, EdmType.INT64),
                     "Cost": EntityProperty(c.cost, EdmType.INT64)} for c in counters]
        if all(c.etag is not None for c in counters):
            etags = await self._transactions.replace([(entity, c.etag) for entity, c in zip(entities, counters, strict=True)])
            return [SpendCounter(c.key, c.segments, c.cost, etag) for c, etag in zip(counters, etags, strict=True)]
        operations: list[tuple] = []
        for c, entity in zip(counters, entities, strict=True):
            if c.etag is None:
                operations.append(("create", entity))
            else:
                operations.append(("update", entity, {"mode": UpdateMode.REPLACE, "etag": c.etag,
                                                      "match_condition": MatchConditions.IfNotModified}))
        try:
            etags = await submit_transaction(self._table, operations)
        except AlreadyExists:  # another writer began the period first: read it and decide again
            raise RecordChanged(f"licensee {licensee_id}'s spend counters were created meanwhile") from None
        return [SpendCounter(c.key, c.segments, c.cost, etag) for c, etag in zip(counters, etags, strict=True)]


def _int64(value: object) -> int:
    """An Int64 property as read: azure-data-tables hands Edm.Int64 back as an EntityProperty."""
    if isinstance(value, EntityProperty):
        value = value.value
    return int(value or 0)  # type: ignore[call-overload]
