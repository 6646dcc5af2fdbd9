"""Table Storage adapters for what comes back from phones: replies, reply routes and opt-outs.

- Linked replies live in their message's partition (SmsMessages, RowKey "x<provider>:<its message id>"),
  so a message's replies are one range query away, a vendor's redelivery of the same SMS is the same
  row, and they go with their message.
- SmsInbound: the SMS that answer no message, PartitionKey "days|<yyyymmdd>|<shard>" (the UTC day it
  was received, the shard from its number), RowKey "x<provider>:<its message id>". Retention deletes
  them by the day, so what it deletes is one PartitionKey range ("days|" up to the first day kept) and
  it reads nothing else. A day is UNLINKED_SHARDS partitions, so no one partition takes every inbound SMS
  of a day (Azure's target is 2,000 entities a second per partition: "Scalability and performance targets
  for Table storage"); a number's SMS of a day are in one. A vendor's redelivery of an SMS is the same
  row when it carries the same time (ACS's receivedTimestamp); Twilio's carries none (the time is ours,
  on arrival), so a redelivery after midnight UTC is a second row. Rows written before this layout
  (PartitionKey the number, which starts with "+" or a digit: they sort before "days|") are found by one
  query of the PartitionKeys outside "days|...", filtered by ReceivedAt: it reads every such row each
  run, until the last is due, SMS_RETENTION_DAYS after the upgrade; from then on it reads nothing.
- SmsReplyRoutes: PartitionKey is a phone number, so both the write (one per recipient of a message
  that allows replies) and the lookup (one per inbound SMS) touch one small partition. A route goes
  with its message (retention removes the routes of each message it removes, a point read per
  recipient): nothing in a route says when it was written but the Timestamp, and a filter on that is
  a scan of every number ever texted.
- SmsOptOutsByNumber: PartitionKey is the opted-out number, RowKey a scope it opted out of (a licensee
  id, EVERY_LICENSEE, or EVERY_LICENSEE + a sender number: "*+61400000000"). Dispatch asks, per
  recipient, "PartitionKey eq @number": one query of one small partition returns every scope that
  number opted out of, so a job's reads grow with its numbers, never with the lists. A job's numbers
  are not joined into one filter: Microsoft's "Design for querying" (Table storage design guide,
  https://learn.microsoft.com/azure/storage/tables/table-storage-design-for-query) says an "or" over
  RowKeys is a partition scan, not a range query, and a filter that pins no one PartitionKey is a
  table scan; "Querying tables and entities" allows at most 15 comparisons in a $filter; and a query
  stops at each partition boundary with a continuation token ("Query timeout and pagination",
  https://learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination). So one query
  per number, run concurrently. A START replaces the row with a tombstone (StartedAt) rather than
  deleting it, so a copy of an older STOP cannot bring it back (below).
- SmsOptOuts (legacy, read only to be emptied): the layout before, where a licensee's list was its
  partition (RowKey the number) and the scopes every licensee shares lived in partition "*" (RowKey
  the number for EVERY_LICENSEE, "<scope>|<number>" for a sender number's). `migrate_legacy` moves each
  row to SmsOptOutsByNumber and then deletes it (ETag-checked): a STOP recorded before the upgrade
  keeps blocking, and once the table is empty a run costs one query.
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from datetime import date, datetime, timezone
from typing import AsyncIterator, Sequence

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import RecordChanged
from ..domain.model import InboundSms, utcnow
from . import ANY_ROW, EVERY_LICENSEE, SOURCE_START, SOURCE_STOP, AnyRow, InboundStore, OptOutChange, OptOutStore, ReplyRoute
from .sdk_requests import delete_rows
from .tables import MESSAGES_TABLE, create_table, storage_errors

INBOUND_TABLE = "SmsInbound"
REPLY_ROUTES_TABLE = "SmsReplyRoutes"
OPT_OUTS_TABLE = "SmsOptOutsByNumber"
LEGACY_OPT_OUTS_TABLE = "SmsOptOuts"
REPLY_PREFIX = "x"
_DAYS = "days|"  # SmsInbound's partitions: "days|<yyyymmdd>|<shard>"
_AFTER_DAYS = _DAYS[:-1] + chr(ord(_DAYS[-1]) + 1)  # the first key past every "days|..." one
UNLINKED_SHARDS = 4
_SCOPE_END = "|"  # ended a sender number's scope in a legacy shared opt-out's RowKey; no number or scope contains it
_STARTED = "StartedAt"  # marks a tombstone: the number opted back in to the row's scope then
# Requests in flight at once while moving legacy opt-outs, removing a message's reply routes or deleting
# old inbound SMS.
CONCURRENT_REQUESTS = 16

log = logging.getLogger("sms.storage.optouts")


def _reply_row(sms: InboundSms) -> str:
    return f"{REPLY_PREFIX}{sms.provider}:{sms.provider_message_id}"


def _unlinked_partition(sms: InboundSms) -> str:
    return f"{_DAYS}{sms.received_at.astimezone(timezone.utc):%Y%m%d}|{zlib.crc32(sms.from_number.encode()) % UNLINKED_SHARDS}"


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
            self._routes.upsert_entity({"PartitionKey": r.number, "RowKey": "", "CommId": r.comm_id, "LicenseeId": r.licensee_id,
                                        "RecipientId": r.recipient_id, "ContactId": r.contact_id}, mode=UpdateMode.REPLACE)
            for r in routes
        ))

    @storage_errors
    async def route_for(self, number: str) -> ReplyRoute | None:
        try:
            e = await self._routes.get_entity(number, "")
        except ResourceNotFoundError:
            return None
        return ReplyRoute(number, e["CommId"], e["LicenseeId"], e.get("RecipientId"), e.get("ContactId"))

    @storage_errors
    async def forget_routes(self, comm_id: str, numbers: Sequence[str]) -> int:
        """A point read of each number's route, and a delete of those still leading to `comm_id`, on the
        ETag read: a later message's send that took the route meanwhile (412) keeps it. Each number its
        own partition, so no transactions: at most CONCURRENT_REQUESTS at once."""
        slots = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def forget(number: str) -> bool:
            async with slots:
                try:
                    route = await self._routes.get_entity(number, "", select=["CommId"])
                except ResourceNotFoundError:
                    return False
                if route["CommId"] != comm_id:
                    return False
                try:  # gone meanwhile (404) is no error: delete_entity returns on it
                    await self._routes.delete_entity(number, "", etag=route.metadata["etag"], match_condition=MatchConditions.IfNotModified)
                except ResourceModifiedError:
                    return False
                return True

        return sum(await asyncio.gather(*(forget(number) for number in dict.fromkeys(numbers))))

    @storage_errors
    async def add(self, sms: InboundSms) -> bool:
        entity = {
            "PartitionKey": sms.comm_id or _unlinked_partition(sms), "RowKey": _reply_row(sms), "From": sms.from_number,
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

    @storage_errors
    async def purge_unlinked(self, before: date) -> int:
        gone = await self._delete_found("PartitionKey ge @lo and PartitionKey lt @hi", {"lo": _DAYS, "hi": f"{_DAYS}{before:%Y%m%d}"})
        # Rows in the layout before: the PartitionKeys either side of "days|...", each row's time only in ReceivedAt.
        cutoff = datetime.combine(before, datetime.min.time(), timezone.utc)
        for side, key in (("lt", _DAYS), ("ge", _AFTER_DAYS)):
            gone += await self._delete_found(f"PartitionKey {side} @key and ReceivedAt lt @cutoff", {"key": key, "cutoff": cutoff})
        return gone

    async def _delete_found(self, query: str, params: dict) -> int:
        """Delete what the query finds, a page at a time (a run cut short keeps what it did), each
        partition's rows in transactions of up to 100. How many rows it found."""
        found = 0
        slots = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def delete(partition: str, keys: list[str]) -> None:
            async with slots:
                await delete_rows(self._inbound, partition, keys)

        async for page in self._inbound.query_entities(query, parameters=params, select=["PartitionKey", "RowKey"]).by_page():
            by_partition: dict[str, list[str]] = {}
            async for row in page:
                by_partition.setdefault(row["PartitionKey"], []).append(row["RowKey"])
                found += 1
            await asyncio.gather(*(delete(partition, keys) for partition, keys in by_partition.items()))
        return found


