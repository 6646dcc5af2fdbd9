"""What the use cases are asked to do, and what they answer: plain records, no wire format in them.

The entry points build these from whatever arrived (ServiceStack DTOs over HTTP, a queue message, a
CLI's arguments) and turn the answers back into their own shape (sms/wire/mapping.py for HTTP).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model import InboundSms, Message, Recipient


@dataclass(frozen=True)
class Party:
    """A sender or recipient as the request named them: not yet checked."""

    name: str | None = None
    phone_number: str | None = None
    contact_id: str | None = None


@dataclass(frozen=True)
class RequestKey:
    """An Idempotency-Key and the request it came with, as one canonical text: a retry under the key must
    send the same. Made by the entry point, and only when a key came (it serialises the whole request,
    work an unkeyed send, the hot path, has no use for)."""

    key: str
    request: str


@dataclass(frozen=True)
class SendMessage:
    """Text `body` to `to`, from `sender`, for the licensee whose key made the request.

    Nothing is checked yet: the accept use case checks every field and names each problem.
    """

    missing: bool = False  # the request held no message at all
    licensee_id: str | None = None  # the licensee the request names, if any: it must be the key's
    sender: Party | None = None
    to: tuple[Party, ...] = ()
    body: str | None = None
    reply_is_allowed: bool = False
    reply_is_required: bool = False
    notes: str | None = None
    linked_object_id: str | None = None
    suite_id: str | None = None
    # Extensions to the seed's contract (issue 16), as they arrived: checked by the accept use case.
    send_at: object = None  # an instant with its offset (ISO 8601): not sent before then
    valid_until: object = None  # an instant with its offset: not sent after then
    validity_period: object = None  # or: seconds from sendAt (or now) it stays worth sending
    urgent: bool = False  # send inside the licensee's quiet hours too


@dataclass(frozen=True)
class SendResult:
    """The answer to a send: `ok` when it was queued (or, sent now, reached every recipient);
    `summary` says it in words a person reads ("Queued for 3 recipients", "Sent to 2 of 3 ...")."""

    comm_id: str
    reference: str
    ok: bool
    summary: str


@dataclass(frozen=True)
class MessageReport:
    """Where a message stands: its recipients as stored, and its replies when it allowed them."""

    message: Message
    reference: str
    status: str
    recipients: list[Recipient]
    replies: list[InboundSms] | None = field(default=None)
