"""Every authenticated route x every bad credential, and another licensee's key, over fakes."""
import base64
import json
import logging
from datetime import timedelta

import azure.functions as func
import pytest

from sms.domain.model import utcnow
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
