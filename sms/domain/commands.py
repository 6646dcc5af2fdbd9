"""What the use cases are asked to do, and what they answer: plain records, no wire format in them.

The entry points build these from whatever arrived (ServiceStack DTOs over HTTP, a queue message, a
CLI's arguments) and turn the answers back into their own shape (sms/wire/mapping.py for HTTP).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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
    # Issue 27: what the message may cost, and how its body is encoded.
    smart_encoding: bool = False  # typographic characters replaced by their GSM-7 equivalents (sms/domain/smart_encoding.py)
    max_segments: object = None  # refused when its body needs more segments than this
    max_price: object = None  # a recipient whose SMS costs more (decimal text or a number) is blocked
    # SMSSend.CreateCommunicationReferencesImmediately: true asks for the message's records to exist when the answer
    # comes, so it is never accepted in one storage call (issue 30, sms/usecases/accept.py).
    references_now: bool = False


@dataclass(frozen=True)
class Estimate:
    """What a message costs before it is sent: how its body is encoded, the segments of each recipient's SMS,
    how many recipients are to be sent and how many the licensee's guard blocked, and what those to be sent
    cost together (millionths of `currency`, the price table's; None when the table cannot price one)."""

    encoding: str
    segments: int
    recipients: int
    blocked: int
    cost: int | None
    currency: str | None


def estimate_of(message: Message) -> Estimate:
    """The message's estimate as it was accepted (sms/usecases/accept.py keeps it on the message)."""
    return Estimate(message.encoding, message.segments, message.recipient_count - message.blocked, message.blocked,
                    message.estimated_cost, message.currency)


@dataclass(frozen=True)
class SendResult:
    """The answer to a send: `ok` when it was queued (or, sent now, reached every recipient);
    `summary` says it in words a person reads ("Queued for 3 recipients", "Sent to 2 of 3 ...");
    `estimate` what it costs, as it was accepted."""

    comm_id: str
    reference: str
    ok: bool
    summary: str
    estimate: Estimate | None = None


@dataclass(frozen=True)
class MessageReport:
    """Where a message stands: its recipients as stored, and its replies when it allowed them."""

    message: Message
    reference: str
    status: str
    recipients: list[Recipient]
    replies: list[InboundSms] | None = field(default=None)


@dataclass(frozen=True)
class ProvisionalReport:
    """Where a message accepted in one storage call stands before the worker has written its rows (issue 30: about
    a second): what its tagged commId says (sms/domain/comm_ids.py), and `queued`, or `cancelled` when a cancel came
    first. Not its body, its cost or its recipients: nothing stored holds them yet."""

    comm_id: str
    reference: str
    status: str
    licensee_id: str
    created_at: datetime
    recipient_count: int
