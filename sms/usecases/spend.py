"""Spend caps (issue 27): room reserved at accept against the licensee's daily and monthly caps, exact
under concurrency, across processes; warnings at 50, 80 and 100 % of each cap (usage.threshold).

Reservations, not counts of what was sent: a request's recipients still to go (those the guard did not
block) reserve their segments and estimated cost when it is accepted, in counters per period of the
licensee's zone (sms/storage/spend.py: the day's row and the month's, written together in one
entity-group transaction, conditional on the ETags read). A write that loses to another process's reads
again and decides again, so N concurrent accepts against the last unit of room take at most that room.

Coalesced, not sharded: one licensee's reservations in one process take turns on its counters in one lane.
While one write for a licensee is in flight, the reservations that arrive meanwhile wait and go together
in the next write, each decided in turn against the room left (some may be refused while others fit). A
busy licensee then costs its partition one write per storage round trip per process, however many
requests arrive, and none of them lose races to each other. Sharding the counter would spread the writes
but make a cap's check read every shard, and exactness across shards would need a reservation per shard.

What is not sent keeps its room: a recipient later cancelled, blocked at dispatch, opted out or expired
does not give back what it reserved (the cap bounds what a licensee's key can ask to send; nothing is
ever under-counted). Room is given back only by an accept that reserved and then failed before its commit
(sms/usecases/accept.py: a commit that failed may have landed, and its message be sent), best effort:
when the give-back itself fails the room stays used until the period ends (logged).

A licensee without caps costs nothing here: no storage call at all. With caps, one write per coalesced
batch, once this process knows the counters' ETags (its own last write); the first in a process, or one
after another process wrote, reads them first.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..domain.errors import RecordChanged, StillChanging
from ..domain.events import EventBatch, batch_id, threshold_event
from ..domain.guard import Caps
from ..domain.model import utcnow
from ..domain.spend import Cap, CapReached, Crossing, Period, Used, crossings, periods, refusal
from ..storage import EventStore, SpendCounter, SpendStore
from .announce import Announcer
from .licensees import Licensees

log = logging.getLogger("sms.spend")

WRITE_ATTEMPTS = 30  # writes of one batch before giving up (409, try again): each lost one means another process won
BACKOFF = 0.005  # seconds: a random wait up to this x 2^(losses - 1), at most MAX_WAIT, before reading again
MAX_WAIT = 0.2


@dataclass(frozen=True)
class Reservation:
    """Room taken in a licensee's counters: what `give_back` returns."""

    licensee_id: str
    day: Period
    month: Period
    segments: int
    cost: int
    crossings: tuple[Crossing, ...] = ()


@dataclass(frozen=True)
class CapUse:
    """One cap as it stands now: what `guard show` and GET /api/guard answer."""

    cap: Cap
    limit: int | None  # None: no such cap
    used: int
    period: Period


@dataclass
class _Ask:
    """One reservation (or give-back: negative figures) waiting for its lane's next write."""

    caps: Caps
    day: Period
    month: Period
    segments: int
    cost: int
    now: datetime
    done: asyncio.Future
    give_back: bool = False


@dataclass
class _Lane:
    """One licensee's reservations in this process: those waiting, the one write in flight, and the counters
    as this process last wrote them (their ETags: the next write needs no read when nobody else wrote)."""

    waiting: list[_Ask] = field(default_factory=list)
    writing: asyncio.Task | None = None
    known: dict[str, SpendCounter] = field(default_factory=dict)


