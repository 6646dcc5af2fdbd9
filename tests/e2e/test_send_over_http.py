"""Over HTTP against the dev host: each route from request to `sent`, auth and validation answers."""
import pytest

from tests.e2e.conftest import wait_for

LICENSEE = "e" * 32
OTHER_LICENSEE = "f" * 32

QUEUED = ["/api/sendmessage", "/api/send", "/api/sms/send", "/api/SMSSend"]
IMMEDIATE = ["/api/sendmessage/immediate", "/api/send/immediate", "/api/sms/send/immediate"]


@pytest.fixture(scope="module")
def key(devhost):
    return devhost.create_key(LICENSEE)


def message(*numbers, body="Reminder: your appointment is tomorrow at 10am"):
    return {"smsModel": {"to": [{"name": f"P{i}", "phoneNumber": n} for i, n in enumerate(numbers)], "messageBody": body}}


@pytest.mark.parametrize("route", QUEUED + IMMEDIATE)
def test_each_route_gets_every_recipient_to_sent_exactly_once(devhost, key, route):
    numbers = [f"+61412{(QUEUED + IMMEDIATE).index(route):03d}{i:03d}" for i in range(3)]
    status, reply = devhost.request("POST", route, message(*numbers, "0412 " + numbers[0][6:9] + " " + numbers[0][9:]), key=key)
    assert status == 200, reply
    assert reply["status"] is True and len(reply["commId"]) == 32 and reply["reference"].startswith("SMS-")
    if route in IMMEDIATE:
        assert reply["message"] == "Sent to 3 of 3 recipients"  # the national duplicate of numbers[0] is sent once

    def all_sent():
        code, state = devhost.request("GET", f"/api/sms/{reply['commId']}", key=key)
        return state if code == 200 and state["status"] == "sent" else None

    state = wait_for(all_sent)
    assert state, "not sent in time:\n" + "\n".join(devhost.output[-20:])
    assert [r["phoneNumber"] for r in state["recipients"]] == numbers
    assert all(r["status"] == "sent" and r["providerMessageId"] for r in state["recipients"])
    outbox = [line for line in devhost.sent() if line["to"] in numbers]
    assert sorted(line["to"] for line in outbox) == sorted(numbers)


def test_routes_ignore_case_as_the_functions_host_does(devhost, key):
    status, reply = devhost.request("POST", "/api/smssend", message("+61412999001"), key=key)
    assert status == 200 and reply["status"] is True


@pytest.mark.parametrize("auth, fragment", [(None, "Missing API key"), ("sms_0123456789abcdef." + "A" * 43, "Invalid API key"),
                                            ("junk", "not in the form")])
def test_bad_keys_get_401(devhost, auth, fragment):
    status, reply = devhost.request("POST", "/api/sms/send", message("+61412999002"), key=auth)
    assert status == 401
    assert fragment in reply["responseStatus"]["message"]


def test_bad_input_gets_400_naming_the_field(devhost, key):
    status, reply = devhost.request("POST", "/api/sms/send", {"SMSModel": {"To": [{"PhoneNumber": "+61412999003"},
                                                                                  {"PhoneNumber": "call me"}],
                                                                                      "MessageBody": "x"}}, key=key)
    assert status == 400
    assert reply["responseStatus"]["errors"][0]["fieldName"] == "SMSModel.To[1].PhoneNumber"
    assert "'call me'" in reply["responseStatus"]["message"]

    status, reply = devhost.request("POST", "/api/sms/send", b"{oops", key=key)
    assert status == 400 and "not valid JSON" in reply["responseStatus"]["message"]


def test_another_licensees_message_is_not_found(devhost, key):
    other_key = devhost.create_key(OTHER_LICENSEE)
    _, reply = devhost.request("POST", "/api/sms/send", message("+61412999004"), key=key)
    status, answer = devhost.request("GET", f"/api/sms/{reply['commId']}", key=other_key)
    assert status == 404 and answer["responseStatus"]["errorCode"] == "NotFound"
    status, _ = devhost.request("POST", "/api/sms/send", {"SMSModel": {**message("+61412999005")["smsModel"],
                                                                       "LicenseeId": LICENSEE}}, key=other_key)
    assert status == 403


def test_wrong_method_is_405_and_unknown_route_404(devhost, key):
    assert devhost.request("GET", "/api/send", key=key)[0] == 405
    assert devhost.request("POST", "/api/nowhere", {}, key=key)[0] == 404


def test_a_path_with_an_encoded_newline_still_reaches_the_function(devhost, key):
    """Found by schemathesis: the dev host must route every path, as the Functions host does."""
    status, reply = devhost.request("POST", "/json/reply/SMSSend%0A", {}, key=key)
    assert status == 404 and reply["responseStatus"]["message"].startswith("Unknown operation 'SMSSend\n'")


def test_a_path_no_route_takes_gets_the_hosts_empty_404_even_with_a_newline(devhost, key):
    """The Functions host answers an unrouted path with 404 and nothing else (no body, no
    Content-Type; azure-functions-host #10098), including a commId that is not a Guid."""
    import urllib.error
    import urllib.request

    for path in ("/api/sms/ab%0Acd", "/api/sms/not-a-guid", "/api/nowhere"):
        try:
            urllib.request.urlopen(urllib.request.Request(devhost.base_url + path, headers={"Authorization": f"Bearer {key}"}), timeout=30)
        except urllib.error.HTTPError as error:
            assert (error.code, error.read(), error.headers.get("Content-Type")) == (404, b"", None), path
        else:
            raise AssertionError(f"{path} was answered")


def test_a_retried_request_with_an_idempotency_key_sends_once(devhost, key):
    import json as _json
    import urllib.request

    body = _json.dumps(message("+61412999101")).encode()
    answers = []
    for _ in range(2):
        request = urllib.request.Request(devhost.base_url + "/api/sms/send/immediate", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                                                  "Idempotency-Key": "e2e-retry-1"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answers.append(_json.loads(response.read()))
    assert answers[0] == answers[1] and answers[0]["message"] == "Sent to 1 of 1 recipient"
    assert len([line for line in devhost.sent() if line["to"] == "+61412999101"]) == 1


def test_health_needs_no_key_and_reports_ok(devhost):
    status, report = devhost.request("GET", "/api/health")
    console = {"name": "console", "status": "ok"}
    console = {**console, "breaker": "closed"}
    assert status == 200 and report == {"status": "ok", "storage": {"status": "ok"}, "provider": console,
                                        "providers": [console, {"name": "simulator", "status": "ok", "breaker": "closed"}]}
