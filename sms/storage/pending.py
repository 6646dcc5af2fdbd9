"""The sweeper's index of pending messages in Table Storage (table SmsPending): what a sweep reads instead
of the whole messages table (sms/usecases/sweep.py says what it covers and what it costs).

Layout: PartitionKey "<shard>-<yyyymmddHHMM>", the time bucket (BUCKET_MINUTES wide) a mark falls due in,
rounded up, after a shard of the commId; RowKey the commId; Due the instant. A sweep reads, in each
shard, the PartitionKey range up to its own bucket: Microsoft's "Design for querying" (Table storage
design guide) calls a PartitionKey range a range query, served from the partitions in range, never a
scan of the table, and the buckets a sweep is done with are emptied, so the range stays short. The shard
goes first so the current bucket's writes spread over SHARDS key ranges (a time-ordered PartitionKey
alone is the "prepend/append anti-pattern": every write to the one partition at the end).
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from datetime import datetime, timedelta, timezone
from typing import Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient, TableServiceClient

from . import PendingIndex, PendingMark
from .limits import MAX_OPERATIONS
from .requests import StorageRequests
from .tables import create_table, storage_errors

log = logging.getLogger("sms.storage.pending")

PENDING_TABLE = "SmsPending"
SHARDS = 8
BUCKET_MINUTES = 5
# Noted marks are written this long after the first of them at most, together.
FLUSH_AFTER_SECONDS = 1.0
# Marks kept while storage refuses them; past this the newest are not kept (their jobs are queued).
MAX_WAITING = 50_000
# The row that says the messages accepted before the index existed were indexed (sorts after every bucket).
_BACKFILLED = ("~backfilled", "done")


def bucket(due: datetime) -> str:
    """The time bucket `due` falls in, rounded up, as yyyymmddHHMM."""
    due = due.astimezone(timezone.utc)
    start = due.replace(minute=due.minute - due.minute % BUCKET_MINUTES, second=0, microsecond=0)
    return (start if start == due else start + timedelta(minutes=BUCKET_MINUTES)).strftime("%Y%m%d%H%M")


def partition(comm_id: str, due: datetime) -> str:
    return f"{zlib.crc32(comm_id.encode()) % SHARDS}-{bucket(due)}"


class TablePendingIndex(PendingIndex):
    def __init__(self, table: TableClient, requests: StorageRequests, flush_after: float = FLUSH_AFTER_SECONDS):
        self._table = table
        self._transactions = requests.transactions(table)
        self._flush_after = flush_after
        self._waiting: dict[str, dict[str, datetime]] = {}  # partition -> commId -> due
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task] = set()  # held: the loop keeps only weak references to tasks

    @classmethod
    def from_service(cls, service: TableServiceClient, requests: StorageRequests) -> "TablePendingIndex":
        return cls(service.get_table_client(PENDING_TABLE), requests)

    def note(self, comm_id: str, due: datetime) -> None:
        if self._count >= MAX_WAITING:
            log.warning("pending index: %d marks wait to be written; %s is not noted (its jobs are queued)", self._count, comm_id)
            return
        marks = self._waiting.setdefault(partition(comm_id, due), {})
        self._count += comm_id not in marks
        marks[comm_id] = due
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_after, self._flush_in_background)

    def _flush_in_background(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        waiting, self._waiting, self._count = self._waiting, {}, 0
        groups = [(p, list(marks.items())[i : i + MAX_OPERATIONS]) for p, marks in waiting.items()
                  for i in range(0, len(marks), MAX_OPERATIONS)]
        results = await asyncio.gather(*(self._write(p, group) for p, group in groups), return_exceptions=True)
        failed = [(p, group) for (p, group), result in zip(groups, results, strict=True) if isinstance(result, BaseException)]
        for p, group in failed:  # kept for the next flush, unless noted again meanwhile
            marks = self._waiting.setdefault(p, {})
            for comm_id, due in group:
                self._count += comm_id not in marks
                marks.setdefault(comm_id, due)
        if failed:
            log.warning("pending index: %d of %d writes failed (%s); kept for the next", len(failed), len(groups),
                        type(next(r for r in results if isinstance(r, BaseException))).__name__)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._flush_after * 5, self._flush_in_background)

    async def _write(self, partition_key: str, marks: Sequence[tuple[str, datetime]]) -> None:
        entities = [{"PartitionKey": partition_key, "RowKey": comm_id, "Due": due} for comm_id, due in marks]
        await self._transactions.submit(self._transactions.upserting(entities))

    @storage_errors
    async def due(self, by: datetime, limit: int) -> list[PendingMark]:
        last = bucket(by)
        shards = await asyncio.gather(*(self._due_in(f"{shard}-", f"{shard}-{last}~", by, limit) for shard in range(SHARDS)))
        marks = sorted((mark for shard in shards for mark in shard), key=lambda m: m.due)
        return marks[:limit]

    async def _due_in(self, first: str, after_last: str, by: datetime, limit: int) -> list[PendingMark]:
        query = "PartitionKey ge @first and PartitionKey lt @end and Due le @by"
        found: list[PendingMark] = []
        async for e in self._table.query_entities(query, parameters={"first": first, "end": after_last, "by": by},
                                                   select=["PartitionKey", "RowKey", "Due"]):
            found.append(PendingMark(e["RowKey"], e["Due"], e["PartitionKey"]))
            if len(found) == limit:
                break
        return found

    @storage_errors
    async def moved(self, marks: Sequence[tuple[PendingMark, datetime]]) -> None:
        again: dict[str, list[tuple[str, datetime]]] = {}
        for mark, due in marks:
            again.setdefault(partition(mark.comm_id, due), []).append((mark.comm_id, due))
        await asyncio.gather(*(self._write(p, group[i : i + MAX_OPERATIONS]) for p, group in again.items()
                               for i in range(0, len(group), MAX_OPERATIONS)))
        await self.done([mark for mark, due in marks if partition(mark.comm_id, due) != mark.where])

    @storage_errors
    async def done(self, marks: Sequence[PendingMark]) -> None:
        by_partition: dict[str, list[str]] = {}
        for mark in marks:
            by_partition.setdefault(mark.where, []).append(mark.comm_id)
        await asyncio.gather(*(self._delete(p, keys[i : i + MAX_OPERATIONS]) for p, keys in by_partition.items()
                               for i in range(0, len(keys), MAX_OPERATIONS)))

    async def _delete(self, partition_key: str, row_keys: Sequence[str]) -> None:
        try:
            await self._table.submit_transaction([("delete", {"PartitionKey": partition_key, "RowKey": key}) for key in row_keys])
        except TableTransactionError:
            # Azure fails the whole transaction when one delete finds nothing (gone already: a sweep
            # stopped part-way before): row by row, where gone is no error.
            await asyncio.gather(*(self._table.delete_entity(partition_key, key) for key in row_keys))

    @storage_errors
    async def backfilled(self) -> bool:
        try:
            await self._table.get_entity(*_BACKFILLED)
        except ResourceNotFoundError:
            return False
        return True

    @storage_errors
    async def mark_backfilled(self) -> None:
        await self._table.upsert_entity({"PartitionKey": _BACKFILLED[0], "RowKey": _BACKFILLED[1]})

    async def create_table(self) -> None:
        await create_table(self._table)