class SpendCaps:
    def __init__(self, store: SpendStore, licensees: Licensees, announcer: Announcer, events: EventStore,
                 currency: str | None = None, clock: Callable[[], datetime] = utcnow):
        self._store, self._licensees, self._announcer, self._events = store, licensees, announcer, events
        self._currency, self._clock = currency, clock
        self._lanes: dict[str, _Lane] = {}

    async def reserve(self, licensee_id: str, caps: Caps, comm_id: str, segments: int, cost: int | None) -> Reservation | None:
        """Take room for `segments` and `cost` (millionths; None: unknown, counted as nothing: with a cost cap
        the guard blocks every recipient it cannot price) in the licensee's counters; CapReached when a cap
        has not the room, nothing taken. None when the licensee has no caps: nothing counted, no storage call.
        Thresholds crossed are told by webhook (usage.threshold) under `comm_id`'s batch."""
        if not caps.any:
            return None
        cost = cost or 0
        if segments <= 0 and cost <= 0:
            return None
        now = self._clock()
        day, month = periods(await self._licensees.time_zone(licensee_id), now)
        ask = _Ask(caps, day, month, segments, cost, now, asyncio.get_running_loop().create_future())
        self._enqueue(licensee_id, ask)
        try:
            reservation: Reservation = await asyncio.shield(ask.done)
        except asyncio.CancelledError:
            # The request is gone (its host stopping): room its write takes anyway is given back.
            ask.done.add_done_callback(lambda done: self._give_back_taken(done))
            raise
        if reservation.crossings:
            await self._tell(licensee_id, comm_id, reservation.crossings)
        return reservation

    def give_back(self, reservation: Reservation | None) -> asyncio.Future | None:
        """Return a reservation's room (its accept failed to save), in the background: the future settles once
        it is written. Best effort: a failure is logged, and the room stays used until its period ends (the
        caps err on the side of the licensee's money)."""
        if reservation is None:
            return None
        done = self._enqueue_give_back(reservation)
        done.add_done_callback(_log_failed_give_back)
        return done

    async def spent(self, licensee_id: str, caps: Caps | None = None) -> list[CapUse]:
        """Each cap: its limit (None: not set) in `caps` (None: the licensee's as stored now), what is used in its
        period now, and when that period ends."""
        caps = caps if caps is not None else (await self._licensees.guard(licensee_id, cached=False)).caps
        day, month = periods(await self._licensees.time_zone(licensee_id), self._clock())
        counters = await self._store.read(licensee_id, [day.key, month.key])
        used = {p.key: Used(counters[p.key].segments, counters[p.key].cost) for p in (day, month)}
        return [CapUse(cap, cap.limit(caps), used[(day if cap.period == "day" else month).key].of(cap),
                       day if cap.period == "day" else month) for cap in Cap]

    # -- the lane: one write in flight per licensee per process --------------------------------------

    def _enqueue(self, licensee_id: str, ask: _Ask) -> None:
        lane = self._lanes.setdefault(licensee_id, _Lane())
        lane.waiting.append(ask)
        if lane.writing is None:
            lane.writing = asyncio.create_task(self._drain(licensee_id, lane))

    def _enqueue_give_back(self, r: Reservation) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        self._enqueue(r.licensee_id, _Ask(Caps(), r.day, r.month, -r.segments, -r.cost, self._clock(), done, give_back=True))
        return done

    def _give_back_taken(self, done: asyncio.Future) -> None:
        if not done.cancelled() and done.exception() is None:
            self.give_back(done.result())

    async def _drain(self, licensee_id: str, lane: _Lane) -> None:
        try:
            while lane.waiting:
                batch, lane.waiting = lane.waiting, []
                try:
                    outcomes = await self._settle(licensee_id, lane, batch)
                except Exception as exc:  # storage down, or kept losing: every ask of the batch is told (its own copy)
                    outcomes = [copy.copy(exc) for _ in batch]
                for ask, outcome in zip(batch, outcomes, strict=True):
                    if ask.done.done():
                        continue
                    if isinstance(outcome, BaseException):
                        ask.done.set_exception(outcome)
                    else:
                        ask.done.set_result(outcome)
        finally:
            lane.writing = None
            if not lane.waiting and self._lanes.get(licensee_id) is lane and len(self._lanes) > 10_000:
                del self._lanes[licensee_id]  # bound what idle licensees keep (their ETags, read again if needed)

    async def _settle(self, licensee_id: str, lane: _Lane, batch: list[_Ask]) -> list[Reservation | Exception]:
        """Decide each ask in turn against the counters and write what the ones that fit take, all in one
        transaction; on a lost race read again and decide again."""
        keys = sorted({p.key for ask in batch for p in (ask.day, ask.month)})
        counters = {k: lane.known[k] for k in keys if k in lane.known}
        if len(counters) < len(keys):
            counters = await self._store.read(licensee_id, keys)
        for attempt in range(WRITE_ATTEMPTS):
            outcomes, after = _decide(licensee_id, batch, counters, self._currency)
            changed = [after[k] for k in keys if (after[k].segments, after[k].cost) != (counters[k].segments, counters[k].cost)]
            if not changed:
                return outcomes
            try:
                written = await self._store.write(licensee_id, changed)
            except RecordChanged:
                lane.known.clear()
                await asyncio.sleep(random.uniform(0, min(MAX_WAIT, BACKOFF * 2**attempt)))
                counters = await self._store.read(licensee_id, keys)
                continue
            lane.known = {**{k: counters[k] for k in keys}, **{c.key: c for c in written}}
            return outcomes
        raise StillChanging(f"Licensee {licensee_id}'s spend counters kept changing while this request reserved room: "
                            "send it again")

    async def _tell(self, licensee_id: str, comm_id: str, found: tuple[Crossing, ...]) -> None:
        """usage.threshold for each crossing, announced then written as the batch of `comm_id`. The counter
        write already happened: when telling fails the crossing is logged and not told again (the next
        crossing, of the next threshold, is told as usual)."""
        at = self._clock()
        batch = batch_id(at)
        events = tuple(threshold_event(batch, comm_id, c, at, self._currency) for c in found)
        try:
            if await self._announcer.announce(licensee_id, comm_id, batch, events):
                await self._events.add(EventBatch(licensee_id, comm_id, batch, events))
        except Exception:
            log.warning("usage.threshold not told to licensee %s (%s): its delivery failed",
                        licensee_id, ", ".join(f"{c.cap.wire} {c.percent}%" for c in found), exc_info=True)


def _log_failed_give_back(done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("reserved room not given back (%s); it stays used until its period ends", done.exception())


def _decide(licensee_id: str, batch: list[_Ask], counters: dict[str, SpendCounter],
            currency: str | None) -> tuple[list[Reservation | Exception], dict[str, SpendCounter]]:
    """Each ask in turn against the room left by those before it: its reservation or its refusal, and the
    counters once the ones that fit are added."""
    used = {k: Used(c.segments, c.cost) for k, c in counters.items()}
    outcomes: list[Reservation | Exception] = []
    for ask in batch:
        before = (used[ask.day.key], used[ask.month.key])
        if not ask.give_back:
            refused = refusal(ask.caps, *before, ask.segments, ask.cost, (ask.day.resets_at, ask.month.resets_at), ask.now, currency)
            if refused is not None:
                outcomes.append(refused)
                continue
        after = (before[0].plus(ask.segments, ask.cost), before[1].plus(ask.segments, ask.cost))
        used[ask.day.key], used[ask.month.key] = after
        found = () if ask.give_back else tuple(crossings(ask.caps, before, after, ask.day, ask.month))
        outcomes.append(Reservation(licensee_id, ask.day, ask.month, ask.segments, ask.cost, found))
    return outcomes, {k: SpendCounter(k, u.segments, u.cost, counters[k].etag) for k, u in used.items()}


__all__ = ["CapReached", "CapUse", "Reservation", "SpendCaps"]