class TableOptOutStore(OptOutStore):
    def __init__(self, table: TableClient, legacy: TableClient | None = None):
        """`legacy`: the table in the layout before (SmsOptOuts), read only to move its rows here."""
        self._table, self._legacy = table, legacy

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableOptOutStore":
        return cls(service.get_table_client(OPT_OUTS_TABLE), service.get_table_client(LEGACY_OPT_OUTS_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)  # not the legacy one: a new deployment has nothing to move

    @storage_errors
    async def add(self, scope: str, number: str, when: datetime, source: str = SOURCE_STOP) -> None:
        # Source: who made it, for the opt-out index's backfill and repair (dispatch reads only RowKey and StartedAt).
        row = {"PartitionKey": number, "RowKey": scope, "OptedOutAt": when, "Source": source}
        await self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    @storage_errors
    async def remove(self, scope: str, number: str, when: datetime | None = None, source: str = SOURCE_START,
                     read: OptOutChange | AnyRow | None = ANY_ROW) -> None:
        # A tombstone, not a delete: a migration that read the legacy STOP before this START then finds
        # the row taken and does not copy it back. The legacy row goes too, or a later run would.
        tombstone = {"PartitionKey": number, "RowKey": scope, _STARTED: when or utcnow(), "Source": source}
        await asyncio.gather(self._write_tombstone(tombstone, read), self._delete_legacy(*_legacy_keys(scope, number)))

    async def _write_tombstone(self, tombstone: TableEntity, read: OptOutChange | AnyRow | None) -> None:
        """Over the row as read, or where none was. Update Entity with If-Match replaces the entity only while its ETag
        is the one sent, and fails with 412 Precondition Failed otherwise (RecordChanged through storage_errors), 404
        when it is gone (https://learn.microsoft.com/rest/api/storageservices/update-entity2); Insert Entity fails with
        409 EntityAlreadyExists when a row is there (https://learn.microsoft.com/rest/api/storageservices/insert-entity)."""
        if isinstance(read, AnyRow):
            await self._table.upsert_entity(tombstone, mode=UpdateMode.REPLACE)
            return
        try:
            if read is None:
                await self._table.create_entity(tombstone)
            else:
                await self._table.update_entity(tombstone, mode=UpdateMode.REPLACE, etag=read.etag,
                                                match_condition=MatchConditions.IfNotModified)
        except ResourceExistsError as exc:
            raise RecordChanged(f"{tombstone['PartitionKey']} opted out of {tombstone['RowKey']} meanwhile") from exc
        except ResourceNotFoundError as exc:
            raise RecordChanged(f"{tombstone['PartitionKey']}'s row of {tombstone['RowKey']} went meanwhile") from exc

    @storage_errors
    async def scopes_for(self, number: str) -> set[str]:
        query = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": number}, select=["RowKey", _STARTED])
        return {e["RowKey"] async for e in query if e.get(_STARTED) is None}

    @storage_errors
    async def rows_for(self, number: str) -> list[OptOutChange]:
        return [_change(e) async for e in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": number})]

    async def every_row(self) -> AsyncIterator[OptOutChange]:
        rows = self._table.list_entities()
        while (entity := await _next_row(rows)) is not None:
            yield _change(entity)

    @storage_errors
    async def migrate_legacy(self) -> set[str]:
        """Move every row of the legacy table here, then delete it there: idempotent, and safe to run
        in several processes at once and alongside STOP and START. The numbers whose opt-outs it wrote.

        Each row: create its STOP here unless a row is there already (a STOP since: nothing to do; a
        tombstone: a START since wins, unless the legacy STOP is newer still, as one written by a
        process of the version before during a rolling upgrade would be); then delete the legacy row
        if it is unchanged (ETag). A legacy row is only deleted once its STOP is here or a newer START
        is, and one changed meanwhile is left for the next run. Rows not in the legacy layout are left.
        Costs about two requests per legacy row, once, plus one query per 1,000 rows (and per partition
        boundary); once the table is empty (or absent), one request.
        """
        if self._legacy is None:
            return set()
        moved: set[str] = set()
        left = 0
        slots = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def move(entity: TableEntity) -> None:
            nonlocal left
            keys = _from_legacy(entity["PartitionKey"], entity["RowKey"])
            if keys is None:
                left += 1
                return
            async with slots:
                copied = await self._copy(*keys, entity.get("OptedOutAt"))
                if copied is None:
                    return  # the row here changed meanwhile: the next run looks again
                if copied:
                    moved.add(keys[1])
                try:
                    await self._legacy.delete_entity(entity, match_condition=MatchConditions.IfNotModified)
                except ResourceModifiedError:
                    pass  # rewritten meanwhile (a STOP again, by the version before): the next run copies it

        pages = self._legacy.list_entities(select=["PartitionKey", "RowKey", "OptedOutAt"]).by_page()
        while True:
            try:
                page = [entity async for entity in await anext(pages)]
            except StopAsyncIteration:
                break
            except ResourceNotFoundError:  # no legacy table: a deployment that started on this layout
                break
            await asyncio.gather(*(move(entity) for entity in page))
        if moved or left:
            log.info("opt-outs: moved %d number(s) from %s to %s; left %d row(s) not in its layout",
                     len(moved), LEGACY_OPT_OUTS_TABLE, OPT_OUTS_TABLE, left)
        return moved

    async def _copy(self, scope: str, number: str, opted_out_at: datetime | None) -> bool | None:
        """Write a legacy STOP here unless a STOP, or a newer START, is here already. Whether it wrote;
        None when the row here changed while it looked (the legacy row must stay for the next run)."""
        stop = {"PartitionKey": number, "RowKey": scope, **({"OptedOutAt": opted_out_at} if opted_out_at else {})}
        try:
            await self._table.create_entity(stop)
            return True
        except ResourceExistsError:
            pass
        try:
            current = await self._table.get_entity(number, scope)
        except ResourceNotFoundError:
            return None
        started = current.get(_STARTED)
        if started is None:
            return False  # a STOP is here already
        # A START since wins. A legacy row without a time is taken to be the newer: the safe side is not texting.
        if opted_out_at is not None and started > opted_out_at:
            return False
        try:
            await self._table.update_entity(stop, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                            match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return True

    async def _delete_legacy(self, partition: str, row: str) -> None:
        if self._legacy is not None:
            await self._legacy.delete_entity(partition, row)  # not there, or no legacy table: not an error


@storage_errors
async def _next_row(rows: AsyncIterator[TableEntity]) -> TableEntity | None:
    """The next row a query reads (None: no more), storage's failures as storage_errors says."""
    return await anext(rows, None)


def _change(entity: TableEntity) -> OptOutChange:
    """A row as the change that made it what it is. Rows written before Source was kept are a STOP or START's (the
    only writers then); a legacy row's copy has no time but the row's own."""
    started = entity.get(_STARTED)
    at = started or entity.get("OptedOutAt") or entity.metadata["timestamp"]
    return OptOutChange(entity["RowKey"], entity["PartitionKey"], started is None, at,
                        entity.get("Source") or (SOURCE_STOP if started is None else SOURCE_START), etag=entity.metadata["etag"])


def _legacy_keys(scope: str, number: str) -> tuple[str, str]:
    """Where the layout before kept this opt-out."""
    if scope.startswith(EVERY_LICENSEE) and scope != EVERY_LICENSEE:
        return EVERY_LICENSEE, f"{scope}{_SCOPE_END}{number}"
    return scope, number


def _from_legacy(partition: str, row: str) -> tuple[str, str] | None:
    """(scope, number) of a legacy row; None for a row not in that layout."""
    if partition == EVERY_LICENSEE:
        scope, found, number = row.rpartition(_SCOPE_END)
        scope = scope if found else EVERY_LICENSEE
    else:
        scope, number = partition, row
    if not number or not scope or _SCOPE_END in number or (scope != partition and not scope.startswith(EVERY_LICENSEE)):
        return None
    return scope, number
