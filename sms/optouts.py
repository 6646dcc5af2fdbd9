"""Who asked not to be texted: STOP-style keywords, and the opt-out lists dispatch checks.

A number is blocked for a licensee sending from a sender number when it opted out of that licensee
(its STOP answered one of the licensee's messages), of that sender number (carriers apply a STOP to
the number it was sent to, whoever sends from it), or of every licensee (a STOP we could not place).
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Container

from .model import utcnow
from .phone import InvalidNumber, to_e164
from .storage import EVERY_LICENSEE, OptOutStore

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


@dataclass(frozen=True)
class Blocked:
    """The numbers one licensee may not text from one sender number. It holds the cached lists
    themselves, so a check copies nothing however long they are."""

    lists: tuple[Container[str], ...]

    def __contains__(self, number: object) -> bool:
        return any(number in numbers for numbers in self.lists)


class OptOuts:
    """The opt-out lists, cached per process so a job costs no round trip while they are fresh.

    Dispatch needs two reads: the licensee's own list, and the lists every licensee shares (every
    licensee's, each sender number's), which storage keeps in one partition. A read is kept for
    `cache_seconds` from when it *started*, so a STOP written anywhere is seen everywhere within that
    time. A change made here drops what it affects, and a read that was in flight during a change is
    not kept, so this process applies it at once.
    """

    def __init__(self, store: OptOutStore, cache_seconds: float = 30.0):
        self._store = store
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}  # a licensee id, or EVERY_LICENSEE for the shared lists
        self._changes = 0

    async def blocked(self, licensee_id: str, sender: str | None) -> Blocked:
        """`sender`: the number the message goes out from (its From, or the provider's default number)."""
        mine, shared = await asyncio.gather(
            self._read(licensee_id, lambda: self._store.numbers(licensee_id)),
            self._read(EVERY_LICENSEE, self._store.shared_scopes),
        )
        return Blocked((mine, shared.get(EVERY_LICENSEE, ()), shared.get(sender_scope(sender), ())))

    async def opt_out(self, number: str, sent_to: str, licensee_id: str | None) -> list[str]:
        """A STOP from `number` to our number `sent_to`, answering a message of `licensee_id` (None: no
        message we know). It stops that licensee from every number, and every licensee from `sent_to`;
        one we cannot place, or sent to a number we cannot read, stops every licensee. The scopes written."""
        sender = sender_scope(sent_to)
        scopes = [licensee_id, sender] if licensee_id and sender else [EVERY_LICENSEE]
        await self._change(licensee_id, [self._store.add(scope, number, utcnow()) for scope in scopes])
        return scopes

    async def opt_in(self, number: str, sent_to: str, licensee_id: str | None) -> None:
        """START undoes a STOP to the same number, one to the licensee it answers, and one that applied to
        every licensee."""
        scopes = {scope for scope in (licensee_id, sender_scope(sent_to), EVERY_LICENSEE) if scope}
        await self._change(licensee_id, [self._store.remove(scope, number) for scope in scopes])

    async def _change(self, licensee_id: str | None, writes: list[Awaitable[None]]) -> None:
        try:
            await asyncio.gather(*writes)
        finally:  # even when one write failed: another may have landed
            self._changes += 1
            self._cache.pop(EVERY_LICENSEE, None)
            if licensee_id:
                self._cache.pop(licensee_id, None)

    async def _read(self, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        cached = self._cache.get(key)
        if cached and started - cached[0] < self._ttl:
            return cached[1]
        changes = self._changes
        answer = await read()
        if changes == self._changes:  # a read that overlapped a change may predate it: not kept
            self._cache[key] = (started, answer)
        return answer
