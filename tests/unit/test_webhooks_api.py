"""/api/webhooks over the app's own functions and the fakes: managing a licensee's endpoints with its
key, in JSON and JSV, ServiceStack's error shape, another licensee's endpoint as missing as a missing
one, and the secret in the answers to add and rotate-secret only (never a list, never a log)."""
import json
import logging

import azure.functions as func
import pytest

from sms.domain.events import EVENT_TYPES
from sms.usecases.auth import new_key
from sms.wire import jsv
from tests.fakes import OTHER

URL = "https://hooks.example.org/sms"


def call(gw, function: str, body: bytes = b"", endpoint_id: str | None = None, key: str | None = None, params=None,
         content_type: str = "application/json", accept: str | None = None, method: str | None = None):
    method = method or {"webhooks_list": "GET", "webhooks_remove": "DELETE"}.get(function, "POST")
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type, **({"Accept": accept} if accept else {})}
    route_params = {"endpointId": endpoint_id} if endpoint_id is not None else {}
    return gw.functions[function](func.HttpRequest(method, "http://localhost/api/webhooks", headers=headers, params=params or {},
                                                   route_params=route_params, body=body))


async def add(gw, url=URL, event_types=None, key=None):
    body = {"url": url, **({"eventTypes": event_types} if event_types is not None else {})}
    response = await call(gw, "webhooks_add", json.dumps(body).encode(), key=key)
    return response, json.loads(response.get_body())


def errors(response) -> list[str]:
    return [e["fieldName"] for e in json.loads(response.get_body())["responseStatus"].get("errors", [])]


async def other_key(gw) -> str:
    key, record = new_key(OTHER)
    await gw.auth._store.add(record)
    return key


async def test_an_endpoint_is_added_with_its_secret_once_and_listed_without_it(gw):
    response, added = await add(gw, event_types=["message.failed", "reply.received"])
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert added["url"] == URL and added["eventTypes"] == ["message.failed", "reply.received"] and added["enabled"] is True
    assert added["secret"].startswith("whsec_") and len(added["endpointId"]) == 32 and "createdAt" in added
    listed = await call(gw, "webhooks_list")
    page = json.loads(listed.get_body())
    assert page["eventTypes"] == list(EVENT_TYPES)
    assert page["endpoints"] == [{k: v for k, v in added.items() if k != "secret"}]
    assert added["secret"] not in listed.get_body().decode()


