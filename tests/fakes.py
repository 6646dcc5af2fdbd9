"""In-memory fakes of the ports, faithful to the real adapters' contract (see tests/integration/test_store_contract.py)."""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import weakref
from dataclasses import fields, replace
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

from sms.domain.comm_ids import CommIdKeys
from sms.domain.commands import MessageReport, Party, RequestKey, SendMessage, SendResult
from sms.domain.errors import AlreadyExists, RecordChanged, StorageUnavailable
from sms.domain.events import Delivery, EventBatch, WebhookEvent, batch_id
from sms.domain.guard import default_guard
from sms.domain.jobs import GATE_CANCELLED, Gate, WholeJob
from sms.domain.model import (
    STATUS_OF_LETTER,
    Contact,
    Message,
    Recipient,
    SendJob,
    Status,
    new_guid,
    reference_for,
    status_of,
    utcnow,
)
from sms.domain.pumping import PrefixBlock
from sms.domain.webhook_attempts import DeliveryAttempt, Outcome
from sms.gateway import Gateway, Ports, Tuning, UseCases, assemble
from sms.providers import Found, OutgoingSms, ProviderSet, SendOutcome, SmsProvider, Trace
from sms.storage import (
    ANY_ROW,
    SOURCE_START,
    SOURCE_STOP,
    AnyRow,
    ApiKeyRecord,
    ApiKeyStore,
    DayUsage,
    DeliveryLogStore,
    DeliveryQueue,
    DeliveryRecord,
    EventStore,
    GuardBlockStore,
    IdempotencyRecord,
    IdempotencyStore,
    InboundSms,
    InboundStore,
    JobQueue,
    LedgerEntry,
    LedgerQuery,
    LedgerRecipient,
    LedgerStore,
    LicenseeSettings,
    LicenseeSettingsStore,
    MessageStore,
    NotedDay,
    OptOutChange,
    OptOutIndex,
    OptOutStore,
    PendingIndex,
    PendingMark,
    ReplyRoute,
    SpendCounter,
    SpendStore,
    StagedMessage,
    WebhookEndpoint,
    WebhookEndpointStore,
    WholeJobQueue,
    invalid_token,
)
from sms.storage.limits import fits_queue_message

_etags = itertools.count(1)


def _offset(token: str | None) -> int:
    """Where a fake's page starts: its tokens are offsets into the list. One it did not issue (not a
    number, or a number of 5,000 digits) is refused as the adapters refuse theirs."""
    if not token:
        return 0
    if not (token.isascii() and token.isdigit() and len(token) < 10):
        raise invalid_token()
    return int(token)


