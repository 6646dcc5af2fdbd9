"""The gateway's records: a message and its recipients, and the status they move through."""
from __future__ import annotations

import enum
import json
import math
import os
import random
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

# A job covers at most this many recipients: one entity-group transaction's worth,
# so claiming a job's recipients and recording their outcomes is one round trip each.
JOB_SIZE = 100

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Status(str, enum.Enum):
    """Recipient status. It only moves forward: see `can_become`."""

    SCHEDULED = "scheduled"  # waiting for the message's sendAt
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    OPTED_OUT = "opted_out"  # not attempted: the number opted out of this licensee's messages
    EXPIRED = "expired"  # not attempted: its validUntil passed before it could be sent
    CANCELLED = "cancelled"  # not attempted: the message was cancelled first
    BLOCKED = "blocked"  # not attempted: the licensee's guard refused the destination (sms/domain/guard.py)

    def can_become(self, new: "Status") -> bool:
        """Forward moves only, plus one exception: a claim released after a transient
        failure goes from sending back to queued, because nothing was sent."""
        return _RANK[new] > _RANK[self] or (self is Status.SENDING and new is Status.QUEUED)


# One letter per status: the ledger keeps a message's recipients' statuses as a string of these.
STATUS_LETTERS = {
    Status.SCHEDULED: "w",
    Status.QUEUED: "q",
    Status.SENDING: "s",
    Status.SENT: "S",
    Status.FAILED: "f",
    Status.DELIVERED: "d",
    Status.UNDELIVERED: "u",
    Status.OPTED_OUT: "o",
    Status.EXPIRED: "x",
    Status.CANCELLED: "c",
    Status.BLOCKED: "b",
}
STATUS_OF_LETTER = {letter: status for status, letter in STATUS_LETTERS.items()}

_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 1,
    Status.SENDING: 2,
    Status.SENT: 3,
    Status.FAILED: 4,
    Status.DELIVERED: 4,
    Status.UNDELIVERED: 4,
    Status.OPTED_OUT: 4,
    Status.EXPIRED: 4,
    Status.CANCELLED: 4,
    Status.BLOCKED: 4,
}
# Not attempted, and never will be: nothing was sent.
NOT_ATTEMPTED = frozenset({Status.OPTED_OUT, Status.EXPIRED, Status.CANCELLED, Status.BLOCKED})
# May still be handed to the provider: what a dispatch sends and a cancel stops.
WAITING = frozenset({Status.SCHEDULED, Status.QUEUED})
# Accepted by a provider, so billed by it: what usage counts as segments. `undelivered` too (the
# carrier, not the provider, gave up). Not `failed`: mostly a refusal, and the rare "outcome unknown"
# (a worker that stopped during the provider's call) cannot be told from one once in the ledger.
BILLED = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED})


# json.dumps(..., separators=(",", ":")) builds an encoder on every call; this one is built once.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def new_guid(dashes: bool = False, *, guessable: bool = False) -> str:
    """A random (version 4) UUID as 32 hex digits, or in its 8-4-4-4-12 form: uuid.uuid4().hex or
    str(uuid.uuid4()) in half the time (no UUID object). `guessable`: from the random module, not the
    system's generator (a system call), for a value that must only be unique: a request id, a boundary."""
    n = random.getrandbits(128) if guessable else int.from_bytes(os.urandom(16), "big")
    n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)  # the variant and version bits
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" if dashes else h


def evolved(record, **changes):
    """dataclasses.replace for a frozen record of this module (none has a __post_init__): the same copy
    without running its __init__ again, 1 us against 5-30 (a Message's has default factories to run).
    On the send path, once or more an accept."""
    assert changes.keys() <= record.__dataclass_fields__.keys(), changes.keys() - record.__dataclass_fields__.keys()
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__)
    copy.__dict__.update(changes)
    return copy


def reference_for(comm_id: str) -> str:
    """A short reference a person can quote; it is the commId's prefix, so it finds the message."""
    return f"SMS-{comm_id[:8].upper()}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Contact:
    name: str | None = None
    phone_number: str | None = None  # E.164 once validated
    contact_id: str | None = None


