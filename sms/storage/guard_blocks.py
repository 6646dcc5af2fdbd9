"""Prefix blocks of pumping protection in Table Storage (table SmsGuardBlocks).

PartitionKey the licensee, RowKey the prefix ("+4479461": '+' and digits, none of the characters a key
may not hold), Until the block's end, with what tripped it. Index marks in partition INDEX ("*", the
scope no licensee can be, as EVERY_LICENSEE's): RowKey the licensee, Until its latest block's end. A
dispatch reads the index (one query, every few seconds per process) and a licensee's partition only
when it is marked: the licensees that never had a block cost nothing to send for.

Blocks are few (a fraud burst trips one prefix for half an hour), so the table stays small: retention's
purge is one filtered query of it all and a delete per row that ended.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import RecordChanged
from ..domain.pumping import PrefixBlock
from . import GuardBlockStore
from .limits import check_entity
from .tables import create_table, storage_errors

GUARD_BLOCKS_TABLE = "SmsGuardBlocks"
INDEX = "*"
MARK_ATTEMPTS = 10  # ETag-checked writes of a licensee's mark; blocks of one licensee rarely trip together


class TableGuardBlockStore(GuardBlockStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableGuardBlockStore":
        return cls(service.get_table_client(GUARD_BLOCKS_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def put(self, block: PrefixBlock) -> None:
        # The mark first: a block written without one would be obeyed by no other process.
        await self._mark(block.licensee_id, block.until)
        entity = {"PartitionKey": block.licensee_id, "RowKey": block.prefix, "Since": block.since, "Until": block.until,
                  "Sends": block.sends, "Confirmed": block.confirmed, "WindowSeconds": int(block.window.total_seconds()),
                  "CommId": block.comm_id}
        check_entity(entity)
        await self._table.upsert_entity({k: v for k, v in entity.items() if v is not None}, mode=UpdateMode.REPLACE)

    async def _mark(self, licensee_id: str, until: datetime) -> None:
        """The licensee's mark at least as late as `until`. Conditional on the mark as read: two workers
        tripping blocks of one licensee at once must not leave the earlier end (the later block would go
        unobeyed by the other workers once the mark ended)."""
        for _ in range(MARK_ATTEMPTS):
            try:
                mark = await self._table.get_entity(INDEX, licensee_id)
            except ResourceNotFoundError:
                mark = None
            entity = {"PartitionKey": INDEX, "RowKey": licensee_id, "Until": until}
            try:
                if mark is None:
                    await self._table.create_entity(entity)
                elif mark["Until"] < until:
                    await self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=mark.metadata["etag"],
                                                    match_condition=MatchConditions.IfNotModified)
                return
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue  # another worker wrote it meanwhile: read it again
        raise RecordChanged(f"licensee {licensee_id}'s block mark kept changing")

    @storage_errors
    async def licensees(self, now: datetime) -> set[str]:
        rows = self._table.query_entities("PartitionKey eq @p and Until gt @now", parameters={"p": INDEX, "now": now},
                                          select=["RowKey"])
        return {row["RowKey"] async for row in rows}

    @storage_errors
    async def live(self, licensee_id: str, now: datetime) -> list[PrefixBlock]:
        rows = self._table.query_entities("PartitionKey eq @p and Until gt @now", parameters={"p": licensee_id, "now": now})
        return [PrefixBlock(licensee_id, row["RowKey"], row["Since"], row["Until"], row["Sends"], row["Confirmed"],
                            timedelta(seconds=row["WindowSeconds"]), row.get("CommId")) async for row in rows]

    @storage_errors
    async def lift(self, licensee_id: str, prefix: str) -> bool:
        try:
            await self._table.get_entity(licensee_id, prefix, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        await self._table.delete_entity(licensee_id, prefix)  # its mark stays until it ends: a read of nothing meanwhile
        return True

    @storage_errors
    async def purge(self, now: datetime) -> int:
        removed = 0
        async for row in self._table.query_entities("Until le @now", parameters={"now": now}, select=["PartitionKey", "RowKey"]):
            try:
                # Only as read: a mark (or block) written again since, for a new block, stays.
                await self._table.delete_entity(row["PartitionKey"], row["RowKey"], etag=row.metadata["etag"],
                                                match_condition=MatchConditions.IfNotModified)
                removed += 1
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        return removed
