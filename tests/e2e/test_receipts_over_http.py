"""Receipts, a reply and the opt-out round trip, over HTTP against the dev host."""
import subprocess
import sys

import pytest

from sms.config import PROJECT_ROOT
from tests.e2e.conftest import EVENTGRID_SECRET

LICENSEE = "77777777777777777777777777777777"
PERSON = "+61412555001"


@pytest.fixture(scope="module")
def key(devhost):
    return devhost.create_key(LICENSEE)


def send_now(devhost, key, replies=False):
    body = {"SMSModel": {"To": [{"PhoneNumber": PERSON}], "MessageBody": "Your appointment is at 10am", "ReplyIsAllowed": replies}}
    status, reply = devhost.request("POST", "/api/sms/send/immediate", body, key=key)
    assert status == 200, reply
    return reply


def grid(devhost, event_type, data):
    return devhost.request("POST", f"/api/sms/receipts/acs?code={EVENTGRID_SECRET}", [{"id": data.get("messageId", "e"),
                                                                                       "eventType": event_type, "data": data}])


def inbound(devhost, text, n):
    return grid(devhost, "Microsoft.Communication.SMSReceived",
                {"messageId": f"Incoming_{n}", "from": PERSON, "to": "+61400000000", "message": text,
                 "receivedTimestamp": "2026-11-24T23:00:00Z"})


def test_receipt_reply_stop_and_start(devhost, key):
    first = send_now(devhost, key, replies=True)
    assert first["message"] == "Sent to 1 of 1 recipient"

    # A delivery report moves the recipient to delivered; the same report again changes nothing.
    report = {"messageId": "Outgoing_1", "from": "+61400000000", "to": PERSON, "deliveryStatus": "Delivered",
              "deliveryStatusDetails": "No error.", "receivedTimestamp": "2026-11-24T23:00:00Z", "tag": f"{first['commId']}:0"}
    assert grid(devhost, "Microsoft.Communication.SMSDeliveryReportReceived", report)[0] == 200
    assert grid(devhost, "Microsoft.Communication.SMSDeliveryReportReceived", report)[0] == 200
    _, state = devhost.request("GET", f"/api/sms/{first['commId']}", key=key)
    assert state["recipients"][0]["status"] == "delivered"

    # The person answers STOP: the reply is linked to the message, and the next send is not attempted.
    assert inbound(devhost, "STOP", 1)[0] == 200
    _, replies = devhost.request("GET", f"/api/sms/{first['commId']}/replies", key=key)
    assert [r["body"] for r in replies["replies"]] == ["STOP"]
    sent_before = len([line for line in devhost.sent() if line["to"] == PERSON])
    skipped = send_now(devhost, key)
    assert (skipped["status"], skipped["message"]) == (False, "Sent to 0 of 1 recipient; 1 opted out")
    _, state = devhost.request("GET", f"/api/sms/{skipped['commId']}", key=key)
    assert state["recipients"][0]["status"] == "opted_out"
    assert len([line for line in devhost.sent() if line["to"] == PERSON]) == sent_before

    # START: the next one goes out.
    assert inbound(devhost, "START", 2)[0] == 200
    assert send_now(devhost, key)["message"] == "Sent to 1 of 1 recipient"


def test_event_grid_needs_its_secret(devhost):
    status, answer = devhost.request("POST", "/api/sms/receipts/acs", [{"id": "x", "eventType": "x", "data": {}}])
    assert status == 401 and "SMS_EVENTGRID_SECRET" in answer["responseStatus"]["message"]


