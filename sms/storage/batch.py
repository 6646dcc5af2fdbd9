"""Entity-group transactions ($batch) for the two shapes the gateway writes: insert rows, and
replace rows that have not changed since they were read.

azure-data-tables builds every $batch body with the standard library's `email` generator and
parses the answer with `email.parser`: about 1.8 ms of CPU for a two-row transaction, over half of
what accepting a message costs (profiled in docs/scaling.md). This module writes the same OData
body as text and reads back only what the gateway uses: each operation's status and ETag.
tests/unit/test_batch_requests.py builds the same operations through the SDK and compares the two
requests operation by operation; the few differences are named there, with the documentation that
says Azure accepts them.

It sends over the hot path's own transport (hot_path.py: SharedKey, SAS or Entra ID, and the retries
and timeouts of the SDK's pipeline) when given one (SMS_STORAGE_REQUESTS=lean, the default), or through
the TableClient's own pipeline (=direct), where authentication, retries, timeouts, logging and tracing
are the SDK's. With `through_sdk` (the setting
SMS_STORAGE_REQUESTS=sdk) the same operations go through the SDK's own submit_transaction instead,
a way out should Azure ever treat the two differently; the checks before sending and the errors
after are the same on both paths.

Azure refuses transactions and entities past the limits below. Azurite enforces few of them, so a
test against it would pass where Azure fails: they are checked here, before anything is sent.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from ..errors import AlreadyExists, RecordChanged, StorageUnavailable
from ..model import COMPACT_JSON, new_guid
from .hot_path import HotPathTransport, StorageRequest, TableRetry

# "All entities subject to operations as part of the transaction must have the same PartitionKey
# value." "The transaction can include at most 100 entities, and its total payload may be no more
# than 4 MiB in size." (Performing entity group transactions,
# https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions)
MAX_OPERATIONS = 100
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# "An entity can have up to 255 properties, including 3 system properties [PartitionKey, RowKey,
# Timestamp]. Therefore, the user may include up to 252 custom properties." "Property names are
# case-sensitive strings up to 255 characters in size." Edm.String: "A UTF-16-encoded value. String
# values may be up to 64 KiB in size." (Understanding the Table service data model,
# https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model)
# "Maximum size of a single entity, including all property values: 1 MiB" and "Maximum number of
# properties in a table entity: 255 (including the three system properties ...)" (Scalability and
# performance targets for Table storage, https://learn.microsoft.com/en-us/azure/storage/tables/scalability-targets)
MAX_CUSTOM_PROPERTIES = 255 - 3
MAX_PROPERTY_NAME_CHARS = 255
MAX_STRING_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
_SYSTEM_PROPERTIES = frozenset({"PartitionKey", "RowKey", "Timestamp"})

# The changeset's boundary, declared at the top of the body (the batch's is in the response's headers).
_BOUNDARY = re.compile(rb'boundary="?([^\s;"]+)')
# Where an operation's status line and headers end. A part with no body, as Azure documents a 204,
# ends right there: its boundary follows the headers' blank line with no line end of its own.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_ETAG = re.compile(rb"^etag:[ \t]*(.+?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
# For the usual answer (_etags): an operation's status line, and its ETag header as Azure and Azurite
# spell it, each on a line of its own (a line of an answer's JSON body cannot start them: JSON escapes a
# newline in a string). A literal after the newline lets the scan skip ahead, which '^' with
# re.MULTILINE and IGNORECASE do not: a fifth of the time.
_STATUS_LINE = re.compile(rb"\nHTTP/1\.1 (\d{3})")
_ETAG_AS_SENT = re.compile(rb"\nETag:[ \t]*([^\s][^\r\n]*?)[ \t]*\r?\n")
# The error code and message of a refusal whose body is not well-formed JSON (Microsoft's documented
# example is not: its message string is never closed), or is the older XML.
_ERROR_CODE = re.compile(rb'"code"\s*:\s*"([^"]*)"|<code>([^<]*)</code>')
_ERROR_MESSAGE = re.compile(rb'"value"\s*:\s*"((?:[^"\\]|\\.)*)|<message[^>]*>([^<]*)</message>')
_INT32 = range(-(2**31), 2**31)
# azure-core retries a POST such as $batch only on a 500/503/504 answer, never after a connection
# error, because it may have landed. A transaction of conditional replaces is safe to repeat: if the
# first landed, the repeat is refused (412, RecordChanged) rather than applied twice. Without this,
# one reset connection while recording outcomes left SMS that went out to end as "outcome unknown".
# submit_transaction passes its keywords to the same pipeline, so the SDK path repeats them too.
# The hot path's TableRetry keeps the same rule (Transaction.repeatable; tests/unit/test_hot_path.py).
_RETRY_METHODS_WITH_POST = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class TransactionRejected(Exception):
    """Storage refused one operation of a transaction for a reason that is not a race or an outage:
    a bug in what we wrote, never the caller's input."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


