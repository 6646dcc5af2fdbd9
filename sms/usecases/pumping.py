"""Pumping protection (issue 27): feeds this process's detector (sms/domain/pumping.py) from dispatch
(a provider accepted an SMS) and from receipts (delivered, undelivered, failed), acts on a trip, and
answers which of a licensee's numbers are in a blocked prefix.

A trip, under the licensee's guard (`pumping`):
- enforce: the block is stored (sms/storage/guard_blocks.py), obeyed by every process's dispatch once
  its cache of blocks lapses (at once in this one): a waiting recipient in the prefix ends `blocked`,
  unless its number is on the guard's safe list;
- monitor: nothing is blocked;
- off: nothing is counted.
Either way (enforce, monitor) the licensee is told: a warning log line and the webhook event
guard.prefix_blocked, in a batch of the message whose send or receipt tripped it. Numbers on the safe
list are not counted at all: pumping protection leaves them alone.

What a dispatch pays: the index of licensees with blocks is read at most once per `cache_seconds` per
process, whoever sends, and a licensee's blocks (one query of its partition) at most as often, only
while the index marks it. A licensee that never had a block costs no read of its own.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Callable, Sequence

from cachetools import TLRUCache

from ..domain.errors import RecordChanged, StorageUnavailable
from ..domain.events import EventBatch, batch_id, prefix_blocked_event
from ..domain.guard import PumpingMode
from ..domain.model import Message, Recipient, Status, utcnow
from ..domain.pumping import Detector, PrefixBlock, Rules, Trip
from ..logs import log_unexpected
from ..storage import EventStore, GuardBlockStore
from .announce import Announcer
from .licensees import Licensees

log = logging.getLogger("sms.guard.pumping")

CACHE_SECONDS = 5.0


class PumpingProtection:
    def __init__(self, store: GuardBlockStore, licensees: Licensees, announcer: Announcer, events: EventStore,
                 rules: Rules = Rules(), clock: Callable[[], datetime] = utcnow, cache_seconds: float = CACHE_SECONDS,
                 max_cached: int = 10_000, monotonic: Callable[[], float] = time.monotonic):
        self._store, self._licensees, self._announcer, self._events = store, licensees, announcer, events
        self.detector = Detector(rules)
        self._clock = clock
        self._ttl = cache_seconds
        self._monotonic = monotonic  # the caches' clock
        self._index: tuple[float, set[str]] | None = None  # (when its read started, the licensees marked)
        self._live: TLRUCache[str, tuple[float, tuple[PrefixBlock, ...]]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _licensee, entry, _now: entry[0] + self._ttl, timer=monotonic)

    # -- fed by dispatch and receipts: never raises (a send or a receipt must not fail for it) ----------

    async def sent(self, message: Message, recipient: Recipient) -> None:
        """A provider accepted the recipient's SMS."""
        await self._fed(message, recipient, lambda: self.detector.sent(
            message.licensee_id, recipient.phone_number, _sent_at(recipient) or self._clock()))

    async def receipt(self, message: Message, recipient: Recipient, delivered: bool) -> None:
        """A final receipt for the recipient's SMS: delivered, or undelivered/failed."""
        now = self._clock()
        await self._fed(message, recipient, lambda: self.detector.receipt(
            message.licensee_id, recipient.phone_number, _sent_at(recipient) or now, delivered, now))

    async def _fed(self, message: Message, recipient: Recipient, count: Callable[[], Trip | None]) -> None:
        try:
            guard = await self._licensees.guard(message.licensee_id)
            if guard.pumping is PumpingMode.OFF or guard.safe(recipient.phone_number):
                return
            trip = count()
            if trip is not None:
                await self._tripped(trip, guard.pumping, message.comm_id)
        except (StorageUnavailable, RecordChanged):
            log.warning("pumping protection could not store or tell a block for %s:%d (storage unavailable, or the "
                        "licensee's block mark kept changing): "
                        "the next send or receipt to its prefix trips it again", message.comm_id, recipient.seq)
        except Exception as exc:  # a bug: logged, and the send or receipt goes on
            log_unexpected(log, f"pumping protection could not count {message.comm_id}:{recipient.seq}", exc)

    async def _tripped(self, trip: Trip, mode: PumpingMode, comm_id: str) -> None:
        block = PrefixBlock.of(trip, comm_id)
        if mode is PumpingMode.ENFORCE:
            try:
                await self._store.put(block)
            except Exception:
                self.detector.rearm(trip)  # not stored, so not obeyed: the next send or receipt trips it again
                raise
            self._remember(block)
        # The prefix names a range of numbers (10,000 by default), not anyone's number.
        log.warning("pumping protection (%s): licensee %s, prefix %s: %s in the last %d s; %s until %s", mode.value,
                    trip.licensee_id, trip.prefix, trip.why, int(trip.window.total_seconds()),
                    "blocked" if mode is PumpingMode.ENFORCE else "reported, nothing blocked (monitor)", block.until.isoformat())
        batch = batch_id(trip.at)
        events = [prefix_blocked_event(batch, block, mode.value)]
        if await self._announcer.announce(trip.licensee_id, comm_id, batch, events):
            await self._events.add(EventBatch(trip.licensee_id, comm_id, batch, tuple(events)))

    # -- read by dispatch ----------------------------------------------------------------------------

    async def blocking(self, licensee_id: str, numbers: Sequence[str]) -> dict[str, PrefixBlock]:
        """Of these numbers, those in a prefix of the licensee's that is blocked now: number -> its block.
        (The guard's mode and safe list are the caller's to apply.)"""
        if not numbers:
            return {}
        blocks = {b.prefix: b for b in await self._cached_live(licensee_id)}
        if not blocks:
            return {}
        now = self._clock()
        found = {}
        for number in numbers:
            block = blocks.get(self.detector.prefix(number))
            if block is not None and block.live(now):
                found[number] = block
        return found

    async def _cached_live(self, licensee_id: str) -> tuple[PrefixBlock, ...]:
        cached = self._live.get(licensee_id)
        if cached is not None:
            return cached[1]
        started = self._monotonic()
        if self._index is None or started - self._index[0] >= self._ttl:
            self._index = (started, await self._store.licensees(self._clock()))
        if licensee_id in self._index[1]:
            found = tuple(await self._store.live(licensee_id, self._clock()))
            self._live[licensee_id] = (started, found)
        else:
            # Known to have no blocks as of the index's read, not as of now: kept only while the index is, so a block
            # stored elsewhere is obeyed here within `cache_seconds` (not twice that).
            found = ()
            self._live[licensee_id] = (self._index[0], found)
        return found

    def _remember(self, block: PrefixBlock) -> None:
        """A block this process stored: obeyed here at once."""
        cached = self._live.get(block.licensee_id)
        kept = tuple(b for b in (cached[1] if cached else ()) if b.prefix != block.prefix)
        self._live[block.licensee_id] = (self._monotonic(), kept + (block,))
        if self._index is not None:
            self._index[1].add(block.licensee_id)

    # -- the operator's --------------------------------------------------------------------------------

    async def blocks(self, licensee_id: str) -> list[PrefixBlock]:
        """The licensee's live blocks as stored now (for `guard show` and GET /api/guard)."""
        return await self._store.live(licensee_id, self._clock())

    async def lift(self, licensee_id: str, prefix: str) -> bool:
        """End a block now; whether there was one. Other processes stop obeying it once their cache of the
        licensee's blocks lapses (CACHE_SECONDS); this one at once."""
        lifted = await self._store.lift(licensee_id, prefix)
        self._live.pop(licensee_id, None)
        if lifted:
            log.warning("pumping protection: licensee %s, prefix %s: block lifted by the operator", licensee_id, prefix)
        return lifted

    async def purge(self, now: datetime) -> int:
        """Delete the blocks that ended (retention)."""
        return await self._store.purge(now)


def _sent_at(recipient: Recipient) -> datetime | None:
    """When the recipient's SMS was handed over (its timeline's sent step), if the timeline says."""
    return next((step.at for step in reversed(recipient.timeline) if step.status is Status.SENT), None)
