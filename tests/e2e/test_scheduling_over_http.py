"""Scheduling over HTTP against the dev host (its queue listener polls as the Functions host does): a
message scheduled a few seconds ahead goes out, and not before its time; one cancelled before its time
never goes out; both are listed with their statuses."""
from datetime import datetime, timedelta, timezone

from tests.e2e.conftest import wait_for

LICENSEE = "5d" * 16


def scheduled(number: str, at: datetime, body: str) -> dict:
    return {"smsModel": {"to": [{"phoneNumber": number}], "messageBody": body, "sendAt": at.isoformat()}}


def test_a_scheduled_message_goes_at_its_time_and_a_cancelled_one_never(devhost):
    key = devhost.create_key(LICENSEE)
    now = datetime.now(timezone.utc)
    soon, later = now + timedelta(seconds=4), now + timedelta(minutes=10)
    status, sent = devhost.request("POST", "/api/sms/send", scheduled("+61412555001", soon, "Scheduled soon"), key=key)
    assert status == 200 and sent["message"].startswith("Scheduled for 1 recipient at "), sent
    status, kept = devhost.request("POST", "/api/sms/send", scheduled("+61412555002", later, "Scheduled later"), key=key)
    assert status == 200, kept

    code, listed = devhost.request("GET", "/api/sms?status=scheduled", key=key)
    assert code == 200 and {m["commId"] for m in listed["messages"]} >= {sent["commId"], kept["commId"]}
    code, cancelled = devhost.request("DELETE", f"/api/sms/{kept['commId']}", key=key)
    assert (code, cancelled["cancelled"], cancelled["unaffected"]) == (200, 1, {})

    def went_out():
        return [line for line in devhost.sent() if line["body"] == "Scheduled soon"]

    [line] = wait_for(went_out, timeout=60) or [None]
    assert line is not None, "the scheduled message never went out:\n" + "\n".join(devhost.output[-20:])
    assert datetime.fromisoformat(line["at"]) >= soon  # never early
    code, state = devhost.request("GET", f"/api/sms/{sent['commId']}", key=key)
    assert state["status"] == "sent"
    code, state = devhost.request("GET", f"/api/sms/{kept['commId']}", key=key)
    assert state["status"] == "cancelled" and state["recipients"][0]["status"] == "cancelled"
    code, listed = devhost.request("GET", "/api/sms?status=cancelled", key=key)
    assert [m["commId"] for m in listed["messages"]] == [kept["commId"]]
    assert not [line for line in devhost.sent() if line["body"] == "Scheduled later"]
