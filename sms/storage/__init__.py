"""Storage ports: what the service needs from tables and queues, nothing about how.

Adapters: `sms.storage.tables` (azure-data-tables) and `sms.storage.queues`
(azure-storage-queue); tests use in-memory fakes of the same ports.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, AsyncIterator, Sequence

from ..domain.errors import FieldError, ValidationFailed
from ..domain.events import Delivery, EventBatch, WebhookEvent
from ..domain.jobs import Gate, WholeJob
from ..domain.model import InboundSms, Message, Recipient, SendJob
from ..domain.pumping import PrefixBlock


@dataclass
class StagedMessage:
    """A message written up to its commit: every row but the one that makes it visible. Readers see
    nothing of it until `MessageStore.commit`; if that never happens, it stays invisible for good."""

    message: Message
    recipients: Sequence[Recipient]
    etags: list[str]  # of the recipients written so far, in order
    commit: Any  # the adapter's prepared last write


class MessageStore(abc.ABC):
    # Recipients the write that makes a message visible holds beside the message row: staging a message
    # of at most this many writes nothing, it only prepares that write. (0: assume staging may write.)
    commit_room: int = 0

    @abc.abstractmethod
    async def stage(self, message: Message, recipients: Sequence[Recipient], gate: Gate | None = None) -> StagedMessage:
        """Write what can be written before the message becomes visible (recipients beyond the last
        transaction's room) and prepare the write that makes it visible. Nothing shows yet.

        `gate`: a one-call message's gate row (issue 30), inserted in that last write too, so the write fails
        if a cancel's gate is there. Such a write is that one transaction alone, so at most commit_room - 1
        recipients (ValueError otherwise): rows written before it would be written again by every run of the
        job, over rows a run before had sent."""

    @abc.abstractmethod
    async def commit(self, staged: StagedMessage) -> list[Recipient]:
        """Make a staged message visible, all at once; the recipients with their ETags. Raises
        AlreadyExists when a message is already stored under its commId, or a gate when one was staged."""

    async def add(self, message: Message, recipients: Sequence[Recipient], gate: Gate | None = None) -> list[Recipient]:
        """Stage and commit with nothing in between: for callers with no work to order before the commit."""
        return await self.commit(await self.stage(message, recipients, gate))

    @abc.abstractmethod
    async def close_gate(self, comm_id: str, licensee_id: str, at: datetime) -> None:
        """Insert a `cancelled` gate for a one-call message whose rows are not written (one entity). Raises
        AlreadyExists when a gate is there: the worker's write of the rows, or an earlier cancel, came first."""

    @abc.abstractmethod
    async def gate(self, comm_id: str) -> Gate | None:
        """The message's gate row (one point read); None for a message accepted with its rows, or none at all.
        No other read sees it: load, message and unfinished read only the message and recipient rows."""

    @abc.abstractmethod
    async def load(self, comm_id: str, first: int = 0, last: int | None = None) -> tuple[Message, list[Recipient]] | None:
        """The message and its recipients in [first, last] (all when last is None), in order."""

    @abc.abstractmethod
    async def unfinished(self) -> list[str]:
        """The commIds of every message with a recipient still scheduled, queued or sending. A scan of
        every message: run once, to index what was accepted before the pending index existed."""

    @abc.abstractmethod
    async def message(self, comm_id: str) -> Message | None:
        """The message alone, without its recipients: one point read."""

    @abc.abstractmethod
    async def delete(self, comm_id: str) -> None:
        """Remove the message, its recipients and its replies (what is already gone is no error)."""

    @abc.abstractmethod
    async def update_recipients(self, comm_id: str, recipients: Sequence[Recipient]) -> list[Recipient]:
        """Write these recipients if none changed since read (ETag); all or none.

        Raises RecordChanged when any ETag no longer matches. Returns them with new ETags.
        """


@dataclass(frozen=True)
class PendingMark:
    """One message the sweeper is to look at from `due` on (PendingIndex); `where` is the adapter's."""

    comm_id: str
    due: datetime
    where: Any = None


class PendingIndex(abc.ABC):
    """Which messages may still have recipients to send, by when the sweeper should look at them: what a
    sweep reads instead of every message (sms/usecases/sweep.py says what it covers and what it costs)."""

    @abc.abstractmethod
    def note(self, comm_id: str, due: datetime) -> None:
        """Remember the message, to be looked at from `due` on. Written behind, a few at a time (`flush`):
        it costs an accept no storage call; a process that stops loses at most what it noted since its
        last flush, and those messages' jobs are on the queue already."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Write what was noted (what fails to be written is kept, for the next flush)."""

    @abc.abstractmethod
    async def due(self, by: datetime, limit: int) -> list[PendingMark]:
        """Up to `limit` of the marks due by `by`, oldest first."""

    @abc.abstractmethod
    async def moved(self, marks: Sequence[tuple[PendingMark, datetime]]) -> None:
        """Each mark due again at its new time (written before the old one goes: a stop between the two
        leaves a message looked at twice, never not at all)."""

    @abc.abstractmethod
    async def done(self, marks: Sequence[PendingMark]) -> None:
        """Forget these (what is already gone is no error)."""

    @abc.abstractmethod
    async def backfilled(self) -> bool:
        """Whether the messages accepted before the index existed were indexed (`mark_backfilled`)."""

    @abc.abstractmethod
    async def mark_backfilled(self) -> None: ...


class JobQueue(abc.ABC):
    @abc.abstractmethod
    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        ...


class WholeJobQueue(abc.ABC):
    """The one-call accept's queue (sms-accept, issue 30): a version-2 job, the whole message, as the accept's one
    durable write. Whether one fits is the queue's to say: the limit is on its encoded size, and only the adapter
    knows the encoding."""

    @abc.abstractmethod
    def fits(self, job: WholeJob) -> bool:
        """Whether the job's text, encoded as the queue's messages are, is within Azure's 64 KiB."""

    @abc.abstractmethod
    async def put(self, job: WholeJob) -> None:
        """Puts a job that fits, never to expire: it is the message's only copy until the worker writes its rows."""


# What a key may do: a licensee key works on its own licensee's data; an admin key on any licensee's, and its keys.
KEY_ROLE_LICENSEE = "licensee"
KEY_ROLE_ADMIN = "admin"
KEY_ROLES = (KEY_ROLE_LICENSEE, KEY_ROLE_ADMIN)


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    licensee_id: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    name: str | None = None
    expires_at: datetime | None = None
    # Keys stored before roles existed read back as full-access licensee keys: what they were.
    role: str = KEY_ROLE_LICENSEE
    read_only: bool = False  # reads only: every route that changes something answers 403

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiKeyStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, record: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    async def list(self, licensee_id: str | None = None) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    async def revoke(self, key_id: str, when: datetime) -> bool:
        """True when the key existed."""

    @abc.abstractmethod
    async def expire(self, key_id: str, when: datetime) -> None:
        """Make the key stop working at `when`."""


@dataclass(frozen=True)
class ReplyRoute:
    """Where a reply from `number` belongs: the last message sent to it that allowed replies."""

    number: str
    comm_id: str
    licensee_id: str
    recipient_id: str | None = None  # who the number was in that message (routes written before: None)
    contact_id: str | None = None


class InboundStore(abc.ABC):
    @abc.abstractmethod
    async def remember_routes(self, routes: Sequence[ReplyRoute]) -> None:
        """Record, per number, the message a reply from it would answer (the latest wins)."""

    @abc.abstractmethod
    async def route_for(self, number: str) -> ReplyRoute | None: ...

    @abc.abstractmethod
    async def forget_routes(self, comm_id: str, numbers: Sequence[str]) -> int:
        """Remove the routes of these numbers that still lead to `comm_id` (one a later message has
        taken stays): its message is going. How many went."""

    @abc.abstractmethod
    async def add(self, sms: InboundSms) -> bool:
        """Store an inbound SMS (with its message when linked). False when it was already stored."""

    @abc.abstractmethod
    async def replies(self, comm_id: str) -> list[InboundSms]:
        """The replies linked to a message, oldest first."""

    @abc.abstractmethod
    async def purge_unlinked(self, before: date) -> int:
        """Delete the inbound SMS linked to no message that were received before the UTC day `before`
        (linked ones go with their message). How many went."""


# Opt-outs that could not be tied to one licensee apply to every licensee. EVERY_LICENSEE followed by a
# sender number ("*+61400000000") is the scope of a STOP sent to that number: every licensee texting from it.
EVERY_LICENSEE = "*"


# Who made an opt-out change: a STOP or START the number sent, or a licensee's key (manual, with a reason).
SOURCE_STOP, SOURCE_START, SOURCE_MANUAL = "stop", "start", "manual"


@dataclass(frozen=True)
class OptOutChange:
    """One change of one number's opt-out of one scope, and so that scope's state for it from then on."""

    scope: str  # a licensee id, EVERY_LICENSEE, or EVERY_LICENSEE + a sender number
    number: str  # E.164
    opted_out: bool
    at: datetime
    source: str  # SOURCE_STOP, SOURCE_START or SOURCE_MANUAL
    reason: str | None = None  # a manual change's, as the key's holder gave it
    by_key_id: str | None = None  # the key that made a manual change
    # A row of OptOutStore as read (rows_for): its version, which OptOutStore.remove's `read` makes the write depend on.
    etag: str | None = field(default=None, compare=False, repr=False)


class AnyRow:
    """OptOutStore.remove without a condition: whatever row is there is replaced."""


ANY_ROW = AnyRow()


class OptOutStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, scope: str, number: str, when: datetime, source: str = SOURCE_STOP) -> None:
        """`number` opted out of `scope` (a licensee id, EVERY_LICENSEE, or a sender number's)."""

    @abc.abstractmethod
    async def remove(self, scope: str, number: str, when: datetime | None = None, source: str = SOURCE_START,
                     read: OptOutChange | AnyRow | None = ANY_ROW) -> None:
        """`number` opted back in to `scope`; nothing to remove is not an error. `read`: the row this lifts, as rows_for
        read it (None: there was none), so that an opt-out written since is never lifted by a change that did not see
        it: RecordChanged when the row is no longer what was read. ANY_ROW: whatever is there."""

    @abc.abstractmethod
    async def rows_for(self, number: str) -> list[OptOutChange]:
        """Every scope `number` ever opted out of, as it stands now (opted back in included): one read."""

    @abc.abstractmethod
    def every_row(self) -> AsyncIterator[OptOutChange]:
        """Every number's every scope as it stands now, a page at a time: the opt-out index's backfill."""

    @abc.abstractmethod
    async def scopes_for(self, number: str) -> set[str]:
        """Every scope `number` has opted out of: one read, whatever the size of any list."""

    async def migrate_legacy(self) -> set[str]:
        """Move opt-outs kept in an older layout into this one, if the store has any: idempotent. The
        numbers whose opt-outs it moved. A store that never had another layout has nothing to do."""
        return set()


