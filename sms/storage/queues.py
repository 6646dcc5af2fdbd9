"""Azure Storage queue adapter (azure-storage-queue, aio) for send jobs."""
from __future__ import annotations

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ..model import SendJob
from . import JobQueue
from .tables import storage_errors


def queue_client(service: QueueServiceClient, name: str, encoding: str) -> QueueClient:
    """A client whose encoding matches the queue trigger's (host.json messageEncoding).

    The SDK sends text as-is by default while the trigger expects base64 by default; a
    mismatch makes every message fail to decode and end up on the poison queue.
    """
    if encoding == "base64":
        return service.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())
    if encoding == "none":
        return service.get_queue_client(name)
    raise ValueError(f"host.json queues.messageEncoding={encoding!r} is not 'base64' or 'none'")


class StorageJobQueue(JobQueue):
    def __init__(self, queue: QueueClient):
        self._queue = queue

    @storage_errors
    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        await self._queue.send_message(job.to_json(), visibility_timeout=delay_seconds or None)

    @storage_errors
    async def check(self) -> None:
        await self._queue.get_queue_properties()

    async def create_queue(self) -> None:
        await create_queue(self._queue)


async def create_queue(queue: QueueClient) -> None:
    try:
        await queue.create_queue()
    except ResourceExistsError:
        pass
