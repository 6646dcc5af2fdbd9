"""What Azure Communication Services would post to the gateway, posted to a running one: for trying
delivery receipts, replies and STOP/START locally without a phone or a provider account.

The events have the shape of ACS's Event Grid events (Microsoft.Communication.SMSReceived and
SMSDeliveryReportReceived) and go to /api/sms/receipts/acs with the `?code=` the gateway checks
(SMS_EVENTGRID_SECRET), exactly as an Event Grid subscription delivers them.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone

from ..config import ConfigError

GATEWAY_NUMBER = "+61400000000"  # the number the person texts; the console provider has none


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def inbound_event(from_number: str, text: str, to_number: str = GATEWAY_NUMBER) -> dict:
    return {"id": str(uuid.uuid4()), "eventType": "Microsoft.Communication.SMSReceived", "eventTime": _now(),
            "subject": f"/phonenumber/{to_number}", "dataVersion": "1.0",
            "data": {"messageId": f"Incoming_{uuid.uuid4().hex}", "from": from_number, "to": to_number, "message": text,
                     "receivedTimestamp": _now()}}


def receipt_event(comm_id: str, recipient: int, delivered: bool, detail: str | None = None) -> dict:
    return {"id": str(uuid.uuid4()), "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "eventTime": _now(),
            "subject": f"/phonenumber/{GATEWAY_NUMBER}", "dataVersion": "1.0",
            "data": {"messageId": f"Outgoing_{uuid.uuid4().hex}", "from": GATEWAY_NUMBER,
                     "deliveryStatus": "Delivered" if delivered else "Failed",
                     "deliveryStatusDetails": detail or ("No error." if delivered else "Handset unreachable"),
                     "receivedTimestamp": _now(), "tag": f"{comm_id}:{recipient}"}}


def post(event: dict, base_url: str, secret: str | None) -> tuple[int, str]:
    """POST one event as Event Grid would; (status, answer text)."""
    if not secret:
        raise ConfigError("SMS_EVENTGRID_SECRET is empty, so the gateway refuses ACS events: set it in local.settings.json "
                          "(e.g. \"local-eventgrid-secret\") and restart the gateway")
    url = f"{base_url.rstrip('/')}/api/sms/receipts/acs?code={urllib.parse.quote(secret, safe='')}"
    request = urllib.request.Request(url, data=json.dumps([event]).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "aeg-event-type": "Notification"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
