"""Hostile bytes over real HTTP to the dev host: header values that are not UTF-8 (which the host hands
the worker as text it cannot encode) and vendor callbacks no reader can take. No answer is a 5xx,
and every answer is ServiceStack's error shape (issue 12, items 8 and 10)."""
import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import EVENTGRID_SECRET

# A number no other end-to-end test sends to: they share the dev host's outbox and count its lines.
GOOD = json.dumps({"SMSModel": {"To": [{"PhoneNumber": "+61491570006"}], "MessageBody": "hi"}}).encode()


@pytest.fixture(scope="module")
def api_key(devhost):
    return devhost.create_key("7d6e5f4a3b2c1d0e7d6e5f4a3b2c1d0e")


def raw_request(devhost, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    """Headers go as the bytes given: http.client's putheader sends bytes values untouched."""
    parts = urlsplit(devhost.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in [*headers, (b"Content-Length", str(len(body)).encode())]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


HEADERS = [
    (b"Idempotency-Key", b"\xff\xfe"), (b"Repeatability-Request-ID", b"\xed\xa0\x80"), (b"Repeatability-First-Sent", b"\xff"),
    (b"Content-Type", b"\xff"), (b"Content-Type", b"multipart/form-data; boundary=\xff"), (b"Accept", b"text/jsv\xff"),
]


@pytest.mark.parametrize("header, value", HEADERS, ids=[f"{h.decode()}" for h, _ in HEADERS])
def test_a_header_value_that_is_not_utf8_is_never_a_server_error(devhost, api_key, header, value):
    defaults = {b"Authorization": f"Bearer {api_key}".encode(), b"Content-Type": b"application/json"}
    headers = list({**defaults, header: value}.items())
    status, body = raw_request(devhost, "POST", "/api/send", headers, GOOD)
    assert 200 <= status < 500, (status, body[:300])
    if status >= 400:
        assert b"responseStatus" in body or b"ResponseStatus" in body


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b'[{"id":"1","eventType":"x","data":{"n":' + b"9" * 5000 + b"}}]",
    json.dumps([{"id": "e", "eventType": "Microsoft.Communication.SMSReceived",
                 "data": {"messageId": {"a": 1}, "from": "+61491570006", "message": "hi"}}]).encode(),
    json.dumps([{"id": "e", "eventType": "Microsoft.Communication.SMSReceived",
                 "data": {"messageId": "a/b#c?d\\e", "from": "+61491570006", "message": "hi"}}]).encode(),
    b'[{"id":"e","eventType":"Microsoft.Communication.SMSReceived","data":{"messageId":"m","from":"+61491570006","message":"\\ud800"}}]',
], ids=["deep", "huge integer", "dict messageId", "messageId with /#?\\", "lone surrogate"])
def test_an_event_grid_body_no_reader_takes_is_a_400_not_a_500(devhost, body):
    status, answer = raw_request(devhost, "POST", f"/api/sms/receipts/acs?code={EVENTGRID_SECRET}",
                                 [(b"Content-Type", b"application/json")], body)
    assert status == 400, (status, answer[:300])
    assert json.loads(answer)["responseStatus"]["errorCode"] == "ValidationException"


def test_a_chunked_body_is_a_400_saying_chunked_bodies_are_not_supported(devhost, api_key):
    """Under the Functions host a body without a Content-Length reaches the function empty (docs/devhost.md);
    the dev host does the same, and the gateway says why instead of "the body is empty"."""
    parts = urlsplit(devhost.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", "/api/send", body=iter([GOOD[:10], GOOD[10:]]), encode_chunked=True,
                           headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
        response = connection.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert status == 400, answer
    assert answer["responseStatus"]["errors"][0]["fieldName"] == "Transfer-Encoding"
    assert "chunked" in answer["responseStatus"]["message"] and "Content-Length" in answer["responseStatus"]["message"]
