"""Every authenticated route x every bad credential, and another licensee's key, over fakes; every route with a
read-only key, and a licensee key on the admin routes (issue 29)."""
import base64
import json
import logging
import re
from datetime import timedelta

import azure.functions as func
import pytest

from sms.domain.model import utcnow
from sms.entrypoints.named import NAMED_ROUTES, operation_of
from sms.entrypoints.routes import ADMIN_KINDS, READ_KINDS
from sms.entrypoints.routes import ROUTES as EVERY_TABLE_ROUTE
from sms.usecases.auth import new_key
from tests.fakes import LICENSEE, OTHER, SAM

GOOD = json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hello"}}).encode()
COMM_ID = "c" * 32

# name, method, route params, body
ROUTES = [
    ("send", "POST", {}, GOOD), ("send_with_format", "POST", {"format": "json"}, GOOD),
    ("send_immediate", "POST", {}, GOOD), ("sms_send_servicestack", "POST", {}, GOOD),
    ("json_reply", "POST", {"operation": "SMSSend"}, GOOD), ("jsv_reply", "POST", {"operation": "SMSSend"}, GOOD),
    ("sms_send_servicestack_batch", "POST", {}, b"[" + GOOD + b"]"),
    ("sms_status", "GET", {"commId": COMM_ID}, b""), ("sms_replies", "GET", {"commId": COMM_ID}, b""),
    ("sms_cancel", "DELETE", {"commId": COMM_ID}, b""),
    ("webhooks_list", "GET", {}, b""), ("webhooks_add", "POST", {}, b'{"url": "https://hooks.example.org/"}'),
    ("webhooks_remove", "DELETE", {"endpointId": COMM_ID}, b""), ("webhooks_rotate_secret", "POST", {"endpointId": COMM_ID}, b""),
    ("webhooks_enable", "POST", {"endpointId": COMM_ID}, b""),
    ("webhooks_deliveries", "GET", {"endpointId": COMM_ID}, b""),
    ("webhooks_replay", "POST", {"endpointId": COMM_ID}, b'{"from": "2026-11-20", "to": "2026-11-21"}'),
    ("routes_show", "GET", {}, b""), ("routes_clear", "DELETE", {}, b""),
    ("routes_set", "PUT", {}, b'{"rules": [{"match": "*", "providers": ["recording"]}]}'),
    ("settings_show", "GET", {}, b""), ("settings_set", "PUT", {}, b'{"quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"}'),
    # Issue 29
    ("licensees_list", "GET", {}, b""), ("sms_events", "GET", {"commId": COMM_ID}, b""),
]


async def credentials(gw):
    revoked_key, revoked = new_key(LICENSEE)
    expired_key, expired = new_key(LICENSEE, expires_at=utcnow() - timedelta(minutes=1))
    store = gw.auth._store
    await store.add(revoked)
    await store.add(expired)
    await store.revoke(revoked.key_id, utcnow())
    gw.auth._ttl = 0
    return {
        "missing": None,
        "malformed": "Token abc",
        "not a key": "Bearer not-a-gateway-key",
        "unknown": "Bearer sms_0123456789abcdef." + "A" * 43,
        "wrong secret": f"Bearer {gw.key[:-3]}AAA",
        "revoked": f"Bearer {revoked_key}",
        "expired": f"Bearer {expired_key}",
        "basic, wrong": "Basic " + base64.b64encode(b"sms_0123456789abcdef.x:").decode(),
    }


