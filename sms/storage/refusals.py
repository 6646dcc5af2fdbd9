"""What storage's refusals mean to the gateway: a lost ETag race (RecordChanged), a row already there
(AlreadyExists), storage out of reach or throttling (StorageUnavailable), or a bug in what we wrote
(TransactionRejected). The same errors whoever wrote and sent the request."""
from __future__ import annotations

import json
import re

from ..domain.errors import AlreadyExists, RecordChanged, StorageUnavailable

# The error code and message of a refusal whose body is not well-formed JSON (Microsoft's documented
# example is not: its message string is never closed), or is the older XML.
_ERROR_CODE = re.compile(rb'"code"\s*:\s*"([^"]*)"|<code>([^<]*)</code>')
_ERROR_MESSAGE = re.compile(rb'"value"\s*:\s*"((?:[^"\\]|\\.)*)|<message[^>]*>([^<]*)</message>')


class TransactionRejected(Exception):
    """Storage refused one operation of a transaction for a reason that is not a race or an outage:
    a bug in what we wrote, never the caller's input."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


def refused_operation(status: int, payload: bytes, known_code: str = "") -> Exception:
    """The error for one operation of a transaction, from its status and the body of its answer."""
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
