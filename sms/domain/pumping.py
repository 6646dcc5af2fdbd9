"""SMS pumping detection (issue 27): a licensee's sends to one destination prefix whose deliveries
collapse are blocked for a while. Pure: what is counted and when it trips; where a block is kept and
how dispatch obeys it is sms/usecases/pumping.py's.

Pumping (artificially inflated traffic) is a bot driving sends to a range of numbers whose carrier
shares the revenue with the fraudster: many sends to numbers next to each other, rarely confirmed.
What the anchors do:
- Twilio's Verify Fraud Guard places "a temporary block on SMS traffic ... on the prefix you used",
  lifted at the end of the period and placed again if the fraud goes on
  (https://www.twilio.com/docs/api/errors/60410); its Messaging SMS Pumping Protection blocks prefixes
  for a shorter while and keeps a safe list of numbers it never blocks.
- AWS End User Messaging's message feedback counts a message nobody confirmed as FAILED an hour after
  it was sent ("Otherwise, an hour after the message feedback record is set to FAILED",
  https://docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/API_PutMessageFeedback.html).

Here the confirmation is the carrier's delivery receipt. A destination prefix is the E.164 number
without its last `prefix_digits` digits (4 by default: numbers are handed to operators in blocks of
1,000 to 10,000, as NANP's thousands-blocks and most national plans' 10,000-number blocks, and a
fraudster's range is such a block; without its last four digits a number names one, and two
neighbours in it share it). Per licensee and prefix, over a sliding `window` of send times:
- sends: each SMS a provider accepted;
- receipts: delivered (confirmed) or undelivered/failed, each counted at its SMS's send time;
- due: the sends whose receipt is due (sent more than `confirm_wait` ago; one unanswered by then counts
  as unconfirmed) and the younger sends already answered.
At least `min_sends` due, of which fewer than `delivered_floor` confirmed, trips it: the prefix is blocked
until `block` from then, and its counts start again.

Counted per process, as the providers' breakers are (sms/domain/breaker.py): each worker counts the
sends it made and the receipts it handled. With several instances on Azure, a worker sees about its
share of a prefix's sends and of its receipts; both counts are by send time, so the rate it judges is
the prefix's rate, but a burst trips only once a worker's share of it reaches `min_sends`. A block, once
tripped, is kept in storage and obeyed by every process (sms/usecases/pumping.py).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

PREFIX_DIGITS = 4
WINDOW = timedelta(hours=1)
MIN_SENDS = 20
DELIVERED_FLOOR = 0.2
CONFIRM_WAIT = timedelta(minutes=15)
BLOCK = timedelta(minutes=30)
# Times kept per prefix at most (the newest): a bound on memory under the heaviest burst, far over any min_sends.
MAX_KEPT = 10_000
# Prefixes counted at most per process: the least recently touched go first.
MAX_PREFIXES = 100_000


@dataclass(frozen=True)
class Rules:
    """The detector's settings (SMS_PUMPING_*)."""

    window: timedelta = WINDOW
    min_sends: int = MIN_SENDS
    delivered_floor: float = DELIVERED_FLOOR
    confirm_wait: timedelta = CONFIRM_WAIT
    block: timedelta = BLOCK
    prefix_digits: int = PREFIX_DIGITS


def prefix_of(e164: str, digits: int = PREFIX_DIGITS) -> str:
    """The destination prefix of a number: its E.164 form without its last `digits` digits (never fewer
    than its country code and one more digit are kept)."""
    keep = max(len(e164) - digits, min(len(e164), 3))
    return e164[:keep]


@dataclass(frozen=True)
class Trip:
    """A prefix whose deliveries collapsed: block it until `until`."""

    licensee_id: str
    prefix: str
    at: datetime
    until: datetime
    sends: int  # due sends judged
    confirmed: int  # of them, delivered
    window: timedelta

    @property
    def why(self) -> str:
        return f"its deliveries collapsed: {self.confirmed} of {self.sends} confirmed"


