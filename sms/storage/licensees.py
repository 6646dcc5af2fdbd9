"""Licensee settings in Table Storage (table SmsLicensees): PartitionKey the licensee, one row each.
Read once per licensee per 30 s per process (sms/usecases/licensees.py), so a send pays nothing for it."""
from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from . import LicenseeSettings, LicenseeSettingsStore
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
        return LicenseeSettings(licensee_id, row.get("QuietHours"), row.get("TimeZone") or "UTC", row.get("UpdatedAt"))

    @storage_errors
    async def put(self, settings: LicenseeSettings) -> None:
        await self._table.upsert_entity({"PartitionKey": settings.licensee_id, "RowKey": "", "QuietHours": settings.quiet_hours,
                                         "TimeZone": settings.time_zone, "UpdatedAt": settings.updated_at}, mode=UpdateMode.REPLACE)
