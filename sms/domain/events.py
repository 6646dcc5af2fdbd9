"""The events a licensee is told about through its webhook endpoints (issue 15): their names, how
each is built from what is stored, its id, and the queue message that carries it to one endpoint.

An event is built once, when the change it reports is recorded, and kept as the exact JSON it is sent
as: every attempt and every replay sends the same bytes under the same id (`webhook-id`), so a
receiver can dedupe on it. Events are kept in batches: the events one ledger write (or one inbound
SMS) produced, stored in the same transaction as that write (sms/storage/events.py). An event's id
names its batch, so one event can be found again to replay it.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .guard import money_text
from .model import NOT_ATTEMPTED, Message, Recipient, Status, reference_for, utcnow
from .pumping import PrefixBlock, instant_text
from .spend import Crossing

EVENT_TYPES: tuple[str, ...] = (
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "message.opted_out",
    "message.expired",
    "message.cancelled",
    "message.blocked",
    "reply.received",
    "optout.changed",
    "guard.prefix_blocked",
    "usage.threshold",
)

# A recipient's events come in this order; `sequence` in the payload says where each stands, so a
# receiver that got "delivered" (2) first knows a late "sent" (1) is older news.
SEQUENCE = {Status.SENT: 1, Status.DELIVERED: 2, Status.UNDELIVERED: 2, Status.FAILED: 2, Status.OPTED_OUT: 2,
            Status.EXPIRED: 2, Status.CANCELLED: 2, Status.BLOCKED: 2}
_CODE = {Status.SENT: "s", Status.DELIVERED: "d", Status.UNDELIVERED: "u", Status.FAILED: "f", Status.OPTED_OUT: "o",
         Status.EXPIRED: "x", Status.CANCELLED: "c", Status.BLOCKED: "b"}
# The longest reply text an event carries: an inbound SMS is at most a few concatenated segments.
MAX_TEXT_CHARS = 2000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# evt_<batch>_<commId>_<what>: batch = 16 digits (microseconds since 1970 when it was written), and
# for an inbound SMS a dash and 10 hex digits of its provider's id; what = <seq><status code> for a
# recipient's status (s sent, d delivered, u undelivered, f failed, o opted out, x expired, c
# cancelled, b blocked), "r" for a reply, "o" for the opt-out change it made, "p" and the prefix's digits
# for a prefix pumping protection blocked (batched under the message whose send or receipt tripped it),
# "t<cap><percent>" for a spend cap's threshold crossed by the message's reservation (cap: ds daily
# segments, dc daily cost, ms monthly segments, mc monthly cost; percent 50, 80 or 100). No "." (Standard
# Webhooks signs "<id>.<timestamp>.<body>") and no whitespace.
_EVENT_ID = re.compile(r"^evt_(\d{16}(?:-[0-9a-f]{10})?)_([0-9a-f]{32})_(\d{1,6}[sdufoxcb]|[ro]|p\d{1,15}|t(?:ds|dc|ms|mc)(?:50|80|100))$")


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    body: str  # the JSON payload exactly as signed and sent

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass(frozen=True)
class EventBatch:
    """The events one write produced, kept together (one message's, one licensee's)."""

    licensee_id: str
    comm_id: str
    batch: str
    events: tuple[WebhookEvent, ...]


def batch_id(when: datetime, inbound_id: str | None = None) -> str:
    """A batch's id: the instant it was written, and for an inbound SMS a digest of the provider's id
    (so the same SMS delivered twice by the vendor makes the same batch, and the same event ids)."""
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    digest = f"-{hashlib.sha256(inbound_id.encode()).hexdigest()[:10]}" if inbound_id is not None else ""
    return f"{micros:016d}{digest}"


def batch_time(batch: str) -> datetime:
    return _EPOCH + timedelta(microseconds=int(batch[:16]))


def located(event_id: str) -> tuple[str, str] | None:
    """(batch, commId) of an event id this gateway issued, or None."""
    match = _EVENT_ID.match(event_id or "")
    return (match.group(1), match.group(2)) if match else None


def status_events(batch: str, message: Message, recipient: Recipient, was: Status) -> list[WebhookEvent]:
    """What a recipient's move from `was` (as the ledger last said) to its stored status tells the
    licensee. A receipt can be recorded before the job that sent it (the job records once all of it is
    done), so a recipient can go from queued to delivered in one step: "sent" is then told first,
    from its timeline, as it would have been."""
    now = recipient.status
    if now not in SEQUENCE or now is was:
        return []
    events = []
    step = _last_step(recipient, now)
    at = step.at if step is not None else recipient.updated_at
    provider_id = (step.provider_message_id if step is not None else None) or recipient.provider_message_id
    if now is not Status.SENT and SEQUENCE.get(was, 0) < SEQUENCE[Status.SENT]:
        sent = _last_step(recipient, Status.SENT)
        if sent is not None:
            events.append(_status_event(batch, message, recipient, Status.SENT, sent.at, sent.provider_message_id, None))
        elif now in (Status.DELIVERED, Status.UNDELIVERED):
            # The carrier's receipt came before the provider's answer was recorded (a fast callback):
            # the timeline has no sent step, but a delivery report proves the provider took it.
            events.append(_status_event(batch, message, recipient, Status.SENT, at, provider_id, None))
    error = recipient.last_error if now in (Status.FAILED, Status.UNDELIVERED, *NOT_ATTEMPTED) else None
    events.append(_status_event(batch, message, recipient, now, at, provider_id, error))
    return events


def _last_step(recipient: Recipient, status: Status):
    return next((step for step in reversed(recipient.timeline) if step.status is status), None)


def _status_event(batch: str, message: Message, r: Recipient, status: Status, at: datetime,
                  provider_id: str | None, error: str | None) -> WebhookEvent:
    event_type = f"message.{status.value}"
    event_id = f"evt_{batch}_{message.comm_id}_{r.seq}{_CODE[status]}"
    data = {
        "commId": message.comm_id, "reference": reference_for(message.comm_id), "recipientId": r.recipient_id,
        "seq": r.seq, "phoneNumber": r.phone_number, "contactId": r.contact_id, "status": status.value,
        "sequence": SEQUENCE[status], "providerMessageId": provider_id or r.provider_message_id, "error": error,
        "linkedObjectId": message.linked_object_id, "suiteId": message.suite_id,
    }
    return _event(event_id, event_type, at, data)


@dataclass(frozen=True)
class Reply:
    """An inbound SMS linked to the message it answers, as the events about it tell it."""

    comm_id: str
    from_number: str
    to_number: str
    text: str
    received_at: datetime
    provider: str
    provider_message_id: str
    opt_out: str | None = None  # "opted_out" or "opted_in" when it was STOP or START
    recipient_id: str | None = None
    contact_id: str | None = None
    linked_object_id: str | None = None
    suite_id: str | None = None


def reply_events(batch: str, reply: Reply) -> list[WebhookEvent]:
    """reply.received, and optout.changed when the reply was STOP or START."""
    common = {
        "commId": reply.comm_id, "reference": reference_for(reply.comm_id), "recipientId": reply.recipient_id,
        "phoneNumber": reply.from_number, "contactId": reply.contact_id, "linkedObjectId": reply.linked_object_id,
        "suiteId": reply.suite_id, "to": reply.to_number, "provider": reply.provider,
        "providerMessageId": reply.provider_message_id,
    }
    text = reply.text if len(reply.text) <= MAX_TEXT_CHARS else reply.text[: MAX_TEXT_CHARS - 1] + "…"
    events = [_event(f"evt_{batch}_{reply.comm_id}_r", "reply.received", reply.received_at,
                     {**common, "text": text, "receivedAt": _instant(reply.received_at)})]
    if reply.opt_out:
        events.append(_event(f"evt_{batch}_{reply.comm_id}_o", "optout.changed", reply.received_at,
                             {**common, "optOut": reply.opt_out, "keyword": text.strip()[:32]}))
    return events


def prefix_blocked_event(batch: str, block: PrefixBlock, mode: str) -> WebhookEvent:
    """guard.prefix_blocked: pumping protection found a prefix whose deliveries collapsed; `mode` enforce
    (its recipients are blocked until `until`) or monitor (told, nothing blocked)."""
    comm_id = block.comm_id or "0" * 32
    data = {"prefix": block.prefix, "mode": mode, "until": instant_text(block.until), "since": instant_text(block.since),
            "sends": block.sends, "confirmed": block.confirmed, "window": int(block.window.total_seconds()),
            "commId": block.comm_id}
    return _event(f"evt_{batch}_{comm_id}_p{block.prefix.lstrip('+')}", "guard.prefix_blocked", block.since, data)


def threshold_event(batch: str, comm_id: str, crossing: Crossing, at: datetime, currency: str | None) -> WebhookEvent:
    """usage.threshold: the reservation of message `comm_id` took the licensee's use of a cap to `percent`
    of it or past. Segments are counts; cost is decimal text in the price table's currency."""
    cap = crossing.cap
    code = ("d" if cap.period == "day" else "m") + ("s" if cap.counts == "segments" else "c")
    money = cap.counts == "cost"
    data = {
        "cap": cap.wire, "limit": money_text(crossing.limit) if money else crossing.limit,
        "used": money_text(crossing.used) if money else crossing.used, "currency": currency if money else None,
        "percent": crossing.percent, "period": crossing.period.name, "resetsAt": crossing.period.resets_at.isoformat(timespec="seconds"),
        "commId": comm_id,
    }
    return _event(f"evt_{batch}_{comm_id}_t{code}{crossing.percent}", "usage.threshold", at, data)


