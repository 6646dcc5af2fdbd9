"""Azure Table Storage adapters (azure-data-tables, aio) for messages and API keys.

Layout of the messages table: PartitionKey is the commId, a random Guid, so writes spread
over partitions however busy one licensee is, and a message with its recipients is one
entity group. RowKey "message" holds the message; "r000000", "r000001", ... its recipients
in request order, so a job's recipients are one RowKey range. A message accepted in one call (issue 30)
also has a "gate" row, written with its rows or by a cancel before them (sms/domain/jobs.py, Gate).
"""
from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import replace
from datetime import datetime
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import AlreadyExists, StorageUnavailable
from ..domain.guard import money_micros, money_text
from ..domain.jobs import GATE_CANCELLED, Gate
from ..domain.model import Contact, Event, Message, Recipient, Status, derived_events
from . import KEY_ROLE_LICENSEE, ApiKeyRecord, ApiKeyStore, MessageStore, StagedMessage
from .limits import MAX_OPERATIONS
from .refusals import storage_refusal
from .requests import StorageRequests

MESSAGES_TABLE = "SmsMessages"
API_KEYS_TABLE = "SmsApiKeys"

MESSAGE_ROW = "message"
GATE_ROW = "gate"  # outside the "r" range, so no recipient query meets it; retention's delete of the partition takes it
# Azure's limit on operations in one entity-group transaction.
MAX_TRANSACTION_OPS = MAX_OPERATIONS

T = TypeVar("T")


RECIPIENT_PREFIX = "r"


def recipient_row(seq: int) -> str:
    return f"{RECIPIENT_PREFIX}{seq:06d}"


def storage_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn 'storage is down or throttling' into StorageUnavailable (503) and lost ETag races into RecordChanged."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except (ServiceRequestError, ServiceResponseError, asyncio.TimeoutError, OSError) as exc:
            raise StorageUnavailable() from exc
        except HttpResponseError as exc:
            # The SDK's exceptions carry the error code only in their message text.
            error = storage_refusal(exc.status_code, str(exc.message), str(exc.message))
            if error is None:
                raise
            raise error from exc

    return wrapper


