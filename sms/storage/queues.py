"""Azure Storage queue adapters (azure-storage-queue, aio): send jobs and webhook deliveries."""
from __future__ import annotations

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ..domain.events import Delivery
from ..domain.jobs import WholeJob
from ..domain.model import SendJob
from . import DeliveryQueue, JobQueue, WholeJobQueue
from .limits import fits_queue_message
from .requests import StorageRequests
from .tables import storage_errors


def queue_client(service: QueueServiceClient, name: str, encoding: str) -> QueueClient:
    """A client whose encoding matches the queue trigger's (host.json messageEncoding).

    The SDK sends text as-is by default while the trigger expects base64 by default; a
    mismatch makes every message fail to decode and end up on the poison queue.
    """
    if encoding == "base64":
        return service.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy(),
                                        message_decode_policy=TextBase64DecodePolicy())
    if encoding == "none":
        return service.get_queue_client(name)
    raise ValueError(f"host.json queues.messageEncoding={encoding!r} is not 'base64' or 'none'")


class StorageJobQueue(JobQueue):
    def __init__(self, service: QueueServiceClient, name: str, encoding: str, requests: StorageRequests):
        """`requests`: how a put is written and sent (SMS_STORAGE_REQUESTS); one put per accepted message."""
        self._queue = queue = queue_client(service, name, encoding)
        self._puts = requests.job_puts(queue, encoding)

    @storage_errors
    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        # A delayed job never expires (messagettl=-1): Azure refuses a visibility timeout past the
        # message's expiry, 7 days by default ("Put Message": visibilitytimeout at most 7 days and not
        # later than the expiry time; messagettl -1 since version 2017-07-29), and a scheduled send
        # waits up to a week a hop.
        await self._puts.put(job.to_json(), delay_seconds)

    @storage_errors
    async def check(self) -> None:
        await self._queue.get_queue_properties()

    async def create_queue(self) -> None:
        await create_queue(self._queue)


class StorageWholeJobQueue(WholeJobQueue):
    def __init__(self, service: QueueServiceClient, name: str, encoding: str, requests: StorageRequests):
        """`requests`: how a put is written and sent (SMS_STORAGE_REQUESTS), as for StorageJobQueue."""
        self._queue = queue = queue_client(service, name, encoding)
        self._encoding = encoding
        self._puts = requests.job_puts(queue, encoding)

    def fits(self, job: WholeJob) -> bool:
        # Checked here, not left to the service: Azurite stores larger messages than Azure takes.
        return fits_queue_message(job.text, self._encoding)

    @storage_errors
    async def put(self, job: WholeJob) -> None:
        # messagettl=-1: the message never expires. Left out, Azure keeps it 7 days ("Put Message": "If this
        # parameter is omitted, the default time-to-live is 7 days"; -1 "indicating that the message does not
        # expire", version 2017-07-29 and later), and it is the accepted message's only copy until its rows exist:
        # a worker outage longer than that must not lose it.
        await self._puts.put(job.text, 0, never_expires=True)

    async def create_queue(self) -> None:
        await create_queue(self._queue)


class StorageDeliveryQueue(DeliveryQueue):
    """Webhook deliveries: off the send path, so through the SDK's send_message."""

    def __init__(self, service: QueueServiceClient, name: str, encoding: str):
        self._queue = queue_client(service, name, encoding)

    @storage_errors
    async def put(self, delivery: Delivery, *, delay_seconds: int = 0) -> None:
        await self._queue.send_message(delivery.to_json(), visibility_timeout=delay_seconds or None)

    async def create_queue(self) -> None:
        await create_queue(self._queue)


async def create_queue(queue: QueueClient) -> None:
    try:
        await queue.create_queue()
    except ResourceExistsError:
        pass
