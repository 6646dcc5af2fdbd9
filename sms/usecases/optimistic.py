"""The one loop every conditional update runs: read, decide the change, write it if nothing changed
since the read (ETag), and on a lost race read again and decide again.

Storage refuses an ETag-checked write (RecordChanged) when another worker or a delivery receipt wrote
first, and also when our own write landed but its answer was lost (sms/storage/requests.py retries a
$batch after a reset connection and meets the new ETags). Deciding again from what is stored handles
both: a change is a rule applied to the row as it stands, never a row to overwrite.
"""
from __future__ import annotations

import asyncio
import random
from typing import Awaitable, Callable, TypeVar

from ..domain.errors import RecordChanged

State = TypeVar("State")
Planned = TypeVar("Planned")
Written = TypeVar("Written")

_UNREAD = object()


async def update_optimistically(
    read: Callable[[], Awaitable[State]],
    change: Callable[[State], Planned | None],
    write: Callable[[Planned], Awaitable[Written]],
    *,
    attempts: int,
    what: str,
    current: State = _UNREAD,  # type: ignore[assignment]
    backoff: float = 0.0,
) -> Written | None:
    """`change` the state (`current`, or a fresh `read`) and `write` what it planned; None from `change`
    means there is nothing to write, and ends it. After a RecordChanged the state is read again, up to
    `attempts` writes in all; then RecordChanged is raised, naming `what`.

    `backoff` (seconds): before each read again, a random wait up to backoff x 2^(losses - 1). For a record
    many writers race for (a message's ledger entry under a burst of receipts): writers that lost together
    retry apart, so a slower writer (a job's record of 100 rows) is not beaten by the same stream each time."""
    state = await read() if current is _UNREAD else current
    for attempt in range(attempts):
        planned = change(state)
        if planned is None:
            return None
        try:
            return await write(planned)
        except RecordChanged:
            if attempt + 1 == attempts:
                break
            if backoff:
                await asyncio.sleep(random.uniform(0, backoff * 2**attempt))
            state = await read()
    raise RecordChanged(f"{what} kept changing under {attempts} attempts to write it")
