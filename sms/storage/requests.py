"""Who writes and sends the two storage requests on every send: a message's entity-group transactions
(the message store, tables.py) and its job put (queues.py).

SMS_STORAGE_REQUESTS chooses one StorageRequests for the process (sms/bootstrap.py): `lean` and `direct`
(sms/storage/handwritten/sending.py: the gateway's own requests, over its own transport or through the SDK
pipelines) or `sdk` (sms/storage/sdk_requests.py: the SDK's submit_transaction and send_message). The
adapters call it without knowing which; every other storage call goes through the SDKs whatever it is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from .handwritten.batch_request import BatchRequests, Transaction

# azure-core retries a POST such as $batch only on a 500/503/504 answer, never after a connection
# error, because it may have landed. A transaction of conditional replaces is safe to repeat: if the
# first landed, the repeat is refused (412, RecordChanged) rather than applied twice. Without this,
# one reset connection while recording outcomes left SMS that went out to end as "outcome unknown".
# Every way keeps the rule: the SDK's pipeline given these methods for a repeatable transaction (=direct,
# =sdk: submit_transaction passes its keywords to the same pipeline), the hot path's TableRetry (=lean).
RETRY_METHODS_WITH_POST = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class TableTransactions(ABC):
    """Entity-group transactions on one table. Each is built first (and checked against Azure's limits:
    see batch_request.py), so it can be built while other I/O is in flight, then submitted."""

    def __init__(self, table: TableClient):
        self._requests = BatchRequests(table)

    def inserting(self, entities: Sequence[Mapping[str, Any]]) -> Transaction:
        """Inserts every entity or none; never sent again after a connection error (it may have landed)."""
        return self._requests.inserting(entities)

    def upserting(self, entities: Sequence[Mapping[str, Any]]) -> Transaction:
        """Writes every entity whether or not it is there, all or none; repeatable."""
        return self._requests.upserting(entities)

    def replacing(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> Transaction:
        """Replaces each (entity, etag) only if its ETag still matches, all or none; repeatable."""
        return self._requests.replacing(entities)

    @abstractmethod
    async def submit(self, transaction: Transaction) -> list[str]:
        """Writes it; the new ETags in order. A refused operation raises the gateway's error for it
        (sms/storage/refusals.py: RecordChanged, AlreadyExists, StorageUnavailable, TransactionRejected);
        any other refusal azure-core's HttpResponseError, and no answer its ServiceRequestError or
        ServiceResponseError, as the SDK would."""

    async def create(self, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Inserts every entity or none; returns their ETags in order."""
        return await self.submit(self.inserting(entities))

    async def replace(self, entities: Sequence[tuple[Mapping[str, Any], str]]) -> list[str]:
        """Replaces every entity or none; RecordChanged if any was changed or removed since it was
        read. Returns the new ETags in order."""
        return await self.submit(self.replacing(entities))


class JobPuts(ABC):
    """Puts send jobs on one queue."""

    @abstractmethod
    async def put(self, text: str, delay_seconds: int, *, never_expires: bool = False) -> None:
        """Puts `text` on the queue, hidden for `delay_seconds` and then never expiring when delayed or
        `never_expires`; errors as the SDK's send_message raises them (HttpResponseError for a refusal)."""


class StorageRequests(ABC):
    """One way of writing and sending the send path's two requests, for every table and queue of the process."""

    setting: str  # its SMS_STORAGE_REQUESTS value

    @abstractmethod
    def transactions(self, table: TableClient) -> TableTransactions:
        """Transactions on `table`, sent as this way sends them."""

    @abstractmethod
    def job_puts(self, queue: QueueClient, encoding: str) -> JobPuts:
        """Puts on `queue`, whose client encodes as host.json's messageEncoding (`encoding`) says."""

    async def close(self) -> None:  # noqa: B027 - only the lean way holds something (a session)
        """Releases what it holds: with the SDK clients, when the process stops."""