class OptOutIndex(abc.ABC):
    """Each scope's opt-outs, to list and search them, and each change kept (the licensee's view: GET /api/optouts).
    OptOutStore stays what dispatch reads; this is written beside it (sms.usecases.optouts says in which order)."""

    @abc.abstractmethod
    async def record(self, change: OptOutChange) -> None:
        """The scope's state for the number, and the change in its history: one write of one partition. Idempotent:
        the same change again (a retry, a vendor's resend) writes the same rows."""

    @abc.abstractmethod
    async def state(self, scope: str, number: str) -> OptOutChange | None:
        """The scope's latest change for the number (None: it never opted out of it)."""

    @abc.abstractmethod
    async def states(self, scope: str, prefix: str, take: int, token: str | None) -> tuple[list[OptOutChange], str | None]:
        """The scope's states, by number, of the numbers starting with `prefix` ("+" for every one): a page of
        at most `take`, and a token for the next (None: this was the last)."""

    @abc.abstractmethod
    async def history(self, scope: str, number: str) -> list[OptOutChange]:
        """Every change of the number's opt-out of the scope, newest first."""

    @abc.abstractmethod
    async def converge(self, change: OptOutChange) -> bool:
        """Record `change`, read from the OptOutStore, where the index has no state for its scope and number or an
        older one: the backfill and repair. A newer state is left. Whether it wrote."""

    @abc.abstractmethod
    async def withdraw(self, change: OptOutChange, now: OptOutChange | None) -> None:
        """Take back `change`, recorded but never applied (the OptOutStore's row changed before it could be): its
        history row goes, and the state, where it is still `change`, becomes `now` (the row as the OptOutStore has it,
        with the reason and key its own history row has; None: no row, so no state). A state written since is left."""

    @abc.abstractmethod
    async def backfilled(self) -> bool:
        """Whether a backfill has run to its end (`mark_backfilled`)."""

    @abc.abstractmethod
    async def mark_backfilled(self) -> None: ...


