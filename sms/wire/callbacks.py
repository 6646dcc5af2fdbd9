"""What the vendors post back to us: Event Grid events from ACS, status and inbound forms from Twilio.

Event Grid delivers either its own schema (a JSON array of {id, eventType, data, ...}) or
CloudEvents 1.0 (one {specversion, type, data, ...} object, or a batch of them); both are read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from ..errors import FieldError, ValidationFailed
from ..model import Status, utcnow

SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"


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

    def required(self, name: str) -> str:
        """A text field the event cannot do without; a 400 naming it otherwise (Event Grid does not
        retry a 400, it dead-letters the event, so the refusal is also logged by the caller)."""
        value = self.field(name)
        if not isinstance(value, str) or not value.strip():
            raise _bad(f"{self.type.rsplit('.', 1)[-1]} event {self.id} has no '{name}'")
        return value


def grid_events(body: bytes) -> list[GridEvent]:
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("The body is not JSON Event Grid events") from None
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
        events.append(GridEvent(str(item.get("id", "")), kind, _lower_keys(data)))
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


def timestamp(value: Any) -> datetime:
    """Vendors' ISO timestamps; now when absent or unreadable (the receipt matters more than its clock)."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