def _event(event_id: str, event_type: str, at: datetime, data: dict[str, Any]) -> WebhookEvent:
    # The shape the Standard Webhooks spec recommends: type, timestamp, data; with the id as well,
    # so a stored or forwarded payload still says which event it is.
    payload = {"id": event_id, "type": event_type, "timestamp": _instant(at), "data": data}
    return WebhookEvent(event_id, event_type, json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def _instant(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Delivery:
    """One queue message: send a batch's events (those in `only`, when given) to one endpoint."""

    licensee_id: str
    endpoint_id: str
    comm_id: str
    batch: str
    attempt: int = 1  # the delivery schedule's attempt this is (sms/domain/webhook_backoff.py)
    only: tuple[str, ...] | None = None  # the event ids still to send; None: every one the endpoint wants
    replay: bool = False
    queued_at: datetime = field(default_factory=utcnow)  # when the batch was announced (or replayed)
    parked: int = 0  # times the host parked it (poison queue) and it was put back

    def to_json(self) -> str:
        return json.dumps({
            "l": self.licensee_id, "e": self.endpoint_id, "c": self.comm_id, "b": self.batch, "n": self.attempt,
            "o": list(self.only) if self.only is not None else None, "r": self.replay, "q": _instant(self.queued_at),
            "p": self.parked,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Delivery":
        """ValueError when it is not a delivery."""
        try:
            d = json.loads(text)
            only = d["o"]
            delivery = cls(str(d["l"]), str(d["e"]), str(d["c"]), str(d["b"]), int(d["n"]),
                           tuple(str(i) for i in only) if only is not None else None, bool(d["r"]),
                           datetime.fromisoformat(d["q"].replace("Z", "+00:00")), int(d.get("p", 0)))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a webhook delivery: {exc}") from None
        if delivery.attempt < 1:
            raise ValueError("not a webhook delivery: attempts count from 1")
        return delivery