@dataclass(frozen=True)
class Message:
    comm_id: str
    licensee_id: str
    body: str
    sender: Contact
    recipient_count: int
    encoding: str
    segments: int
    reply_is_allowed: bool = False
    reply_is_required: bool = False
    notes: str | None = None
    linked_object_id: str | None = None
    suite_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    send_at: datetime | None = None  # not before then (its recipients are `scheduled` until it comes)
    valid_until: datetime | None = None  # not after then: a recipient not handed over by then expires
    urgent: bool = False  # sent inside the licensee's quiet hours too
    # What it cost as accepted (issue 27), kept so that a retry under its Idempotency-Key answers as the first
    # request did, whatever the price table or the guard say by then: the recipients the guard blocked at
    # accept, and what the others cost (millionths of `currency`; None: the price table could not price one).
    blocked: int = 0
    estimated_cost: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Event:
    """One step of a recipient's timeline: the status it moved to and when. The provider's message id
    is on the step that brought it (the provider's answer, or a receipt that came first), the reason on
    a release, a failure or an opt-out, and the attempt number on a claim."""

    status: Status
    at: datetime
    provider_message_id: str | None = None
    error: str | None = None
    attempt: int | None = None
    provider: str | None = None  # on a claim: the provider it was handed to (a name of sms.providers.ProviderSet)
    # On a failed call's step (a release, a failure, a pass to the next provider): what the failure meant for
    # trying again (sms.providers.Failure: not_taken, refused, ambiguous) and the provider's own code.
    outcome: str | None = None
    code: str | None = None
    # On a claim of a recipient the licensee's guard monitors (sms/domain/guard.py): why it was flagged.
    guard: str | None = None


@dataclass(frozen=True)
class Recipient:
    comm_id: str
    seq: int  # position in the request; orders recipients and names job ranges
    recipient_id: str
    phone_number: str
    name: str | None = None
    contact_id: str | None = None
    status: Status = Status.QUEUED
    provider_message_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    first_attempt_at: datetime | None = None
    # Set by the write that claims the recipient for a provider call: random per dispatch, so a
    # dispatch knows its own claim when it finds one (its write landed but the answer was lost).
    claim_id: str | None = None
    # Set by a cancel that found the recipient claimed (`sending`): what the claim turns out not to have
    # sent (the provider never had it, or refused it for now) is cancelled, never sent after the cancel.
    cancel_requested: bool = False
    # The provider its latest claim handed it to (None: claimed before several providers, or not yet):
    # the one a crash's trace asks, and the one its receipts and usage go by.
    provider: str | None = None
    # The sender its latest claim went out from when the gateway chose it (the message's From, or its
    # route's pinned sender): what a crash's trace asks the provider about, whatever the routes say by then.
    sent_from: str | None = None
    etag: str | None = None  # set by the store; updates are conditional on it
    # Every step since it was queued (sms/domain/transitions.py appends them), bounded: the first is kept and
    # the latest, and `events_omitted` counts the ones left out between them.
    events: tuple[Event, ...] = ()
    events_omitted: int = 0

    @property
    def timeline(self) -> tuple[Event, ...]:
        """Queued when created (or scheduled: then that is its first step, kept), then every step kept
        (`events_omitted` are missing after the first)."""
        if self.events and self.events[0].status is Status.SCHEDULED:
            return self.events
        return (Event(Status.QUEUED, self.created_at),) + self.events

    def with_event(self, event: Event) -> "Recipient":
        """The row with `event` last on its timeline. Retries repeat claims and releases without bound, and
        the row is one entity of a 100-row transaction: past MAX_EVENTS the oldest after the first go."""
        events = self.events + (replace(event, error=_event_error(event.error), guard=_event_error(event.guard)),)
        dropped = len(events) - MAX_EVENTS
        if dropped <= 0:
            return replace(self, events=events)
        return replace(self, events=events[:KEEP_FIRST_EVENTS] + events[KEEP_FIRST_EVENTS + dropped :],
                       events_omitted=self.events_omitted + dropped)

    def moved_to(self, status: Status, *, at: datetime, **changes) -> "Recipient":
        """The recipient in `status` since `at` (the time comes from the caller's clock: the domain reads none)."""
        error = changes.get("last_error")
        if error is not None and len(error) > MAX_ERROR_CHARS:  # vendors' text has no bound; storage has
            changes["last_error"] = error[: MAX_ERROR_CHARS - 1] + "…"
        provider_id = changes.get("provider_message_id")
        if provider_id is not None and len(provider_id) > MAX_PROVIDER_ID_CHARS:  # kept to show, never matched on
            changes["provider_message_id"] = provider_id[:MAX_PROVIDER_ID_CHARS]
        return replace(self, status=status, updated_at=at, **changes)