class InMemoryMessageStore(MessageStore):
    commit_room = 99  # as the table adapter's

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.recipients: dict[str, dict[int, Recipient]] = {}
        self.gates: dict[str, Gate] = {}  # one-call messages' gate rows (issue 30)
        self.round_trips = 0  # what the real adapter would spend: one per transaction or query

    async def stage(self, message: Message, recipients: Sequence[Recipient], gate: Gate | None = None) -> StagedMessage:
        if gate is not None and len(recipients) > self.commit_room - 1:
            raise ValueError(f"{len(recipients)} recipients with a gate: one transaction holds {self.commit_room - 1}")
        # As the table adapter: every transaction but the last (which holds the message row) now.
        self.round_trips += -(-(len(recipients) + 1) // 100) - 1
        return StagedMessage(message, recipients, [], gate)

    async def commit(self, staged: StagedMessage) -> list[Recipient]:
        comm_id, gate = staged.message.comm_id, staged.commit
        # As Azure's transaction: one insert that meets its row (the message's, the gate's) fails it all (409).
        if comm_id in self.messages or (gate is not None and comm_id in self.gates):
            raise AlreadyExists(f"message {comm_id} exists")
        self.round_trips += 1
        stored = [replace(r, etag=f"e{next(_etags)}") for r in staged.recipients]
        self.recipients[comm_id] = {r.seq: r for r in stored}
        self.messages[comm_id] = staged.message
        if gate is not None:
            self.gates[comm_id] = gate
        return stored

    async def close_gate(self, comm_id: str, licensee_id: str, at: datetime) -> None:
        self.round_trips += 1
        if comm_id in self.gates:
            raise AlreadyExists(f"the gate of {comm_id} exists")
        self.gates[comm_id] = Gate(GATE_CANCELLED, licensee_id, at)

    async def gate(self, comm_id: str) -> Gate | None:
        self.round_trips += 1
        return self.gates.get(comm_id)

    async def load(self, comm_id: str, first: int = 0, last: int | None = None):
        self.round_trips += 1
        if comm_id not in self.messages:
            return None
        rows = self.recipients[comm_id]
        return self.messages[comm_id], [rows[s] for s in sorted(rows) if first <= s and (last is None or s <= last)]

    async def message(self, comm_id: str) -> Message | None:
        self.round_trips += 1
        return self.messages.get(comm_id)

    async def delete(self, comm_id: str) -> None:
        self.messages.pop(comm_id, None)
        self.recipients.pop(comm_id, None)
        self.gates.pop(comm_id, None)

    async def unfinished(self) -> list[str]:
        return sorted(comm_id for comm_id, rows in self.recipients.items()
                      if any(r.status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING) for r in rows.values()))

    async def update_recipients(self, comm_id: str, recipients: Sequence[Recipient]) -> list[Recipient]:
        self.round_trips += -(-len(recipients) // 100)
        rows = self.recipients[comm_id]
        if any(rows[r.seq].etag != r.etag for r in recipients):
            raise RecordChanged(f"a recipient of {comm_id} changed")
        updated = [replace(r, etag=f"e{next(_etags)}") for r in recipients]
        rows.update({r.seq: r for r in updated})
        return updated


class InMemoryInboundStore(InboundStore):
    def __init__(self) -> None:
        self.routes: dict[str, ReplyRoute] = {}
        self.stored: dict[tuple[str, str], InboundSms] = {}

    async def remember_routes(self, routes: Sequence[ReplyRoute]) -> None:
        self.routes.update({r.number: r for r in routes})

    async def route_for(self, number: str) -> ReplyRoute | None:
        return self.routes.get(number)

    async def forget_routes(self, comm_id: str, numbers: Sequence[str]) -> int:
        gone = {n for n in numbers if n in self.routes and self.routes[n].comm_id == comm_id}
        for number in gone:
            del self.routes[number]
        return len(gone)

    async def add(self, sms: InboundSms) -> bool:
        key = (sms.provider, sms.provider_message_id)
        if key in self.stored:
            return False
        self.stored[key] = sms
        return True

    async def replies(self, comm_id: str) -> list[InboundSms]:
        return sorted((s for s in self.stored.values() if s.comm_id == comm_id), key=lambda s: s.received_at)

    async def purge_unlinked(self, before: date) -> int:
        old = [key for key, s in self.stored.items() if s.comm_id is None and s.received_at.astimezone(timezone.utc).date() < before]
        for key in old:
            del self.stored[key]
        return len(old)


class InMemoryOptOutStore(OptOutStore):
    """`scopes`: each scope's numbers, to assert on. `reads` counts what the adapter would send: one query per number.
    Each write gives its row a new ETag; a removal conditional on the row it read refuses as Azure does (412 over a
    changed row, 404 over a gone one, 409 where none was read: RecordChanged each)."""

    def __init__(self) -> None:
        self.scopes: dict[str, set[str]] = {}
        self.rows: dict[tuple[str, str], OptOutChange] = {}  # (number, scope): the row as it stands, tombstones too
        self.reads = 0

    async def add(self, scope: str, number: str, when: datetime, source: str = SOURCE_STOP) -> None:
        self.scopes.setdefault(scope, set()).add(number)
        self.rows[number, scope] = OptOutChange(scope, number, True, when, source, etag=f"e{next(_etags)}")

    async def remove(self, scope: str, number: str, when: datetime | None = None, source: str = SOURCE_START,
                     read: OptOutChange | AnyRow | None = ANY_ROW) -> None:
        current = self.rows.get((number, scope))
        if not isinstance(read, AnyRow) and (current and current.etag) != (read and read.etag):
            raise RecordChanged(f"{number}'s row of {scope} changed")
        self.scopes.get(scope, set()).discard(number)
        self.rows[number, scope] = OptOutChange(scope, number, False, when or utcnow(), source, etag=f"e{next(_etags)}")

    async def scopes_for(self, number: str) -> set[str]:
        self.reads += 1
        return {scope for scope, numbers in self.scopes.items() if number in numbers}

    async def rows_for(self, number: str) -> list[OptOutChange]:
        return [row for (n, _), row in sorted(self.rows.items()) if n == number]

    async def every_row(self):
        for _, row in sorted(self.rows.items()):
            yield row


class InMemoryOptOutIndex(OptOutIndex):
    """The index's contract: `states` and `changes` per scope, to assert on. `fail_writes`: the next writes raise, as
    storage that went away would."""

    def __init__(self) -> None:
        self.states_by_scope: dict[str, dict[str, OptOutChange]] = {}
        self.changes: dict[str, dict[tuple[str, datetime, str], OptOutChange]] = {}
        self.marked = False
        self.fail_writes = 0

    async def record(self, change: OptOutChange) -> None:
        self._fail()
        self.states_by_scope.setdefault(change.scope, {})[change.number] = change
        self.changes.setdefault(change.scope, {})[change.number, change.at, change.source] = change

    async def state(self, scope: str, number: str) -> OptOutChange | None:
        return self.states_by_scope.get(scope, {}).get(number)

    async def states(self, scope: str, prefix: str, take: int, token: str | None) -> tuple[list[OptOutChange], str | None]:
        found = sorted((n, c) for n, c in self.states_by_scope.get(scope, {}).items() if n.startswith(prefix) and (not token or n > token))
        page = [c for _, c in found[:take]]
        return page, page[-1].number if len(found) > take else None

    async def history(self, scope: str, number: str) -> list[OptOutChange]:
        return sorted((c for (n, _, _), c in self.changes.get(scope, {}).items() if n == number), key=lambda c: c.at, reverse=True)

    async def converge(self, change: OptOutChange) -> bool:
        current = await self.state(change.scope, change.number)
        if current is not None and current.at >= change.at:
            return False
        await self.record(change)
        return True

    async def withdraw(self, change: OptOutChange, now: OptOutChange | None) -> None:
        self._fail()
        self.changes.get(change.scope, {}).pop((change.number, change.at, change.source), None)
        states = self.states_by_scope.get(change.scope, {})
        if states.get(change.number) != change:
            return  # a state written since stays
        if now is None:
            del states[change.number]
        else:
            states[change.number] = self.changes.get(now.scope, {}).get((now.number, now.at, now.source), replace(now, etag=None))

    async def backfilled(self) -> bool:
        return self.marked

    async def mark_backfilled(self) -> None:
        self.marked = True

    def _fail(self) -> None:
        if self.fail_writes:
            self.fail_writes -= 1
            raise StorageUnavailable()


class InMemoryLedgerStore(LedgerStore, EventStore):
    """The ledger's contract without its indexes: every search looks at every entry (fine in memory).
    `round_trips` counts what the table adapter would send. It keeps webhook event batches too, as the
    table adapters keep them in the ledger's table: a batch is saved with its entry, or not at all."""

    def __init__(self) -> None:
        self.event_batches: dict[tuple[str, str, str], tuple[WebhookEvent, ...]] = {}
        self.entries: dict[str, LedgerEntry] = {}
        self.recipients: dict[str, dict[int, LedgerRecipient]] = {}
        self.noted: dict[tuple[date, str], NotedDay] = {}
        self.saved_usage: dict[tuple[str, date], DayUsage] = {}
        self.round_trips = 0

    async def note_day(self, licensee_id: str, day: date) -> None:
        self.round_trips += 1
        self.noted[day, licensee_id] = NotedDay(day, licensee_id, etag=f"e{next(_etags)}")  # replaced, as Insert Or Replace does

    async def days(self, before: date, after: date | None = None) -> list[tuple[date, str]]:
        return [(noted.day, noted.licensee_id) for noted in await self.noted_days(before, after)]

    async def noted_days(self, before: date, after: date | None = None) -> list[NotedDay]:
        self.round_trips += 1
        return [noted for key, noted in sorted(self.noted.items()) if key[0] < before and (after is None or key[0] > after)]

    async def mark_rolled_up(self, noted: NotedDay, at: datetime) -> bool:
        current = self.noted.get((noted.day, noted.licensee_id))
        if current is None or current.etag != noted.etag:
            return False
        self.noted[noted.day, noted.licensee_id] = replace(current, rolled_up_at=at, etag=f"e{next(_etags)}")
        return True

    async def forget_day(self, licensee_id: str, day: date) -> None:
        self.noted.pop((day, licensee_id), None)

    async def delete_recipients(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient]) -> None:
        rows = self.recipients.get(entry.comm_id, {})
        for r in recipients:
            rows.pop(r.seq, None)

    async def delete_entry(self, entry: LedgerEntry) -> None:
        self.entries.pop(entry.comm_id, None)

    async def save_usage(self, usage: DayUsage) -> None:
        self.saved_usage[usage.licensee_id, usage.day] = usage

    async def delete_usage(self, licensee_id: str, day: date) -> None:
        self.saved_usage.pop((licensee_id, day), None)

    async def usage(self, licensee_id: str, first: date, last: date) -> list[DayUsage]:
        return [u for (lic, day), u in sorted(self.saved_usage.items()) if lic == licensee_id and first <= day <= last]

    async def entry(self, licensee_id: str, comm_id: str, created_at: datetime) -> LedgerEntry | None:
        self.round_trips += 1
        entry = self.entries.get(comm_id)
        return entry if entry is not None and entry.licensee_id == licensee_id else None

    async def save(self, entry: LedgerEntry, recipients: Sequence[LedgerRecipient], previous: LedgerEntry | None,
                   events: EventBatch | None = None) -> None:
        rows = sum(2 if r.contact_id else 1 for r in recipients)
        self.round_trips += -(-rows // 100) + 1
        self.recipients.setdefault(entry.comm_id, {}).update({r.seq: r for r in recipients})
        current = self.entries.get(entry.comm_id)
        if (current.etag if current else None) != (previous.etag if previous else None):
            raise RecordChanged(f"ledger entry of {entry.comm_id} changed")
        self.entries[entry.comm_id] = replace(entry, etag=f"e{next(_etags)}")
        if events is not None:
            self.event_batches[events.licensee_id, events.comm_id, events.batch] = events.events

    # -- EventStore --

    async def add(self, batch: EventBatch) -> None:
        self.event_batches[batch.licensee_id, batch.comm_id, batch.batch] = batch.events

    async def batch(self, licensee_id: str, comm_id: str, batch: str) -> list[WebhookEvent] | None:
        found = self.event_batches.get((licensee_id, comm_id, batch))
        return list(found) if found is not None else None

    async def batches(self, licensee_id: str, start: datetime, end: datetime, take: int,
                      token: str | None = None) -> tuple[list[tuple[str, str]], str | None]:
        low, high = batch_id(start), batch_id(end)
        found = sorted((b, c) for (lic, c, b) in self.event_batches if lic == licensee_id and low <= b < high)
        first = _offset(token)
        page = [(c, b) for b, c in found[first : first + take]]
        return page, str(first + take) if first + take < len(found) else None

    async def of_message(self, licensee_id: str, comm_id: str, since: datetime, take: int,
                         token: str | None = None) -> tuple[list[WebhookEvent], str | None]:
        found = [event for (lic, c, b), events in sorted(self.event_batches.items(), key=lambda item: item[0][2])
                 if (lic, c) == (licensee_id, comm_id) and b >= batch_id(since) for event in events]
        first = _offset(token)
        return found[first : first + take], str(first + take) if first + take < len(found) else None

    async def purge(self, licensee_id: str, before: datetime) -> int:
        old = [key for key in self.event_batches if key[0] == licensee_id and key[2] < batch_id(before)]
        for key in old:
            del self.event_batches[key]
        return len(old)

    async def page(self, query: LedgerQuery, take: int, token: str | None = None) -> tuple[list[LedgerEntry], str | None]:
        self.round_trips += 3
        found = []
        for entry in sorted(self.entries.values(), key=lambda e: (e.created_at, e.comm_id), reverse=True):
            if entry.licensee_id != query.licensee_id:
                continue
            if query.created_from and entry.created_at < query.created_from or query.created_to and entry.created_at >= query.created_to:
                continue
            if query.linked_object_id and entry.linked_object_id != query.linked_object_id:
                continue
            if query.suite_id and entry.suite_id != query.suite_id:
                continue
            if query.reference and reference_for(entry.comm_id) != query.reference.strip().upper():
                continue
            rows = list(self.recipients.get(entry.comm_id, {}).values())
            if query.phone_number or query.contact_id:
                rows = [r for r in rows if query.phone_number in (None, r.phone_number) and query.contact_id in (None, r.contact_id)]
                if query.status:
                    rows = [r for r in rows if r.status == query.status]
                found += [replace(entry, matched=r) for r in sorted(rows, key=lambda r: r.seq)[:1]]
                continue
            if query.status:
                statuses = {STATUS_OF_LETTER[letter] for letter in set(entry.statuses)}
                if query.status not in {s.value for s in statuses} | {status_of(statuses)}:
                    continue
            found.append(entry)
        start = _offset(token)
        end = start + take
        return found[start:end], str(end) if end < len(found) else None


class InMemoryJobQueue(JobQueue):
    def __init__(self) -> None:
        self.jobs: list[tuple[SendJob, int]] = []

    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        self.jobs.append((job, delay_seconds))


class InMemoryWholeJobQueue(WholeJobQueue):
    """sms-accept's queue: `jobs` in the order put. It fits a job as the adapter over host.json's base64 does."""

    def __init__(self) -> None:
        self.jobs: list[WholeJob] = []

    def fits(self, job: WholeJob) -> bool:
        return fits_queue_message(job.text, "base64")

    async def put(self, job: WholeJob) -> None:
        assert self.fits(job), "a job that does not fit is never put (Azure refuses it)"
        self.jobs.append(job)


class InMemoryPendingIndex(PendingIndex):
    """The sweeper's index, written at once (the table adapter writes behind: `flush` is a no-op here)."""

    def __init__(self) -> None:
        self.marks: dict[str, datetime] = {}
        self.filled = False

    def note(self, comm_id: str, due: datetime) -> None:
        self.marks[comm_id] = due

    async def flush(self) -> None:
        pass

    async def due(self, by: datetime, limit: int) -> list[PendingMark]:
        return sorted((PendingMark(c, due) for c, due in self.marks.items() if due <= by), key=lambda m: m.due)[:limit]

    async def moved(self, marks: Sequence[tuple[PendingMark, datetime]]) -> None:
        self.marks.update({mark.comm_id: due for mark, due in marks})

    async def done(self, marks: Sequence[PendingMark]) -> None:
        for mark in marks:
            self.marks.pop(mark.comm_id, None)

    async def backfilled(self) -> bool:
        return self.filled

    async def mark_backfilled(self) -> None:
        self.filled = True


# One index per message store, as the table adapters keep both in one storage account: every use case
# assembled over the same store (a second worker, a restarted one) sees the same marks.
_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pending_index_of(messages: MessageStore) -> InMemoryPendingIndex:
    return _INDEXES.setdefault(messages, InMemoryPendingIndex())


class InMemoryLicenseeSettingsStore(LicenseeSettingsStore):
    def __init__(self) -> None:
        self.settings: dict[str, LicenseeSettings] = {}
        self.gets = 0

    async def get(self, licensee_id: str) -> LicenseeSettings | None:
        self.gets += 1
        return self.settings.get(licensee_id)

    async def every(self) -> list[LicenseeSettings]:
        return list(self.settings.values())

    async def put(self, settings: LicenseeSettings) -> LicenseeSettings:
        current = self.settings.get(settings.licensee_id)
        stale = settings.etag is not None if current is None else settings.etag is None or settings.etag != current.etag
        if stale:
            raise RecordChanged(f"licensee {settings.licensee_id}'s settings changed")
        written = replace(settings, etag=f"W/{next(_etags)}")
        self.settings[settings.licensee_id] = written
        return written


class InMemorySpendStore(SpendStore):
    """Spend counters as TableSpendStore keeps them: a write of several is all or none, each conditional
    on its ETag (None: it must not exist yet). `reads` and `writes` count the calls."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], SpendCounter] = {}
        self.reads = self.writes = 0

    async def read(self, licensee_id: str, keys: Sequence[str]) -> dict[str, SpendCounter]:
        self.reads += 1
        await asyncio.sleep(0)  # a round trip: others run meanwhile
        return {k: self.rows.get((licensee_id, k), SpendCounter(k)) for k in keys}

    async def write(self, licensee_id: str, counters: Sequence[SpendCounter]) -> list[SpendCounter]:
        self.writes += 1
        await asyncio.sleep(0)
        for c in counters:
            current = self.rows.get((licensee_id, c.key))
            if (current.etag if current else None) != c.etag:
                raise RecordChanged(f"spend counter {c.key} changed")
        written = [replace(c, etag=f"W/{next(_etags)}") for c in counters]
        self.rows.update({(licensee_id, c.key): c for c in written})
        return written


class InMemoryApiKeyStore(ApiKeyStore):
    def __init__(self) -> None:
        self.records: dict[str, ApiKeyRecord] = {}
        self.gets = 0

    async def add(self, record: ApiKeyRecord) -> None:
        self.records[record.key_id] = record

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        self.gets += 1
        return self.records.get(key_id)

    async def list(self, licensee_id: str | None = None) -> list[ApiKeyRecord]:
        return [r for r in self.records.values() if licensee_id in (None, r.licensee_id)]

    async def revoke(self, key_id: str, when: datetime) -> bool:
        if key_id not in self.records:
            return False
        self.records[key_id] = replace(self.records[key_id], revoked_at=when)
        return True

    async def expire(self, key_id: str, when: datetime) -> None:
        self.records[key_id] = replace(self.records[key_id], expires_at=when)


class RecordingProvider(SmsProvider):
    """Records every send; can refuse chosen numbers, raise, or pause to let races happen.

    `calls` lists each number as the call is made (`sent`, once it returns). With `stall_on_call=n`
    the n-th call never returns and sets `stalled`: the moment to kill the worker that made it."""

    name = "recording"

    def __init__(self, refuse: dict[str, str] | None = None, raise_for: set[str] | None = None, delay: float = 0.0,
                 stall_on_call: int | None = None):
        self.sent: list[OutgoingSms] = []
        self.calls: list[str] = []
        self.refuse = refuse or {}
        self.raise_for = raise_for or set()
        self.delay = delay
        self.stall_on_call = stall_on_call
        self.stalled = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        self.calls.append(sms.to)
        if len(self.calls) == self.stall_on_call:
            self.stalled.set()
            await asyncio.Event().wait()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if sms.to in self.raise_for:
                raise ConnectionError("provider unreachable")
            self.sent.append(sms)
            if sms.to in self.refuse:
                return SendOutcome(error=self.refuse[sms.to])
            return SendOutcome(provider_message_id=f"rec-{len(self.sent)}")
        finally:
            self.in_flight -= 1


class DiesAfterTaking(RecordingProvider):
    """The provider takes the SMS, then the worker dies before recording it (CancelledError: the host stopping it):
    on every send, or only on the send to `number`."""

    def __init__(self, number: str | None = None, **options):
        super().__init__(**options)
        self.number = number

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        outcome = await super().send(sms)  # the provider took it...
        if self.number in (None, sms.to):
            raise asyncio.CancelledError  # ...and the worker died before recording it
        return outcome


class VendorRecord:
    """What a vendor keeps of the SMS it took, beyond any one process (Twilio's message list, the console
    outbox): recipient id -> its message id, and how many times each recipient was sent."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.sends: dict[str, int] = {}


class TracingProvider(RecordingProvider):
    """A provider whose vendor keeps a record it can be asked about after a crash (`find`).

    `hang_after` / `hang_before`: numbers whose call never returns, after or before the vendor took it
    (a worker killed mid-call). `unreachable`: `find` gets no answer (ask again)."""

    name = "tracing"

    def __init__(self, vendor: VendorRecord, hang_after: set[str] = frozenset(), hang_before: set[str] = frozenset(), **options):
        super().__init__(**options)
        self.vendor, self.hang_after, self.hang_before = vendor, set(hang_after), set(hang_before)
        self.unreachable = False
        self.traced: list[str] = []
        self.started: list[str] = []  # every call begun, the ones that hang before the vendor included

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        self.started.append(sms.to)
        if sms.to in self.hang_before:
            await asyncio.Event().wait()
        outcome = await super().send(sms)
        if outcome.accepted:
            self.vendor.ids[sms.recipient_id] = outcome.provider_message_id
            self.vendor.sends[sms.recipient_id] = self.vendor.sends.get(sms.recipient_id, 0) + 1
        if sms.to in self.hang_after:
            await asyncio.Event().wait()
        return outcome

    async def find(self, sms: OutgoingSms) -> Trace:
        self.traced.append(sms.to)
        if self.unreachable:
            return Trace(Found.ASK_AGAIN, error="vendor unreachable")
        found = self.vendor.ids.get(sms.recipient_id)
        return Trace(Found.SENT, found) if found else Trace(Found.NOT_SENT)


class InMemoryIdempotencyStore(IdempotencyStore):
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        key = (record.licensee_id, record.key)
        if key in self.records:
            return self.records[key]
        self.records[key] = replace(record, etag=f"e{next(_etags)}")
        return None

    async def release(self, record: IdempotencyRecord) -> None:
        key = (record.licensee_id, record.key)
        if key in self.records and self.records[key].comm_id == record.comm_id:
            del self.records[key]

    async def purge_expired(self, now: datetime, share: int, shares: int) -> int:
        def share_of(key: tuple[str, str]) -> int:
            return int(hashlib.sha256("\n".join(key).encode()).hexdigest()[:8], 16) * shares // 16**8

        old = [key for key, r in self.records.items() if r.expires_at <= now and share_of(key) == share]
        for key in old:
            del self.records[key]
        return len(old)

    async def take_over(self, expired: IdempotencyRecord, record: IdempotencyRecord) -> bool:
        key = (record.licensee_id, record.key)
        if self.records[key].etag != expired.etag:
            return False
        self.records[key] = replace(record, etag=f"e{next(_etags)}")
        return True


class InMemoryWebhookEndpointStore(WebhookEndpointStore):
    """Endpoints by (licensee, id), as the table adapter keys them (PartitionKey, RowKey)."""

    def __init__(self) -> None:
        self.endpoints: dict[tuple[str, str], WebhookEndpoint] = {}

    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        key = (endpoint.licensee_id, endpoint.endpoint_id)
        if key in self.endpoints:
            raise AlreadyExists(f"webhook endpoint {endpoint.endpoint_id} exists")
        if endpoint.slot is not None and any(lic == endpoint.licensee_id and e.slot == endpoint.slot
                                             for (lic, _), e in self.endpoints.items()):
            raise AlreadyExists(f"slot {endpoint.slot} of licensee {endpoint.licensee_id} is held")
        self.endpoints[key] = stored = replace(endpoint, etag=f"e{next(_etags)}")
        return stored

    async def list(self, licensee_id: str) -> list[WebhookEndpoint]:
        found = sorted((e for (lic, _), e in self.endpoints.items() if lic == licensee_id), key=lambda e: (e.created_at, e.endpoint_id))
        await asyncio.sleep(0)  # the answer is on its way back: other requests run meanwhile, as they do against the table
        return found

    async def every(self) -> list[WebhookEndpoint]:
        return list(self.endpoints.values())


    async def get(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        return self.endpoints.get((licensee_id, endpoint_id))

    async def replace(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        key = (endpoint.licensee_id, endpoint.endpoint_id)
        current = self.endpoints.get(key)
        if current is None or current.etag != endpoint.etag:
            raise RecordChanged(f"webhook endpoint {endpoint.endpoint_id} changed")
        self.endpoints[key] = stored = replace(endpoint, etag=f"e{next(_etags)}")
        return stored

    async def remove(self, licensee_id: str, endpoint_id: str) -> None:
        self.endpoints.pop((licensee_id, endpoint_id), None)


class InMemoryDeliveryQueue(DeliveryQueue):
    """Deliveries put, with their delays, in order; `take()` hands over the ones put so far."""

    def __init__(self) -> None:
        self.put_deliveries: list[tuple[Delivery, int]] = []

    async def put(self, delivery: Delivery, *, delay_seconds: int = 0) -> None:
        self.put_deliveries.append((delivery, delay_seconds))

    def take(self) -> list[tuple[Delivery, int]]:
        taken, self.put_deliveries = self.put_deliveries, []
        return taken


class InMemoryDeliveryLog(DeliveryLogStore):
    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []

    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        self.records.extend(records)

    async def page(self, licensee_id: str, endpoint_id: str, take: int,
                   token: str | None = None) -> tuple[list[DeliveryRecord], str | None]:
        mine = sorted((r for r in self.records if (r.licensee_id, r.endpoint_id) == (licensee_id, endpoint_id)),
                      key=lambda r: r.at, reverse=True)
        first = _offset(token)
        return mine[first : first + take], str(first + take) if first + take < len(mine) else None

    async def purge(self, licensee_id: str, endpoint_id: str, before: datetime) -> int:
        kept = [r for r in self.records if (r.licensee_id, r.endpoint_id) != (licensee_id, endpoint_id) or r.at >= before]
        gone, self.records = len(self.records) - len(kept), kept
        return gone


LICENSEE, OTHER = "a" * 32, "b" * 32
SAM, ALEX = "+61412000001", "+61412000002"


def command(*to: str | Party, body: str = "Hello", **fields) -> SendMessage:
    """A SendMessage of `body` to `to` (a number stands for a Party with that number alone); `fields`
    are its others (sender, send_at, reply_is_allowed, ...), as an entry point would fill them."""
    return SendMessage(to=tuple(Party(phone_number=p) if isinstance(p, str) else p for p in to), body=body, **fields)


def whole_job(*numbers: str, licensee: str = LICENSEE, body: str = "Hello", comm_id: str | None = None,
              at: datetime | None = None, **fields) -> WholeJob:
    """A one-call accept's job (issue 30) to `numbers`, as accept would put it: its time to the ms, every recipient
    queued. `fields`: the message's others. The id is a fresh random one unless given (the materializer never reads
    the tag: GET and DELETE do)."""
    comm_id, at = comm_id or new_guid(), at or utcnow()
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    message = Message(comm_id=comm_id, licensee_id=licensee, body=body, sender=Contact(), recipient_count=len(numbers),
                      encoding="GSM-7", segments=1, created_at=at, **fields)
    return WholeJob.of(message, [Recipient(comm_id=comm_id, seq=i, recipient_id=new_guid(), phone_number=n, created_at=at,
                                           updated_at=at) for i, n in enumerate(numbers)])


class SmsOverCommands:
    """The use cases driven as the entry points drive them once they have mapped what arrived: a
    SendMessage in, the core's own answers out (SendResult, MessageReport). The core's tests speak to
    it, so a change to how a use case is called is made here once."""

    def __init__(self, use: UseCases):
        self.use = use

    async def accept(self, command: SendMessage, licensee_id: str, idempotency_key: str | None = None) -> SendResult:
        return await self.use.accept.queue(command, licensee_id, _keyed(idempotency_key, command))

    async def send_now(self, command: SendMessage, licensee_id: str, idempotency_key: str | None = None) -> SendResult:
        return await self.use.send_now.send(command, licensee_id, _keyed(idempotency_key, command))

    async def status(self, comm_id: str, licensee_id: str) -> MessageReport:
        return await self.use.status.report(comm_id, licensee_id)

    async def dispatch(self, job: SendJob) -> list[Recipient]:
        return await self.use.dispatch.dispatch(job)

    async def give_up(self, job: SendJob, reason: str) -> list[Recipient]:
        return await self.use.dispatch.give_up(job, reason)

    async def sweep(self, **options) -> list[SendJob]:
        return await self.use.sweep.run(**options)


def _keyed(key: str | None, command: SendMessage) -> RequestKey | None:
    """An Idempotency-Key with the command's own text as the request it came with: equal commands are
    the same request. (Over HTTP the text is the DTO's canonical JSON, sms.wire.mapping.request_key: the
    core only compares it.)"""
    return RequestKey(key, repr(command)) if key is not None else None


def sms_of(adapters) -> SmsOverCommands:
    """The use cases over sms.bootstrap's real adapters, as the app wires them, driven with commands."""
    return SmsOverCommands(adapters.gateway().use)


class InMemoryGuardBlockStore(GuardBlockStore):
    def __init__(self):
        self.blocks: dict[tuple[str, str], PrefixBlock] = {}
        self.marks: dict[str, datetime] = {}
        self.reads = 0  # of a licensee's partition (`live`)
        self.index_reads = 0

    async def put(self, block):
        self.marks[block.licensee_id] = max(self.marks.get(block.licensee_id, block.until), block.until)
        self.blocks[(block.licensee_id, block.prefix)] = block

    async def licensees(self, now):
        self.index_reads += 1
        return {licensee for licensee, until in self.marks.items() if until > now}

    async def live(self, licensee_id, now):
        self.reads += 1
        return sorted((b for (licensee, _), b in self.blocks.items() if licensee == licensee_id and b.live(now)),
                      key=lambda b: b.prefix)

    async def lift(self, licensee_id, prefix):
        return self.blocks.pop((licensee_id, prefix), None) is not None

    async def purge(self, now):
        ended = [key for key, b in self.blocks.items() if not b.live(now)]
        marks = [licensee for licensee, until in self.marks.items() if until <= now]
        for key in ended:
            del self.blocks[key]
        for licensee in marks:
            del self.marks[licensee]
        return len(ended) + len(marks)


class ScriptedTransport:
    """The webhook transport: answers each request with the next scripted attempt (delivered when the
    script runs out), and keeps every request as sent."""

    def __init__(self, *script: DeliveryAttempt):
        self.script = list(script)
        self.requests: list[tuple[str, dict, str]] = []

    async def send(self, url, headers, body):
        self.requests.append((url, dict(headers), body))
        return self.script.pop(0) if self.script else DeliveryAttempt(Outcome.DELIVERED, 200, 12, response_body="ok")


# A deployment whose licensees may text every country (SMS_GUARD_HOME_COUNTRIES=*): for tests of other
# features whose recipients are in several countries. Without it the guard lets only the default region's through.
EVERY_COUNTRY = default_guard(("*",))

_PORTS = {f.name for f in fields(Ports)}
_TUNING = {f.name for f in fields(Tuning)}


def fake_ports(provider: SmsProvider | None = None, **given) -> Ports:
    """Every port: those given, the rest in-memory fakes. The events live in the ledger's fake, as the
    table adapters keep them in the ledger's partitions. `provider`: the one provider (a ProviderSet of
    it), unless `providers` is given."""
    ledger = given.get("ledger") or InMemoryLedgerStore()
    messages = given.get("messages") or InMemoryMessageStore()
    fakes = dict(messages=messages, jobs=InMemoryJobQueue(), accept_jobs=InMemoryWholeJobQueue(), pending=pending_index_of(messages),
                 providers=ProviderSet([provider or RecordingProvider()]),
                 opt_outs=InMemoryOptOutStore(), opt_out_index=InMemoryOptOutIndex(), inbound=InMemoryInboundStore(),
                 idempotency=InMemoryIdempotencyStore(),
                 ledger=ledger, licensees=InMemoryLicenseeSettingsStore(), webhooks=InMemoryWebhookEndpointStore(),
                 events=ledger if isinstance(ledger, InMemoryLedgerStore) else InMemoryLedgerStore(),
                 deliveries=InMemoryDeliveryQueue(), delivery_log=InMemoryDeliveryLog(), spend=InMemorySpendStore(),
                 transport=ScriptedTransport(), guard_blocks=InMemoryGuardBlockStore())
    return Ports(**{**fakes, **{name: port for name, port in given.items() if port is not None}})


def assembled(messages: MessageStore | None = None, jobs: JobQueue | None = None, provider: SmsProvider | None = None,
              **options) -> UseCases:
    """sms.gateway.assemble over `fake_ports`: `options` name ports (sms.gateway.Ports) or tuning (Tuning)."""
    unknown = set(options) - _PORTS - _TUNING
    assert not unknown, f"neither a port nor tuning: {unknown}"
    ports = fake_ports(provider, messages=messages, jobs=jobs, **{k: v for k, v in options.items() if k in _PORTS})
    return assemble(ports, Tuning(**{k: v for k, v in options.items() if k in _TUNING}))


def sms_over(messages: MessageStore, jobs: JobQueue, provider: SmsProvider, **options) -> SmsOverCommands:
    """The use cases over these ports (and fakes of the rest: `assembled`), driven with commands."""
    return SmsOverCommands(assembled(messages, jobs, provider, **options))


class World:
    """The service, inbound handling and opt-outs wired over in-memory fakes: one worker's view."""

    def __init__(self, one_call: bool = False, **tuning):
        """`tuning`: sms.gateway.Tuning's, for this world (its prices, its default guard). `one_call`: the accept's
        one-call path on (issue 30): an eligible message is put whole on `whole`, and `send` runs its job."""
        self.store, self.queue, self.provider = InMemoryMessageStore(), InMemoryJobQueue(), RecordingProvider()
        self.whole = InMemoryWholeJobQueue()
        if one_call:
            tuning = {**tuning, "accept_jobs": self.whole, "comm_id_keys": CommIdKeys(b"w" * 32), "accept_one_call": True}
        self.inbound_store, self.opt_out_store = InMemoryInboundStore(), InMemoryOptOutStore()
        self.opt_out_index = InMemoryOptOutIndex()
        self.ledger = InMemoryLedgerStore()
        self.webhooks = InMemoryWebhookEndpointStore()
        self.deliveries, self.delivery_log = InMemoryDeliveryQueue(), InMemoryDeliveryLog()
        self.sms = sms_over(self.store, self.queue, self.provider, opt_outs=self.opt_out_store, opt_out_index=self.opt_out_index,
                            inbound=self.inbound_store,
                            ledger=self.ledger, webhooks=self.webhooks, deliveries=self.deliveries, delivery_log=self.delivery_log,
                            **tuning)
        self.use = self.sms.use
        self.opt_outs = self.use.opt_outs
        self.inbound = self.use.inbound
        self._inbound_ids = itertools.count(1)

    async def send(self, *numbers, licensee=LICENSEE, replies=False):
        response = await self.sms.accept(command(*numbers, reply_is_allowed=replies), licensee)
        for whole in [job for job in self.whole.jobs if job.message.comm_id == response.comm_id]:
            await self.use.dispatch.dispatch_whole(whole)
        for job, _ in list(self.queue.jobs):
            if job.comm_id == response.comm_id:
                await self.sms.dispatch(job)
        return response.comm_id

    async def recipient(self, comm_id, seq=0):
        return (await self.store.load(comm_id, seq, seq))[1][0]

    def text_from(self, number, body):
        return InboundSms(number, "+61400000000", body, utcnow(), "acs", f"in-{next(self._inbound_ids)}")




class FakeGateway:
    """What the app's functions see, over fakes: `functions` are the app's own functions, registered
    over this object (api/callbacks/worker.blueprint) as function_app.py registers them over the real
    one. A test may swap `use`, `auth` or `settings` between calls."""

    def __init__(self, use: UseCases, auth, requests, settings, **extra):
        import azure.functions as func

        from sms.entrypoints import api, callbacks, worker

        self.use, self.auth, self.requests, self.settings = use, auth, requests, settings
        self.down: set[str] = set()  # providers its health says are unreachable
        self.__dict__.update(extra)
        app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
        for blueprint in (api.blueprint, callbacks.blueprint, worker.blueprint):
            app.register_functions(blueprint(self))
        self.functions = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}

    async def __call__(self) -> Gateway:
        return Gateway(self.settings, self.auth, self.requests, self.use, self.health)

    async def health(self) -> dict:
        """As sms.bootstrap.Adapters.health answers: every provider reachable (`down` names those that are not)."""
        providers = [{"name": name, "status": "unreachable" if name in self.down else "ok"} for name in self.use.dispatch.provider_names]
        down = sum(1 for p in providers if p["status"] != "ok")
        status = "unhealthy" if down == len(providers) else "degraded" if down else "ok"
        return {"status": status, "storage": {"status": "ok"}, "provider": providers[0], "providers": providers}


async def age_claims(store: MessageStore, comm_id: str, by: timedelta = timedelta(hours=1)) -> None:
    """As if the claims on the message's `sending` rows had been made `by` earlier: their lease has run
    out for a dispatch with any lease shorter than that (written through the store, ETag-checked)."""
    _, rows = await store.load(comm_id)
    aged = [replace(r, updated_at=r.updated_at - by) for r in rows if r.status is Status.SENDING]
    if aged:
        await store.update_recipients(comm_id, aged)


class Clock:
    """A clock a test sets: what the use cases that take a `clock` read now."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at
