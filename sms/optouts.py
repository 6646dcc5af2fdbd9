"""Who asked not to be texted: STOP-style keywords, and the opt-out lists dispatch checks."""
from __future__ import annotations

import asyncio
import time

from .model import utcnow
from .storage import EVERY_LICENSEE, OptOutStore

# The carrier-standard keywords (CTIA), matched when they are the whole message.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})


def keyword(body: str) -> str | None:
    """"out", "in", or None: "Stop", " stop. " count; "please stop texting me" does not."""
    word = body.strip().strip(".!").strip().upper()
    return "out" if word in OPT_OUT_WORDS else "in" if word in OPT_IN_WORDS else None


class OptOuts:
    """A licensee's opt-out list plus the everyone list, cached per process for a few seconds so a
    job costs no extra round trip; a change made here is seen here at once."""

    def __init__(self, store: OptOutStore, cache_seconds: float = 30.0):
        self._store = store
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, set[str]]] = {}

    async def blocked(self, licensee_id: str) -> set[str]:
        mine, everyone = await asyncio.gather(self._numbers(licensee_id), self._numbers(EVERY_LICENSEE))
        return mine | everyone

    async def opt_out(self, scope: str, number: str) -> None:
        await self._store.add(scope, number, utcnow())
        self._cache.pop(scope, None)

    async def opt_in(self, scope: str, number: str) -> None:
        """START undoes a STOP in this scope and any that applied to every licensee."""
        await asyncio.gather(*(self._store.remove(s, number) for s in {scope, EVERY_LICENSEE}))
        self._cache.pop(scope, None)
        self._cache.pop(EVERY_LICENSEE, None)

    async def _numbers(self, scope: str) -> set[str]:
        cached = self._cache.get(scope)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        numbers = await self._store.numbers(scope)
        self._cache[scope] = (time.monotonic(), numbers)
        return numbers