# The longest error kept on a recipient: enough for any vendor's reason, far below Azure's 64 KiB
# per property (a longer one made the outcome write fail after the SMS attempt).
MAX_ERROR_CHARS = 1000
# Vendors' message ids are short (ACS: a Guid-like text, Twilio: 34 characters); one of absurd length
# must not make the outcome write fail after the SMS went out. Receipts find a recipient by its
# reference (commId:seq), never by this id, so keeping its start loses nothing.
MAX_PROVIDER_ID_CHARS = 200
# A timeline keeps at most this many events after queued: the first (the first claim) and the latest
# ten. Enough for every step of a recipient at the default SMS_MAX_SEND_ATTEMPTS (5 claims, 4 releases,
# the outcome and a receipt); a longer run of retries loses its middle, counted in events_omitted.
MAX_EVENTS = 11
KEEP_FIRST_EVENTS = 1
# An event's reason is cut shorter than the row's last_error (which keeps the latest in full): a job's
# 100 rows with full timelines are one transaction. Every text at its limit in emoji (12 bytes of JSON
# each), five reasons kept and the provider id, such a transaction is 67% of Azure's 4 MiB at 120
# characters (79% at 200); tests/unit/test_input_limits.py writes that worst case.
MAX_EVENT_ERROR_CHARS = 120


def _event_error(error: str | None) -> str | None:
    if error is not None and len(error) > MAX_EVENT_ERROR_CHARS:  # the row's last_error keeps more
        return error[: MAX_EVENT_ERROR_CHARS - 1] + "…"
    return error


def derived_events(row: Recipient) -> tuple[tuple[Event, ...], int]:
    """The events and the count left out, for a row stored before recipients kept a timeline: what its
    columns prove. Claimed at first_attempt_at (attempt 1), then its status at updated_at; the steps
    that its attempts imply in between (further claims, and releases between claims) are counted
    as left out, though not when they happened."""
    claims = row.attempts
    if row.status is Status.QUEUED and claims == 0:
        return (), 0
    events: list[Event] = []
    if claims and row.first_attempt_at is not None:
        events.append(Event(Status.SENDING, row.first_attempt_at, attempt=1))
    if not (row.status is Status.SENDING and claims <= 1 and events):
        with_reason = row.status in (Status.QUEUED, Status.FAILED, Status.UNDELIVERED, Status.OPTED_OUT)
        events.append(Event(row.status, row.updated_at, provider_message_id=row.provider_message_id,
                            error=_event_error(row.last_error) if with_reason else None,
                            attempt=claims if row.status is Status.SENDING else None))
    # Claims 1..k with a release between each two, and after the last claim the current status.
    implied = 2 * claims - 1 + (row.status is not Status.SENDING)
    return tuple(events), max(0, implied - len(events))


class UnknownJobVersion(Exception):
    """A queue message that says it is a job of a version this code does not know: a later release wrote it.
    Not a ValueError, so no handler takes it for a malformed message and drops it: it stays on its queue (its
    poison queue has none of its own) until code that knows it runs."""

    def __init__(self, version):
        super().__init__(f"a job of version {version!r}, which this release does not know: left on its queue for one that does")
        self.version = version