@dataclass(frozen=True)
class IdempotencyRecord:
    """A client's idempotency key, bound to the request it first came with and the message it made."""

    licensee_id: str
    key: str
    request_hash: str
    comm_id: str
    created_at: datetime
    expires_at: datetime
    etag: str | None = None


class IdempotencyStore(abc.ABC):
    @abc.abstractmethod
    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store the record if its (licensee, key) is new: None. Otherwise the record already there."""

    @abc.abstractmethod
    async def take_over(self, expired: IdempotencyRecord, record: IdempotencyRecord) -> bool:
        """Replace an expired record, unless someone else did first (ETag): whether we did."""

    @abc.abstractmethod
    async def purge_expired(self, now: datetime, share: int, shares: int) -> int:
        """Delete the records expired by `now` among one of `shares` equal shares of every record
        (`share` from 0; each record is in one share, always the same): a sweep of them all is spread
        over `shares` calls. A record taken over meanwhile stays. How many went."""

    @abc.abstractmethod
    async def release(self, record: IdempotencyRecord) -> None:
        """Remove `record`, claimed by a request refused before it stored anything; a record that is no
        longer this one (another request's) is left alone."""


@dataclass(frozen=True)
class LedgerEntry:
    """One message as the ledger lists it: what was sent, and where each recipient stands, one letter
    per recipient in request order (sms.domain.model.STATUS_LETTERS)."""

    licensee_id: str
    comm_id: str
    created_at: datetime
    recipient_count: int
    segments: int
    encoding: str
    preview: str  # the body's first characters
    statuses: str
    linked_object_id: str | None = None
    suite_id: str | None = None
    provider: str | None = None  # the SMS provider that sent it (the first, when several did)
    # When several providers sent its recipients: "<name>,<name>,...|<one letter a recipient>", each letter
    # the index of its provider among the names ("." none). Empty while one provider sent all (`provider`).
    sent_by: str = ""
    etag: str | None = None  # set by the store; a write is conditional on it
    matched: "LedgerRecipient | None" = None  # in a search by phone number or contactId: the recipient found


@dataclass(frozen=True)
class LedgerRecipient:
    """One recipient's row in the ledger, found by phone number or contactId."""

    seq: int
    phone_number: str
    contact_id: str | None
    status: str  # a Status value


@dataclass(frozen=True)
class LedgerQuery:
    """A licensee's messages, newest first, narrowed by any of these (all must hold)."""

    licensee_id: str
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    status: str | None = None  # the message's status, or any recipient's
    phone_number: str | None = None  # E.164
    contact_id: str | None = None
    linked_object_id: str | None = None
    suite_id: str | None = None
    reference: str | None = None


class LedgerStore(abc.ABC):
    """The message ledger: every message of a licensee, found without reading its recipients."""

    @abc.abstractmethod
    async def entry(self, licensee_id: str, comm_id: str, created_at: datetime) -> LedgerEntry | None:
        """The message's entry (with its ETag), or None when it has none yet."""

    @abc.abstractmethod
    async def save(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient], previous: LedgerEntry | None,
                   events: EventBatch | None = None) -> None:
        """Write the recipients' rows, then the entry with what finds it (its status, linkedObjectId,
        suiteId, reference) and `events` (the webhook events the change makes), all in one write.
        Conditional: RecordChanged when the entry is not `previous` any more (or exists, when
        `previous` is None), and then none of it is written but the recipients' rows."""

    @abc.abstractmethod
    async def note_day(self, licensee_id: str, day: date) -> None:
        """Remember that the licensee has messages created on `day` (UTC, whatever the licensee's zone):
        what the daily usage and the retention timers go through. Idempotent."""

    @abc.abstractmethod
    async def days(self, before: date, after: date | None = None) -> list[tuple[date, str]]:
        """(day, licensee) noted with day in (after, before), oldest first."""

    @abc.abstractmethod
    async def forget_day(self, licensee_id: str, day: date) -> None:
        """Nothing of the licensee's is left from `day`."""

    @abc.abstractmethod
    async def noted_days(self, before: date, after: date | None = None) -> list["NotedDay"]:
        """The days `days` finds, each with when the usage roll-up last counted it."""

    @abc.abstractmethod
    async def mark_rolled_up(self, noted: "NotedDay", at: datetime) -> bool:
        """Remember that the roll-up counted the noted day at `at`; False, and nothing written, when the
        day was noted again (or forgotten) since `noted` was read."""

    @abc.abstractmethod
    async def delete_usage(self, licensee_id: str, day: date) -> None:
        """Remove the day's saved usage (none saved is no error)."""

    @abc.abstractmethod
    async def delete_recipients(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient]) -> None:
        """Remove these recipients' rows of the entry (those already gone are no error)."""

    @abc.abstractmethod
    async def delete_entry(self, entry: LedgerEntry) -> None:
        """Remove the entry and what finds it (already gone is no error)."""

    @abc.abstractmethod
    async def save_usage(self, usage: "DayUsage") -> None:
        """Save the day's usage, replacing what was saved for that day (in whatever zone)."""

    @abc.abstractmethod
    async def usage(self, licensee_id: str, first: date, last: date) -> list["DayUsage"]:
        """The saved usage of the licensee's days in [first, last], by day; one saved before usage had
        zones is UTC's."""

    @abc.abstractmethod
    async def page(self, query: LedgerQuery, take: int, token: str | None = None) -> tuple[list[LedgerEntry], str | None]:
        """Up to `take` entries matching `query`, newest first, and the token for the next page (None
        at the end). ValidationFailed for a token this store did not issue (`invalid_token`)."""


