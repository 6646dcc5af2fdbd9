"""The Put Message request of a send job, written by hand: send_message's request byte for byte
(tests/unit/test_batch_requests.py compares them), without its generated model (de)serialization,
which cost about 0.17 ms of CPU per put, over a tenth of accepting a message."""
from __future__ import annotations

from base64 import b64encode
from xml.sax.saxutils import escape

from azure.storage.queue.aio import QueueClient

from .transport import StorageRequest


class JobPutRequests:
    """Builds the Put Message requests of one queue, in its encoding (host.json messageEncoding)."""

    def __init__(self, queue: QueueClient, encoding: str):
        self._base64 = encoding == "base64"
        # With a SAS connection string the queue's url carries the SAS as its query; /messages belongs
        # before it, and the SAS after it, ahead of visibilitytimeout as send_message puts them.
        url, _, self._sas = queue.url.partition("?")
        self._messages_url = f"{url}/messages"
        self._version = queue.api_version

    def put(self, text: str, delay_seconds: int, *, never_expires: bool = False) -> StorageRequest:
        """A delayed message never expires (messagettl=-1: see StorageJobQueue.put), nor one `never_expires`
        (a whole job: StorageWholeJobQueue.put). The query in send_message's order."""
        text = b64encode(text.encode()).decode() if self._base64 else escape(text)
        delay = f"visibilitytimeout={delay_seconds}" if delay_seconds else ""
        ttl = "messagettl=-1" if delay_seconds or never_expires else ""
        query = "&".join(part for part in (self._sas, delay, ttl) if part)
        return StorageRequest(
            "POST", f"{self._messages_url}?{query}" if query else self._messages_url,
            content=f"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>{text}</MessageText></QueueMessage>".encode(),
            headers={"Content-Type": "application/xml", "Accept": "application/xml", "x-ms-version": self._version},
        )
