"""The message ledger: a licensee's messages, listed and searched without reading their recipients.

Storage has no secondary indexes, so the ledger keeps its own (sms/storage/ledger.py, costs in
docs/scaling.md). It is written from what is stored, never ahead of it: a dispatch records its job's
recipients once its writes are done, a delivery receipt once its write is done. So a message shows
once its first job has run (a message never committed never runs, so never shows), and its statuses
are those of the last job or receipt that touched it; GET /api/sms/{commId} reads the message itself.
A failed ledger write raises, so the queue runs the job again (or the vendor resends the receipt), and
the write is made then: nothing is lost, only later.

Each write also carries the webhook events its change makes (sms/domain/events.py: a recipient's move to
sent, delivered, undelivered, failed or opted out), in the same transaction as the entry, announced to
the licensee's endpoints just before it (sms/usecases/announce.py says why that order loses nothing).
"""
from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from typing import Sequence

from ..domain.errors import FieldError, ValidationFailed
from ..domain.events import EventBatch, WebhookEvent, batch_id, status_events
from ..domain.model import BILLED, STATUS_LETTERS, STATUS_OF_LETTER, WAITING, Message, Recipient, Status, utcnow
from ..storage import LedgerEntry, LedgerQuery, LedgerRecipient, LedgerStore
from .announce import Announcer
from .optimistic import update_optimistically
from .paging import bind, unbind

PREVIEW_CHARS = 40
MAX_TAKE = 200
DEFAULT_TAKE = 50
WRITE_ATTEMPTS = 8
# A message's entry is written by its jobs and by every receipt of its recipients: writers that lost a race
# wait a random while (up to 20 ms, doubling) before they read again, so a job's record is not beaten by a
# burst of receipts every time (tests/integration/test_simulator.py: 100 receipts racing a job's record).
WRITE_BACKOFF = 0.02


class Ledger:
    def __init__(self, store: LedgerStore, announcer: Announcer | None = None):
        self._store = store
        self._announcer = announcer
        self._noted: set[tuple[str, date]] = set()  # (licensee, day) this process has noted already

    async def record(self, message: Message, recipients: Sequence[Recipient], provider: str | None = None) -> None:
        """Bring the message's entry in line with these recipients as stored (sent through `provider`,
        when the caller is the dispatch that sent them).
        Statuses only move forward here too, so a job's record arriving after a later receipt's
        changes nothing of it."""

        async def read() -> LedgerEntry | None:
            return await self._store.entry(message.licensee_id, message.comm_id, message.created_at)

        def change(entry: LedgerEntry | None) -> tuple[LedgerEntry, LedgerEntry | None, str] | None:
            # A new entry starts every recipient where the message started it: scheduled, or queued.
            first = Status.SCHEDULED if message.send_at is not None else Status.QUEUED
            current = entry.statuses if entry else STATUS_LETTERS[first] * message.recipient_count
            statuses = _merged(current, recipients)
            first, sent_by = sent_by_of(entry, recipients, provider, statuses)
            if entry is not None and (statuses, first, sent_by) == (entry.statuses, entry.provider, entry.sent_by):
                return None  # already says all of it (the same job run twice, a repeated receipt)
            return replace(_entry(message, statuses, first), sent_by=sent_by), entry, current

        async def write(planned: tuple[LedgerEntry, LedgerEntry | None, str]) -> None:
            entry, previous, was = planned
            if previous is None:  # before the entry: the daily usage (usage.py) and retention go by the days noted
                await self._note_day(message.licensee_id, message.created_at.date())
            rows = [LedgerRecipient(r.seq, r.phone_number, r.contact_id, _known(entry, r).value) for r in recipients]
            await self._store.save(entry, rows, previous, await self._announced(message, recipients, was, entry.statuses))

        await update_optimistically(read, change, write, attempts=WRITE_ATTEMPTS, what=f"ledger entry of {message.comm_id}",
                                    backoff=WRITE_BACKOFF)

    async def _announced(self, message: Message, recipients: Sequence[Recipient], was: str, now: str) -> EventBatch | None:
        """The events of the recipients whose status the write changes, announced to the licensee's
        endpoints (before the write: see sms/usecases/announce.py); None when there are none, or
        nobody to tell."""
        if self._announcer is None or not await self._announcer.endpoints(message.licensee_id):
            return None  # nobody to tell: no event is built or kept
        batch = batch_id(utcnow())
        events: list[WebhookEvent] = []
        for r in sorted(recipients, key=lambda r: r.seq):
            if r.seq < len(was) and was[r.seq] != now[r.seq]:
                events += status_events(batch, message, r, STATUS_OF_LETTER[was[r.seq]])
        if not events or not await self._announcer.announce(message.licensee_id, message.comm_id, batch, events):
            return None
        return EventBatch(message.licensee_id, message.comm_id, batch, tuple(events))

    async def page(self, query: LedgerQuery, take: int | None = None, token: str | None = None) -> tuple[list[LedgerEntry], str | None]:
        """A page of the licensee's messages, newest first. ValidationFailed for a take out of range or
        a token this gateway did not issue, or issued for other filters."""
        take = DEFAULT_TAKE if take is None else take
        if not 1 <= take <= MAX_TAKE:
            raise ValidationFailed([FieldError("take", "InvalidValue", f"take must be from 1 to {MAX_TAKE}")])
        filters = ("messages", *(getattr(query, f.name) for f in fields(query) if f.name != "licensee_id"))
        entries, token = await self._store.page(query, take, unbind(token, *filters))
        return entries, bind(token, *filters)

    async def _note_day(self, licensee_id: str, day: date) -> None:
        if (licensee_id, day) not in self._noted:
            await self._store.note_day(licensee_id, day)
            self._noted.add((licensee_id, day))