@dataclass(frozen=True)
class NotedDay:
    """A UTC day the licensee has messages from (LedgerStore.note_day), and when the usage roll-up last
    counted it: None when it never has, or the day was noted again since (a message recorded for it)."""

    day: date
    licensee_id: str
    rolled_up_at: datetime | None = None
    etag: str | None = None


@dataclass(frozen=True)
class DayUsage:
    """What a licensee sent on one of its days (a calendar day of `time_zone`): messages, every recipient
    (and by status), and what providers bill: segments (each message's segments times its recipients a
    provider accepted) and those recipients by provider."""

    licensee_id: str
    day: date
    messages: int = 0
    recipients: int = 0
    segments: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_provider: dict[str, int] = field(default_factory=dict)
    counted_at: datetime | None = None  # when it was added up (None: just now, from the entries)
    time_zone: str = "UTC"  # the zone whose day it is: the licensee's when it was counted


def invalid_token() -> ValidationFailed:
    return ValidationFailed([FieldError("continuationToken", "InvalidValue",
                                        "continuationToken is not one this gateway issued: start again without it")])


@dataclass(frozen=True)
class WebhookSecret:
    """A signing secret, "whsec_" and base64 of 32 random bytes (Standard Webhooks). Never in a repr:
    an endpoint logged by mistake does not leak it."""

    value: str = field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None  # set on the previous secret by a rotation: it stops signing then


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where a licensee wants its events sent, and what it needs to verify them."""

    licensee_id: str
    endpoint_id: str  # 32 hex digits
    url: str
    event_types: tuple[str, ...]  # from sms.domain.events.EVENT_TYPES; empty: every type
    secret: WebhookSecret  # the current one: every delivery is signed with it
    created_at: datetime
    previous_secret: WebhookSecret | None = None  # after a rotation, until its expires_at: deliveries carry both
    disabled_at: datetime | None = None  # nothing is sent to a disabled endpoint until it is enabled again
    disabled_reason: str | None = None
    consecutive_failures: int = 0  # for the sender's rule: so many failed deliveries in a row disable it
    failing_since: datetime | None = None  # the first of those failures
    etag: str | None = None  # set by the store; replace() is conditional on it
    # Which of its licensee's places (0 up to the cap) it holds: no two of a licensee's endpoints hold
    # the same one, which keeps the cap under concurrent adds. None: saved before places were kept.
    slot: int | None = None

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery made at `now` is signed with: the current one, then the previous one
        while its grace period lasts."""
        previous = self.previous_secret
        kept = previous is not None and previous.expires_at is not None and previous.expires_at > now
        return [self.secret.value] + ([previous.value] if kept and previous else [])


