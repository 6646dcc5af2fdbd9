"""Entity-group transactions ($batch) for the two shapes the gateway writes: insert rows, and
replace rows that have not changed since they were read.

azure-data-tables builds every $batch body with the standard library's `email` generator and
parses the answer with `email.parser`: about 1.8 ms of CPU for a two-row transaction, over half of
what accepting a message costs (profiled in docs/scaling.md). This module writes the same OData
body as text and reads back only what the gateway uses: each operation's status and ETag.

It sends through the TableClient's own pipeline, so authentication (SharedKey or Entra ID),
retries, timeouts, logging and tracing are still the SDK's.
"""
from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

from ..errors import AlreadyExists, RecordChanged, StorageUnavailable

# One part of a changeset response: status line, headers, then a body up to the next boundary.
_PART = re.compile(rb"HTTP/1\.1 (\d{3})[^\r\n]*\r?\n(.*?)\r?\n\r?\n(.*?)(?=\r?\n--)", re.DOTALL)
_ETAG = re.compile(rb"^etag:[ \t]*(.+?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_INT32 = range(-(2**31), 2**31)
# azure-core retries a POST such as $batch only on a 500/503/504 answer, never after a connection
# error, because it may have landed. A transaction of conditional replaces is safe to repeat: if the
# first landed, the repeat is refused (412, RecordChanged) rather than applied twice. Without this,
# one reset connection while recording outcomes left SMS that went out to end as "outcome unknown".
_RETRY_METHODS_WITH_POST = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class TransactionRejected(Exception):
    """Storage refused one operation of a transaction for a reason that is not a race or an outage:
    a bug in what we wrote, never the caller's input."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


@dataclass(frozen=True)
class Transaction:
    """A transaction's request, built and ready to submit: it can be built while other I/O is in flight."""
    request: HttpRequest
    operations: int
    repeatable: bool  # safe to send again after a connection error (every operation is conditional)


class Transactions:
    """Writes transactions to one table through that TableClient's pipeline."""

    def __init__(self, table: TableClient):
        account, _, sas = table.url.partition("?")
        self._table_url = f"{account}/{table.table_name}"
        self._batch_url = f"{account}/$batch" + (f"?{sas}" if sas else "")
        self._version = table.api_version
        # The generated client's public send_request runs the TableClient's configured pipeline.
        self._client = table._client

    def inserting(self, entities: Sequence[Mapping[str, Any]]) -> Transaction:
        """A transaction that inserts every entity or none. Not repeated after a connection error: if
        the first attempt landed, the repeat would fail (409) and hide that it had."""
        return self._build(("POST", self._table_url, entity, None) for entity in entities)

    def replacing(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> Transaction:
        """A transaction that replaces each (entity, etag) only if its ETag still matches, all or none."""
        return self._build(("PUT", self._entity_url(entity), entity, etag) for entity, etag in entities)

    async def create(self, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Inserts every entity or none; returns their ETags in order."""
        return await self.submit(self.inserting(entities))

    async def replace(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> list[str]:
        """Replaces every entity or none; RecordChanged if any was changed or removed since it was
        read. Returns the new ETags in order."""
        return await self.submit(self.replacing(entities))

    async def submit(self, transaction: Transaction) -> list[str]:
        # Streamed, as the SDK does, so its content decoder leaves the multipart body alone.
        retry = {"retry_on_methods": _RETRY_METHODS_WITH_POST} if transaction.repeatable else {}
        response = await self._client.send_request(transaction.request, stream=True, **retry)
        await response.read()
        if response.status_code != 202:
            raise HttpResponseError(response=response)
        return _etags(response.content, transaction.operations)

    def _entity_url(self, entity: Mapping[str, Any]) -> str:
        keys = (quote(str(entity[k]).replace("'", "''"), safe="") for k in ("PartitionKey", "RowKey"))
        return "{}(PartitionKey='{}',RowKey='{}')".format(self._table_url, *keys)

    def _build(self, operations: Iterable[tuple[str, str, Mapping[str, Any], str | None]]) -> Transaction:
        unique = uuid.uuid4()
        batch, changeset = f"batch_{unique}", f"changeset_{unique}"
        lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        count, repeatable = 0, True
        for count, (method, url, entity, etag) in enumerate(operations, start=1):
            repeatable = repeatable and etag is not None
            body = json.dumps(_entity_json(entity), separators=(",", ":"))
            lines += [
                f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                f"Content-ID: {count}", "",
                f"{method} {url} HTTP/1.1", "Content-Type: application/json", "Accept: application/json;odata=nometadata",
                "Prefer: return-no-content", "DataServiceVersion: 3.0",
                *([f"If-Match: {etag}"] if etag else []), "", body,
            ]
        lines += [f"--{changeset}--", f"--{batch}--", ""]
        request = HttpRequest("POST", self._batch_url, content="\r\n".join(lines).encode(), headers={
            "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
            "x-ms-version": self._version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        })
        return Transaction(request, count, repeatable and count > 0)


def _entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The OData JSON of an entity, typed as azure-data-tables types it, so rows written here read
    back through the SDK exactly like rows it wrote. Only the types the gateway stores."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, (str, bool)) or (isinstance(value, int) and value in _INT32):
            out[name] = value
        elif isinstance(value, datetime):
            out[name], out[f"{name}@odata.type"] = _edm_datetime(value), "Edm.DateTime"
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


def _etags(body: bytes, expected: int) -> list[str]:
    parts = _PART.findall(body)
    failed = next(((int(status), payload) for status, _, payload in parts if not 200 <= int(status) < 300), None)
    if failed is not None:
        raise _part_error(*failed)
    etags = [match.group(1).decode() for _, headers, _ in parts if (match := _ETAG.search(headers))]
    if len(parts) != expected or len(etags) != expected:
        raise TransactionRejected(202, "UnreadableResponse", f"expected {expected} results, read {len(etags)}")
    return etags


def _part_error(status: int, payload: bytes) -> Exception:
    try:
        error = json.loads(payload)["odata.error"]
        code, message = error.get("code", ""), error.get("message", {}).get("value", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = "", payload[:200].decode(errors="replace")
    if status == 404 and code != "TableNotFound":  # a row to replace was removed since it was read
        return RecordChanged(message)
    return storage_refusal(status, code, message) or TransactionRejected(status, code, message)


def storage_refusal(status: int | None, code: str, message: str) -> Exception | None:
    """The gateway's error for a refusal from storage: a lost ETag race, a row already there, or
    storage out of reach or throttling (None as status: no answer at all). None for anything else.
    `code` is the service's error code, or any text that carries it."""
    if status == 412:
        return RecordChanged(message)
    if status == 409 and "EntityAlreadyExists" in code:
        return AlreadyExists(message)
    if status is None or status >= 500 or status in (408, 429):
        return StorageUnavailable()
    return None
