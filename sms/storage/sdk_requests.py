"""Transactions and puts written by the Azure SDK itself: the send path's under SMS_STORAGE_REQUESTS=sdk
(a way out, should Azure or an SDK upgrade ever part ways with a hand-written request), and the
transactions of the tables only the SDK writes (the ledger, webhook endpoints) and the retention's
deletes. Azure's limits are checked before sending and a refused operation is raised as the gateway's
error, as on every path."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping, Sequence

from azure.core import MatchConditions
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from ..domain.errors import RecordChanged
from .handwritten.batch_request import Transaction
from .limits import MAX_OPERATIONS, check_entity, check_sdk_request_size
from .refusals import refused_operation, transaction_refusal
from .requests import RETRY_METHODS_WITH_POST, JobPuts, StorageRequests, TableTransactions


class SdkRequests(StorageRequests):
    """TableClient.submit_transaction and QueueClient.send_message."""

    setting = "sdk"

    def transactions(self, table: TableClient) -> TableTransactions:
        return SdkTransactions(table)

    def job_puts(self, queue: QueueClient, encoding: str) -> JobPuts:
        return SdkJobPuts(queue)


class SdkTransactions(TableTransactions):
    """The same operations as the hand-written transaction (which is still built: the limits are checked
    on it, so both paths refuse exactly the same writes), given to submit_transaction."""

    def __init__(self, table: TableClient):
        super().__init__(table)
        self._table = table

    async def submit(self, transaction: Transaction) -> list[str]:
        retry = {"retry_on_methods": RETRY_METHODS_WITH_POST} if transaction.repeatable else {}
        operations = [_sdk_operation(method, entity, etag) for method, _, entity, etag in transaction.operations]
        try:
            results = await self._table.submit_transaction(operations, raw_request_hook=check_sdk_request_size, **retry)
        except TableTransactionError as exc:
            # One operation refused: its own answer, read as the hand-written path reads it, so both raise alike.
            payload = exc.response.content if exc.response is not None else b""
            raise refused_operation(exc.status_code, payload, str(exc.error_code or "")) from exc
        return [result["etag"] for result in results]


def _sdk_operation(method: str, entity: Mapping[str, Any], etag: str | None) -> tuple:
    if method == "POST":
        return ("create", entity)
    if etag is None:
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})
    return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})


class SdkJobPuts(JobPuts):
    def __init__(self, queue: QueueClient):
        self._queue = queue  # its encode policy matches host.json's messageEncoding (queues.queue_client)

    async def put(self, text: str, delay_seconds: int, *, never_expires: bool = False) -> None:
        await self._queue.send_message(text, visibility_timeout=delay_seconds or None,
                                       time_to_live=-1 if delay_seconds or never_expires else None)


async def submit_transaction(table: TableClient, operations: Sequence[tuple]) -> list[str]:
    """The SDK's submit_transaction, for the tables written only through it (the ledger, webhook endpoints):
    Azure's limits checked before sending, and a refused operation raised as the send path raises it
    (transaction_refusal: RecordChanged, AlreadyExists, StorageUnavailable or TransactionRejected).
    The ETags written, in order."""
    for operation in operations:  # Azurite enforces few of Azure's limits
        if operation[0] != "delete":
            check_entity(operation[1])
    try:
        results = await table.submit_transaction(operations, raw_request_hook=check_sdk_request_size)
        return [result.get("etag") for result in results]
    except TableTransactionError as exc:
        raise transaction_refusal(exc.status_code, str(exc.error_code or exc.message), str(exc.message)) from exc


async def delete_rows(table: TableClient, partition: str, keys: Sequence[str]) -> None:
    """Delete these rows of one partition, in transactions of at most 100 (Azure's limit), rows already
    gone being no error. On Azure one missing row fails its whole transaction (404, transaction_refusal):
    a purge cut short, or one running beside this one, took it first. That transaction's rows are then
    deleted one at a time, where delete_entity takes a 404 as done (azure-data-tables returns on it)."""
    for i in range(0, len(keys), MAX_OPERATIONS):
        group = keys[i : i + MAX_OPERATIONS]
        try:
            await submit_transaction(table, [("delete", {"PartitionKey": partition, "RowKey": key}) for key in group])
        except RecordChanged:
            await asyncio.gather(*(table.delete_entity(partition, key) for key in group))


async def delete_range(table: TableClient, partition: str, low: str, high: str | None = None) -> int:
    """Delete the partition's rows with RowKey in [low, high) (high None: to the end): one range query,
    reading only the rows it deletes (their keys), a page at a time, each page deleted before the next
    is read, so a run cut short keeps what it did. How many rows it found to delete."""
    query, params = "PartitionKey eq @pk and RowKey ge @lo", {"pk": partition, "lo": low}
    if high is not None:
        query, params = f"{query} and RowKey lt @hi", {**params, "hi": high}
    found = 0
    async for page in table.query_entities(query, parameters=params, select=["RowKey"]).by_page():
        keys = [row["RowKey"] async for row in page]
        await delete_rows(table, partition, keys)
        found += len(keys)
    return found
