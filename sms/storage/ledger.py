"""The message ledger in Table Storage (table SmsLedger): a licensee's messages found with one range
query per shard, never a scan of anyone's messages.

Layout. A licensee's ledger is SHARDS partitions, "<licensee>|<shard>" (sms/storage/shards.py). Every
row of one message is in the same partition, so the rows that find a message, its entry and the webhook
events its change made (sms/storage/events.py) are written in one entity-group transaction. RowKeys, with <t> the creation
time inverted (newest sorts first) and <c> the commId:

    m|<t>|<c>                  the entry: what was sent, each recipient's status (one letter each)
    s|<status>|<t>|<c>         one per status the message or any recipient is in now (deleted when none is)
    o|<linkedObjectId>|<t>|<c>, u|<suiteId>|<t>|<c>, r|<reference>|<t>|<c>    what else finds it
    p|<phone>|<t>|<c>, c|<contactId>|<t>|<c>     per recipient (a contact with two numbers: one row)
    d|<yyyymmdd>               (shard 0 only) the usage of the licensee's day (a calendar day of the zone it names)
    x|<batch>|<c>|<part>       webhook events (sms/storage/events.py)

and partitions "days|<yyyymmdd>" hold one row per licensee with messages that (UTC) day, with when the
usage roll-up last counted it: what the roll-up and retention go through, so neither scans anything.

Every search is a RowKey range inside each shard ("<prefix>|<value>|" from the window's newest to its
oldest instant): Microsoft's "Design for querying" (Table storage design guide) calls that a range
query, the cheapest there is after a point read. The m/s/o/u/r rows carry the whole entry, so a
search answers from the rows it finds; p/c rows carry what was sent and that recipient's status.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import AlreadyExists, RecordChanged
from ..domain.events import EventBatch
from ..domain.model import STATUS_OF_LETTER, reference_for, status_of
from . import DayUsage, LedgerEntry, LedgerQuery, LedgerRecipient, LedgerStore, NotedDay
from .events import batch_rows
from .limits import MAX_OPERATIONS, MAX_STRING_BYTES
from .sdk_requests import delete_rows, submit_transaction
from .shards import END as _END
from .shards import page_shards, partition
from .tables import create_table, storage_errors

LEDGER_TABLE = "SmsLedger"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NEWEST = 10**16 - 1  # microseconds since 1970 stay below this until the year 2286
# Partitions "days|<yyyymmdd>", RowKey a licensee: who has messages from which day, for the daily
# usage roll-up and retention (they sort apart from "<licensee>|<shard>", which start with a hex digit).
_DAYS = "days|"


def inverted(when: datetime) -> str:
    """The instant as 16 digits that sort newest first."""
    return f"{_NEWEST - (when - _EPOCH) // timedelta(microseconds=1):016d}"


def reference_key(reference: str) -> str:
    return reference.strip().upper()


class TableLedgerStore(LedgerStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableLedgerStore":
        return cls(service.get_table_client(LEDGER_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    partition = staticmethod(partition)

    @storage_errors
    async def entry(self, licensee_id: str, comm_id: str, created_at: datetime) -> LedgerEntry | None:
        try:
            found = await self._table.get_entity(self.partition(licensee_id, comm_id), f"m|{inverted(created_at)}|{comm_id}")
        except ResourceNotFoundError:
            return None
        return _entry_from(found)

    @storage_errors
    async def save(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient], previous: LedgerEntry | None,
                   events: EventBatch | None = None) -> None:
        partition, t = self.partition(entry.licensee_id, entry.comm_id), inverted(entry.created_at)
        static = _static(entry)
        rows, contacts = [], set()
        for r in sorted(recipients, key=lambda r: r.seq):
            fields = {**static, "Seq": r.seq, "PhoneNumber": r.phone_number, "ContactId": r.contact_id, "Status": r.status}
            rows.append({"PartitionKey": partition, "RowKey": f"p|{r.phone_number}|{t}|{entry.comm_id}", **fields})
            if r.contact_id and r.contact_id not in contacts:  # one row a contact: a search lists the message once
                contacts.add(r.contact_id)
                rows.append({"PartitionKey": partition, "RowKey": f"c|{r.contact_id}|{t}|{entry.comm_id}", **fields})
        # The recipients' rows first, in transactions of their own (a job's can be 200 rows); the entry
        # last, with the rows that find the message by what it is and the events its change made, in one
        # transaction: its condition (ETag) makes two writers take turns, what finds it never disagrees
        # with it, and an event exists exactly when the change it reports was recorded.
        for i in range(0, len(rows), MAX_OPERATIONS):
            await submit_transaction(self._table, [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[i : i + MAX_OPERATIONS]])
        whole = {**static, **_statuses_fields(entry.statuses)}
        keys = _finders(entry, t)
        operations: list[tuple] = [("upsert", {"PartitionKey": partition, "RowKey": key, **whole}, {"mode": UpdateMode.REPLACE})
                                   for key in keys]
        if previous is not None:
            operations += [("delete", {"PartitionKey": partition, "RowKey": key}) for key in set(_finders(previous, t)) - set(keys)]
        if events is not None and events.events:
            operations += [("create", row) for row in batch_rows(events)]
        # Which provider sent each recipient, when several did: on the entry alone (what usage reads), not its finders.
        head = {"PartitionKey": partition, "RowKey": f"m|{t}|{entry.comm_id}", **whole,
                **(_chunked("SentBy", entry.sent_by) if entry.sent_by else {})}
        if previous is None:
            operations.append(("create", head))
        else:
            operations.append(("update", head, {"mode": UpdateMode.REPLACE, "etag": previous.etag,
                                                "match_condition": MatchConditions.IfNotModified}))
        try:
            # RecordChanged when another writer moved the entry on since it was read: the entry's ETag no
            # longer matches (412), or a row of it as read is gone already (404: that writer deleted it).
            await submit_transaction(self._table, operations)
        except AlreadyExists:  # another writer created the entry first: read it and merge again
            raise RecordChanged(f"ledger entry of {entry.comm_id} was created meanwhile") from None

    @storage_errors
    async def note_day(self, licensee_id: str, day: date) -> None:
        # Insert Or Replace: noting a day the roll-up has counted replaces its row, RolledUpAt and all
        # ("replaces an existing entity": learn.microsoft.com/rest/api/storageservices/insert-or-replace-entity),
        # and gives it a new ETag, so the roll-up counts the day again.
        await self._table.upsert_entity({"PartitionKey": _day_partition(day), "RowKey": licensee_id}, mode=UpdateMode.REPLACE)

    @storage_errors
    async def days(self, before: date, after: date | None = None) -> list[tuple[date, str]]:
        return [(noted.day, noted.licensee_id) for noted in await self.noted_days(before, after)]

    @storage_errors
    async def noted_days(self, before: date, after: date | None = None) -> list[NotedDay]:
        # A range of PartitionKeys: one query, across the day partitions only (they sort together). The
        # rows are tiny (the keys and RolledUpAt): read whole, with their ETags.
        low = _day_partition(after + timedelta(days=1)) if after else _DAYS
        rows = self._table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                          parameters={"lo": low, "hi": _day_partition(before)})
        return sorted([NotedDay(datetime.strptime(row["PartitionKey"][len(_DAYS):], "%Y%m%d").date(), row["RowKey"],
                                row.get("RolledUpAt"), row.metadata.get("etag")) async for row in rows],
                      key=lambda noted: (noted.day, noted.licensee_id))

    @storage_errors
    async def mark_rolled_up(self, noted: NotedDay, at: datetime) -> bool:
        # Merge Entity with If-Match: only the row as read (learn.microsoft.com/rest/api/storageservices/merge-entity).
        try:
            await self._table.update_entity({"PartitionKey": _day_partition(noted.day), "RowKey": noted.licensee_id, "RolledUpAt": at},
                                            mode=UpdateMode.MERGE, etag=noted.etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):  # noted again, or forgotten by retention, since it was read
            return False
        return True

    @storage_errors
    async def forget_day(self, licensee_id: str, day: date) -> None:
        await self._table.delete_entity(_day_partition(day), licensee_id)  # not there is no error

    @storage_errors
    async def delete_recipients(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient]) -> None:
        t = inverted(entry.created_at)
        keys = [f"p|{r.phone_number}|{t}|{entry.comm_id}" for r in recipients]
        keys += sorted({f"c|{r.contact_id}|{t}|{entry.comm_id}" for r in recipients if r.contact_id})
        await delete_rows(self._table, self.partition(entry.licensee_id, entry.comm_id), keys)

    @storage_errors
    async def delete_entry(self, entry: LedgerEntry) -> None:
        t = inverted(entry.created_at)
        await delete_rows(self._table, self.partition(entry.licensee_id, entry.comm_id), [*_finders(entry, t), f"m|{t}|{entry.comm_id}"])

    @storage_errors
    async def save_usage(self, usage: DayUsage) -> None:
        await self._table.upsert_entity({
            "PartitionKey": f"{usage.licensee_id}|0", "RowKey": f"d|{usage.day:%Y%m%d}", "Messages": usage.messages,
            "Recipients": usage.recipients, "Segments": usage.segments, "ByStatus": json.dumps(usage.by_status),
            "ByProvider": json.dumps(usage.by_provider), "CountedAt": usage.counted_at, "TimeZone": usage.time_zone,
        }, mode=UpdateMode.REPLACE)

    @storage_errors
    async def delete_usage(self, licensee_id: str, day: date) -> None:
        await self._table.delete_entity(f"{licensee_id}|0", f"d|{day:%Y%m%d}")  # not there is no error

    @storage_errors
    async def usage(self, licensee_id: str, first: date, last: date) -> list[DayUsage]:
        rows = self._table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi", parameters={
            "pk": f"{licensee_id}|0", "lo": f"d|{first:%Y%m%d}", "hi": f"d|{last:%Y%m%d}"})
        # A row saved before usage counted licensees' own days has no TimeZone: it counted a UTC day.
        return [DayUsage(licensee_id, datetime.strptime(row["RowKey"][2:], "%Y%m%d").date(), row["Messages"], row["Recipients"],
                         row["Segments"], json.loads(row["ByStatus"]), json.loads(row["ByProvider"]), row.get("CountedAt"),
                         row.get("TimeZone") or "UTC")
                async for row in rows]

    @storage_errors
    async def page(self, query: LedgerQuery, take: int, token: str | None = None) -> tuple[list[LedgerEntry], str | None]:
        prefix, matches = _plan(query)
        newest = inverted(query.created_to - timedelta(microseconds=1)) if query.created_to else ""
        oldest = inverted(query.created_from) + _END if query.created_from else _END
        low, high = f"{prefix}{newest}", f"{prefix}{oldest}"

        async def fetch(p: str, after: str | None) -> tuple[list[TableEntity], bool]:
            return await self._range(p, low, after, high, take)

        return await page_shards(query.licensee_id, token, take, fetch, lambda row: _entry_from(row) if matches(row) else None)

    async def _range(self, partition: str, low: str, after: str | None, high: str, take: int) -> tuple[list[TableEntity], bool]:
        """Up to `take` rows of the partition in [low, high), after `after` if given; and whether it has more."""
        if after is not None and after >= low:
            query, params = "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi", {"pk": partition, "lo": after, "hi": high}
        else:
            query, params = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", {"pk": partition, "lo": low, "hi": high}
        pages = self._table.query_entities(query, parameters=params, results_per_page=take).by_page()
        try:
            rows = [row async for row in await anext(pages)]
        except StopAsyncIteration:
            return [], False
        return rows, pages.continuation_token is not None


def _static(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "LicenseeId": entry.licensee_id, "CommId": entry.comm_id, "CreatedAt": entry.created_at,
        "RecipientCount": entry.recipient_count, "Segments": entry.segments, "Encoding": entry.encoding,
        "Preview": entry.preview, "LinkedObjectId": entry.linked_object_id, "SuiteId": entry.suite_id,
        "Provider": entry.provider,
    }


# A string property holds at most 64 KiB (32,768 UTF-16 code units): a message's status letters, one
# a recipient, go in as many properties as it takes ("Statuses", "Statuses1", ...). SMS_MAX_RECIPIENTS
# allows 100,000, and the entity (1 MiB) and its transaction (4 MiB) still hold them.
_STATUS_CHUNK = MAX_STRING_BYTES // 2 - 768


def _statuses_fields(statuses: str) -> dict[str, str]:
    return _chunked("Statuses", statuses)


def _statuses_from(row: TableEntity) -> str:
    return _joined(row, "Statuses")


def _chunked(name: str, text: str) -> dict[str, str]:
    """`text` in as many string properties as it takes: `name`, `name`1, ... (the SentBy letters as the statuses)."""
    chunks = [text[i : i + _STATUS_CHUNK] for i in range(0, len(text), _STATUS_CHUNK)] or [""]
    return {(name if i == 0 else f"{name}{i}"): chunk for i, chunk in enumerate(chunks)}


def _joined(row: TableEntity, name: str) -> str:
    parts, i = [row.get(name, "")], 1
    while (part := row.get(f"{name}{i}")) is not None:
        parts.append(part)
        i += 1
    return "".join(parts)


def _day_partition(day: date) -> str:
    return f"{_DAYS}{day:%Y%m%d}"


def _finders(entry: LedgerEntry, t: str) -> list[str]:
    """The RowKeys, besides the entry's own, that find the message by what it is and how it stands."""
    statuses = {STATUS_OF_LETTER[letter] for letter in set(entry.statuses)}
    keys = [f"s|{status}|{t}|{entry.comm_id}" for status in sorted({s.value for s in statuses} | {status_of(statuses)})]
    keys.append(f"r|{reference_for(entry.comm_id)}|{t}|{entry.comm_id}")
    if entry.linked_object_id:
        keys.append(f"o|{entry.linked_object_id}|{t}|{entry.comm_id}")
    if entry.suite_id:
        keys.append(f"u|{entry.suite_id}|{t}|{entry.comm_id}")
    return keys


