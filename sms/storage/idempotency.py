"""Idempotency keys in Table Storage (SmsIdempotency).

PartitionKey is a hash of (licensee, key): keys are scoped to their licensee, spread over
partitions, and the raw key is not stored.

Expired records are purged by a scan: a claim must find a key's record with one point read, knowing
only the key, so no part of the key can say when the record was written, and a record's time is only
in its ExpiresAt property. Microsoft's "Design for querying" (Table storage design guide) calls a
filter on a property that pins no PartitionKey a table scan. So the scan is cut into shares, each a
range of the hash (a PartitionKey range: it reads only that share's rows), one share a run: the retention
timer runs hourly over 24 shares, and every record is read once a day. Records live SMS_IDEMPOTENCY_HOURS
(24 by default), so a run reads about (hours + 24) / 24 rows for each it deletes: 2 by default. Each
delete is its own request (every record is its own partition: no transaction holds two), conditional on
the ETag read, so a record taken over meanwhile by a new request under its key stays.
"""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from . import IdempotencyRecord, IdempotencyStore
from .tables import create_table, storage_errors

IDEMPOTENCY_TABLE = "SmsIdempotency"
PURGE_DELETES = 16  # deletes in flight at once
_HASH_SPAN = 16**8  # the shares split the hash's first 8 hex digits


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

    @storage_errors
    async def purge_expired(self, now: datetime, share: int, shares: int) -> int:
        low, high = _share_bounds(share, shares)
        query, params = "PartitionKey ge @lo and ExpiresAt le @now", {"lo": low, "now": now}
        if high is not None:
            query, params = "PartitionKey ge @lo and PartitionKey lt @hi and ExpiresAt le @now", {**params, "hi": high}
        slots = asyncio.Semaphore(PURGE_DELETES)

        async def delete(partition: str, etag: str) -> bool:
            async with slots:
                try:  # gone meanwhile (404) is no error: delete_entity returns on it
                    await self._table.delete_entity(partition, "", etag=etag, match_condition=MatchConditions.IfNotModified)
                except ResourceModifiedError:  # taken over by a new request under its key: it lives on
                    return False
                return True

        gone = 0
        async for page in self._table.query_entities(query, parameters=params, select=["PartitionKey"]).by_page():
            rows = [row async for row in page]
            gone += sum(await asyncio.gather(*(delete(row["PartitionKey"], row.metadata["etag"]) for row in rows)))
        return gone


def _share_bounds(share: int, shares: int) -> tuple[str, str | None]:
    """The PartitionKeys of a share: [low, high), high None for the last (to the end)."""
    if not 0 <= share < shares:
        raise ValueError(f"share {share} of {shares}")
    high = None if share + 1 == shares else f"{(share + 1) * _HASH_SPAN // shares:08x}"
    return f"{share * _HASH_SPAN // shares:08x}", high