@dataclass(frozen=True)
class PrefixBlock:
    """A licensee's prefix blocked by pumping protection until `until`: kept in storage, obeyed by every
    process's dispatch (a recipient in it ends `blocked`, unless its number is on the guard's safe list)."""

    licensee_id: str
    prefix: str
    since: datetime
    until: datetime
    sends: int
    confirmed: int
    window: timedelta
    comm_id: str | None = None  # the message whose send or receipt tripped it

    @classmethod
    def of(cls, trip: Trip, comm_id: str | None) -> "PrefixBlock":
        return cls(trip.licensee_id, trip.prefix, trip.at, trip.until, trip.sends, trip.confirmed, trip.window, comm_id)

    def live(self, now: datetime) -> bool:
        return now < self.until

    @property
    def reason(self) -> str:
        """What a recipient it blocks says, on its timeline and in its webhook."""
        return (f"prefix {self.prefix} is blocked by pumping protection until {instant_text(self.until)} "
                f"(its deliveries collapsed: {self.confirmed} of {self.sends} confirmed)")


def instant_text(at: datetime) -> str:
    """An instant as the reason and the webhook give it: UTC, to the second, "Z"."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Counts:
    sends: list[datetime] = field(default_factory=list)  # send times, sorted
    delivered: list[datetime] = field(default_factory=list)  # send times of the delivered ones, sorted
    failed: list[datetime] = field(default_factory=list)  # send times of the undelivered/failed ones, sorted
    quiet_until: datetime | None = None  # tripped: not judged again until then


class Detector:
    """The counts of this process, per (licensee, prefix)."""

    def __init__(self, rules: Rules = Rules(), max_prefixes: int = MAX_PREFIXES):
        self.rules = rules
        self._max = max_prefixes
        self._counts: dict[tuple[str, str], _Counts] = {}  # in order of last touch

    def prefix(self, e164: str) -> str:
        return prefix_of(e164, self.rules.prefix_digits)

    def sent(self, licensee_id: str, e164: str, at: datetime) -> Trip | None:
        """A provider accepted an SMS to `e164` at `at`."""
        return self._note(licensee_id, e164, at, at, "sends")

    def receipt(self, licensee_id: str, e164: str, sent_at: datetime, delivered: bool, now: datetime) -> Trip | None:
        """A final receipt (delivered, or undelivered/failed) for an SMS sent at `sent_at`."""
        return self._note(licensee_id, e164, sent_at, now, "delivered" if delivered else "failed")

    def rearm(self, trip: Trip) -> None:
        """A trip that could not be acted on (its block not stored): judge the prefix again on the next event."""
        counts = self._counts.get((trip.licensee_id, trip.prefix))
        if counts is not None:
            counts.quiet_until = None

    def _note(self, licensee_id: str, e164: str, sent_at: datetime, now: datetime, kind: str) -> Trip | None:
        key = (licensee_id, self.prefix(e164))
        counts = self._counts.pop(key, None) or _Counts()
        self._counts[key] = counts  # the most recently touched last
        while len(self._counts) > self._max:
            del self._counts[next(iter(self._counts))]
        start = now - self.rules.window
        if sent_at < start:
            return None  # a receipt for an SMS sent before the window: nothing it counts says anything of it
        times = getattr(counts, kind)
        insort(times, sent_at)
        if len(times) > MAX_KEPT:
            del times[: len(times) - MAX_KEPT]
        for name in ("sends", "delivered", "failed"):  # forget what slid out of the window
            kept = getattr(counts, name)
            del kept[: bisect_left(kept, start)]
        if counts.quiet_until is not None:
            if now < counts.quiet_until:
                return None
            counts.quiet_until = None
        return self._judge(key, counts, now)

    def _judge(self, key: tuple[str, str], counts: _Counts, now: datetime) -> Trip | None:
        rules = self.rules
        due_by = now - rules.confirm_wait
        old = bisect_right(counts.sends, due_by)  # sends whose receipt is due: answered or not
        answered_young = (len(counts.delivered) - bisect_right(counts.delivered, due_by)
                          + len(counts.failed) - bisect_right(counts.failed, due_by))
        # Receipts are counted where they arrive, sends where they were made: with several workers the two
        # shares differ a little, so what is answered never counts past what was sent.
        young = len(counts.sends) - old
        due = old + min(answered_young, young)
        if due < rules.min_sends:
            return None
        confirmed = min(len(counts.delivered), due)
        if confirmed >= rules.delivered_floor * due:
            return None
        until = now + rules.block
        counts.sends.clear()
        counts.delivered.clear()
        counts.failed.clear()
        counts.quiet_until = until
        return Trip(key[0], key[1], now, until, due, confirmed, rules.window)
