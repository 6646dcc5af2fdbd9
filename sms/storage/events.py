"""Webhook events in Table Storage, kept in the message ledger's partitions (table SmsLedger).

A batch is the events one write produced. Its rows sit in the partition of the message they are
about ("<licensee>|<shard>", sms/storage/ledger.py), so the ledger writes a status change's batch in
the same entity-group transaction as the entry that records the change: the event exists if and only
if the change was recorded, and two writers racing on one entry cannot both record it (the loser's
transaction, events included, is refused by the entry's ETag).

    x|<batch>|<commId>|<part>     E0, E1, ...: the events' JSON, one property each

<batch> starts with the 16-digit instant it was written, so the rows of a time range are one RowKey
range per shard (what a replay of a time range reads). A row holds at most ROW_EVENTS events and
stays well under Azure's 1 MiB per entity; a job's batch (100 recipients, two events each at most) is
one or two rows.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.events import EventBatch, WebhookEvent, batch_id
from . import EventStore, invalid_token
from .limits import MAX_ENTITY_BYTES, MAX_OPERATIONS, MAX_STRING_BYTES, check_entity, utf16_units
from .sdk_requests import delete_range
from .shards import END, SHARDS, page_shards, partition, read_token, write_token
from .tables import storage_errors

EVENTS_TABLE = "SmsLedger"  # the ledger's table: a batch is written in the transaction of its ledger entry
ROW_EVENTS = 200
_ROW_BUDGET = MAX_ENTITY_BYTES // 2  # half of Azure's entity limit: room for keys and the rest


_KEYS = 4  # PartitionKey, RowKey, CommId, Part: the properties of a row that are not events


def batch_rows(batch: EventBatch) -> list[dict[str, Any]]:
    """The batch as rows of its message's ledger partition, in order."""
    rows: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    size = 0
    for event in batch.events:
        units = 2 * utf16_units(event.body)
        if units > MAX_STRING_BYTES:  # the builders cap every text; this is a bug, said before the write
            raise ValueError(f"event {event.id} is {units} bytes; a property holds {MAX_STRING_BYTES}")
        if current and (len(current) - _KEYS >= ROW_EVENTS or size + units > _ROW_BUDGET):
            rows.append(current)
            current, size = {}, 0
        if not current:
            current = {"PartitionKey": partition(batch.licensee_id, batch.comm_id),
                       "RowKey": f"x|{batch.batch}|{batch.comm_id}|{len(rows):02d}", "CommId": batch.comm_id, "Part": len(rows)}
        current[f"E{len(current) - _KEYS}"] = event.body
        size += units
    if current:
        rows.append(current)
    return rows


def _events_of(row: TableEntity) -> list[WebhookEvent]:
    events, i = [], 0
    while (body := row.get(f"E{i}")) is not None:
        payload = json.loads(body)
        events.append(WebhookEvent(payload["id"], payload["type"], body))
        i += 1
    return events


class TableEventStore(EventStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableEventStore":
        return cls(service.get_table_client(EVENTS_TABLE))

    @storage_errors
    async def add(self, batch: EventBatch) -> None:
        rows = batch_rows(batch)
        for row in rows:
            check_entity(row)
        for i in range(0, len(rows), MAX_OPERATIONS):
            await self._table.submit_transaction([("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[i : i + MAX_OPERATIONS]])

    @storage_errors
    async def batch(self, licensee_id: str, comm_id: str, batch: str) -> list[WebhookEvent] | None:
        prefix = f"x|{batch}|{comm_id}|"
        rows = self._table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", parameters={
            "pk": partition(licensee_id, comm_id), "lo": prefix, "hi": prefix + END})
        found = sorted([row async for row in rows], key=lambda row: row["RowKey"])
        return [event for row in found for event in _events_of(row)] if found else None

    @storage_errors
    async def batches(self, licensee_id: str, start: datetime, end: datetime, take: int,
                      token: str | None = None) -> tuple[list[tuple[str, str]], str | None]:
        low, high = f"x|{batch_id(start)}", f"x|{batch_id(end)}"

        async def fetch(p: str, after: str | None) -> tuple[list[TableEntity], bool]:
            # A batch's first row only ("Part eq 0" is applied by the service inside the range).
            query = "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi and Part eq 0" if after else \
                    "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and Part eq 0"
            pages = self._table.query_entities(query, parameters={"pk": p, "lo": after or low, "hi": high},
                                               select=["RowKey", "CommId"], results_per_page=take).by_page()
            try:
                rows = [row async for row in await anext(pages)]
            except StopAsyncIteration:
                return [], False
            return rows, pages.continuation_token is not None

        return await page_shards(licensee_id, token, take, fetch, lambda row: (row["CommId"], row["RowKey"].split("|")[1]))

    @storage_errors
    async def purge(self, licensee_id: str, before: datetime) -> int:
        return sum([await delete_range(self._table, f"{licensee_id}|{shard}", "x|", f"x|{batch_id(before)}") for shard in range(SHARDS)])

    @storage_errors
    async def of_message(self, licensee_id: str, comm_id: str, since: datetime, take: int,
                         token: str | None = None) -> tuple[list[WebhookEvent], str | None]:
        # A message's batches are not one key range (a batch's key starts with when it was written), so this reads the
        # range of its partition's batches from `since` on, and the service hands back only the message's (CommId): the
        # rows the service goes through are those the shard's messages made since (at most SMS_RETENTION_DAYS of them:
        # purge deletes older), not every message's ever. Chosen over a pointer row per batch (e|<commId>|<batch>), which
        # would make the read one key range but cost every batch's transaction an entity more, and retention a way to
        # find pointers by age: the write path pays on every change, where this pays only when someone looks.
        start, skip = _event_position(token) if token else (f"x|{batch_id(since)}", 0)
        rows = self._table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and CommId eq @c", parameters={
            "pk": partition(licensee_id, comm_id), "lo": start, "hi": "x|" + END, "c": comm_id})
        found: list[WebhookEvent] = []
        async for row in rows:
            if len(found) == take:  # a row beyond a full page: it starts the next one
                return found, write_token({"r": row["RowKey"], "s": "0"})
            events = _events_of(row)[skip:]
            room = take - len(found)
            found += events[:room]
            if len(events) > room:
                return found, write_token({"r": row["RowKey"], "s": str(skip + room)})
            skip = 0
        return found, None


def _event_position(token: str) -> tuple[str, int]:
    """Where of_message's token says to go on: a batch row's key, and how many of its events were shown."""
    position = read_token(token)
    row, skip = position.get("r", ""), position.get("s", "")
    if not row.startswith("x|") or not skip.isdigit() or int(skip) > ROW_EVENTS:
        raise invalid_token()
    return row, int(skip)
