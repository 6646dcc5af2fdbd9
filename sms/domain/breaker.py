"""Provider health: a circuit breaker per provider, and per provider and country, in this process.

Closed, calls go through. A run of failed calls (not taken or ambiguous: the provider is down, or not
answering) opens it; so does a collapse of its delivery rate in receipts (per country: a carrier
failing). Open, the dispatch routes around it (the next provider of each route) for `cool_off`; then
half-open: one call goes through as a probe, and its outcome closes the breaker or opens it again.
A route whose every provider is open still sends through its first: a breaker only chooses among
providers, it never holds a message back.

Per process, as the send slots and rate limits are: each worker learns from its own calls and the
receipts it handles. Every change of state is returned to the caller to log.
"""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

FAILURES_TO_OPEN = 5  # failed calls in a row
COOL_OFF = timedelta(seconds=30)
# Receipts: of the last DELIVERY_WINDOW outcomes (delivered or not), fewer than DELIVERY_FLOOR delivered
# opens it, once at least DELIVERY_WINDOW have been seen.
DELIVERY_WINDOW = 50
DELIVERY_FLOOR = 0.2


class State(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class Circuit:
    state: State = State.CLOSED
    since: datetime | None = None
    failures: int = 0  # in a row
    reason: str | None = None  # why it opened
    probing: datetime | None = None  # half-open: when its one probe went out
    deliveries: deque = field(default_factory=lambda: deque(maxlen=DELIVERY_WINDOW))


class Breakers:
    def __init__(self, clock: Callable[[], datetime], failures_to_open: int = FAILURES_TO_OPEN, cool_off: timedelta = COOL_OFF):
        self._clock, self._failures_to_open, self._cool_off = clock, failures_to_open, cool_off
        self._circuits: dict[str, Circuit] = {}

    def allows(self, key: str) -> bool:
        """Whether a call may go to `key` now: closed, or half-open with its probe not yet out (this call
        is it). An open one whose cool-off has passed turns half-open here."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state is State.CLOSED:
            return True
        now = self._clock()
        if circuit.state is State.OPEN and now - circuit.since >= self._cool_off:
            circuit.state, circuit.since, circuit.probing = State.HALF_OPEN, now, None
        # A probe whose outcome never came (its call was not made after all, or its worker stopped) is
        # given up after a cool-off: another goes, so a half-open circuit never stays shut.
        if circuit.state is State.HALF_OPEN and (circuit.probing is None or now - circuit.probing >= self._cool_off):
            circuit.probing = now
            return True
        return False

    def called(self, key: str, ok: bool, why: str | None = None) -> str | None:
        """A call's outcome (ok: the provider answered for the SMS, accepted or refused it). Returns what
        changed, to log, or None."""
        circuit = self._circuits.setdefault(key, Circuit())
        if ok:
            circuit.failures = 0
            if circuit.state is not State.CLOSED:
                return self._move(key, circuit, State.CLOSED, None)
            return None
        circuit.failures += 1
        if circuit.state is State.HALF_OPEN:
            return self._move(key, circuit, State.OPEN, f"its probe failed: {why}")
        if circuit.state is State.CLOSED and circuit.failures >= self._failures_to_open:
            return self._move(key, circuit, State.OPEN, f"{circuit.failures} calls in a row failed, the last: {why}")
        return None

    def delivered(self, key: str, ok: bool) -> str | None:
        """A receipt's outcome for an SMS `key` sent (delivered, or undelivered/failed). An open or half-open
        country circuit closes on a delivery (its probes' receipts); a failure while half-open opens it again."""
        circuit = self._circuits.setdefault(key, Circuit())
        if circuit.state is not State.CLOSED:
            if ok:
                circuit.deliveries.clear()
                return self._move(key, circuit, State.CLOSED, None)
            return self._move(key, circuit, State.OPEN, "a receipt after it opened was not delivered either") \
                if circuit.state is State.HALF_OPEN else None
        circuit.deliveries.append(ok)
        seen = len(circuit.deliveries)
        rate = sum(circuit.deliveries) / seen
        if circuit.state is State.CLOSED and seen == DELIVERY_WINDOW and rate < DELIVERY_FLOOR:
            circuit.deliveries.clear()
            return self._move(key, circuit, State.OPEN, f"{rate:.0%} of its last {seen} receipts were delivered")
        return None

    def _move(self, key: str, circuit: Circuit, to: State, reason: str | None) -> str:
        was = circuit.state
        circuit.state, circuit.since, circuit.reason, circuit.probing = to, self._clock(), reason, None
        if to is State.CLOSED:
            circuit.failures = 0
        return f"provider {key}: {was.value} -> {to.value}" + (f" ({reason})" if reason else "")

    def circuits(self) -> dict[str, Circuit]:
        """Every circuit seen, by key (a provider, or "<provider>|<country>"), in key order."""
        return dict(sorted(self._circuits.items()))


def delivery_key(provider: str, country: str | None) -> str:
    """The circuit of a provider's deliveries to one country."""
    return f"{provider}|{country or '?'}"