def _merged(current: str, recipients: Sequence[Recipient]) -> str:
    letters = list(current)
    for r in recipients:
        if 0 <= r.seq < len(letters):
            was = STATUS_OF_LETTER[letters[r.seq]]
            if was.can_become(r.status):
                letters[r.seq] = STATUS_LETTERS[r.status]
    return "".join(letters)


def _known(entry: LedgerEntry, recipient: Recipient) -> Status:
    """The recipient's status as the entry now says it (forward-only merged)."""
    return STATUS_OF_LETTER[entry.statuses[recipient.seq]] if recipient.seq < len(entry.statuses) else recipient.status


# A provider's letter in LedgerEntry.sent_by: its index among the entry's names.
_PROVIDER_LETTERS = "0123456789abcdefghijklmnopqrstuvwxyz"


def sent_by_of(entry: LedgerEntry | None, recipients: Sequence[Recipient], provider: str | None,
               statuses: str) -> tuple[str | None, str]:
    """The entry's provider (the first that sent any of it: `provider`, the caller's, for rows that name
    none) and its `sent_by`, with these recipients' providers merged in. While one provider sent them all,
    `sent_by` stays empty; once a second appears, every recipient already handed to a provider is marked
    the first's and each of these its own."""
    first = entry.provider if entry else None
    names, letters = [first] if first else [], None
    if entry is not None and entry.sent_by:
        text, marks = entry.sent_by.split("|", 1)
        names, letters = text.split(","), list(marks)
    for r in recipients:
        name = r.provider or (provider if r.status not in WAITING else None)
        if name is None or not 0 <= r.seq < len(statuses):
            continue
        if not names:
            names = [name]
        if name not in names:
            names.append(name)
        if letters is None and len(names) > 1:
            handed = {s for s in Status if s not in WAITING and s is not Status.CANCELLED}
            letters = ["0" if STATUS_OF_LETTER[letter] in handed else "." for letter in statuses]
        if letters is not None:
            letters[r.seq] = _PROVIDER_LETTERS[names.index(name)]
    return (names[0] if names else None), ("" if letters is None else ",".join(names) + "|" + "".join(letters))


def billed_by_provider(entry: LedgerEntry) -> dict[str, int]:
    """The entry's recipients a provider accepted (BILLED), by the provider that sent each."""
    billed = [seq for seq, letter in enumerate(entry.statuses) if STATUS_OF_LETTER[letter] in BILLED]
    if not entry.sent_by:
        return {entry.provider or "unknown": len(billed)} if billed else {}
    text, marks = entry.sent_by.split("|", 1)
    names, found = text.split(","), {}
    for seq in billed:
        mark = marks[seq] if seq < len(marks) else "."
        name = names[_PROVIDER_LETTERS.index(mark)] if mark != "." else (entry.provider or "unknown")
        found[name] = found.get(name, 0) + 1
    return found


def _entry(message: Message, statuses: str, provider: str | None = None) -> LedgerEntry:
    return LedgerEntry(
        licensee_id=message.licensee_id, comm_id=message.comm_id, created_at=message.created_at,
        recipient_count=message.recipient_count, segments=message.segments, encoding=message.encoding,
        preview=message.body[:PREVIEW_CHARS], statuses=statuses, linked_object_id=message.linked_object_id,
        suite_id=message.suite_id, provider=provider,
    )


def counts(entry: LedgerEntry) -> dict[str, int]:
    """How many recipients are in each status."""
    found: dict[str, int] = {}
    for letter in entry.statuses:
        status = STATUS_OF_LETTER[letter].value
        found[status] = found.get(status, 0) + 1
    return found


def statuses_of(entry: LedgerEntry) -> set[Status]:
    return {STATUS_OF_LETTER[letter] for letter in set(entry.statuses)}