def _plan(query: LedgerQuery):
    """The most selective index for the query (a RowKey prefix), and the test every row it finds
    must also pass for the other filters."""
    reference = reference_key(query.reference) if query.reference else None
    # Most selective first: the first filter given picks the rows to read.
    indexes = (("p", query.phone_number), ("c", query.contact_id), ("o", query.linked_object_id),
               ("u", query.suite_id), ("r", reference), ("s", query.status))
    prefix = next((f"{kind}|{value}|" for kind, value in indexes if value), "m|")

    def matches(row: TableEntity) -> bool:
        per_recipient = row["RowKey"][0] in "pc"
        if query.phone_number and row.get("PhoneNumber") != query.phone_number:
            return False
        if query.contact_id and row.get("ContactId") != query.contact_id:
            return False
        if query.linked_object_id and row.get("LinkedObjectId") != query.linked_object_id:
            return False
        if query.suite_id and row.get("SuiteId") != query.suite_id:
            return False
        if query.reference and not row["RowKey"].startswith("r|") and not _has_reference(row, query.reference):
            return False
        if query.status:
            if per_recipient:
                return row.get("Status") == query.status
            statuses = {STATUS_OF_LETTER[letter] for letter in set(_statuses_from(row))}
            return query.status in {s.value for s in statuses} | {status_of(statuses)}
        return True

    return prefix, matches


def _has_reference(row: TableEntity, reference: str) -> bool:
    return reference_for(row["CommId"]) == reference_key(reference)


def _entry_from(row: TableEntity) -> LedgerEntry:
    matched = None
    if row["RowKey"][0] in "pc":
        matched = LedgerRecipient(row["Seq"], row["PhoneNumber"], row.get("ContactId"), row["Status"])
    return LedgerEntry(
        licensee_id=row["LicenseeId"], comm_id=row["CommId"], created_at=row["CreatedAt"],
        recipient_count=row["RecipientCount"], segments=row["Segments"], encoding=row["Encoding"],
        preview=row.get("Preview", ""), statuses=_statuses_from(row), linked_object_id=row.get("LinkedObjectId"),
        suite_id=row.get("SuiteId"), provider=row.get("Provider"), sent_by=_joined(row, "SentBy"), etag=row.metadata.get("etag"),
        matched=matched,
    )
