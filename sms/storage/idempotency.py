"""Idempotency keys in Table Storage (SmsIdempotency).

PartitionKey is a hash of (licensee, key): keys are scoped to their licensee, spread over
partitions, and the raw key is not stored.
"""
from __future__ import annotations

import hashlib

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from . import IdempotencyRecord, IdempotencyStore
from .tables import create_table, storage_errors

IDEMPOTENCY_TABLE = "SmsIdempotency"


def _partition(licensee_id: str, key: str) -> str:
    return hashlib.sha256(f"{licensee_id}\n{key}".encode()).hexdigest()


class TableIdempotencyStore(IdempotencyStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableIdempotencyStore":
        return cls(service.get_table_client(IDEMPOTENCY_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    def _entity(self, r: IdempotencyRecord) -> dict:
        return {"PartitionKey": _partition(r.licensee_id, r.key), "RowKey": "", "LicenseeId": r.licensee_id,
                "RequestHash": r.request_hash, "CommId": r.comm_id, "CreatedAt": r.created_at, "ExpiresAt": r.expires_at}

    @storage_errors
    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        try:
            await self._table.create_entity(self._entity(record))
            return None
        except ResourceExistsError:
            e = await self._table.get_entity(_partition(record.licensee_id, record.key), "")
            return IdempotencyRecord(e["LicenseeId"], record.key, e["RequestHash"], e["CommId"], e["CreatedAt"],
                                     e["ExpiresAt"], e.metadata["etag"])

    @storage_errors
    async def release(self, record: IdempotencyRecord) -> None:
        partition = _partition(record.licensee_id, record.key)
        try:
            e = await self._table.get_entity(partition, "")
            if e["CommId"] == record.comm_id:  # ours: the commId is new per request
                await self._table.delete_entity(partition, "", etag=e.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):  # gone, or replaced meanwhile: not ours to remove
            pass

    @storage_errors
    async def take_over(self, expired: IdempotencyRecord, record: IdempotencyRecord) -> bool:
        try:
            await self._table.update_entity(self._entity(record), mode=UpdateMode.REPLACE, etag=expired.etag,
                                            match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:  # someone took it over first
            return False
        return True
