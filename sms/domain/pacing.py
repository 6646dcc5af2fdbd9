"""When to try again (a send, a request a server asked to wait for), and how fast one sender may send."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz
from typing import Callable


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures, never sooner than the provider's Retry-After."""

    max_attempts: int = 5
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0

    def delay_seconds(self, attempts: int, retry_after: float | None = None) -> int:
        backoff = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(attempts - 1, 0))
        return int(max(backoff, retry_after or 0.0) + 0.999)


class SenderRateLimiter:
    """At most `per_second` sends per sender id in this process, however many run concurrently.

    Each caller reserves the next free slot before it waits, so slots are handed out in order and
    the achieved rate is the configured one, not a burst followed by silence. 0 turns it off.
    """

    def __init__(self, per_second: float):
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next_slot: dict[str, float] = {}

    async def wait_turn(self, sender: str | None) -> None:
        if not self._interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        key = sender or ""
        slot = max(now, self._next_slot.get(key, now))
        self._next_slot[key] = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class RequestRateLimiter:
    """Requests per licensee in this process: a token bucket holding `per_minute` tokens, refilled
    steadily, so a client may burst up to a minute's allowance and then keeps to the rate.
    0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_tracked: int = 100_000):
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_tracked
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # licensee -> (tokens, at)

    def retry_after(self, licensee_id: str) -> float | None:
        """None, taking a token, when the request may go ahead; else the seconds until it could."""
        if not self.per_minute:
            return None
        now = self._clock()
        tokens, at = self._buckets.pop(licensee_id, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self._rate)
        if tokens >= 1.0:
            self._buckets[licensee_id] = (tokens - 1.0, now)
            self._forget_oldest()
            return None
        self._buckets[licensee_id] = (tokens, now)
        return (1.0 - tokens) / self._rate

    def _forget_oldest(self) -> None:
        while len(self._buckets) > self._max:  # a bucket idle long enough is full again anyway
            self._buckets.popitem(last=False)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds, read as azure-core's RetryPolicy reads it (a number, or an HTTP
    date counted from now, never below 0); None where azure-core's reader raises. One reader for every
    Retry-After the gateway reads: storage's (sms/storage/handwritten/retries.py), the SMS providers' and
    webhook receivers'. Written here rather than imported from azure-core's private `_utils` module, which
    function_app.py would import with it: an upgrade that moved it would make importing the app raise, and
    the host index zero functions. tests/unit/test_sdk_private_parts.py holds the two to the same answers."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = parsedate_tz(value)
        if not parsed:
            return None
        when = datetime(*parsed[:6], tzinfo=timezone.utc) - timedelta(seconds=parsed[9])  # parsed[9]: the zone's offset
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (ValueError, TypeError, OverflowError):
        return None
