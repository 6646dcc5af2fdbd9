"""Webhook endpoints in Table Storage (table SmsWebhooks): PartitionKey the licensee, RowKey the
endpoint id. A licensee's few endpoints are one partition: listing them is one query, and every read
names the licensee, so one licensee never reaches another's endpoint."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..errors import AlreadyExists, RecordChanged
from . import WebhookEndpoint, WebhookEndpointStore, WebhookSecret
from .tables import create_table, storage_errors

WEBHOOKS_TABLE = "SmsWebhooks"


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
        try:
            written = await self._table.create_entity(_entity(endpoint))
        except ResourceExistsError:
            raise AlreadyExists(f"webhook endpoint {endpoint.endpoint_id} exists") from None
        return replace(endpoint, etag=written["etag"])

    @storage_errors
    async def list(self, licensee_id: str) -> list[WebhookEndpoint]:
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": licensee_id})
        return sorted([_endpoint(row) async for row in rows], key=lambda e: (e.created_at, e.endpoint_id))

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
        await self._table.delete_entity(licensee_id, endpoint_id)  # not there is no error


def _entity(e: WebhookEndpoint) -> dict[str, Any]:
    previous = e.previous_secret
    return {
        "PartitionKey": e.licensee_id, "RowKey": e.endpoint_id, "Url": e.url, "EventTypes": json.dumps(list(e.event_types)),
        "Secret": e.secret.value, "SecretCreatedAt": e.secret.created_at, "CreatedAt": e.created_at,
        "PreviousSecret": previous.value if previous else None, "PreviousSecretCreatedAt": previous.created_at if previous else None,
        "PreviousSecretExpiresAt": previous.expires_at if previous else None,
        "DisabledAt": e.disabled_at, "DisabledReason": e.disabled_reason,
        "ConsecutiveFailures": e.consecutive_failures, "FailingSince": e.failing_since,
    }


def _endpoint(row: TableEntity) -> WebhookEndpoint:
    previous = None
    if row.get("PreviousSecret"):
        previous = WebhookSecret(row["PreviousSecret"], row["PreviousSecretCreatedAt"], row.get("PreviousSecretExpiresAt"))
    return WebhookEndpoint(
        licensee_id=row["PartitionKey"], endpoint_id=row["RowKey"], url=row["Url"], event_types=tuple(json.loads(row["EventTypes"])),
        secret=WebhookSecret(row["Secret"], row["SecretCreatedAt"]), created_at=row["CreatedAt"],
        previous_secret=previous, disabled_at=row.get("DisabledAt"), disabled_reason=row.get("DisabledReason"),
        consecutive_failures=row.get("ConsecutiveFailures", 0), failing_since=row.get("FailingSince"),
        etag=row.metadata["etag"],
    )