async def test_the_answers_come_in_jsv_with_the_dtos_net_names(gw):
    body = b"{Url:https://hooks.example.org/jsv,EventTypes:[message.sent]}"
    response = await call(gw, "webhooks_add", body, content_type="text/jsv", params={"format": "jsv"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/jsv")
    added = jsv.loads(response.get_body().decode())
    assert added["Url"] == "https://hooks.example.org/jsv" and added["EventTypes"] == ["message.sent"]
    assert added["Secret"].startswith("whsec_") and added["Enabled"] == "True"
    listed = jsv.loads((await call(gw, "webhooks_list", accept="text/jsv")).get_body().decode())
    assert [e["EndpointId"] for e in listed["Endpoints"]] == [added["EndpointId"]] and "Secret" not in listed["Endpoints"][0]


@pytest.mark.parametrize("body, field", [
    ({"url": "http://hooks.example.org/"}, "Url"),
    ({"url": "https://127.0.0.1/"}, "Url"),
    ({"url": "https://u:p@hooks.example.org/"}, "Url"),
    ({}, "Url"),
    ({"url": 7}, "Url"),
    ({"url": URL, "eventTypes": ["message.sent", "message.lost"]}, "EventTypes[1]"),
    ({"url": URL, "eventTypes": "message.sent"}, "EventTypes"),
])
async def test_a_wrong_field_is_a_400_naming_it_and_nothing_is_saved(gw, body, field):
    response = await call(gw, "webhooks_add", json.dumps(body).encode())
    assert response.status_code == 400, response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["errorCode"] == "ValidationException"
    assert errors(response) == [field]
    assert gw.world.webhooks.endpoints == {}


@pytest.mark.parametrize("url", ["https://１２７.０.０.１/", "https://127。0。0。1/", "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "https://%31%32%37.0.0.1/",
                                 "https://LocalHost./", "https://[::ffff:127.0.0.1]/", "https://0177.0.0.1/", "https://%ff/"])
async def test_a_spelling_of_loopback_or_a_host_that_is_no_host_is_a_400_naming_url(gw, url):
    response = await call(gw, "webhooks_add", json.dumps({"url": url}).encode())
    assert response.status_code == 400, response.get_body()
    assert errors(response) == ["Url"] and gw.world.webhooks.endpoints == {}


async def test_an_international_domain_name_is_accepted_and_saved_as_its_ascii_form(gw):
    response, added = await add(gw, "https://bücher.example/hook")
    assert response.status_code == 200 and added["url"] == "https://xn--bcher-kva.example/hook"


async def test_an_empty_or_unreadable_body_is_a_400(gw):
    for body in (b"", b"{not json", b"[1,2]"):
        assert (await call(gw, "webhooks_add", body)).status_code == 400


async def test_a_sixth_endpoint_is_a_409_saying_why(gw):
    for i in range(5):
        assert (await add(gw, f"{URL}?n={i}"))[0].status_code == 200
    response, body = await add(gw)
    assert response.status_code == 409
    assert body["responseStatus"]["errorCode"] == "LimitExceeded" and "remove one first" in body["responseStatus"]["message"]


async def test_rotate_secret_answers_the_new_secret_once_and_when_the_old_one_stops(gw):
    _, added = await add(gw)
    response = await call(gw, "webhooks_rotate_secret", endpoint_id=added["endpointId"].upper())
    rotated = json.loads(response.get_body())
    assert response.status_code == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != added["secret"]
    assert rotated["previousSecretExpiresAt"] > rotated["createdAt"]
    listed = (await call(gw, "webhooks_list")).get_body().decode()
    assert rotated["secret"] not in listed and added["secret"] not in listed
    assert json.loads(listed)["endpoints"][0]["previousSecretExpiresAt"] == rotated["previousSecretExpiresAt"]


async def test_enable_clears_a_disabled_endpoint(gw):
    from dataclasses import replace

    from sms.domain.model import utcnow

    _, added = await add(gw)
    [stored] = gw.world.webhooks.endpoints.values()
    await gw.world.webhooks.replace(replace(stored, disabled_at=utcnow(), disabled_reason="410 Gone"))
    disabled = json.loads((await call(gw, "webhooks_list")).get_body())["endpoints"][0]
    assert disabled["enabled"] is False and disabled["disabledReason"] == "410 Gone" and "disabledAt" in disabled
    response = await call(gw, "webhooks_enable", endpoint_id=added["endpointId"])
    enabled = json.loads(response.get_body())
    assert response.status_code == 200 and enabled["enabled"] is True and "disabledReason" not in enabled and "secret" not in enabled


async def test_delete_removes_the_endpoint(gw):
    _, added = await add(gw)
    response = await call(gw, "webhooks_remove", endpoint_id=added["endpointId"])
    assert response.status_code == 200 and json.loads(response.get_body()) == {"endpointId": added["endpointId"], "removed": True}
    assert json.loads((await call(gw, "webhooks_list")).get_body())["endpoints"] == []
    again = await call(gw, "webhooks_remove", endpoint_id=added["endpointId"])
    assert again.status_code == 404 and json.loads(again.get_body())["responseStatus"]["errorCode"] == "NotFound"


async def test_another_licensees_endpoint_answers_exactly_as_a_missing_one(gw):
    _, mine = await add(gw)
    theirs_key = await other_key(gw)
    assert json.loads((await call(gw, "webhooks_list", key=theirs_key)).get_body())["endpoints"] == []
    for function in ("webhooks_remove", "webhooks_rotate_secret", "webhooks_enable"):
        theirs = await call(gw, function, endpoint_id=mine["endpointId"], key=theirs_key)
        missing = await call(gw, function, endpoint_id="d" * 32, key=theirs_key)
        assert theirs.status_code == missing.status_code == 404
        assert json.loads(theirs.get_body())["responseStatus"]["message"].replace(mine["endpointId"], "X") == \
            json.loads(missing.get_body())["responseStatus"]["message"].replace("d" * 32, "X")
    [stored] = gw.world.webhooks.endpoints.values()
    assert stored.secret.value == mine["secret"] and stored.previous_secret is None  # untouched


async def test_a_wrong_method_is_405_and_a_gateway_without_the_store_is_a_500_without_detail(gw, monkeypatch):
    wrong = await call(gw, "webhooks_enable", endpoint_id="d" * 32, method="GET")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    from dataclasses import replace

    gw.use = replace(gw.use, webhooks=None)
    broken = await call(gw, "webhooks_list")
    assert broken.status_code == 500
    assert json.loads(broken.get_body())["responseStatus"]["message"] == "An unexpected error occurred"


async def test_no_secret_reaches_the_logs(gw, caplog):
    caplog.set_level(logging.DEBUG)
    _, added = await add(gw)
    rotated = json.loads((await call(gw, "webhooks_rotate_secret", endpoint_id=added["endpointId"])).get_body())
    await call(gw, "webhooks_list")
    await call(gw, "webhooks_enable", endpoint_id=added["endpointId"])
    await call(gw, "webhooks_remove", endpoint_id=added["endpointId"])
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert added["endpointId"] in logged
    for secret in (added["secret"], rotated["secret"]):
        assert secret not in logged and secret.removeprefix("whsec_") not in logged
