"""The guard's country and number-type permissions over HTTP (issue 27), through the dev host: a message to
an allowed, a blocked-country and a premium-rate number sends only the first, the others ending `blocked`
with why (status, listing, usage); the licensee tightens its guard with its key but cannot loosen it; the
operator's `python -m sms guard set` (another process) loosens it, and the next message goes by it."""
import subprocess
import sys
import uuid

from sms.config import PROJECT_ROOT
from tests.e2e.conftest import wait_for

AU, GB, AU_PREMIUM = "+61412345001", "+447400123456", "+611900123456"


def send(devhost, key: str, *numbers: str) -> str:
    status, body = devhost.request("POST", "/api/sms/send", {"smsModel": {"to": [{"phoneNumber": n} for n in numbers],
                                                                          "messageBody": "Guarded"}}, key=key)
    assert status == 200, body
    return body["commId"]


def settled(devhost, key: str, comm_id: str) -> dict:
    def done():
        status, body = devhost.request("GET", f"/api/sms/{comm_id}", key=key)
        # Its recipients listed (a one-call accept's are written by the worker, issue 30) and none still on its way.
        written = status == 200 and body["recipients"]
        return body if written and all(r["status"] not in ("queued", "sending") for r in body["recipients"]) else None
    answer = wait_for(done)
    assert answer, f"{comm_id} did not settle"
    return answer


def test_blocked_recipients_end_blocked_with_why_and_the_rest_goes(devhost):
    key = devhost.create_key(uuid.uuid4().hex)
    comm_id = send(devhost, key, AU, GB, AU_PREMIUM)
    message = settled(devhost, key, comm_id)
    by_number = {r["phoneNumber"]: r for r in message["recipients"]}
    assert by_number[AU]["status"] == "sent"
    assert by_number[GB]["status"] == "blocked"
    assert by_number[GB]["error"] == "country GB is blocked by this licensee's guard (otherCountries)"
    assert by_number[AU_PREMIUM]["status"] == "blocked" and "premium-rate numbers are blocked" in by_number[AU_PREMIUM]["error"]
    assert [e["status"] for e in by_number[GB]["timeline"]] == ["queued", "blocked"]
    ids = {r["id"] for r in message["recipients"]}
    assert [line["to"] for line in devhost.sent() if line["recipientId"] in ids] == [AU]
    status, listed = devhost.request("GET", "/api/sms?status=blocked", key=key)
    assert status == 200 and [m["commId"] for m in listed["messages"]] == [comm_id]
    status, usage = devhost.request("GET", "/api/usage", key=key)
    assert status == 200 and usage["days"][-1]["byStatus"] == {"sent": 1, "blocked": 2}


def test_a_licensee_tightens_the_operator_loosens_and_the_next_message_goes_by_it(devhost):
    licensee = uuid.uuid4().hex
    key = devhost.create_key(licensee)
    status, body = devhost.request("PUT", "/api/guard", {"countries": {"GB": "allow"}}, key=key)
    assert status == 403 and "Countries.GB: block -> allow" in body["responseStatus"]["message"]
    _, default = devhost.request("GET", "/api/guard", key=key)  # the home countries: SMS_GUARD_HOME_COUNTRIES, or AU
    status, body = devhost.request("PUT", "/api/guard", {"countries": {"AU": "monitor"}}, key=key)
    assert status == 200 and body["source"] == "licensee" and body["countries"] == {**default["countries"], "AU": "monitor"}

    done = subprocess.run([sys.executable, "-m", "sms", "guard", "set", "--licensee", licensee, "--allow", "GB"],
                          cwd=PROJECT_ROOT, env=devhost.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, body = devhost.request("GET", "/api/guard", key=key)
    assert body["countries"] == {**default["countries"], "AU": "monitor", "GB": "allow"}
    # The dev host caches a licensee's settings for 30 s: a fresh licensee's first read is after the change.
    comm_id = send(devhost, key, AU, GB)
    au, gb = settled(devhost, key, comm_id)["recipients"]
    assert au["status"] == gb["status"] == "sent"
    [claim] = [e for e in au["timeline"] if e["status"] == "sending"]
    assert claim["guard"] == "country AU is monitored by this licensee's guard"
    assert not any("guard" in e for e in gb["timeline"])
