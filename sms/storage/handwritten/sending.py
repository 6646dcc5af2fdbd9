"""The two ways the hand-written requests go out: over the hot path's own transport (SMS_STORAGE_REQUESTS=lean,
the default) or through the SDK clients' own pipelines (=direct), where authentication, retries, timeouts,
logging and tracing are the SDK's. The requests, and the reading of their answers, are the same either way."""
from __future__ import annotations

from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from ..requests import RETRY_METHODS_WITH_POST, JobPuts, StorageRequests, TableTransactions
from .batch_answer import etags
from .batch_request import Transaction
from .job_put import JobPutRequests
from .retries import QueueRetry, TableRetry
from .transport import HotPathTransport, StorageRequest


class Sender(Protocol):
    async def send(self, request: StorageRequest, *, repeatable: bool = False) -> Any:
        """The answer (status_code, headers, content: what HttpResponseError reads), after the retries."""


class HandWrittenTransactions(TableTransactions):
    def __init__(self, table: TableClient, sender: Sender):
        super().__init__(table)
        self.sender = sender

    async def submit(self, transaction: Transaction) -> list[str]:
        response = await self.sender.send(transaction.request, repeatable=transaction.repeatable)
        if response.status_code != 202:
            raise HttpResponseError(response=response)
        return etags(response.content, len(transaction.operations))


class HandWrittenJobPuts(JobPuts):
    def __init__(self, queue: QueueClient, encoding: str, sender: Sender):
        self._requests = JobPutRequests(queue, encoding)
        self.sender = sender

    async def put(self, text: str, delay_seconds: int, *, never_expires: bool = False) -> None:
        response = await self.sender.send(self._requests.put(text, delay_seconds, never_expires=never_expires))
        if response.status_code != 201:
            raise HttpResponseError(response=response)


class LeanRequests(StorageRequests):
    """Over one HotPathTransport for the process, with the retry rules the SDK clients were built with."""

    setting = "lean"

    def __init__(self, transport: HotPathTransport, queue_retry: QueueRetry = QueueRetry(), table_retry: TableRetry = TableRetry()):
        self.transport, self._queue_retry, self._table_retry = transport, queue_retry, table_retry

    def transactions(self, table: TableClient) -> TableTransactions:
        return HandWrittenTransactions(table, self.transport.for_table(table, self._table_retry))

    def job_puts(self, queue: QueueClient, encoding: str) -> JobPuts:
        return HandWrittenJobPuts(queue, encoding, self.transport.for_queue(queue, self._queue_retry))

    async def close(self) -> None:
        await self.transport.close()


class ThroughPipeline:
    """Sends through an SDK client's configured pipeline, with the generated client's public send_request.
    Streamed, so the SDK leaves the answer alone: a $batch's multipart body (its content decoder), a put's
    new message id and receipt (its deserializer), neither of which the gateway uses."""

    def __init__(self, client: TableClient | QueueClient):
        self._client = client._client  # the generated client: tests/unit/test_sdk_private_parts.py names it

    async def send(self, request: StorageRequest, *, repeatable: bool = False) -> Any:
        retry = {"retry_on_methods": RETRY_METHODS_WITH_POST} if repeatable else {}
        response = await self._client.send_request(request.for_pipeline(), stream=True, **retry)
        await response.read()
        return response


class DirectRequests(StorageRequests):
    """Through each SDK client's own pipeline."""

    setting = "direct"

    def transactions(self, table: TableClient) -> TableTransactions:
        return HandWrittenTransactions(table, ThroughPipeline(table))

    def job_puts(self, queue: QueueClient, encoding: str) -> JobPuts:
        return HandWrittenJobPuts(queue, encoding, ThroughPipeline(queue))