def call(gw, name, method, params, body, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    return gw.functions[name](func.HttpRequest(method, f"http://h/{name}", headers=headers, route_params=params, body=body))


@pytest.mark.parametrize("name, method, params, body", ROUTES, ids=[r[0] for r in ROUTES])
async def test_every_bad_credential_is_401_on_every_route_and_changes_nothing(gw, name, method, params, body):
    for label, authorization in (await credentials(gw)).items():
        response = await call(gw, name, method, params, body, authorization)
        assert response.status_code == 401, f"{name} with {label} key: {response.status_code}"
        body = response.get_body().decode()  # JSON, or JSV on the /jsv/reply route
        assert "errorCode\":\"Unauthorized" in body or "ErrorCode:Unauthorized" in body
    assert gw.world.store.messages == {} and gw.world.provider.sent == [] and gw.world.webhooks.endpoints == {}
    assert gw.world.deliveries.put_deliveries == []
    assert gw.use.licensees._store.settings == {}  # no routing table or quiet hours set or cleared


async def test_another_licensee_can_neither_send_as_nor_read_a_licensee(gw):
    other_key, record = new_key(OTHER)
    await gw.auth._store.add(record)
    as_other = {"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "x", "LicenseeId": LICENSEE}}
    sent = await call(gw, "send", "POST", {}, json.dumps(as_other).encode(), f"Bearer {other_key}")
    assert sent.status_code == 403

    comm_id = await gw.world.send(SAM, replies=True)
    for name, method in (("sms_status", "GET"), ("sms_replies", "GET"), ("sms_cancel", "DELETE")):
        theirs = await call(gw, name, method, {"commId": comm_id}, b"", f"Bearer {other_key}")
        missing = await call(gw, name, method, {"commId": "d" * 32}, b"", f"Bearer {other_key}")
        # Exactly the answer for a message that does not exist: nothing is learned about it.
        assert theirs.status_code == missing.status_code == 404
        assert json.loads(theirs.get_body())["responseStatus"]["message"].replace(comm_id, "X") == \
            json.loads(missing.get_body())["responseStatus"]["message"].replace("d" * 32, "X")


async def test_no_key_secret_or_full_phone_number_reaches_the_logs(gw, caplog):
    caplog.set_level(logging.DEBUG)
    secret = gw.key.split(".", 1)[1]
    await call(gw, "send_immediate", "POST", {}, GOOD, f"Bearer {gw.key}")
    await call(gw, "send", "POST", {}, GOOD, f"Bearer {gw.key[:-3]}AAA")
    await gw.world.inbound.receive(gw.world.text_from(SAM, "STOP"))
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "the flow above logs something"
    assert secret not in logged and SAM not in logged
    assert SAM[:4] + "*" in logged  # numbers appear masked


# -- what a key may do: read-only keys and the admin routes (issue 29) --

# The route kinds that take no key (their own checks, or none): every other route is checked below.
UNKEYED = {"health", "openapi", "metadata", "types", "metadata_page", "receipts_acs", "receipts_twilio", "inbound_twilio", "console"}
# Every route that takes a key, and ServiceStack's /api/{Operation} of every operation.
KEYED = [r for r in (*EVERY_TABLE_ROUTE, *NAMED_ROUTES) if r.kind not in UNKEYED]
VALUES = {"commId": COMM_ID, "endpointId": COMM_ID, "operation": "SMSSend", "format": "json", "keyId": "0123456789abcdef"}


async def call_route(gw, route, key):
    """The route called as its documentation says, with `key`: its path values in the path (or, for /api/{Operation},
    in the query string), a send's body."""
    own = operation_of(route)
    values = {name: VALUES[name] for name in re.findall(r"\{(\w+)", (own.routes[0] if own else route).path)}
    method = route.working_methods[0]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return await gw.functions[route.name](func.HttpRequest(
        method, f"http://h/{route.path}", headers=headers, params=values if own else {}, route_params={} if own else values,
        body=GOOD if method in ("POST", "PUT") else b""))


def error_code(response) -> str | None:
    text = response.get_body().decode()  # JSON, or JSV on the /jsv/reply route
    match = re.search(r'errorCode"?:"?(\w+)', text, re.IGNORECASE)
    return match.group(1) if match else None


async def add_key(gw, **kind) -> str:
    key, record = new_key(LICENSEE, **kind)
    await gw.auth._store.add(record)
    return key


@pytest.mark.parametrize("route", KEYED, ids=[r.name for r in KEYED])
async def test_a_read_only_key_may_read_and_is_refused_everything_that_changes_something(gw, route):
    # An admin key, so that the admin routes' own refusal does not hide this one.
    key = await add_key(gw, role="admin", read_only=True)
    response = await call_route(gw, route, key)
    if route.kind in READ_KINDS:
        assert error_code(response) != "ReadOnlyKey" and response.status_code != 403, response.get_body()
    else:
        assert response.status_code == 403 and error_code(response) == "ReadOnlyKey", response.get_body()
        message = json.loads(response.get_body())["responseStatus"]["message"] if route.format is None else response.get_body().decode()
        assert f"{route.working_methods[0]} /{route.path}" in message and "read-only" in message
    assert gw.world.store.messages == {} and gw.world.provider.sent == [] and gw.world.webhooks.endpoints == {}
    assert gw.use.licensees._store.settings == {}
    assert {r.key_id for r in gw.auth._store.records.values() if r.revoked_at is None} == {gw.key[4:20], key[4:20]}


@pytest.mark.parametrize("route", KEYED, ids=[r.name for r in KEYED])
async def test_a_licensee_key_is_refused_the_admin_routes_only(gw, route):
    response = await call_route(gw, route, gw.key)
    if route.kind in ADMIN_KINDS:
        assert response.status_code == 403 and error_code(response) == "AdminOnly", response.get_body()
    else:
        assert error_code(response) != "AdminOnly"
    assert len(gw.auth._store.records) == 1 and gw.auth._store.records[gw.key[4:20]].revoked_at is None


def test_the_read_kinds_are_route_kinds_and_change_nothing_by_their_methods():
    kinds = {r.kind for r in EVERY_TABLE_ROUTE}
    assert READ_KINDS <= kinds and ADMIN_KINDS <= kinds
    for route in EVERY_TABLE_ROUTE:
        if route.kind in READ_KINDS:  # a read is a GET, or the estimate (a POST of a send's body that stores nothing)
            assert route.working_methods == ("GET",) or route.kind == "estimate", route.name


def test_openapi_documents_each_routes_refusal_of_a_read_only_or_licensee_key():
    from sms.entrypoints.openapi import document

    paths = document()["paths"]
    for route in EVERY_TABLE_ROUTE:
        operation = paths.get("/" + route.path, {}).get(route.working_methods[0].lower())
        if operation is None or route.kind in UNKEYED:
            continue
        forbidden = operation["responses"].get("403", {}).get("description", "")
        assert ("ReadOnlyKey" in forbidden) == (route.kind not in READ_KINDS), route.name
        assert ("AdminOnly" in forbidden) == (route.kind in ADMIN_KINDS), route.name
