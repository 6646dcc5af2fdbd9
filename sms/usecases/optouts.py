"""Who asked not to be texted: STOP-style keywords, and the opt-outs dispatch checks.

A number is blocked for a licensee sending from a sender number when it opted out of that licensee
(its STOP answered one of the licensee's messages), of that sender number (carriers apply a STOP to
the number it was sent to, whoever sends from it), or of every licensee (a STOP we could not place).
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Awaitable, Iterable

from cachetools import TLRUCache

from ..domain.model import utcnow
from ..domain.phone import InvalidNumber, to_e164
from ..storage import EVERY_LICENSEE, OptOutStore

# The carrier-standard keywords (CTIA), matched when they are the whole message.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})

# A sender number as a key: E.164, a short code, or an alphanumeric id; anything else is not one.
_SENDER = re.compile(r"\+?[0-9A-Za-z]{1,20}")


def keyword(body: str) -> str | None:
    """"out", "in", or None: "Stop", " stop. " count; "please stop texting me" does not."""
    word = body.strip().strip(".!").strip().upper()
    return "out" if word in OPT_OUT_WORDS else "in" if word in OPT_IN_WORDS else None


def sender_scope(sender: str | None) -> str | None:
    """The scope of a STOP sent to `sender`: every licensee texting from it. An inbound SMS's `to`, a
    message's From and the provider's configured number meet here in E.164, however each was written;
    None when there is no usable number."""
    text = "".join((sender or "").split())
    try:
        text = to_e164(text, "ZZ")  # "ZZ": no default region, so only international numbers parse
    except InvalidNumber:
        pass  # a short code or an alphanumeric sender id: compared as written
    return EVERY_LICENSEE + text if _SENDER.fullmatch(text) else None


class OptOuts:
    """Opt-outs as dispatch checks them: per number, cached per process.

    A job asks about its own numbers: one storage read per number not in the cache (every scope that
    number opted out of), at most `read_concurrency` at once, so a job's cost follows its recipients and
    not the length of anyone's list. Each answer, "none" included, is kept for `cache_seconds` from
    when its read *started*, so a STOP written anywhere is seen everywhere within that time. A change
    made here drops the number it affects, and a read that was in flight during a change is not kept,
    so this process applies it at once.
    """

    def __init__(self, store: OptOutStore, cache_seconds: float = 30.0, max_cached: int = 100_000, read_concurrency: int = 16):
        self._store = store
        self._ttl = cache_seconds
        self._read_concurrency = read_concurrency
        # number -> (when its read started, the scopes it opted out of). A TLRU cache, so each entry
        # expires at its own read's start + cache_seconds; the least recently used go first when full.
        self._cache: TLRUCache[str, tuple[float, frozenset[str]]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _number, entry, _now: entry[0] + self._ttl, timer=lambda: time.monotonic())
        self._changes = 0

    async def blocked(self, licensee_id: str, sender: str | None, numbers: Iterable[str]) -> set[str]:
        """Which of `numbers` this licensee may not text from `sender` (the number the message goes out
        from: its From, or the provider's default number): those opted out of the licensee, of that
        sender number, or of every licensee."""
        applies = {scope for scope in (licensee_id, EVERY_LICENSEE, sender_scope(sender)) if scope}
        scopes = await self._scopes(set(numbers))
        return {number for number, opted_out_of in scopes.items() if not applies.isdisjoint(opted_out_of)}

    async def opt_out(self, number: str, sent_to: str, licensee_id: str | None) -> list[str]:
        """A STOP from `number` to our number `sent_to`, answering a message of `licensee_id` (None: no
        message we know). It stops that licensee from every number, and every licensee from `sent_to`;
        one we cannot place, or sent to a number we cannot read, stops every licensee. The scopes written."""
        sender = sender_scope(sent_to)
        scopes = [licensee_id, sender] if licensee_id and sender else [EVERY_LICENSEE]
        await self._change(number, [self._store.add(scope, number, utcnow()) for scope in scopes])
        return scopes

    async def opt_in(self, number: str, sent_to: str, licensee_id: str | None) -> None:
        """START undoes a STOP to the same number, one to the licensee it answers, and one that applied to
        every licensee."""
        scopes = {scope for scope in (licensee_id, sender_scope(sent_to), EVERY_LICENSEE) if scope}
        await self._change(number, [self._store.remove(scope, number) for scope in scopes])

    async def migrate(self) -> int:
        """Move opt-outs the store kept in an older layout into the one read here (see the store), and
        apply them at once in this process. How many numbers it moved."""
        try:
            moved = await self._store.migrate_legacy()
        except BaseException:
            self._cache.clear()  # some may have moved before it failed
            raise
        finally:
            self._changes += 1
        for number in moved:
            self._cache.pop(number, None)
        return len(moved)

    async def _change(self, number: str | None, writes: list[Awaitable[None]]) -> None:
        try:
            await asyncio.gather(*writes)
        finally:  # even when one write failed: another may have landed
            self._changes += 1
            if number is not None:
                self._cache.pop(number, None)

    async def _scopes(self, numbers: set[str]) -> dict[str, frozenset[str]]:
        found = {number: entry[1] for number in numbers if (entry := self._cache.get(number)) is not None}
        slots = asyncio.Semaphore(self._read_concurrency)

        async def read(number: str) -> None:
            async with slots:
                started, changes = time.monotonic(), self._changes
                found[number] = scopes = frozenset(await self._store.scopes_for(number))
                if changes == self._changes:  # a read that overlapped a change may predate it: not kept
                    self._cache[number] = (started, scopes)  # nor one that outlasted cache_seconds

        await asyncio.gather(*(read(number) for number in numbers - found.keys()))
        return found
