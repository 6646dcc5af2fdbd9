"""The version-2 job: the whole of a newly accepted message in its one queue message (issue 30's one-call accept).

A version-1 job (model.SendJob) names the recipients of a message whose rows exist. A version-2 job is the one
durable write of a one-call accept, so it carries everything those rows would hold when written at accept: the
worker writes them from it (always the same rows, however often it is delivered: nothing comes from the
worker's clock or random numbers), then sends as for a version-1 job. It goes on its own queue (sms-accept), never
on sms-send: a worker of an earlier release finds no message for it there, and after its retries its poison
handler drops what it cannot find. Every re-put after the rows exist (a retry, a quiet-hours wake) is a
version-1 job again.

Only a message that needs nothing else fits one: one transaction's rows (WHOLE_JOB_SIZE recipients), no sendAt, no recipient
the guard blocked at accept (every recipient starts `queued` with no step in its timeline, as the rows of an
accept hold them), its time to the millisecond (the tagged commId carries it: sms/domain/comm_ids.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property

from .model import _HEX32, Contact, Message, Recipient, SendJob, Status, UnknownJobVersion, job_data, trace_context

WHOLE = 2  # the "v" a version-2 job carries; a version-1 job carries none
# The worker writes a whole job's rows in one entity-group transaction, beside the message row and the gate row: at
# most 100 operations ("Performing entity group transactions"; sms/storage/limits.py). Never in two: the rows of the
# first would be upserts (a later insert of one meets it, 409, for good), and every run of the job would write them
# again, over rows a run before had sent. A message of more recipients takes today's path.
WHOLE_JOB_SIZE = 98
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Compact, and the text not escaped: a name in another script is its UTF-8 bytes (1 to 4 a character), not a
# \uXXXX escape (6 or 12), so more of what a request may hold fits the queue message's 64 KiB.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


# A one-call message's gate row says which came first, the worker's write of its rows or a cancel (issue 30): both
# insert it, so exactly one does. Its state is the winner's.
GATE_MATERIALIZED = "materialized"
GATE_CANCELLED = "cancelled"


@dataclass(frozen=True)
class Gate:
    """The gate row of a one-call message: `materialized` (written with its rows, in one transaction) or
    `cancelled` (written alone by a cancel that found no rows: the worker then writes every recipient cancelled).
    `licensee_id`: whose write it was; `at`: when (the message's accept time, or the cancel's)."""

    state: str
    licensee_id: str
    at: datetime

    @property
    def materialized(self) -> bool:
        """The worker's: the rows were written with it."""
        return self.state == GATE_MATERIALIZED

    def cancelled_by(self, licensee_id: str) -> bool:
        """A cancel of this licensee's came first: the one a worker writing this licensee's job honours (another
        licensee's, a made-up id that passed for theirs, it ignores)."""
        return self.state == GATE_CANCELLED and self.licensee_id == licensee_id


class NotWhole(ValueError):
    """A message a version-2 job cannot carry: it takes today's path (the rows written at accept)."""