class TableMessageStore(MessageStore):
    commit_room = MAX_TRANSACTION_OPS - 1  # the last transaction holds the message row and up to 99 recipients

    def __init__(self, table: TableClient, requests: StorageRequests):
        """`requests`: how the message's transactions are written and sent (SMS_STORAGE_REQUESTS); every
        other call goes through `table`."""
        self._table = table
        self._transactions = requests.transactions(table)

    @classmethod
    def from_service(cls, service: TableServiceClient, requests: StorageRequests) -> "TableMessageStore":
        return cls(service.get_table_client(MESSAGES_TABLE), requests)

    @storage_errors
    async def stage(self, message: Message, recipients: Sequence[Recipient], gate: Gate | None = None) -> StagedMessage:
        # The message row goes in the last transaction, with up to 99 recipients: until it lands, the
        # earlier rows are invisible to every reader, so a failure part-way leaves no message.
        if gate is not None and len(recipients) > self.commit_room - 1:
            raise ValueError(f"{len(recipients)} recipients with a gate: one transaction holds {self.commit_room - 1}")
        in_last = min(len(recipients), MAX_TRANSACTION_OPS - 1)
        head, tail = recipients[: len(recipients) - in_last], recipients[len(recipients) - in_last :]
        groups = [head[i : i + MAX_TRANSACTION_OPS] for i in range(0, len(head), MAX_TRANSACTION_OPS)]
        earlier = asyncio.gather(*(self._create(group) for group in groups))
        if groups:
            # Let those go out on the wire (and whatever the caller runs beside this), then build the
            # last transaction while storage works on them.
            await asyncio.sleep(0)
        try:
            gated = [] if gate is None else [_gate_entity(message.comm_id, gate)]
            commit = self._transactions.inserting([_recipient_entity(r) for r in tail] + [_message_entity(message)] + gated)
        except BaseException:
            earlier.cancel()
            raise
        etags = [etag for result in await earlier for etag in result]
        return StagedMessage(message, recipients, etags, commit)

    @storage_errors
    async def commit(self, staged: StagedMessage) -> list[Recipient]:
        etags = staged.etags + (await self._transactions.submit(staged.commit))[: len(staged.recipients) - len(staged.etags)]
        return [_with_etag(r, etag) for r, etag in zip(staged.recipients, etags, strict=True)]

    @storage_errors
    async def close_gate(self, comm_id: str, licensee_id: str, at: datetime) -> None:
        # create_entity is Insert Entity: 409 EntityAlreadyExists when the row is there
        # (https://learn.microsoft.com/rest/api/storageservices/insert-entity).
        try:
            await self._table.create_entity(_gate_entity(comm_id, Gate(GATE_CANCELLED, licensee_id, at)))
        except ResourceExistsError as exc:
            raise AlreadyExists(f"the gate of {comm_id} exists") from exc

    @storage_errors
    async def gate(self, comm_id: str) -> Gate | None:
        try:
            entity = await self._table.get_entity(comm_id, GATE_ROW)
        except ResourceNotFoundError:
            return None
        return Gate(entity["State"], entity["LicenseeId"], entity["At"])

    async def _create(self, recipients: Sequence[Recipient]) -> list[str]:
        # Written whether or not they are there: rows before the last transaction are invisible until
        # the message row lands, so rows an attempt left behind when its last transaction failed
        # belong to nobody, and a retry of the same request (same commId) rewrites them instead of
        # failing on them for good. The last transaction still inserts: the message row is the commit.
        return await self._transactions.submit(self._transactions.upserting([_recipient_entity(r) for r in recipients]))

    @storage_errors
    async def load(self, comm_id: str, first: int = 0, last: int | None = None) -> tuple[Message, list[Recipient]] | None:
        if last is None:
            query, params = "PartitionKey eq @pk", {"pk": comm_id}
        else:
            # Spaces around the parentheses matter: the SDK finds @parameters by splitting on whitespace.
            query = "PartitionKey eq @pk and ( RowKey eq @message or ( RowKey ge @lo and RowKey le @hi ) )"
            params = {"pk": comm_id, "message": MESSAGE_ROW, "lo": recipient_row(first), "hi": recipient_row(last)}
        message: Message | None = None
        recipients: list[Recipient] = []
        async for entity in self._table.query_entities(query, parameters=params):
            row = entity["RowKey"]
            if row == MESSAGE_ROW:
                message = _message_from(entity)
            elif row.startswith(RECIPIENT_PREFIX) and first <= _seq(entity) and (last is None or _seq(entity) <= last):
                recipients.append(_recipient_from(entity))
        return None if message is None else (message, recipients)

    @storage_errors
    async def unfinished(self) -> list[str]:
        query = "RowKey ge @lo and RowKey lt @hi and ( Status eq @scheduled or Status eq @queued or Status eq @sending )"
        params = {"lo": RECIPIENT_PREFIX, "hi": chr(ord(RECIPIENT_PREFIX) + 1), "scheduled": Status.SCHEDULED.value,
                  "queued": Status.QUEUED.value, "sending": Status.SENDING.value}
        found = {e["PartitionKey"] async for e in self._table.query_entities(query, parameters=params, select=["PartitionKey"])}
        return sorted(found)

    @storage_errors
    async def message(self, comm_id: str) -> Message | None:
        try:
            return _message_from(await self._table.get_entity(comm_id, MESSAGE_ROW))
        except ResourceNotFoundError:
            return None

    @storage_errors
    async def delete(self, comm_id: str) -> None:
        # Recipients and replies first, the message row last: a delete cut short leaves the message
        # (so the retention that found it finds it again), never rows without their message.
        keys = [e["RowKey"] async for e in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": comm_id},
                                                                        select=["RowKey"])]
        keys = sorted(keys, key=lambda key: key == MESSAGE_ROW)
        for i in range(0, len(keys), MAX_TRANSACTION_OPS):
            group = keys[i : i + MAX_TRANSACTION_OPS]
            try:
                await self._table.submit_transaction([("delete", {"PartitionKey": comm_id, "RowKey": key}) for key in group])
            except TableTransactionError:  # one was gone already: row by row, where gone is no error
                await asyncio.gather(*(self._table.delete_entity(comm_id, key) for key in group))

    @storage_errors
    async def update_recipients(self, comm_id: str, recipients: Sequence[Recipient]) -> list[Recipient]:
        updated: list[Recipient] = []
        for i in range(0, len(recipients), MAX_TRANSACTION_OPS):
            group = recipients[i : i + MAX_TRANSACTION_OPS]
            # RecordChanged if any of them changed or went since it was read.
            etags = await self._transactions.replace([(_recipient_entity(r), r.etag) for r in group])
            updated += [_with_etag(r, etag) for r, etag in zip(group, etags, strict=True)]
        return updated

    async def create_table(self) -> None:
        await create_table(self._table)


