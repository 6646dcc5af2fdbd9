"""Who asked not to be texted: STOP-style keywords, and the opt-outs dispatch checks.

A number is blocked for a licensee sending from a sender number when it opted out of that licensee
(its STOP answered one of the licensee's messages), of that sender number (carriers apply a STOP to
the number it was sent to, whoever sends from it), or of every licensee (a STOP we could not place).

Two stores: OptOutStore is the truth dispatch reads (per number); OptOutIndex is the licensee's view (per scope,
with each change's history, source, reason and key). Every change writes both, in the order that leaves a number
blocked when the second write fails:

- An opt-out (a STOP, a manual add) writes the truth first, then the index. The index write failing leaves a
  number blocked that the list does not show yet: the STOP still blocks. The error goes back to the caller (the
  vendor resends an SMS it got no 2xx for; a client retries), and the retry writes the same rows (OptOutIndex.record
  is idempotent: the same change, the same keys); the backfill (`backfill`, `python -m sms optouts reindex`) writes
  what is missing from the truth without one.
- An opt-in (a START, a manual removal) writes the index first, then the truth. A lifted opt-out always has its
  record (who, when, why) before it takes effect. The truth write failing leaves the number blocked while the index
  already says it is not: the caller got an error and the retry does both again. The repair leaves a newer index
  state as it is (OptOutIndex.converge), since a change whose truth write is still on its way looks the same.
- An opt-in lifts only the opt-out it read: its truth write depends on the row's ETag as read before deciding (or on
  there being no row). A STOP or manual add that lands in between was not seen, so it stays: the opt-in's index record
  is taken back (OptOutIndex.withdraw: the state becomes the truth's again, and the history loses a change never
  made), a manual removal answers Conflict (409: read it again), and a START leaves that scope blocked. An opt-out is
  never conditional: never texting someone who said STOP wins every race. (Not by the changes' times: a STOP's is the
  vendor's clock, a removal's ours, and a removal may lift only what its caller saw.)
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from typing import Awaitable, Iterable

from cachetools import TLRUCache

from ..domain.errors import Conflict, GatewayError, NotFound, RecordChanged
from ..domain.model import utcnow
from ..domain.phone import InvalidNumber, mask, to_e164
from ..storage import EVERY_LICENSEE, SOURCE_MANUAL, SOURCE_START, SOURCE_STOP, OptOutChange, OptOutIndex, OptOutStore

# The carrier-standard keywords (CTIA), matched when they are the whole message.
log = logging.getLogger("sms.optouts")

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


def describe_scope(scope: str) -> str:
    """A scope as an answer says it: "this licensee" is its id; the others in words."""
    if scope == EVERY_LICENSEE:
        return "a STOP we could not tie to one licensee (it applies to every licensee)"
    if scope.startswith(EVERY_LICENSEE):
        return f"a STOP sent to {scope[len(EVERY_LICENSEE):]} (it applies to every licensee texting from that number)"
    return f"licensee {scope}"


class OptOuts:
    """Opt-outs as dispatch checks them: per number, cached per process.

    A job asks about its own numbers: one storage read per number not in the cache (every scope that
    number opted out of), at most `read_concurrency` at once, so a job's cost follows its recipients and
    not the length of anyone's list. Each answer, "none" included, is kept for `cache_seconds` from
    when its read *started*, so a STOP written anywhere is seen everywhere within that time. A change
    made here drops the number it affects, and a read that was in flight during a change is not kept,
    so this process applies it at once.
    """

    def __init__(self, store: OptOutStore, cache_seconds: float = 30.0, max_cached: int = 100_000, read_concurrency: int = 16,
                 index: OptOutIndex | None = None):
        """`index`: the licensee's view each change is written to as well (None: a process that only checks)."""
        self._store, self._index = store, index
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

    async def opt_out(self, number: str, sent_to: str, licensee_id: str | None, at: datetime | None = None) -> list[str]:
        """A STOP from `number` to our number `sent_to`, answering a message of `licensee_id` (None: no
        message we know), received `at`. It stops that licensee from every number, and every licensee from `sent_to`;
        one we cannot place, or sent to a number we cannot read, stops every licensee. The scopes written."""
        sender = sender_scope(sent_to)
        scopes = [licensee_id, sender] if licensee_id and sender else [EVERY_LICENSEE]
        await self._stop([OptOutChange(scope, number, True, at or utcnow(), SOURCE_STOP) for scope in scopes])
        return scopes

    async def opt_in(self, number: str, sent_to: str, licensee_id: str | None, at: datetime | None = None) -> None:
        """START undoes a STOP to the same number, one to the licensee it answers, and one that applied to
        every licensee: each as it read it. One written after that read (a STOP or a manual add) stays."""
        scopes = {scope for scope in (licensee_id, sender_scope(sent_to), EVERY_LICENSEE) if scope}
        read = {row.scope: row for row in await self._store.rows_for(number)}
        when = at or utcnow()
        kept = await self._start([OptOutChange(scope, number, False, when, SOURCE_START) for scope in sorted(scopes)], read)
        if kept:
            log.info("%s's START left %s: it changed after the START read it", mask(number), ", ".join(c.scope for c in kept))

    async def add(self, licensee_id: str, number: str, reason: str, key_id: str) -> OptOutChange:
        """A licensee's key stops its own messages to `number` (a manual opt-out, with the reason given)."""
        change = OptOutChange(licensee_id, number, True, utcnow(), SOURCE_MANUAL, reason, key_id)
        await self._stop([change])
        log.info("%s opted out of licensee %s by key %s", mask(number), licensee_id, key_id)
        return change

    async def remove(self, licensee_id: str, number: str, reason: str, key_id: str) -> OptOutChange:
        """A licensee's key lifts its own scope's opt-out of `number`, and no other: a STOP sent to a sender number,
        or one we could not place (every licensee's), is the recipient's to lift with START. NotFound when the number
        has no opt-out of the licensee; Conflict when it has none but another scope blocks it."""
        rows = await self._store.rows_for(number)
        own = next((row for row in rows if row.scope == licensee_id and row.opted_out), None)
        if own is None:
            others = [row for row in rows if row.opted_out and row.scope.startswith(EVERY_LICENSEE)]
            if others:
                raise Conflict(f"{number} has no opt-out of this licensee to remove; it is blocked by "
                               f"{' and '.join(describe_scope(row.scope) for row in others)}, which the gateway never lifts: "
                               "only a START from the number does")
            raise NotFound(f"{number} has no opt-out of this licensee to remove")
        change = OptOutChange(licensee_id, number, False, utcnow(), SOURCE_MANUAL, reason, key_id)
        if await self._start([change], {licensee_id: own}):
            raise Conflict(f"{number}'s opt-out changed meanwhile (a STOP or another change landed as this was made), so it was "
                           "not removed: read it again")
        log.warning("%s opted back in to licensee %s by key %s", mask(number), licensee_id, key_id)
        return change

    async def _stop(self, changes: list[OptOutChange]) -> None:
        """The truth first (a STOP blocks even when the index write fails), then the index: see the module's note."""
        number = changes[0].number
        await self._change(number, [self._store.add(c.scope, number, c.at, c.source) for c in changes])
        if self._index is not None:
            await asyncio.gather(*(self._index.record(c) for c in changes))

    async def _start(self, changes: list[OptOutChange], read: dict[str, OptOutChange]) -> list[OptOutChange]:
        """The index first (a lifted opt-out has its record before it takes effect), then the truth: see the module's note.
        `read`: the number's rows, by scope, as read before deciding; each change lifts only its scope's row as read (or
        where none was). The changes that found their row changed since: not applied, and taken back from the index."""
        listed = [c for c in changes if c.scope in read]  # a START to a scope the number never opted out of: no change to list
        if self._index is not None:
            await asyncio.gather(*(self._index.record(c) for c in listed))
        number = changes[0].number
        lost: list[OptOutChange] = []

        async def lift(change: OptOutChange) -> None:
            try:
                await self._store.remove(change.scope, number, change.at, change.source, read=read.get(change.scope))
            except RecordChanged:
                lost.append(change)

        await self._change(number, [lift(c) for c in changes])
        if self._index is not None and (withdrawn := [c for c in lost if c.scope in read]):
            await self._withdraw(number, withdrawn)
        return lost

    async def _withdraw(self, number: str, changes: list[OptOutChange]) -> None:
        """Take back from the index changes that lost their race in the truth, so it says what the truth does. A failure
        is logged, not raised: the caller must hear that its change was not made (a removal's Conflict), and an error
        would bring a resent START, or a retried removal, that lifts the newer opt-out it never saw. The index then keeps
        saying "opted in" over a truth that blocks (the safe side) until the scope next changes, or the repair finds the truth newer."""
        try:
            now = {row.scope: row for row in await self._store.rows_for(number)}
            await asyncio.gather(*(self._index.withdraw(c, now.get(c.scope)) for c in changes))
        except GatewayError:
            log.exception("%s: could not take back from the opt-out index the change(s) to %s it recorded and never made",
                          mask(number), ", ".join(c.scope for c in changes))

    async def backfill(self, again: bool = False) -> int:
        """Write to the index what the truth holds and the index lacks (or holds older): every opt-out recorded before
        the index existed, and any change whose index write failed. Idempotent, and safe beside STOP and START
        (OptOutIndex.converge leaves a newer state). Runs once (then marked), or `again`: the repair. How many it wrote."""
        if self._index is None or (not again and await self._index.backfilled()):
            return 0
        written = 0
        slots = asyncio.Semaphore(self._read_concurrency)

        async def converge(row: OptOutChange) -> None:
            nonlocal written
            async with slots:
                wrote = await self._index.converge(row)
            written += wrote  # after the await: `written += await ...` reads it before, and loses another's count

        batch: list[OptOutChange] = []
        async for row in self._store.every_row():
            batch.append(row)
            if len(batch) == 1000:
                await asyncio.gather(*(converge(r) for r in batch))
                batch = []
        await asyncio.gather(*(converge(r) for r in batch))
        await self._index.mark_backfilled()
        if written:
            log.info("opt-outs: wrote %d state(s) to the index from what dispatch reads", written)
        return written

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