class StorageLimitExceeded(Exception):
    """A write Azure would refuse, refused here before anything was sent. `limit` names which:
    PartitionKey, Operations, RequestSize, PropertyCount, PropertyName, StringSize or EntitySize.
    Input is validated well inside these limits, so this is a bug, never the caller's fault."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Transaction:
    """A transaction's request, built and checked, ready to submit: it can be built while other I/O is
    in flight. Built on the SDK path too, so both paths refuse exactly the same writes."""
    request: StorageRequest
    operations: int
    repeatable: bool  # safe to send again after a connection error (no insert: see inserting)
    sdk_operations: tuple = ()  # the same operations for TableClient.submit_transaction (SDK path)


class Transactions:
    """Writes transactions to one table: over the hot path's transport when given one (hot_path.py),
    otherwise through that TableClient's pipeline."""

    def __init__(self, table: TableClient, through_sdk: bool = False, hot_path: HotPathTransport | None = None,
                 retry: TableRetry = TableRetry()):
        account, _, sas = table.url.partition("?")
        self._table = table
        self._table_url = f"{account}/{table.table_name}"
        # A SAS in the account URL goes on the $batch URL: Azure authorizes the request that carries it.
        # (A SAS from a connection string is a credential the pipeline adds to every URL itself.)
        self._batch_url = f"{account}/$batch" + (f"?{sas}" if sas else "")
        self._version = table.api_version
        # The generated client's public send_request runs the TableClient's configured pipeline.
        self._client = table._client
        self.through_sdk = through_sdk
        # `retry`: the rule the TableClient's pipeline was built with (bootstrap: retry_total=3).
        self._hot_path = None if through_sdk or hot_path is None else hot_path.for_table(table, retry)

    @property
    def sends_over_hot_path(self) -> bool:
        return self._hot_path is not None

    def inserting(self, entities: Sequence[Mapping[str, Any]]) -> Transaction:
        """A transaction that inserts every entity or none. Not repeated after a connection error: if
        the first attempt landed, the repeat would fail (409) and hide that it had."""
        return self._build([("POST", self._table_url, entity, None) for entity in entities])

    def upserting(self, entities: Sequence[Mapping[str, Any]]) -> Transaction:
        """A transaction that writes every entity whether or not it is there (Insert Or Replace Entity:
        a PUT with no If-Match), all or none. Repeatable: a second write of the same rows changes nothing."""
        return self._build([("PUT", self._entity_url(entity), entity, None) for entity in entities])

    def replacing(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> Transaction:
        """A transaction that replaces each (entity, etag) only if its ETag still matches, all or none."""
        return self._build([("PUT", self._entity_url(entity), entity, etag) for entity, etag in entities])

    async def create(self, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Inserts every entity or none; returns their ETags in order."""
        return await self.submit(self.inserting(entities))

    async def replace(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> list[str]:
        """Replaces every entity or none; RecordChanged if any was changed or removed since it was
        read. Returns the new ETags in order."""
        return await self.submit(self.replacing(entities))

    async def submit(self, transaction: Transaction) -> list[str]:
        retry = {"retry_on_methods": _RETRY_METHODS_WITH_POST} if transaction.repeatable else {}
        if self.through_sdk:
            return await self._submit_through_sdk(transaction, retry)
        if self._hot_path is not None:
            response = await self._hot_path.send(transaction.request, repeatable=transaction.repeatable)
        else:
            # Streamed, as the SDK does, so its content decoder leaves the multipart body alone.
            response = await self._client.send_request(transaction.request.for_pipeline(), stream=True, **retry)
            await response.read()
        if response.status_code != 202:
            raise HttpResponseError(response=response)
        return _etags(response.content, transaction.operations)

    async def _submit_through_sdk(self, transaction: Transaction, retry: dict) -> list[str]:
        try:
            results = await self._table.submit_transaction(
                transaction.sdk_operations, raw_request_hook=check_request_size, **retry)
        except TableTransactionError as exc:
            # One operation refused: its own answer, read as ours is read, so both paths raise alike.
            payload = exc.response.content if exc.response is not None else b""
            raise _part_error(exc.status_code, payload, str(exc.error_code or "")) from exc
        return [result["etag"] for result in results]

    def _entity_url(self, entity: Mapping[str, Any]) -> str:
        keys = (quote(str(entity[k]).replace("'", "''"), safe="") for k in ("PartitionKey", "RowKey"))
        return "{}(PartitionKey='{}',RowKey='{}')".format(self._table_url, *keys)

    def _build(self, operations: Sequence[tuple[str, str, Mapping[str, Any], str | None]]) -> Transaction:
        if len(operations) > MAX_OPERATIONS:
            raise StorageLimitExceeded("Operations", f"A transaction holds at most {MAX_OPERATIONS} operations "
                                                     f"(Azure's limit); this one has {len(operations)}")
        unique = new_guid(dashes=True, guessable=True)
        batch, changeset = f"batch_{unique}", f"changeset_{unique}"
        lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        partition = operations[0][2]["PartitionKey"] if operations else None
        for number, (method, url, entity, etag) in enumerate(operations):
            if entity["PartitionKey"] != partition:
                raise StorageLimitExceeded("PartitionKey", (
                    f"A transaction's entities must share one PartitionKey (Azure's rule): operation {number} "
                    f"has {entity['PartitionKey']!r}, the first had {partition!r}"))
            body = COMPACT_JSON.encode(_entity_json(entity))
            _check_entity(entity, len(body))
            # Headers as the SDK writes them (Content-ID numbered from 0 as it numbers them), and an
            # insert asks for no echo of the entity: the documented way to get its ETag alone.
            lines += [
                f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                f"Content-ID: {number}", "",
                f"{method} {url} HTTP/1.1", "Content-Type: application/json", "DataServiceVersion: 3.0",
                *(("Accept: application/json;odata=minimalmetadata", "Prefer: return-no-content") if method == "POST" else
                  ("Accept: application/json", *([f"If-Match: {etag}"] if etag else []))),
                "", body,
            ]
        lines += [f"--{changeset}--", f"--{batch}--", ""]
        content = "\r\n".join(lines).encode()
        if len(content) > MAX_REQUEST_BYTES:
            raise StorageLimitExceeded("RequestSize", (
                f"A transaction's request is at most {MAX_REQUEST_BYTES} bytes (4 MiB, Azure's limit); this one "
                f"is {len(content)} bytes for {len(operations)} operations"))
        request = StorageRequest("POST", self._batch_url, content=content, headers={
            "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
            "x-ms-version": self._version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        })
        # A replace (conditional or not) lands once whatever the repeats; an insert's repeat would fail.
        repeatable = bool(operations) and all(method == "PUT" for method, _, _, _ in operations)
        sdk_operations = tuple(_sdk_operation(method, entity, etag) for method, _, entity, etag in operations) if self.through_sdk else ()
        return Transaction(request, len(operations), repeatable, sdk_operations)


async def submit_transaction(table: TableClient, operations: Sequence[tuple]) -> list[str]:
    """The SDK's submit_transaction, for the tables written through it (the ledger, webhook endpoints):
    Azure's limits checked before sending, and a refused operation raised as `Transactions` raises it
    (transaction_refusal: RecordChanged, AlreadyExists, StorageUnavailable or TransactionRejected).
    The ETags written, in order."""
    for operation in operations:  # Azurite enforces few of Azure's limits
        if operation[0] != "delete":
            check_entity(operation[1])
    try:
        results = await table.submit_transaction(operations, raw_request_hook=check_request_size)
        return [result.get("etag") for result in results]
    except TableTransactionError as exc:
        raise transaction_refusal(exc.status_code, str(exc.error_code or exc.message), str(exc.message)) from exc


def check_request_size(pipeline_request: Any) -> None:
    """Sees the SDK's own $batch body just before it is sent, and refuses one over Azure's 4 MiB: as a
    request hook of submit_transaction (here on the SDK path, and in the ledger's adapter). (A request
    hook given per call replaces one the client was built with; the gateway builds its clients with none.)"""
    content = pipeline_request.http_request.content
    if isinstance(content, (bytes, bytearray)) and len(content) > MAX_REQUEST_BYTES:
        raise StorageLimitExceeded("RequestSize", (
            f"A transaction's request is at most {MAX_REQUEST_BYTES} bytes (4 MiB, Azure's limit); the SDK "
            f"wrote {len(content)} bytes"))


def _sdk_operation(method: str, entity: Mapping[str, Any], etag: str | None) -> tuple:
    if method == "POST":
        return ("create", entity)
    if etag is None:
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})
    return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})


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


def _check_entity(entity: Mapping[str, Any], json_bytes: int) -> None:
    """Refuses an entity Azure would refuse: too many properties, a name too long, a string over
    64 KiB or an entity over 1 MiB (as Azure counts them)."""
    # Counted only when there could be too many: the keys and None values (not stored) do not count.
    if len(entity) > MAX_CUSTOM_PROPERTIES:
        custom = sum(1 for name, value in entity.items() if value is not None and name not in _SYSTEM_PROPERTIES)
        if custom > MAX_CUSTOM_PROPERTIES:
            raise StorageLimitExceeded("PropertyCount", (
                f"{_where(entity)} has {custom} properties besides PartitionKey, RowKey and Timestamp; Azure allows "
                f"{MAX_CUSTOM_PROPERTIES} (255 with those three)"))
    if max(map(len, entity)) > MAX_PROPERTY_NAME_CHARS:
        name = max(entity, key=len)
        raise StorageLimitExceeded("PropertyName", (
            f"{_where(entity)}: property name {name[:40]!r}... is {len(name)} characters; Azure allows {MAX_PROPERTY_NAME_CHARS}"))
    # The JSON is ASCII (json.dumps escapes the rest) and spends at least one byte per UTF-16 code unit
    # of a string (an ASCII character 1 or 2, any other 6 per code unit), so no string in a body of
    # 32 KiB or less can be over 64 KiB, nor the entity near 1 MiB. Only larger ones are measured.
    if 2 * json_bytes <= MAX_STRING_BYTES:
        return
    for name, value in entity.items():
        if isinstance(value, str) and (size := 2 * utf16_units(value)) > MAX_STRING_BYTES:
            raise StorageLimitExceeded("StringSize", (
                f"{_where(entity)}: property {name} is {size} bytes as UTF-16 ({len(value)} characters); Azure allows "
                f"{MAX_STRING_BYTES} bytes (64 KiB) in a string property"))
    if (size := entity_size(entity)) > MAX_ENTITY_BYTES:
        raise StorageLimitExceeded("EntitySize", (
            f"{_where(entity)} is {size} bytes as Azure counts an entity's size; Azure allows {MAX_ENTITY_BYTES} (1 MiB)"))


def check_entity(entity: Mapping[str, Any]) -> None:
    """Refuses an entity Azure would refuse (StorageLimitExceeded), for writes that do not go through
    Transactions: the same checks, on the entity's JSON as a transaction would carry it."""
    _check_entity(entity, len(COMPACT_JSON.encode(_entity_json(entity))))


def _where(entity: Mapping[str, Any]) -> str:
    return f"Entity (PartitionKey={entity['PartitionKey']!r}, RowKey={entity['RowKey']!r})"


def entity_size(entity: Mapping[str, Any]) -> int:
    """An entity's size as Azure counts it against the 1 MiB limit: "4 bytes + Len (PartitionKey +
    RowKey) * 2 bytes + For-Each Property(8 bytes + Len(Property Name) * 2 bytes + Sizeof(.Net
    Property Type))", where a string is "# of Characters * 2 bytes + 4 bytes for length of string",
    DateTime 8, Int 4 and Bool 1 ("How the size of an entity is calculated in Windows Azure table
    storage", https://learn.microsoft.com/en-us/archive/blogs/avkashchauhan/how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage).
    Characters are UTF-16 code units, as Azure stores strings."""
    size = 4
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            size += 2 * utf16_units(str(value))
        elif value is None:  # not stored
            continue
        elif isinstance(value, str):
            size += 8 + 2 * utf16_units(name) + 2 * utf16_units(value) + 4
        else:
            value_size = 1 if isinstance(value, bool) else 8 if isinstance(value, datetime) else 4
            size += 8 + 2 * utf16_units(name) + value_size
    return size


def utf16_units(text: str) -> int:
    # A character outside the Basic Multilingual Plane (an emoji) is two UTF-16 code units.
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _edm_datetime(value: datetime) -> str:
    # A datetime read back from Tables keeps its 7-digit original; re-sending it keeps it exact.
    return getattr(value, "tables_service_value", None) or _utc_text(value)


@functools.lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    # Cached because a transaction's rows share their timestamps: strftime is a third of an entity's cost.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _etags(body: bytes, expected: int) -> list[str]:
    # The usual answer, every operation done, read in two scans (a third of the time of splitting it
    # into parts): one ETag after each status line and before the next. Anything else is read part by
    # part below.
    if body.startswith(b"--") and expected:
        statuses = list(_STATUS_LINE.finditer(body))
        if len(statuses) == expected and all(status.group(1).startswith(b"2") for status in statuses):
            etags = list(_ETAG_AS_SENT.finditer(body))
            ends = [status.start() for status in statuses[1:]] + [len(body)]
            if len(etags) == expected and all(status.end() < etag.start() < end for status, etag, end in zip(statuses, etags, ends, strict=True)):
                return [etag.group(1).decode() for etag in etags]
    results = _results(body)
    failed = next(((status, payload) for status, _, payload in results if not 200 <= status < 300), None)
    if failed is not None:
        raise _part_error(*failed)
    etags = [match.group(1).decode() for _, headers, _ in results if (match := _ETAG.search(headers))]
    if len(results) != expected or len(etags) != expected:
        raise TransactionRejected(202, "UnreadableResponse", f"expected {expected} results, read {len(etags)}")
    return etags


def _results(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """(status, headers, body) of each operation in a changeset response, in order; or the one
    answer to a batch that failed as a whole, which comes without a changeset."""
    if not body.startswith(b"--"):
        return []
    parts = body.split(body.split(b"\n", 1)[0].rstrip())  # the body opens with the batch's delimiter
    if changeset := _BOUNDARY.search(body):
        parts = [piece for part in parts for piece in part.split(b"--" + changeset.group(1))]
    results = []
    for part in parts:
        start = part.find(b"HTTP/1.1 ")
        if start < 0:  # a part's MIME headers alone, or the closing delimiters
            continue
        head, *rest = _END_OF_HEADERS.split(part[start:], maxsplit=1)
        status_line, _, headers = head.partition(b"\n")
        results.append((int(status_line[9:12]), headers, rest[0].strip() if rest else b""))
    return results


def _part_error(status: int, payload: bytes, known_code: str = "") -> Exception:
    try:
        error = json.loads(payload)["odata.error"]
        code, message = error.get("code", ""), error.get("message", {}).get("value", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        code = _first(_ERROR_CODE, payload)
        message = _first(_ERROR_MESSAGE, payload) or payload[:200].decode(errors="replace")
    return transaction_refusal(status, code or known_code, message)


def _first(pattern: re.Pattern, payload: bytes) -> str:
    match = pattern.search(payload)
    return next((group.decode(errors="replace") for group in match.groups() if group), "") if match else ""


def transaction_refusal(status: int | None, code: str, message: str) -> Exception:
    """The gateway's error for an operation of a transaction that storage refused. A 404 means a row
    the transaction replaces or deletes was removed since it was read: a lost race, as a 412 is. Azure
    fails the whole transaction for it ("Operations within a change set are processed atomically",
    Performing entity group transactions), even for an unconditional delete: "if delete operations
    are submitted in a TableTransactionAction, the transaction will fail if the entity does not exist"
    (TableClient.DeleteEntity, Azure.Data.Tables, learn.microsoft.com/dotnet/api/azure.data.tables.tableclient.deleteentity)."""
    if status == 404 and code != "TableNotFound":
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
