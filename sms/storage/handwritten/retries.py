"""The retry rules of the two SDK pipelines the hand-written requests would otherwise go through, as
sms/bootstrap.py configures them (QUEUE_RETRY, TABLE_RETRY): when to send again, and how long to wait
first. tests/unit/test_hot_path.py runs each SDK policy beside its rule here, status by status."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping

from ...domain.pacing import retry_after_seconds


@dataclass(frozen=True)
class QueueRetry:
    """azure-storage-queue's ExponentialRetry, as bootstrap.QUEUE_RETRY configures it: any method, after
    any connection or read error, or a 408 or a 5xx other than 501 and 505; retry n waits
    initial_backoff + increment_base**n, ± random_jitter_range."""
    retry_total: int = 2
    initial_backoff: float = 0.5
    increment_base: float = 1.5
    random_jitter_range: float = 0.5

    def after_status(self, method: str, status: int, headers: Mapping[str, str], attempt: int, repeatable: bool) -> float | None:
        if attempt > self.retry_total or not (status == 408 or (status >= 500 and status not in (501, 505))):
            return None
        return self._backoff(attempt)

    def after_error(self, method: str, error: Exception, attempt: int, repeatable: bool) -> float | None:
        return None if attempt > self.retry_total else self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        backoff = self.initial_backoff + self.increment_base ** attempt
        low = backoff - self.random_jitter_range if backoff > self.random_jitter_range else 0
        return random.uniform(low, backoff + self.random_jitter_range)


_CORE_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(506, 999))
_CORE_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class TableRetry:
    """azure-core's RetryPolicy under azure-data-tables, with retry_total=3 (bootstrap.TABLE_RETRY): a status
    of 400 or more with a Retry-After header, or 408, 429, 500, 502, 503, 504 (a POST only 500, 503, 504),
    and a connection or read error only for a method allowed to repeat: a POST never, unless the
    transaction is repeatable (requests.RETRY_METHODS_WITH_POST). No wait before the first retry, then
    0.8 s * 2**(n-1), or what Retry-After asks."""
    retry_total: int = 3
    backoff_factor: float = 0.8
    backoff_max: float = 120

    def _methods(self, repeatable: bool) -> frozenset:
        return _CORE_RETRY_METHODS | {"POST"} if repeatable else _CORE_RETRY_METHODS

    def after_status(self, method: str, status: int, headers: Mapping[str, str], attempt: int, repeatable: bool) -> float | None:
        if status < 400 or attempt > self.retry_total:
            return None
        if retry_after := headers.get("Retry-After"):  # any method, any status of 400 or more
            seconds = retry_after_seconds(retry_after)
            return self._backoff(attempt) if seconds is None else seconds
        allowed = (method in ("POST", "PATCH") and status in (500, 503, 504)) or method in self._methods(repeatable)
        return self._backoff(attempt) if allowed and status in _CORE_RETRY_STATUSES else None

    def after_error(self, method: str, error: Exception, attempt: int, repeatable: bool) -> float | None:
        if method not in self._methods(repeatable) or attempt > self.retry_total:
            return None
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return 0 if attempt <= 1 else min(self.backoff_max, self.backoff_factor * 2 ** (attempt - 1))
