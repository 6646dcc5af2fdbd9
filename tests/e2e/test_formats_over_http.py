"""Every send route x format x way of asking for it (Accept, ?format=, .suffix) answers in that format."""
import http.client
import json
import urllib.parse
import urllib.request

import pytest

from sms.entrypoints.routes import IMMEDIATE_ROUTES, SEND_ROUTES
from sms.wire import CommResponse, jsv

LICENSEE = "0123456789abcdef0123456789abcdef"
BODY_JSON = json.dumps({"SMSModel": {"To": [{"PhoneNumber": "+61412800001"}], "MessageBody": "Format check, ok?"}}).encode()
BODY_JSV = b'{SMSModel:{To:[{PhoneNumber:+61412800002}],MessageBody:"Format check, ok?"}}'
CONTENT_TYPES = {"json": "application/json", "jsv": "text/jsv"}


@pytest.fixture(scope="module")
def key(devhost):
    return devhost.create_key(LICENSEE)


def raw(devhost, method, path, body=None, headers=None):
    request = urllib.request.Request(devhost.base_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def parse(fmt: str, body: bytes):
    return json.loads(body) if fmt == "json" else jsv.loads(body.decode())


@pytest.mark.parametrize("path", [f"/api/{p}" for p in (*SEND_ROUTES.values(), *IMMEDIATE_ROUTES.values())])
@pytest.mark.parametrize("fmt", ["json", "jsv"])
@pytest.mark.parametrize("via", ["accept", "query", "suffix"])
def test_route_format_and_selector(devhost, key, path, fmt, via):
    other = "jsv" if fmt == "json" else "json"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": CONTENT_TYPES[other]}
    body = BODY_JSON if other == "json" else BODY_JSV  # the request comes in the other format, to show they are independent
    if via == "accept":
        headers["Accept"] = CONTENT_TYPES[fmt]
    elif via == "query":
        path, headers["Accept"] = f"{path}?format={fmt}", CONTENT_TYPES[other]
    else:
        path, headers["Accept"] = f"{path}.{fmt}", CONTENT_TYPES[other]

    status, content_type, answer = raw(devhost, "POST", path, body, headers)

    assert status == 200, answer
    assert content_type.startswith(CONTENT_TYPES[fmt])
    response = CommResponse.model_validate(parse(fmt, answer))
    assert response.status is True and len(response.comm_id) == 32


@pytest.mark.parametrize("path, fmt", [
    ("/json/reply/SMSSend", "json"), ("/jsv/reply/SMSSend", "jsv"),
    ("/jsv/reply/SMSSend?format=json", "json"), ("/json/reply/SMSSend?format=jsv", "jsv"),
])
def test_predefined_routes_answer_in_their_format_unless_told_otherwise(devhost, key, path, fmt):
    status, content_type, answer = raw(devhost, "POST", path, BODY_JSON, {"Authorization": f"Bearer {key}",
                                                                          "Content-Type": "application/json"})
    assert status == 200 and content_type.startswith(CONTENT_TYPES[fmt])
    assert CommResponse.model_validate(parse(fmt, answer)).status is True


def test_a_jsv_body_without_content_type_on_the_jsv_route(devhost, key):
    # http.client, because urllib adds a form Content-Type to every POST body.
    url = urllib.parse.urlsplit(devhost.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request("POST", "/jsv/reply/SMSSend", BODY_JSV, {"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        assert response.status == 200 and response.read().startswith(b"{CommId:")
    finally:
        connection.close()


def test_the_json_auto_batch_route(devhost, key):
    status, _, answer = raw(devhost, "POST", "/json/reply/SMSSend[]", b"[" + BODY_JSON + b"," + BODY_JSON + b"]",
                            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert status == 200 and [r["status"] for r in json.loads(answer)] == [True, True]


@pytest.mark.parametrize("fmt", ["json", "jsv"])
def test_errors_come_in_the_requested_format(devhost, fmt):
    status, content_type, answer = raw(devhost, "POST", f"/api/send.{fmt}", BODY_JSON, {"Content-Type": "application/json"})
    assert status == 401 and content_type.startswith(CONTENT_TYPES[fmt])
    data = parse(fmt, answer)
    status_key = "responseStatus" if fmt == "json" else "ResponseStatus"
    code_key = "errorCode" if fmt == "json" else "ErrorCode"
    assert data[status_key][code_key] == "Unauthorized"


def test_status_in_jsv(devhost, key):
    _, _, answer = raw(devhost, "POST", "/api/send", BODY_JSON, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    comm_id = json.loads(answer)["commId"]
    status, content_type, body = raw(devhost, "GET", f"/api/sms/{comm_id}", None, {"Authorization": f"Bearer {key}", "Accept": "text/jsv"})
    assert status == 200 and content_type.startswith("text/jsv")
    assert jsv.loads(body.decode())["CommId"] == comm_id


def test_a_415_and_a_form_post(devhost, key):
    status, _, _ = raw(devhost, "POST", "/api/send", b"<x/>", {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"})
    assert status == 415
    form = b"SMSModel=%7BTo%3A%5B%7BPhoneNumber%3A%2B61412800003%7D%5D%2CMessageBody%3Ahi%7D"
    status, _, answer = raw(devhost, "POST", "/api/send", form, {"Authorization": f"Bearer {key}",
                                                                 "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(answer)["status"] is True


def test_docs_are_served(devhost):
    status, content_type, body = raw(devhost, "GET", "/api/openapi.json")
    assert status == 200 and content_type.startswith("application/json") and "/json/reply/{operation}" in json.loads(body)["paths"]
    status, content_type, body = raw(devhost, "GET", "/api/metadata")
    assert status == 200 and content_type.startswith("text/html") and b"SMSSend" in body
