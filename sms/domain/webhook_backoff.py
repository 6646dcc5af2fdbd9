"""When to try a failed webhook again: Svix's schedule (the Standard Webhooks spec's example starts
the same way), about a day in all, with jitter, and a receiver's Retry-After honoured within a cap."""
from __future__ import annotations

import random
from collections.abc import Callable

# Seconds to wait before attempt n+1 after attempt n failed; attempt 1 goes at once. 8 attempts over
# 27.6 hours: quick retries ride out a blip or a deploy, the long ones an outage of most of a day.
SCHEDULE: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
ATTEMPTS = len(SCHEDULE)
# +-10%: retries of many messages that failed together (a receiver's outage) spread out instead of
# arriving as one burst when it comes back.
JITTER = 0.1
# A receiver may ask for a longer wait than the schedule's (429/503 Retry-After), but not for hours:
# a mistaken "Retry-After: 86400" would otherwise spend the whole day in one wait.
RETRY_AFTER_CAP = 3600.0


def delay_before(
    attempt: int,
    *,
    retry_after: float | None = None,
    retry_after_cap: float = RETRY_AFTER_CAP,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before `attempt` (1-based) once the attempt before it failed; None once the
    schedule is spent (give up). `retry_after`: what the failed attempt's response asked for, used
    when it is longer than the schedule's delay, never beyond `retry_after_cap`."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    if attempt > ATTEMPTS:
        return None
    delay = SCHEDULE[attempt - 1] * (1 + JITTER * (2 * rand() - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_cap))
    return delay
