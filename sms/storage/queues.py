"""Azure Storage queue adapters (azure-storage-queue, aio): send jobs and webhook deliveries."""
from __future__ import annotations

from base64 import b64encode
from xml.sax.saxutils import escape

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ..events import Delivery
from ..model import SendJob
from . import DeliveryQueue, JobQueue
from .hot_path import HotPathTransport, QueueRetry, StorageRequest
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
    def __init__(self, service: QueueServiceClient, name: str, encoding: str, through_sdk: bool = False,
                 hot_path: HotPathTransport | None = None, retry: QueueRetry = QueueRetry()):
        """`through_sdk`: puts go through the SDK's send_message (SMS_STORAGE_REQUESTS=sdk), a way out
        should Azure ever treat the hand-written request differently. Otherwise the hand-written put goes
        over `hot_path` (SMS_STORAGE_REQUESTS=lean, the default), or through the QueueClient's own
        pipeline without one (=direct). `retry`: the rule the client's pipeline was built with."""
        self._queue = queue = queue_client(service, name, encoding)
        self.through_sdk = through_sdk
        self._hot_path = None if through_sdk or hot_path is None else hot_path.for_queue(queue, retry)
        self._base64 = encoding == "base64"
        # With a SAS connection string the queue's url carries the SAS as its query; /messages belongs
        # before it, and the SAS after it, ahead of visibilitytimeout as send_message puts them.
        url, _, self._sas = queue.url.partition("?")
        self._messages_url = f"{url}/messages"
        self._version = queue.api_version

    @property
    def sends_over_hot_path(self) -> bool:
        return self._hot_path is not None

    @storage_errors
    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        # A delayed job never expires (messagettl=-1): Azure refuses a visibility timeout past the
        # message's expiry, 7 days by default ("Put Message": visibilitytimeout at most 7 days and not
        # later than the expiry time; messagettl -1 since version 2017-07-29), and a scheduled send
        # waits up to a week a hop.
        if self.through_sdk:
            await self._queue.send_message(job.to_json(), visibility_timeout=delay_seconds or None,
                                           time_to_live=-1 if delay_seconds else None)
            return
        # One put per accepted message, so it is written here rather than through send_message,
        # whose generated model (de)serialization cost about 0.17 ms of CPU per put, over a tenth
        # of accepting a message. The request is the SDK's byte for byte (tests/unit/test_batch_requests.py
        # compares them), sent over the hot path's own transport (hot_path.py) or the QueueClient's pipeline.
        text = job.to_json()
        text = b64encode(text.encode()).decode() if self._base64 else escape(text)
        delay = f"visibilitytimeout={delay_seconds}&messagettl=-1" if delay_seconds else ""
        query = "&".join(part for part in (self._sas, delay) if part)
        request = StorageRequest(
            "POST", f"{self._messages_url}?{query}" if query else self._messages_url,
            content=f"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>{text}</MessageText></QueueMessage>".encode(),
            headers={"Content-Type": "application/xml", "Accept": "application/xml", "x-ms-version": self._version},
        )
        if self._hot_path is not None:
            response = await self._hot_path.send(request)
        else:
            # send_request is the generated client's public method. Streamed, so the SDK does not parse
            # an answer (the new message's id and receipt) that nothing here uses.
            response = await self._queue._client.send_request(request.for_pipeline(), stream=True)
            await response.read()
        if response.status_code != 201:
            raise HttpResponseError(response=response)

    @storage_errors
    async def check(self) -> None:
        await self._queue.get_queue_properties()

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
