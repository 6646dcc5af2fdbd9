"""Licensee settings in Table Storage (table SmsLicensees): PartitionKey the licensee, one row each.
Read once per licensee per 30 s per process (sms/usecases/licensees.py), so a send pays nothing for it.
Written by operators (quiet hours, routes) and by the licensee itself (PUT /api/routes): every write is
conditional on the ETag it read, so two writers never undo each other's change."""
from __future__ import annotations

from dataclasses import replace

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..domain.errors import RecordChanged
from . import LicenseeSettings, LicenseeSettingsStore
from .limits import check_entity
from .tables import create_table, storage_errors

LICENSEES_TABLE = "SmsLicensees"


class TableLicenseeSettingsStore(LicenseeSettingsStore):
    def __init__(self, table: TableClient):
        self._table = table

    @classmethod
    def from_service(cls, service: TableServiceClient) -> "TableLicenseeSettingsStore":
        return cls(service.get_table_client(LICENSEES_TABLE))

    async def create_table(self) -> None:
        await create_table(self._table)

    @storage_errors
    async def get(self, licensee_id: str) -> LicenseeSettings | None:
        try:
            row = await self._table.get_entity(licensee_id, "")
        except ResourceNotFoundError:
            return None
        return _settings_from(row)

    @storage_errors
    async def every(self) -> list[LicenseeSettings]:
        return [_settings_from(row) async for row in self._table.list_entities()]

    @storage_errors
    async def put(self, settings: LicenseeSettings) -> LicenseeSettings:
        entity = {"PartitionKey": settings.licensee_id, "RowKey": "", "QuietHours": settings.quiet_hours,
                  "TimeZone": settings.time_zone, "UpdatedAt": settings.updated_at, "Routes": settings.routes,
                  "Guard": settings.guard}
        check_entity(entity)  # a routing table's text is bounded to fit; the SDK would send more and Azurite take it
        try:
            if settings.etag is None:
                written = await self._table.create_entity(entity)
            else:
                written = await self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=settings.etag,
                                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise RecordChanged(f"licensee {settings.licensee_id}'s settings changed") from None
        return replace(settings, etag=written["etag"])


def _settings_from(row: TableEntity) -> LicenseeSettings:
    return LicenseeSettings(row["PartitionKey"], row.get("QuietHours"), row.get("TimeZone") or "UTC", row.get("UpdatedAt"),
                            row.get("Routes"), row.get("Guard"), etag=row.metadata["etag"])
