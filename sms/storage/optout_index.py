"""SmsOptOutIndex: each scope's opt-outs, listed and searched by number, with every change kept.

SmsOptOutsByNumber (sms/storage/inbound.py) is what dispatch reads, one number's partition at a time; it cannot
list a licensee's opt-outs, and a START overwrites its STOP. This table is the licensee's view:

- PartitionKey: the scope (a licensee id, EVERY_LICENSEE "*", or "*" and a sender number), so a licensee's list is
  one partition and a range query. STOPs are rare beside sends: one partition a licensee is far from Azure's
  2,000 entities a second per partition ("Scalability and performance targets for Table storage").
- RowKey "s|<e164>": the scope's state for the number (OptedOut, At, Source, Reason, ByKeyId). By number, so a
  prefix ("+6141") is a RowKey range.
- RowKey "h|<e164>|<16 digits, newest first>|<source>": one change. The key is the change's own time and
  source, so writing the same change again (a retry, a vendor's resent STOP) writes the same row.
- "~" / "backfilled": written when a backfill from SmsOptOutsByNumber has run to its end.

A change's state and history rows are one entity-group transaction: one PartitionKey, two operations (Azure's
limits: one partition, at most 100 operations, 4 MiB; "Performing entity group transactions",
https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions), so a state is never
written without its history row, nor a history row without its state.
"""
from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import AlreadyExists, RecordChanged
from . import OptOutChange, OptOutIndex, invalid_token
from .ledger import inverted
from .sdk_requests import submit_transaction
from .shards import read_token, write_token
from .tables import create_table, storage_errors

OPT_OUT_INDEX_TABLE = "SmsOptOutIndex"
_STATE, _HISTORY = "s|", "h|"
_MARKER = ("~", "backfilled")


def state_key(number: str) -> str:
    return f"{_STATE}{number}"


def history_key(change: OptOutChange) -> str:
    return f"{_HISTORY}{change.number}|{inverted(change.at)}|{change.source}"


class TableOptOutIndex(OptOutIndex):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableOptOutIndex":
        return cls(service.get_table_client(OPT_OUT_INDEX_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def record(self, change: OptOutChange) -> None:
        await submit_transaction(self._table, _writes(change, ("upsert", {"mode": UpdateMode.REPLACE})))

    @storage_errors
    async def state(self, scope: str, number: str) -> OptOutChange | None:
        try:
            return _change(await self._table.get_entity(scope, state_key(number)))
        except ResourceNotFoundError:
            return None

    @storage_errors
    async def states(self, scope: str, prefix: str, take: int, token: str | None) -> tuple[list[OptOutChange], str | None]:
        low = state_key(prefix)
        high = low + "~"  # after every digit: the numbers starting with the prefix are [low, high)
        after = read_token(token).get(scope) if token else None
        if token and (after is None or not low <= after < high):
            raise invalid_token()  # another scope's, or another prefix's
        bound = "gt" if after is not None else "ge"
        query = f"PartitionKey eq @pk and RowKey {bound} @lo and RowKey lt @hi"
        params = {"pk": scope, "lo": after if after is not None else low, "hi": high}
        pages = self._table.query_entities(query, parameters=params, results_per_page=take).by_page()
        try:
            rows = [row async for row in await anext(pages)]
        except StopAsyncIteration:
            return [], None
        more = pages.continuation_token is not None  # a page may stop short of take and still have more
        return [_change(row) for row in rows], write_token({scope: rows[-1]["RowKey"]}) if more and rows else None

    @storage_errors
    async def history(self, scope: str, number: str) -> list[OptOutChange]:
        low = f"{_HISTORY}{number}|"
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        rows = self._table.query_entities(query, parameters={"pk": scope, "lo": low, "hi": low[:-1] + "}"})
        return [_change(row) async for row in rows]

    @storage_errors
    async def converge(self, change: OptOutChange) -> bool:
        try:  # no state yet: the state and its history row, both, or neither
            await submit_transaction(self._table, _writes(change, ("create", {})))
            return True
        except AlreadyExists:
            pass
        try:
            current = await self._table.get_entity(change.scope, state_key(change.number))
        except ResourceNotFoundError:
            return False  # removed meanwhile (nothing removes states): the next run looks again
        if current["At"] >= change.at:
            return False  # as new as the truth, or newer: a change whose truth is on its way (see sms.usecases.optouts)
        try:
            await submit_transaction(self._table, _writes(change, ("update", {"mode": UpdateMode.REPLACE, "etag": current.metadata["etag"],
                                                                              "match_condition": MatchConditions.IfNotModified})))
        except RecordChanged:
            return False  # a change landed meanwhile: it is newer than what this read
        return True

    @storage_errors
    async def withdraw(self, change: OptOutChange, now: OptOutChange | None) -> None:
        taken_back = {"PartitionKey": change.scope, "RowKey": history_key(change)}
        try:
            state = await self._table.get_entity(change.scope, state_key(change.number))
        except ResourceNotFoundError:
            state = None
        if state is not None and _change(state) == change:
            if_unchanged = {"etag": state.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
            if now is None:
                restore = ("delete", state, if_unchanged)
            else:
                try:  # the change that made the row what it is, as recorded: with its reason and key
                    now = _change(await self._table.get_entity(now.scope, history_key(now)))
                except ResourceNotFoundError:
                    pass  # its index write is still on its way (it writes this same state) or failed (the repair's to do)
                restore = ("update", {"PartitionKey": change.scope, "RowKey": state_key(change.number), **_fields(now)},
                           {"mode": UpdateMode.REPLACE, **if_unchanged})
            try:  # the state and the history row together, or neither: one partition, two operations
                await submit_transaction(self._table, [restore, ("delete", taken_back)])
                return
            except RecordChanged:
                pass  # a state written since the read: it stays
        await self._table.delete_entity(taken_back)  # not there (a withdrawal again) is no error

    @storage_errors
    async def backfilled(self) -> bool:
        try:
            await self._table.get_entity(*_MARKER)
            return True
        except ResourceNotFoundError:
            return False

    @storage_errors
    async def mark_backfilled(self) -> None:
        await self._table.upsert_entity({"PartitionKey": _MARKER[0], "RowKey": _MARKER[1]})


def _writes(change: OptOutChange, state: tuple[str, dict[str, Any]]) -> list[tuple]:
    """The state row written as `state` says, and the change's history row (the same change again: the same row)."""
    fields = _fields(change)
    verb, options = state
    return [(verb, {"PartitionKey": change.scope, "RowKey": state_key(change.number), **fields}, *([options] if options else [])),
            ("upsert", {"PartitionKey": change.scope, "RowKey": history_key(change), **fields}, {"mode": UpdateMode.REPLACE})]


def _fields(change: OptOutChange) -> dict[str, Any]:
    return {"OptedOut": change.opted_out, "At": change.at, "Source": change.source,
            **({"Reason": change.reason} if change.reason is not None else {}),
            **({"ByKeyId": change.by_key_id} if change.by_key_id is not None else {})}


def _change(row: TableEntity) -> OptOutChange:
    number = row["RowKey"].split("|")[1]
    return OptOutChange(row["PartitionKey"], number, row["OptedOut"], row["At"], row["Source"], row.get("Reason"), row.get("ByKeyId"))
