"""Queue triggers run as the Functions host's Storage Queues extension (v5) runs them.

Sources, in Azure/azure-sdk-for-net, sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common
/src/Shared (C) and ...Storage.Queues/src (Q):
- Polling: the first poll is immediate; after a poll that found messages the next one follows as
  soon as no more than newBatchThreshold are in flight (Q QueueListener.ExecuteAsync,
  WaitForNewBatchThreshold); after an empty poll the wait grows from 100 ms, randomised by ±20%,
  up to maxPollingInterval (C Timers/RandomizedExponentialBackoffStrategy, QueuePollingIntervals).
- A received message stays invisible for 10 minutes, renewed every 5 while its function runs
  (QueueListener, UpdateQueueMessageVisibilityCommand).
- Poison (C Queues/QueueProcessor): a message already dequeued more than maxDequeueCount times is
  moved without running; after a failure it is moved once its dequeue count reaches
  maxDequeueCount, otherwise made visible again after visibilityTimeout. Moving copies the body to
  `<queue>-poison` as a new message, then deletes the original. A queue whose name ends in
  `-poison` has no poison queue of its own: a failed message is left to reappear when its
  visibility lapses (Q Listeners/QueueListenerFactory.CreatePoisonQueueReference).
- messageEncoding base64: a message that does not decode goes to the poison queue at once, as it
  came, without running the function (Q QueueServiceClientProvider.CreateMessageDecodingFailedHandler).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage  # the type the Python worker hands to queue triggers
from azure.storage.queue.aio import QueueClient

from .app import QueueTrigger, invoke

log = logging.getLogger("sms.devhost")

IN_FLIGHT_VISIBILITY_SECONDS = 600  # QueueListener._visibilityTimeout
RENEW_EVERY_SECONDS = IN_FLIGHT_VISIBILITY_SECONDS / 2
MIN_POLL_SECONDS = 0.1  # QueuePollingIntervals.Minimum
POLL_RANDOMIZATION = 0.2  # RandomizedExponentialBackoffStrategy.RandomizationFactor


def _seconds(value: str | int | float | None, default: float) -> float:
    """host.json durations are TimeSpan strings: 'hh:mm:ss' or 'd.hh:mm:ss'."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    days, clock = 0, value
    head, dot, rest = value.partition(".")
    if dot and ":" not in head:
        days, clock = int(head), rest
    hours, minutes, seconds = clock.split(":")
    return timedelta(days=days, hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()


@dataclass(frozen=True)
class QueueSemantics:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host: dict) -> "QueueSemantics":
        q = host.get("extensions", {}).get("queues", {})
        batch = int(q.get("batchSize", cls.batch_size))
        return cls(
            batch_size=batch,
            new_batch_threshold=int(q.get("newBatchThreshold", batch // 2)),
            max_polling_interval=_seconds(q.get("maxPollingInterval"), cls.max_polling_interval),
            visibility_timeout=_seconds(q.get("visibilityTimeout"), cls.visibility_timeout),
            max_dequeue_count=int(q.get("maxDequeueCount", cls.max_dequeue_count)),
            message_encoding=str(q.get("messageEncoding", cls.message_encoding)).lower(),
        )


class PollingBackoff:
    """The wait before the next poll: none after messages, then growing from 100 ms, randomised."""

    def __init__(self, maximum: float, rng: random.Random | None = None):
        self._maximum = max(maximum, MIN_POLL_SECONDS)
        self._rng = rng or random.Random()
        self._empty_polls = 0

    def found_messages(self) -> None:
        self._empty_polls = 0

    def next_empty_delay(self) -> float:
        self._empty_polls += 1
        if self._empty_polls == 1:
            return MIN_POLL_SECONDS
        factor = self._rng.uniform(1 - POLL_RANDOMIZATION, 1 + POLL_RANDOMIZATION)
        return min(MIN_POLL_SECONDS + factor * 2 ** (self._empty_polls - 2) * MIN_POLL_SECONDS, self._maximum)


class NotBase64(ValueError):
    pass


class QueueListener:
    """Runs one queue-triggered function the way the Functions host does."""

    def __init__(self, trigger: QueueTrigger, queue: QueueClient, poison: QueueClient | None, semantics: QueueSemantics):
        self.trigger = trigger
        self._queue = queue
        self._poison = poison  # None for a queue that is itself a poison queue
        self._q = semantics
        self._in_flight: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await _create_queue(self._queue)
        backoff = PollingBackoff(self._q.max_polling_interval)
        while not self._stopping.is_set():
            if len(self._in_flight) > self._q.new_batch_threshold:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            received = 0
            try:
                async for message in self._queue.receive_messages(
                    messages_per_page=self._q.batch_size, max_messages=self._q.batch_size,
                    visibility_timeout=IN_FLIGHT_VISIBILITY_SECONDS,
                ):
                    received += 1
                    task = asyncio.create_task(self._process(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
            except Exception as exc:  # storage down: keep polling, as the host does
                log.warning("polling %s failed: %s", self.trigger.queue_name, exc)
            if received:
                backoff.found_messages()
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff.next_empty_delay())
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _process(self, message: Any) -> None:
        try:
            body = self._decode(message.content)
        except NotBase64 as exc:
            if self._poison is not None:
                log.error("%s: message %s %s; moved to %s", self.trigger.name, message.id, exc, self._poison.queue_name)
                await self._to_poison(message)
            return
        if self._poison is not None and message.dequeue_count > self._q.max_dequeue_count:
            await self._to_poison(message)
            return
        queue_message = QueueMessage(
            id=message.id, body=body, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on, expiration_time=message.expires_on, time_next_visible=message.next_visible_on,
        )
        renewing = asyncio.create_task(self._keep_invisible(message))
        try:
            await invoke(self.trigger.function, self.trigger.arg_name, queue_message)
        except Exception as exc:
            renewing.cancel()
            await self._failed(message, exc)
        else:
            renewing.cancel()
            await self._queue.delete_message(message)

    async def _keep_invisible(self, message: Any) -> None:
        """Renew the message's invisibility while its function runs; the newest pop receipt is kept
        on `message`, so the final delete or release uses it."""
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            try:
                updated = await self._queue.update_message(message, visibility_timeout=IN_FLIGHT_VISIBILITY_SECONDS)
            except Exception as exc:  # the host gives up renewing too; the message may reappear
                log.warning("%s: could not renew message %s's visibility: %s", self.trigger.name, message.id, exc)
                return
            message.pop_receipt = updated.pop_receipt

    def _decode(self, content: str) -> bytes:
        if self._q.message_encoding != "base64":
            return content.encode()
        try:  # .NET's Convert.FromBase64String skips white space; nothing else
            return base64.b64decode(re.sub(r"\s+", "", content), validate=True)
        except (binascii.Error, ValueError):
            raise NotBase64("is not valid base64 (host.json messageEncoding is base64)") from None

    async def _to_poison(self, message: Any) -> None:
        try:  # StorageQueueExtensions.AddMessageAndCreateIfNotExistsAsync
            await self._poison.send_message(message.content)
        except ResourceNotFoundError:
            await _create_queue(self._poison)
            await self._poison.send_message(message.content)
        await self._queue.delete_message(message)

    async def _failed(self, message: Any, exc: Exception) -> None:
        if self._poison is None:  # left invisible: it reappears when its visibility lapses
            log.warning("%s: message %s failed: %s", self.trigger.name, message.id, exc, exc_info=exc)
        elif message.dequeue_count >= self._q.max_dequeue_count:
            log.error("%s: message %s failed %d times, moved to %s: %s", self.trigger.name, message.id,
                      message.dequeue_count, self._poison.queue_name, exc)
            await self._to_poison(message)
        else:
            log.warning("%s: message %s failed (attempt %d of %d), retrying: %s", self.trigger.name, message.id,
                        message.dequeue_count, self._q.max_dequeue_count, exc, exc_info=exc)
            await self._queue.update_message(message, visibility_timeout=int(self._q.visibility_timeout))


async def _create_queue(queue: QueueClient) -> None:
    with contextlib.suppress(Exception):
        await queue.create_queue()