class WebhookEndpointStore(abc.ABC):
    """A licensee's webhook endpoints (a few each), always reached through the licensee: another
    licensee's endpoint is as absent as a missing one."""

    @abc.abstractmethod
    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Store a new endpoint; it comes back with its ETag. AlreadyExists when its id is taken, or its
        `slot` is held by another of the licensee's endpoints, and then nothing is written: of adds at
        once for one slot, one wins."""

    @abc.abstractmethod
    async def list(self, licensee_id: str) -> list[WebhookEndpoint]:
        """The licensee's endpoints, oldest first."""

    @abc.abstractmethod
    async def every(self) -> list[WebhookEndpoint]:
        """Every licensee's endpoints (a few each): for the retention timer."""

    @abc.abstractmethod
    async def get(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    async def replace(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Write the endpoint if it has not changed since it was read (its ETag): RecordChanged
        otherwise, or when it is gone. Returns it with its new ETag."""

    @abc.abstractmethod
    async def remove(self, licensee_id: str, endpoint_id: str) -> None:
        """Delete the endpoint, and free its slot with it (already gone is no error)."""


class EventStore(abc.ABC):
    """Webhook events, kept by batch in the licensee's ledger partitions (a batch is written with the
    ledger entry whose change made it: LedgerStore.save)."""

    @abc.abstractmethod
    async def add(self, batch: EventBatch) -> None:
        """Write a batch on its own (an inbound SMS's events). Idempotent: the same batch id replaces."""

    @abc.abstractmethod
    async def batch(self, licensee_id: str, comm_id: str, batch: str) -> list[WebhookEvent] | None:
        """The batch's events in the order written; None when no such batch was written (yet)."""

    @abc.abstractmethod
    async def batches(self, licensee_id: str, start: datetime, end: datetime, take: int,
                      token: str | None = None) -> tuple[list[tuple[str, str]], str | None]:
        """(commId, batch) of up to `take` of the licensee's batches written in [start, end), oldest
        first, and the token for more (None at the end). ValidationFailed for a token it did not issue."""

    @abc.abstractmethod
    async def purge(self, licensee_id: str, before: datetime) -> int:
        """Delete the licensee's batches written before `before`; how many rows went."""

    @abc.abstractmethod
    async def of_message(self, licensee_id: str, comm_id: str, since: datetime, take: int,
                         token: str | None = None) -> tuple[list[WebhookEvent], str | None]:
        """Up to `take` of the events the message produced in batches written from `since` on, oldest first, and the
        token for more (None at the end). ValidationFailed for a token it did not issue."""


class DeliveryQueue(abc.ABC):
    @abc.abstractmethod
    async def put(self, delivery: Delivery, *, delay_seconds: int = 0) -> None:
        """Queue a delivery, visible after `delay_seconds` (at most 7 days: Azure's limit)."""


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to send one event to one endpoint, as its delivery log shows it."""

    licensee_id: str
    endpoint_id: str
    at: datetime
    event_id: str
    event_type: str
    attempt: int  # of the delivery schedule, 1 to 8
    outcome: str  # delivered | retry | refused | gone | blocked
    status: int | None = None  # the receiver's HTTP status, None when none came
    latency_ms: int = 0
    error: str | None = None
    response_body: str = ""  # the first 1,000 characters
    replay: bool = False


class DeliveryLogStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        """Record attempts to one endpoint."""

    @abc.abstractmethod
    async def page(self, licensee_id: str, endpoint_id: str, take: int,
                   token: str | None = None) -> tuple[list[DeliveryRecord], str | None]:
        """The endpoint's attempts, newest first, and the token for more. ValidationFailed for a token
        it did not issue."""

    @abc.abstractmethod
    async def purge(self, licensee_id: str, endpoint_id: str, before: datetime) -> int:
        """Delete the endpoint's attempts made before `before`; how many went."""


@dataclass(frozen=True)
class LicenseeSettings:
    """What a licensee has set for its own messages (python -m sms licensees set, routes set, PUT /api/routes)."""

    licensee_id: str
    quiet_hours: str | None = None  # "21:00-08:00", in each recipient's local time; None: none
    time_zone: str = "UTC"  # the licensee's own zone: for numbers that do not tell theirs
    updated_at: datetime | None = None
    # Its own routing table, as its text (sms.domain.routing.table_text: at most MAX_TABLE_CHARS, ASCII);
    # None: the deployment's default applies.
    routes: str | None = None
    # Its own guard, as its text (sms.domain.guard.guard_text: compact JSON, ASCII); None: the deployment's
    # default guard applies (its home countries, risky number types refused, pumping protection on, no caps).
    guard: str | None = None
    etag: str | None = field(default=None, compare=False)  # as read; None: not stored yet


class LicenseeSettingsStore(abc.ABC):
    @abc.abstractmethod
    async def get(self, licensee_id: str) -> LicenseeSettings | None: ...

    @abc.abstractmethod
    async def every(self) -> list[LicenseeSettings]:
        """Every licensee's settings row: one a licensee that ever set anything (a scan, for the admin's licensee list)."""

    @abc.abstractmethod
    async def put(self, settings: LicenseeSettings) -> LicenseeSettings:
        """Replace the licensee's settings if they are still as read (`settings.etag`; None: create them,
        if there are none yet); RecordChanged otherwise. The settings as written, with their new ETag.
        Two writers of one licensee's row (an operator's quiet hours, the licensee's routes) so never
        undo each other's change."""


class GuardBlockStore(abc.ABC):
    """The prefixes pumping protection blocked (sms/domain/pumping.py), by licensee, each until its end:
    what every process's dispatch obeys. Beside them, an index of the licensees that have any, so a
    process learns in one read which licensees it needs to read the blocks of."""

    @abc.abstractmethod
    async def put(self, block: PrefixBlock) -> None:
        """Keep the block (replacing one of its prefix), the licensee's mark in the index first (at least
        as late as the block: a block is never there without a mark that finds it)."""

    @abc.abstractmethod
    async def licensees(self, now: datetime) -> set[str]:
        """The licensees marked in the index as having a block live at `now`: one read."""

    @abc.abstractmethod
    async def live(self, licensee_id: str, now: datetime) -> list[PrefixBlock]:
        """The licensee's blocks live at `now`, by prefix: one read of its partition."""

    @abc.abstractmethod
    async def lift(self, licensee_id: str, prefix: str) -> bool:
        """Remove the block of `prefix` (its end comes now); whether there was one."""

    @abc.abstractmethod
    async def purge(self, now: datetime) -> int:
        """Delete every block and index mark that ended by `now` (a mark written again meanwhile stays);
        how many rows went."""
@dataclass(frozen=True)
class SpendCounter:
    """What one licensee has reserved in one period of its spend caps (sms/usecases/spend.py)."""

    key: str  # the period: "day-YYYYMMDD" or "month-YYYYMM" of the licensee's zone
    segments: int = 0
    cost: int = 0  # millionths of the price table's currency
    etag: str | None = None  # None: not stored yet


class SpendStore(abc.ABC):
    """A licensee's spend counters, one per period, all in one partition (one transaction holds them)."""

    @abc.abstractmethod
    async def read(self, licensee_id: str, keys: Sequence[str]) -> dict[str, SpendCounter]:
        """These periods' counters; one not stored yet is zero, with no ETag."""

    @abc.abstractmethod
    async def write(self, licensee_id: str, counters: Sequence[SpendCounter]) -> list[SpendCounter]:
        """Write these counters together, all or none: each created when it has no ETag, else replaced if its
        ETag still matches. RecordChanged when any was written (or created) meanwhile. The counters as written."""