@dataclass(frozen=True)
class SendJob:
    """One queue message: which recipients of which message to send. Ids only."""

    comm_id: str
    first: int
    last: int  # inclusive
    traceparent: str | None = field(default=None, compare=False)  # W3C trace context of the accepting request

    def to_json(self) -> str:
        data = {"commId": self.comm_id, "first": self.first, "last": self.last}
        if self.traceparent:
            data["traceparent"] = self.traceparent
        return COMPACT_JSON.encode(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> "SendJob":
        """Raises UnknownJobVersion for a job of another version (a version-2 job is sms/domain/jobs.py's),
        ValueError for anything that is not a job this gateway wrote."""
        return cls.from_data(job_data(text, "send job"))

    @classmethod
    def from_data(cls, data) -> "SendJob":
        """A job from its parsed JSON; raises as from_json."""
        if not isinstance(data, dict):
            raise ValueError(f"not a send job: {type(data).__name__}")
        if data.get("v", 1) != 1:
            raise UnknownJobVersion(data["v"])
        try:
            job = cls(str(data["commId"]), int(data["first"]), int(data["last"]), trace_context(data.get("traceparent")))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a send job: {exc}") from None
        if not _HEX32.match(job.comm_id) or not 0 <= job.first <= job.last:
            raise ValueError(f"not a send job: {job}")
        return job

    @classmethod
    def covering(cls, comm_id: str, recipient_count: int, traceparent: str | None = None) -> list["SendJob"]:
        return [
            cls(comm_id, first, min(first + JOB_SIZE, recipient_count) - 1, traceparent)
            for first in range(0, recipient_count, JOB_SIZE)
        ]


# The longest a job waits on the queue in one go: Azure hides a queue message at most 7 days ("Put
# Message", visibilitytimeout), so a send scheduled further ahead takes several hops, each a job put
# back with what is left of the wait; the hour spare keeps each hop inside the limit whatever the clocks say.
MAX_QUEUE_DELAY = timedelta(days=7) - timedelta(hours=1)


def job_data(text: str | bytes, kind: str):
    """A queue message's JSON; ValueError naming what it should have been (`kind`) when it is no JSON."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not a {kind}: {exc}") from None


def trace_context(value) -> str | None:
    """A job's W3C traceparent as read back: kept only when it is text of a traceparent's size, else dropped."""
    return value if isinstance(value, str) and len(value) <= 64 else None


def queue_delay(until: datetime, now: datetime) -> int:
    """Whole seconds from `now` to `until` (at least 1), at most one hop."""
    return max(1, math.ceil(min(until - now, MAX_QUEUE_DELAY).total_seconds()))


def message_status(recipients: list[Recipient]) -> str:
    """A message's status is derived from its recipients rather than stored twice."""
    return status_of({r.status for r in recipients})


def status_of(statuses: set[Status]) -> str:
    """The status of a message whose recipients are in `statuses`."""
    statuses = set(statuses)
    if not statuses:
        return Status.QUEUED.value
    if len(statuses) == 1:
        return statuses.pop().value
    if statuses <= WAITING:
        return Status.SCHEDULED.value if Status.SCHEDULED in statuses else Status.QUEUED.value
    if statuses & {Status.SCHEDULED, Status.QUEUED, Status.SENDING}:
        return Status.SENDING.value
    if statuses <= NOT_ATTEMPTED:
        return Status.CANCELLED.value if Status.CANCELLED in statuses else Status.EXPIRED.value if Status.EXPIRED in statuses \
            else Status.BLOCKED.value if Status.BLOCKED in statuses \
            else Status.OPTED_OUT.value
    if statuses & {Status.FAILED, Status.UNDELIVERED, *NOT_ATTEMPTED}:
        return "partially_sent"
    return Status.SENT.value


@dataclass(frozen=True)
class InboundSms:
    """An SMS a person sent us: a reply, an opt-out keyword, or both."""

    from_number: str  # E.164
    to_number: str  # our sender number it was sent to
    body: str
    received_at: datetime
    provider: str
    provider_message_id: str
    comm_id: str | None = None  # the message it answers, when it could be linked
