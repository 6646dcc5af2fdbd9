"""What the vendors post back to us: Event Grid events from ACS, status and inbound forms from Twilio.

Event Grid delivers either its own schema (a JSON array of {id, eventType, data, ...}) or
CloudEvents 1.0 (one {specversion, type, data, ...} object, or a batch of them); both are read.

A vendor's fields are checked as a client's request is, before anything is stored or looked up
with them: each text the gateway keeps has a type, a length limit and, where it becomes part of a
Table Storage key, the characters a key may hold. A field that breaks its rule refuses the callback
with a 400 that the caller logs: Event Grid dead-letters such an event rather than retrying it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from ..domain.errors import FieldError, ValidationFailed
from ..domain.model import Status, utcnow
from .formats import invalid_unicode_at, read_body

SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"


@dataclass(frozen=True)
class Text:
    """What one of a vendor's text fields may hold. `max_chars` None: any length (the record cuts it)."""
    what: str
    max_chars: int | None
    pattern: re.Pattern[str] | None = None
    required: bool = True


# The longest inbound SMS kept. Twilio documents an inbound Body of "up to 1600 characters"
# (https://www.twilio.com/docs/messaging/guides/webhook-request); a concatenated SMS is at most 255
# segments, but carriers and vendors join far fewer. Stored as one string property, well inside
# Azure's 64 KiB (32K UTF-16 code units).
MAX_INBOUND_BODY_CHARS = 5000
# Ids (a vendor's message id, an event id) go into a RowKey ("x<provider>:<id>"), which Azure allows
# up to 1 KiB and without / \ # ? or the control characters U+0000-U+001F and U+007F-U+009F
# (https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model,
# "Characters disallowed in key fields"). ACS ids are about 60 characters, Twilio's SIDs 34.
MAX_ID_CHARS = 200

# The person's number is a key too (of their unlinked replies, of their opt-outs): E.164, as both
# vendors send it (a "+" and at most 15 digits), or a short code's digits.
SENDER_NUMBER = Text("a phone number in E.164 form (+ and at most 15 digits)", 16, re.compile(r"\+?[0-9]{2,15}"))
# Our number it was sent to: a phone number, a short code or an alphanumeric sender id.
OUR_NUMBER = Text("a phone number, a short code or a sender id (+ and at most 20 letters or digits)", 21,
                  re.compile(r"\+?[0-9A-Za-z]{1,20}"), required=False)
MESSAGE_ID = Text(f"an id of at most {MAX_ID_CHARS} characters without / \\ # ? or control characters", MAX_ID_CHARS,
                  re.compile(r"[^/\\#?\x00-\x1f\x7f-\x9f]+"))
OPTIONAL_MESSAGE_ID = replace(MESSAGE_ID, required=False)
# ACS sends no SMSReceived without text; Twilio posts an empty Body for an MMS with only media.
INBOUND_TEXT = Text("the SMS text", MAX_INBOUND_BODY_CHARS)
OPTIONAL_INBOUND_TEXT = replace(INBOUND_TEXT, required=False)
EVENT_ID = Text(f"an id of at most {MAX_ID_CHARS} characters", MAX_ID_CHARS, required=False)
# Free text the record cuts to its own limit (model.MAX_ERROR_CHARS), or a reference read as a pattern.
TEXT = Text("text", None, required=False)


def checked(rule: Text, name: str, value: Any, source: str) -> str | None:
    """The field's value when it keeps `rule` (None when it is absent and may be); a 400 naming the
    field otherwise. The value is never quoted: it may be anything, a phone number included."""
    if value is None or value == "" or (rule.required and isinstance(value, str) and not value.strip()):
        if rule.required:
            raise _bad(f"{source} has no '{name}'")
        return None
    if not isinstance(value, str):
        raise _bad(f"{source}: '{name}' must be a string, not {_json_type(value)}")
    if invalid_unicode_at(value) is not None:
        raise _bad(f"{source}: '{name}' is not valid Unicode text")
    if rule.max_chars is not None and len(value) > rule.max_chars:
        raise _bad(f"{source}: '{name}' is {len(value)} characters; the limit is {rule.max_chars}")
    if rule.pattern is not None and not rule.pattern.fullmatch(value):
        raise _bad(f"{source}: '{name}' must be {rule.what}")
    return value


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "that")


@dataclass(frozen=True)
class GridEvent:
    """One event. Its keys and its data's keys are matched case-insensitively: Event Grid's schemas
    are camelCase, but PascalCase arrives too (from other publishers and hand-made tests), and an
    event read as empty would be dropped without a word."""
    id: str
    type: str
    data: dict[str, Any]  # keys lower-cased: read them with field()

    def field(self, name: str, default: Any = None) -> Any:
        return self.data.get(name.lower(), default)

    def text(self, name: str, rule: Text) -> str | None:
        """A text field, checked against `rule`; a 400 naming it otherwise."""
        return checked(rule, name, self.field(name), f"{self.type.rsplit('.', 1)[-1]} event {self.id}")


def grid_events(body: bytes) -> list[GridEvent]:
    """The events in a delivery; read as a client's JSON body is (depth, number length and Unicode checked)."""
    payload = read_body(body, "application/json")
    items = payload if isinstance(payload, list) else [payload]
    events = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad("Each Event Grid event must be an object")
        item = _lower_keys(item)
        kind = item.get("eventtype") or item.get("type")
        data = item.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise _bad("An Event Grid event needs an eventType (or type) and a data object")
        event_id = checked(EVENT_ID, "id", item.get("id"), "An Event Grid event") or ""
        events.append(GridEvent(event_id, kind, _lower_keys(data)))
    return events


def _lower_keys(mapping: dict) -> dict:
    return {str(key).lower(): value for key, value in mapping.items()}


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("", "SerializationException", message)])


# ACS reports "Delivered" or "Failed" (the carrier could not deliver): ours are delivered / undelivered.
_ACS_DELIVERY = {"delivered": Status.DELIVERED, "failed": Status.UNDELIVERED}
# Twilio's MessageStatus values that tell us something; queued/accepted/sending/scheduled do not.
_TWILIO_STATUS = {
    "sent": Status.SENT, "delivered": Status.DELIVERED, "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED, "failed": Status.FAILED, "canceled": Status.FAILED,
}


def acs_delivery_status(event: GridEvent) -> Status | None:
    return _ACS_DELIVERY.get(str(event.field("deliveryStatus", "")).lower())


def twilio_status(value: str) -> Status | None:
    return _TWILIO_STATUS.get(value.lower())


def form_fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def form_text(fields: dict[str, str], name: str, rule: Text) -> str | None:
    """One of Twilio's form fields, checked against `rule`; a 400 naming it otherwise."""
    return checked(rule, name, fields.get(name), "Twilio's request")


def timestamp(value: Any) -> datetime:
    """Vendors' ISO timestamps, in UTC when they name no zone (a naive time cannot be ordered against
    the others); now when absent or unreadable (the receipt matters more than its clock)."""
    if not isinstance(value, str) or len(value) > 64:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