def simulate(devhost, *args):
    """`python -m sms simulate ...` as README shows it, against the dev host."""
    result = subprocess.run([sys.executable, "-m", "sms", "simulate", *args, "--url", devhost.base_url], cwd=PROJECT_ROOT,
                            env=devhost.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_simulate_command_posts_what_acs_would(devhost, key):
    person = "0412 555 002"  # as a person would type it; the command reads it as the gateway does
    body = {"SMSModel": {"To": [{"PhoneNumber": person}], "MessageBody": "Can you come at 10am?", "ReplyIsAllowed": True}}
    status, first = devhost.request("POST", "/api/sms/send/immediate", body, key=key)
    assert status == 200 and first["status"] is True

    assert "SMSDeliveryReportReceived" in simulate(devhost, "receipt", first["commId"])
    assert "SMSReceived" in simulate(devhost, "inbound", "--from", person, "--text", "Yes, see you then")
    _, state = devhost.request("GET", f"/api/sms/{first['commId']}", key=key)
    assert state["recipients"][0]["status"] == "delivered"
    _, replies = devhost.request("GET", f"/api/sms/{first['commId']}/replies", key=key)
    assert [r["body"] for r in replies["replies"]] == ["Yes, see you then"]

    simulate(devhost, "inbound", "--from", person, "--text", "STOP")
    _, skipped = devhost.request("POST", "/api/sms/send/immediate", body, key=key)
    assert skipped["message"] == "Sent to 0 of 1 recipient; 1 opted out"
    simulate(devhost, "inbound", "--from", person, "--text", "START")
    _, again = devhost.request("POST", "/api/sms/send/immediate", body, key=key)
    assert again["message"] == "Sent to 1 of 1 recipient"


def test_a_receipt_for_a_message_that_does_not_exist_exits_1_and_posts_nothing(devhost, key):
    """README: exit 1 for what does not exist. The gateway answers Event Grid 200 for any receipt (a 4xx would
    have Event Grid retry it), so the command looks the recipient up first, in the storage the gateway uses."""
    status, sent = devhost.request("POST", "/api/sms/send/immediate",
                                   {"SMSModel": {"To": [{"PhoneNumber": "0412 555 003"}], "MessageBody": "hi"}}, key=key)
    assert status == 200
    for comm_id, recipient in (("5d41402abc4b2a76b9719d911017c592", "0"), (sent["commId"], "1")):
        result = subprocess.run([sys.executable, "-m", "sms", "simulate", "receipt", comm_id, "--recipient", recipient, "--url",
                                 devhost.base_url], cwd=PROJECT_ROOT, env=devhost.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, (comm_id, result.stdout, result.stderr)
        assert "No message" in result.stderr and comm_id in result.stderr and "Posted" not in result.stdout
    _, state = devhost.request("GET", f"/api/sms/{sent['commId']}", key=key)
    assert state["recipients"][0]["status"] == "sent"  # nothing was posted for it


def test_the_simulate_command_says_what_is_missing_without_the_secret(devhost):
    result = subprocess.run([sys.executable, "-m", "sms", "simulate", "inbound", "--from", PERSON, "--text", "hi", "--url",
                             devhost.base_url],
                            cwd=PROJECT_ROOT, env={**devhost.env, "SMS_EVENTGRID_SECRET": ""}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "SMS_EVENTGRID_SECRET is empty" in result.stderr and "Traceback" not in result.stderr


LICENSEE_A, LICENSEE_B = "a7" * 16, "b7" * 16
SHARED_NUMBER = "+61400000000"  # both licensees text from it; the person's STOP goes to it
PERSON_OF_BOTH = "+61412555101"


def send_from(devhost, key, sender, replies=False):
    body = {"SMSModel": {"From": {"PhoneNumber": sender}, "To": [{"PhoneNumber": PERSON_OF_BOTH}], "MessageBody": "Hello",
                         "ReplyIsAllowed": replies}}
    status, reply = devhost.request("POST", "/api/sms/send/immediate", body, key=key)
    assert status == 200, reply
    return reply


def texted(devhost):
    return len([line for line in devhost.sent() if line["to"] == PERSON_OF_BOTH])


def test_a_stop_reaches_every_licensee_texting_from_the_number_it_was_sent_to(devhost):
    key_a, key_b = devhost.create_key(LICENSEE_A), devhost.create_key(LICENSEE_B)
    assert send_from(devhost, key_a, SHARED_NUMBER, replies=True)["status"] is True  # a reply links to A
    assert send_from(devhost, key_b, "0400 000 000")["status"] is True  # B: the same number, no replies
    inbound_to = {"from": PERSON_OF_BOTH, "to": SHARED_NUMBER, "receivedTimestamp": "2026-11-24T23:00:00Z"}
    stop = grid(devhost, "Microsoft.Communication.SMSReceived", {**inbound_to, "messageId": "Incoming_shared_1", "message": "STOP"})
    assert stop[0] == 200

    before = texted(devhost)
    skipped = send_from(devhost, key_b, SHARED_NUMBER)
    assert (skipped["status"], skipped["message"]) == (False, "Sent to 0 of 1 recipient; 1 opted out")
    _, state = devhost.request("GET", f"/api/sms/{skipped['commId']}", key=key_b)
    assert state["recipients"][0]["status"] == "opted_out"
    assert texted(devhost) == before
    # From another of B's numbers the person never answered: still sent.
    assert send_from(devhost, key_b, "+61400000001")["message"] == "Sent to 1 of 1 recipient"
    assert texted(devhost) == before + 1

    start = grid(devhost, "Microsoft.Communication.SMSReceived", {**inbound_to, "messageId": "Incoming_shared_2", "message": "START"})
    assert start[0] == 200
    assert send_from(devhost, key_b, SHARED_NUMBER)["message"] == "Sent to 1 of 1 recipient"
    assert texted(devhost) == before + 2