@dataclass(frozen=True)
class WholeJob:
    message: Message
    recipients: tuple[Recipient, ...]
    traceparent: str | None = field(default=None, compare=False)  # W3C trace context of the accepting request

    @classmethod
    def of(cls, message: Message, recipients: list[Recipient] | tuple[Recipient, ...], traceparent: str | None = None) -> "WholeJob":
        """The job of a message just checked; NotWhole when it needs what only its rows can hold."""
        if not 1 <= len(recipients) <= WHOLE_JOB_SIZE or len(recipients) != message.recipient_count:
            raise NotWhole(f"{len(recipients)} recipients: a version-2 job carries one transaction's, 1 to {WHOLE_JOB_SIZE}")
        if message.send_at is not None:
            raise NotWhole("a scheduled message is listed in the ledger at accept: its rows are written then")
        if message.blocked:
            raise NotWhole("a recipient blocked at accept has a timeline step: its rows are written then")
        if message.created_at.microsecond % 1000:
            raise NotWhole("its time is not to the millisecond, as its commId carries it")
        for seq, r in enumerate(recipients):
            if (r.comm_id, r.seq, r.status, r.events, r.created_at, r.updated_at) != (
                    message.comm_id, seq, Status.QUEUED, (), message.created_at, message.created_at):
                raise NotWhole(f"recipient {seq} is not one just accepted, queued")
        return cls(message, tuple(recipients), traceparent)

    def ids(self) -> SendJob:
        """The version-1 job of the same recipients: what is put again once the rows exist."""
        return SendJob(self.message.comm_id, 0, len(self.recipients) - 1, self.traceparent)

    @cached_property
    def text(self) -> str:
        """The queue message's text, built once: the size check and the put both use it."""
        m = self.message
        data = {
            "v": WHOLE, "commId": m.comm_id, "licenseeId": m.licensee_id, "at": (m.created_at - _EPOCH) // timedelta(milliseconds=1),
            "body": m.body, "enc": m.encoding, "seg": m.segments,
            "from": [m.sender.name, m.sender.phone_number, m.sender.contact_id],
            "notes": m.notes, "linked": m.linked_object_id, "suite": m.suite_id,
            "replyAllowed": m.reply_is_allowed or None, "replyRequired": m.reply_is_required or None,
            "validUntil": m.valid_until.isoformat() if m.valid_until else None, "urgent": m.urgent or None,
            "cost": m.estimated_cost, "cur": m.currency, "tp": self.traceparent,
            "to": [[r.recipient_id, r.phone_number, r.name, r.contact_id] for r in self.recipients],
        }
        return _JSON.encode({key: value for key, value in data.items() if value is not None})

    def to_json(self) -> str:
        return self.text

    @classmethod
    def from_json(cls, text: str | bytes) -> "WholeJob":
        """Raises UnknownJobVersion for another version, ValueError for anything else that is not a job this gateway wrote."""
        return cls.from_data(job_data(text, "version-2 job"))

    @classmethod
    def from_data(cls, data) -> "WholeJob":
        """A job from its parsed JSON; raises as from_json."""
        if not isinstance(data, dict) or data.get("v") != WHOLE:
            raise UnknownJobVersion(data.get("v") if isinstance(data, dict) else None)
        try:
            at = _EPOCH + timedelta(milliseconds=int(data["at"]))
            comm_id = str(data["commId"])
            name, number, contact_id = (_text(part) for part in data["from"])
            message = Message(
                comm_id=comm_id, licensee_id=str(data["licenseeId"]), body=str(data["body"]),
                sender=Contact(name, number, contact_id), recipient_count=len(data["to"]),
                encoding=str(data["enc"]), segments=int(data["seg"]),
                reply_is_allowed=data.get("replyAllowed") is True, reply_is_required=data.get("replyRequired") is True,
                notes=_text(data.get("notes")), linked_object_id=_text(data.get("linked")), suite_id=_text(data.get("suite")),
                created_at=at, valid_until=datetime.fromisoformat(data["validUntil"]) if "validUntil" in data else None,
                urgent=data.get("urgent") is True,
                estimated_cost=int(data["cost"]) if "cost" in data else None, currency=_text(data.get("cur")),
            )
            recipients = tuple(
                Recipient(comm_id=comm_id, seq=seq, recipient_id=str(recipient_id), phone_number=str(phone), name=_text(name),
                          contact_id=_text(contact), created_at=at, updated_at=at)
                for seq, (recipient_id, phone, name, contact) in enumerate(data["to"]))
            job = cls.of(message, recipients, trace_context(data.get("tp")))
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"not a version-2 job: {exc}") from None
        if not _HEX32.match(comm_id) or not _HEX32.match(message.licensee_id):
            raise ValueError(f"not a version-2 job: ids {comm_id!r}, {message.licensee_id!r}")
        return job


def _text(value) -> str | None:
    return None if value is None else str(value)


def parse_job(text: str | bytes) -> SendJob | WholeJob:
    """A queue message of either version; UnknownJobVersion for a version this code does not know, which must
    never be dropped (a later release's job), ValueError for what no version of this gateway wrote."""
    data = job_data(text, "send job")
    return WholeJob.from_data(data) if isinstance(data, dict) and data.get("v") == WHOLE else SendJob.from_data(data)
