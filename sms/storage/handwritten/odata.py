"""An entity as the OData JSON of a $batch operation, typed as azure-data-tables types it, so rows
written by hand read back through the SDK exactly like rows it wrote. Only the types the gateway stores."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Mapping

from azure.data.tables import EdmType, EntityProperty

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


def entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, (str, bool)) or (isinstance(value, int) and value in _INT32):
            out[name] = value
        elif isinstance(value, datetime):
            out[name], out[f"{name}@odata.type"] = _edm_datetime(value), "Edm.DateTime"
        elif isinstance(value, EntityProperty) and value.edm_type == EdmType.INT64 and isinstance(value.value, int) \
                and value.value in _INT64:
            # A 64-bit integer (a spend counter's millionths) goes as text, as the SDK sends it (OData JSON's Edm.Int64).
            out[name], out[f"{name}@odata.type"] = str(value.value), "Edm.Int64"
        else:
            raise TypeError(f"{name}: {type(value).__name__} {value!r} is not a type the gateway stores")
    return out


def _edm_datetime(value: datetime) -> str:
    # A datetime read back from Tables keeps its 7-digit original; re-sending it keeps it exact.
    return getattr(value, "tables_service_value", None) or _utc_text(value)


@functools.lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    # Cached because a transaction's rows share their timestamps: strftime is a third of an entity's cost.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
