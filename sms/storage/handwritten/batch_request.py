"""The $batch request of an entity-group transaction, written by hand, for the shapes the message store
writes: insert rows, write rows whether or not they are there, and replace rows that have not changed
since they were read.

azure-data-tables builds every $batch body with the standard library's `email` generator: with the
parsing of its answer, about 1.8 ms of CPU for a two-row transaction, over half of what accepting a
message cost (docs/scaling.md). This writes the same OData body as text. tests/unit/test_batch_requests.py
builds the same operations through the SDK and compares the two requests operation by operation; the
few differences are named there, with the documentation that says Azure accepts them.

Every SMS_STORAGE_REQUESTS builds it, =sdk too (sms/storage/requests.py): Azure's limits (limits.py)
are checked on it before anything is sent, so every way refuses exactly the same writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from azure.data.tables.aio import TableClient

from ...domain.model import COMPACT_JSON, new_guid
from ..limits import StorageLimitExceeded, check_entity, check_operations, check_request_size
from .odata import entity_json
from .transport import StorageRequest

# One operation: its method, URL, entity, and the ETag it is conditional on (None: unconditional).
Operation = tuple[str, str, Mapping[str, Any], "str | None"]


@dataclass(frozen=True)
class Transaction:
    """A transaction's request, built and checked, ready to submit: it can be built while other I/O is
    in flight."""
    request: StorageRequest
    operations: Sequence[Operation]
    repeatable: bool  # safe to send again after a connection error (no insert: see BatchRequests.inserting)


class BatchRequests:
    """Builds the $batch requests of transactions on one table."""

    def __init__(self, table: TableClient):
        account, _, sas = table.url.partition("?")
        self._table_url = f"{account}/{table.table_name}"
        # A SAS in the account URL goes on the $batch URL: Azure authorizes the request that carries it.
        # (A SAS from a connection string is a credential the pipeline adds to every URL itself.)
        self._batch_url = f"{account}/$batch" + (f"?{sas}" if sas else "")
        self._version = table.api_version

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

    def _entity_url(self, entity: Mapping[str, Any]) -> str:
        keys = (quote(str(entity[k]).replace("'", "''"), safe="") for k in ("PartitionKey", "RowKey"))
        return "{}(PartitionKey='{}',RowKey='{}')".format(self._table_url, *keys)

    def _build(self, operations: Sequence[Operation]) -> Transaction:
        check_operations(len(operations))
        unique = new_guid(dashes=True, guessable=True)
        batch, changeset = f"batch_{unique}", f"changeset_{unique}"
        lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        partition = operations[0][2]["PartitionKey"] if operations else None
        for number, (method, url, entity, etag) in enumerate(operations):
            if entity["PartitionKey"] != partition:
                raise StorageLimitExceeded("PartitionKey", (
                    f"A transaction's entities must share one PartitionKey (Azure's rule): operation {number} "
                    f"has {entity['PartitionKey']!r}, the first had {partition!r}"))
            body = COMPACT_JSON.encode(entity_json(entity))
            check_entity(entity, len(body))
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
        check_request_size(len(content), f"this one is {len(content)} bytes for {len(operations)} operations")
        request = StorageRequest("POST", self._batch_url, content=content, headers={
            "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
            "x-ms-version": self._version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        })
        # A replace (conditional or not) lands once whatever the repeats; an insert's repeat would fail.
        repeatable = bool(operations) and all(method == "PUT" for method, _, _, _ in operations)
        return Transaction(request, operations, repeatable)