class TableApiKeyStore(ApiKeyStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableApiKeyStore":
        return cls(service.get_table_client(API_KEYS_TABLE))

    @storage_errors
    async def add(self, record: ApiKeyRecord) -> None:
        await self._table.create_entity(_drop_none({
            "PartitionKey": record.key_id, "RowKey": "key", "LicenseeId": record.licensee_id,
            "SecretHash": record.secret_hash, "CreatedAt": record.created_at, "Name": record.name,
            "ExpiresAt": record.expires_at, "Role": record.role, "ReadOnly": record.read_only,
        }))

    @storage_errors
    async def get(self, key_id: str) -> ApiKeyRecord | None:
        try:
            return _key_from(await self._table.get_entity(key_id, "key"))
        except ResourceNotFoundError:
            return None

    @storage_errors
    async def list(self, licensee_id: str | None = None) -> list[ApiKeyRecord]:
        if licensee_id is None:
            entities = self._table.list_entities()
        else:
            entities = self._table.query_entities("LicenseeId eq @lic", parameters={"lic": licensee_id})
        return sorted([_key_from(e) async for e in entities], key=lambda k: k.created_at)

    @storage_errors
    async def revoke(self, key_id: str, when: datetime) -> bool:
        try:
            await self._table.update_entity({"PartitionKey": key_id, "RowKey": "key", "RevokedAt": when}, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            return False
        return True

    @storage_errors
    async def expire(self, key_id: str, when: datetime) -> None:
        await self._table.update_entity({"PartitionKey": key_id, "RowKey": "key", "ExpiresAt": when}, mode=UpdateMode.MERGE)

    async def create_table(self) -> None:
        await create_table(self._table)


async def create_table(table: TableClient) -> None:
    try:
        await table.create_table()
    except ResourceExistsError:
        pass


# -- entity mapping ----------------------------------------------------------------------------


def _drop_none(entity: dict) -> dict:
    """Tables store no nulls: an absent property reads back as None."""
    return {k: v for k, v in entity.items() if v is not None}


# Written through the transactions, which leave out None properties themselves.
def _message_entity(m: Message) -> dict:
    return {
        "PartitionKey": m.comm_id, "RowKey": MESSAGE_ROW, "LicenseeId": m.licensee_id, "Body": m.body,
        "FromName": m.sender.name, "FromNumber": m.sender.phone_number, "FromContactId": m.sender.contact_id,
        "RecipientCount": m.recipient_count, "Encoding": m.encoding, "Segments": m.segments,
        "ReplyIsAllowed": m.reply_is_allowed, "ReplyIsRequired": m.reply_is_required, "Notes": m.notes,
        "LinkedObjectId": m.linked_object_id, "SuiteId": m.suite_id, "CreatedAt": m.created_at,
        "SendAt": m.send_at, "ValidUntil": m.valid_until, "Urgent": m.urgent or None,
        # What it cost as accepted: a retry under its Idempotency-Key answers with it. The cost as decimal text
        # (a few dozen characters at most), as it may pass what an Int32 holds in millionths.
        "Blocked": m.blocked or None, "EstimatedCost": money_text(m.estimated_cost), "Currency": m.currency,
    }


def _gate_entity(comm_id: str, gate: Gate) -> dict:
    return {"PartitionKey": comm_id, "RowKey": GATE_ROW, "State": gate.state, "LicenseeId": gate.licensee_id, "At": gate.at}


def _message_from(e: TableEntity) -> Message:
    return Message(
        comm_id=e["PartitionKey"], licensee_id=e["LicenseeId"], body=e["Body"],
        sender=Contact(e.get("FromName"), e.get("FromNumber"), e.get("FromContactId")),
        recipient_count=e["RecipientCount"], encoding=e["Encoding"], segments=e["Segments"],
        reply_is_allowed=e.get("ReplyIsAllowed", False), reply_is_required=e.get("ReplyIsRequired", False),
        notes=e.get("Notes"), linked_object_id=e.get("LinkedObjectId"), suite_id=e.get("SuiteId"),
        created_at=e["CreatedAt"], send_at=e.get("SendAt"), valid_until=e.get("ValidUntil"), urgent=e.get("Urgent") or False,
        blocked=e.get("Blocked") or 0, estimated_cost=money_micros(e["EstimatedCost"]) if e.get("EstimatedCost") else None,
        currency=e.get("Currency"),
    )


def _recipient_entity(r: Recipient) -> dict:
    return {
        "PartitionKey": r.comm_id, "RowKey": recipient_row(r.seq), "RecipientId": r.recipient_id,
        "PhoneNumber": r.phone_number, "Name": r.name, "ContactId": r.contact_id, "Status": r.status.value,
        "ProviderMessageId": r.provider_message_id, "Attempts": r.attempts, "LastError": r.last_error,
        "CreatedAt": r.created_at, "UpdatedAt": r.updated_at, "FirstAttemptAt": r.first_attempt_at, "ClaimId": r.claim_id,
        "Timeline": _timeline_text(r), "CancelRequested": r.cancel_requested or None, "Provider": r.provider,
        "SentFrom": r.sent_from,
    }


def _seq(e: TableEntity) -> int:
    return int(e["RowKey"][1:])


def _recipient_from(e: TableEntity) -> Recipient:
    timeline = _stored_timeline(e.get("Timeline"))
    recipient = Recipient(
        comm_id=e["PartitionKey"], seq=_seq(e), recipient_id=e["RecipientId"], phone_number=e["PhoneNumber"],
        name=e.get("Name"), contact_id=e.get("ContactId"), status=Status(e["Status"]),
        provider_message_id=e.get("ProviderMessageId"), attempts=e.get("Attempts", 0), last_error=e.get("LastError"),
        created_at=e["CreatedAt"], updated_at=e["UpdatedAt"], first_attempt_at=e.get("FirstAttemptAt"),
        claim_id=e.get("ClaimId"), cancel_requested=bool(e.get("CancelRequested")), provider=e.get("Provider"),
        sent_from=e.get("SentFrom"), etag=e.metadata["etag"],
        events=timeline[0] if timeline else (),
        events_omitted=timeline[1] if timeline else 0,
    )
    if timeline is None:  # written before timelines (or unreadable): the timeline its other columns prove
        events, omitted = derived_events(recipient)
        return replace(recipient, events=events, events_omitted=omitted) if events or omitted else recipient
    return recipient


# A recipient's timeline is one JSON text property: one more property however many events, within a
# string's 64 KiB by the model's bounds (MAX_EVENTS, MAX_EVENT_ERROR_CHARS, MAX_PROVIDER_ID_CHARS).
# Queued is the row's CreatedAt, so a row just accepted has no Timeline: accepting writes nothing more.
def _timeline_text(r: Recipient) -> str | None:
    if not r.events and not r.events_omitted:
        return None
    events = [{key: value for key, value in (
        ("status", e.status.value), ("at", e.at.isoformat()), ("providerMessageId", e.provider_message_id),
        ("error", e.error), ("attempt", e.attempt), ("provider", e.provider), ("outcome", e.outcome), ("code", e.code),
        ("guard", e.guard))
        if value is not None} for e in r.events]
    timeline = {"events": events, "omitted": r.events_omitted} if r.events_omitted else {"events": events}
    return json.dumps(timeline, separators=(",", ":"), ensure_ascii=False)


def _stored_timeline(text: str | None) -> tuple[tuple[Event, ...], int] | None:
    if text is None:
        return None
    try:
        timeline = json.loads(text)
        events = tuple(Event(Status(e["status"]), datetime.fromisoformat(e["at"]), e.get("providerMessageId"),
                             e.get("error"), e.get("attempt"), e.get("provider"), e.get("outcome"), e.get("code"), e.get("guard"))
                       for e in timeline["events"])
        return events, int(timeline.get("omitted", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _with_etag(r: Recipient, etag: str) -> Recipient:
    """replace(r, etag=etag) for a Recipient (a frozen dataclass with no __post_init__), without running
    its __init__ again: 0.6 us against 4-7 a recipient, which a 100-recipient accept paid 100 times."""
    stored = object.__new__(Recipient)
    stored.__dict__.update(r.__dict__)
    object.__setattr__(stored, "etag", etag)
    return stored


def _key_from(e: TableEntity) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=e["PartitionKey"], licensee_id=e["LicenseeId"], secret_hash=e["SecretHash"],
        created_at=e["CreatedAt"], revoked_at=e.get("RevokedAt"), name=e.get("Name"), expires_at=e.get("ExpiresAt"),
        # A row written before roles has neither: a full-access licensee key, as it was (no migration).
        role=e.get("Role") or KEY_ROLE_LICENSEE, read_only=bool(e.get("ReadOnly", False)),
    )
