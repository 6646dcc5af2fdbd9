"""Webhook endpoints and their delivery logs in Table Storage.

- SmsWebhooks: PartitionKey the licensee, RowKey the endpoint id. A licensee's few endpoints are one
  partition: listing them is one query, and every read names the licensee, so one licensee never
  reaches another's endpoint. Beside each endpoint, in the same partition, the row of the place it
  holds ("slot|<n>", n from 0 up to the cap), inserted with it in one entity-group transaction and
  deleted with it in another. Azure refuses an insert whose row exists (409 EntityAlreadyExists, Table
  Storage error codes) and fails the whole transaction with it ("Operations within a change set are
  processed atomically", Performing entity group transactions): of two adds for one place, one wins,
  so the cap on a licensee's endpoints holds however many adds run at once.
- SmsWebhookLog: PartitionKey "<licensee>|<endpoint>", RowKey "<instant, newest first>|<event id>|<attempt>":
  an endpoint's log is one partition read newest first, a page a range query, and old attempts one range
  to delete. Each attempt is written as soon as its answer is in (sms/usecases/delivery.py)."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Sequence

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import AlreadyExists, RecordChanged
from . import DeliveryLogStore, DeliveryRecord, WebhookEndpoint, WebhookEndpointStore, WebhookSecret, invalid_token
from .ledger import inverted
from .limits import MAX_OPERATIONS, check_entity
from .sdk_requests import delete_range, submit_transaction
from .shards import read_token, write_token
from .tables import create_table, storage_errors

WEBHOOKS_TABLE = "SmsWebhooks"
DELIVERY_LOG_TABLE = "SmsWebhookLog"


class TableWebhookEndpointStore(WebhookEndpointStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableWebhookEndpointStore":
        return cls(service.get_table_client(WEBHOOKS_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        if endpoint.slot is None:  # as endpoints were saved before slots were kept
            try:
                written = await self._table.create_entity(_entity(endpoint))
            except ResourceExistsError:
                raise AlreadyExists(f"webhook endpoint {endpoint.endpoint_id} exists") from None
            return replace(endpoint, etag=written["etag"])
        slot = {"PartitionKey": endpoint.licensee_id, "RowKey": _slot_key(endpoint.slot), "EndpointId": endpoint.endpoint_id}
        etag, _ = await submit_transaction(self._table, [("create", _entity(endpoint)), ("create", slot)])  # AlreadyExists: held
        return replace(endpoint, etag=etag)

    @storage_errors
    async def list(self, licensee_id: str) -> list[WebhookEndpoint]:
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": licensee_id})
        return sorted([_endpoint(row) async for row in rows if not _is_slot(row)], key=lambda e: (e.created_at, e.endpoint_id))

    @storage_errors
    async def every(self) -> list[WebhookEndpoint]:
        return [_endpoint(row) async for row in self._table.list_entities() if not _is_slot(row)]

    @storage_errors
    async def get(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        try:
            return _endpoint(await self._table.get_entity(licensee_id, endpoint_id))
        except ResourceNotFoundError:
            return None

    @storage_errors
    async def replace(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        try:
            written = await self._table.update_entity(_entity(endpoint), mode=UpdateMode.REPLACE, etag=endpoint.etag,
                                                      match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise RecordChanged(f"webhook endpoint {endpoint.endpoint_id} changed") from None
        return replace(endpoint, etag=written["etag"])

    @storage_errors
    async def remove(self, licensee_id: str, endpoint_id: str) -> None:
        try:
            row = await self._table.get_entity(licensee_id, endpoint_id)
        except ResourceNotFoundError:
            return
        operations = [("delete", {"PartitionKey": licensee_id, "RowKey": endpoint_id})]
        if row.get("Slot") is not None:  # never a slot row alone: its place may be another endpoint's by then
            operations.append(("delete", {"PartitionKey": licensee_id, "RowKey": _slot_key(row["Slot"])}))
        try:
            await submit_transaction(self._table, operations)
        except RecordChanged:  # 404: another remove took both first (or, never written, the slot row)
            await self._table.delete_entity(licensee_id, endpoint_id)  # not there is no error


def _entity(e: WebhookEndpoint) -> dict[str, Any]:
    previous = e.previous_secret
    return {
        "PartitionKey": e.licensee_id, "RowKey": e.endpoint_id, "Url": e.url, "EventTypes": json.dumps(list(e.event_types)),
        "Secret": e.secret.value, "SecretCreatedAt": e.secret.created_at, "CreatedAt": e.created_at,
        "PreviousSecret": previous.value if previous else None, "PreviousSecretCreatedAt": previous.created_at if previous else None,
        "PreviousSecretExpiresAt": previous.expires_at if previous else None,
        "DisabledAt": e.disabled_at, "DisabledReason": e.disabled_reason,
        "ConsecutiveFailures": e.consecutive_failures, "FailingSince": e.failing_since, "Slot": e.slot,
    }


_SLOT = "slot|"  # sorts after every endpoint id (32 hex digits)


def _slot_key(slot: int) -> str:
    return f"{_SLOT}{slot}"


def _is_slot(row: TableEntity) -> bool:
    return row["RowKey"].startswith(_SLOT)


def _endpoint(row: TableEntity) -> WebhookEndpoint:
    previous = None
    if row.get("PreviousSecret"):
        previous = WebhookSecret(row["PreviousSecret"], row["PreviousSecretCreatedAt"], row.get("PreviousSecretExpiresAt"))
    return WebhookEndpoint(
        licensee_id=row["PartitionKey"], endpoint_id=row["RowKey"], url=row["Url"], event_types=tuple(json.loads(row["EventTypes"])),
        secret=WebhookSecret(row["Secret"], row["SecretCreatedAt"]), created_at=row["CreatedAt"],
        previous_secret=previous, disabled_at=row.get("DisabledAt"), disabled_reason=row.get("DisabledReason"),
        consecutive_failures=row.get("ConsecutiveFailures", 0), failing_since=row.get("FailingSince"),
        etag=row.metadata["etag"], slot=row.get("Slot"),
    )



class TableDeliveryLogStore(DeliveryLogStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableDeliveryLogStore":
        return cls(service.get_table_client(DELIVERY_LOG_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        rows = [_log_row(r) for r in records]
        for row in rows:
            check_entity(row)
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_partition.setdefault(row["PartitionKey"], []).append(row)
        for group in by_partition.values():  # one endpoint's, in practice: a transaction is one partition's
            for i in range(0, len(group), MAX_OPERATIONS):
                upserts = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in group[i : i + MAX_OPERATIONS]]
                await self._table.submit_transaction(upserts)

    @storage_errors
    async def page(self, licensee_id: str, endpoint_id: str, take: int,
                   token: str | None = None) -> tuple[list[DeliveryRecord], str | None]:
        pk = _log_partition(licensee_id, endpoint_id)
        after = read_token(token).get(pk) if token else None
        if token and after is None:
            raise invalid_token()
        query, params = ("PartitionKey eq @pk and RowKey gt @after", {"pk": pk, "after": after}) if after else \
                        ("PartitionKey eq @pk", {"pk": pk})
        pages = self._table.query_entities(query, parameters=params, results_per_page=take).by_page()
        try:
            rows = [row async for row in await anext(pages)]
        except StopAsyncIteration:
            return [], None
        more = pages.continuation_token is not None
        return [_record(licensee_id, endpoint_id, row) for row in rows], write_token({pk: rows[-1]["RowKey"]}) if more and rows else None

    @storage_errors
    async def purge(self, licensee_id: str, endpoint_id: str, before: datetime) -> int:
        # Newest first: the attempts made before `before` are the keys from its instant's one microsecond earlier on.
        return await delete_range(self._table, _log_partition(licensee_id, endpoint_id), inverted(before - timedelta(microseconds=1)))


def _log_partition(licensee_id: str, endpoint_id: str) -> str:
    return f"{licensee_id}|{endpoint_id}"


def _log_row(r: DeliveryRecord) -> dict[str, Any]:
    return {
        "PartitionKey": _log_partition(r.licensee_id, r.endpoint_id), "RowKey": f"{inverted(r.at)}|{r.event_id}|{r.attempt}",
        "At": r.at, "EventId": r.event_id, "EventType": r.event_type, "Attempt": r.attempt, "Outcome": r.outcome,
        "Status": r.status, "LatencyMs": r.latency_ms, "Error": r.error, "ResponseBody": r.response_body, "Replay": r.replay,
    }


def _record(licensee_id: str, endpoint_id: str, row: TableEntity) -> DeliveryRecord:
    return DeliveryRecord(licensee_id, endpoint_id, row["At"], row["EventId"], row["EventType"], row["Attempt"], row["Outcome"],
                          row.get("Status"), row.get("LatencyMs", 0), row.get("Error"), row.get("ResponseBody", ""),
                          row.get("Replay", False))
