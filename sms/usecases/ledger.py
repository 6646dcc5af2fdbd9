"""The message ledger: a licensee's messages, listed and searched without reading their recipients.

Storage has no secondary indexes, so the ledger keeps its own (sms/storage/ledger.py, costs in
docs/scaling.md). It is written from what is stored, never ahead of it: a dispatch records its job's
recipients once its writes are done, a delivery receipt once its write is done. So a message shows
once its first job has run (a message never committed never runs, so never shows), and its statuses
are those of the last job or receipt that touched it; GET /api/sms/{commId} reads the message itself.
A failed ledger write raises, so the queue runs the job again (or the vendor resends the receipt), and
the write is made then: nothing is lost, only later.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import FieldError, ValidationFailed
from ..model import STATUS_LETTERS, STATUS_OF_LETTER, Message, Recipient, Status
from ..storage import LedgerEntry, LedgerQuery, LedgerRecipient, LedgerStore
from .optimistic import update_optimistically

PREVIEW_CHARS = 40
MAX_TAKE = 200
DEFAULT_TAKE = 50
WRITE_ATTEMPTS = 5


class Ledger:
    def __init__(self, store: LedgerStore):
        self._store = store

    async def record(self, message: Message, recipients: Sequence[Recipient]) -> None:
        """Bring the message's entry in line with these recipients as stored. Statuses only move
        forward here too, so a job's record arriving after a later receipt's changes nothing of it."""

        async def read() -> LedgerEntry | None:
            return await self._store.entry(message.licensee_id, message.comm_id, message.created_at)

        def change(entry: LedgerEntry | None) -> tuple[LedgerEntry, LedgerEntry | None] | None:
            current = entry.statuses if entry else STATUS_LETTERS[Status.QUEUED] * message.recipient_count
            statuses = _merged(current, recipients)
            if entry is not None and statuses == entry.statuses:
                return None  # already says all of it (the same job run twice, a repeated receipt)
            return _entry(message, statuses), entry

        async def write(planned: tuple[LedgerEntry, LedgerEntry | None]) -> None:
            entry, previous = planned
            rows = [LedgerRecipient(r.seq, r.phone_number, r.contact_id, _known(entry, r).value) for r in recipients]
            await self._store.save(entry, rows, previous)

        await update_optimistically(read, change, write, attempts=WRITE_ATTEMPTS, what=f"ledger entry of {message.comm_id}")

    async def page(self, query: LedgerQuery, take: int | None = None, token: str | None = None) -> tuple[list[LedgerEntry], str | None]:
        """A page of the licensee's messages, newest first. ValidationFailed for a take out of range or
        a token this gateway did not issue."""
        take = DEFAULT_TAKE if take is None else take
        if not 1 <= take <= MAX_TAKE:
            raise ValidationFailed([FieldError("take", "InvalidValue", f"take must be from 1 to {MAX_TAKE}")])
        return await self._store.page(query, take, token)


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


def _entry(message: Message, statuses: str) -> LedgerEntry:
    return LedgerEntry(
        licensee_id=message.licensee_id, comm_id=message.comm_id, created_at=message.created_at,
        recipient_count=message.recipient_count, segments=message.segments, encoding=message.encoding,
        preview=message.body[:PREVIEW_CHARS], statuses=statuses, linked_object_id=message.linked_object_id,
        suite_id=message.suite_id,
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

