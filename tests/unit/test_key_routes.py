"""API keys over HTTP (issue 29): the key a request carries, and every licensee's keys with an admin key, over fakes."""
import json
import logging
from dataclasses import replace

import azure.functions as func
import pytest

from sms.domain.model import utcnow
from tests.fakes import LICENSEE, OTHER


def call(gw, name, method, key, body=None, params=None, values=None):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    data = json.dumps(body).encode() if body is not None else b""
    return gw.functions[name](func.HttpRequest(method, f"http://h/{name}", headers=headers, params=params or {},
                                               route_params=values or {}, body=data))


def answer(response, status=200) -> dict:
    assert response.status_code == status, response.get_body()
    return json.loads(response.get_body())


@pytest.fixture
def admin(gw) -> str:
    """The fixture's key, made an admin's."""
    store = gw.auth._store
    store.records[gw.key[4:20]] = replace(store.records[gw.key[4:20]], role="admin")
    return gw.key


async def test_any_key_reads_what_it_is_and_never_its_secret(gw):
    state = answer(await call(gw, "keys_current", "GET", gw.key))
    assert state["keyId"] == gw.key[4:20] and state["licenseeId"] == LICENSEE
    assert (state["role"], state["readOnly"], state["active"]) == ("licensee", False, True)
    assert "key" not in state and gw.key.split(".")[1] not in json.dumps(state)


async def test_an_admin_creates_lists_rotates_and_revokes_another_licensees_key(gw, admin):
    created = answer(await call(gw, "keys_create", "POST", admin,
                                {"licenseeId": OTHER.upper(), "name": "desk", "readOnly": True, "expiresInDays": 30}))
    key = created.pop("key")
    assert key.startswith(f"sms_{created['keyId']}.")
    assert (created["licenseeId"], created["name"], created["role"], created["readOnly"]) == (OTHER, "desk", "licensee", True)
    principal = await gw.auth.principal_for(key)
    assert (principal.licensee_id, principal.read_only) == (OTHER, True)

    listed = answer(await call(gw, "keys_list", "GET", admin, params={"licenseeId": OTHER}))
    assert [k["keyId"] for k in listed["keys"]] == [created["keyId"]] and "key" not in listed["keys"][0]
    assert key.split(".")[1] not in json.dumps(listed)
    every = answer(await call(gw, "keys_list", "GET", admin))
    assert {k["licenseeId"] for k in every["keys"]} == {LICENSEE, OTHER}

    rotation = answer(await call(gw, "keys_rotate", "POST", admin, {"graceHours": 2}, values={"keyId": created["keyId"].upper()}))
    new = rotation["newKey"]
    assert rotation["replacedKeyId"] == created["keyId"] and new["key"].startswith(f"sms_{new['keyId']}.")
    assert (new["licenseeId"], new["name"], new["role"], new["readOnly"]) == (OTHER, "desk", "licensee", True)
    assert await gw.auth.licensee_for(key) == OTHER  # the grace period: both work

    revoked = answer(await call(gw, "keys_revoke", "DELETE", admin, values={"keyId": created["keyId"]}))
    assert revoked["revokedAt"] and revoked["active"] is False and "key" not in revoked
    refused = await call(gw, "keys_current", "GET", key)  # at once in this worker, its cached record forgotten
    assert refused.status_code == 401 and "revoked" in refused.get_body().decode()


async def test_admin_key_routes_are_served_at_their_servicestack_names_too(gw, admin):
    created = answer(await call(gw, "op_create_api_key", "POST", admin, {"licenseeId": OTHER, "role": "admin"}))
    assert created["role"] == "admin" and created["key"]
    revoked = answer(await call(gw, "op_revoke_api_key", "DELETE", admin, params={"keyId": created["keyId"]}))
    assert revoked["revokedAt"]
    assert answer(await call(gw, "op_get_current_api_key", "GET", admin))["role"] == "admin"


@pytest.mark.parametrize("body, field", [
    ({}, "LicenseeId"), ({"licenseeId": "not-a-guid"}, "LicenseeId"), ({"licenseeId": OTHER, "role": "owner"}, "Role"),
    ({"licenseeId": OTHER, "readOnly": "yes"}, "ReadOnly"), ({"licenseeId": OTHER, "expiresInDays": 0}, "ExpiresInDays"),
    ({"licenseeId": OTHER, "expiresInDays": 10 ** 9}, "ExpiresInDays"), ({"licenseeId": OTHER, "expiresInDays": "30"}, "ExpiresInDays"),
    ({"licenseeId": OTHER, "name": ""}, "Name"), ({"licenseeId": OTHER, "name": "x" * 101}, "Name"),
])
async def test_a_key_request_that_breaks_a_rule_is_a_400_naming_its_field_and_creates_nothing(gw, admin, body, field):
    refused = answer(await call(gw, "keys_create", "POST", admin, body), 400)
    assert refused["responseStatus"]["errors"][0]["fieldName"] == field, refused
    assert len(gw.auth._store.records) == 1


@pytest.mark.parametrize("grace", [-1, 24 * 366 + 1, "2", 1.5])
async def test_a_grace_period_out_of_range_is_a_400_and_rotates_nothing(gw, admin, grace):
    refused = answer(await call(gw, "keys_rotate", "POST", admin, {"graceHours": grace}, values={"keyId": gw.key[4:20]}), 400)
    assert refused["responseStatus"]["errors"][0]["fieldName"] == "GraceHours"
    assert len(gw.auth._store.records) == 1


async def test_unknown_keys_are_404_and_a_limit_is_409(gw, admin):
    for name, method in (("keys_rotate", "POST"), ("keys_revoke", "DELETE")):
        missing = answer(await call(gw, name, method, admin, values={"keyId": "0" * 16}), 404)
        assert "0" * 16 in missing["responseStatus"]["message"]
    for _ in range(2):
        answer(await call(gw, "keys_create", "POST", admin, {"licenseeId": OTHER}))
    full = answer(await call(gw, "keys_create", "POST", admin, {"licenseeId": OTHER}), 409)
    assert full["responseStatus"]["errorCode"] == "LimitExceeded" and "already has 2 active keys" in full["responseStatus"]["message"]


async def test_a_rotated_key_that_no_longer_works_is_404(gw, admin):
    created = answer(await call(gw, "keys_create", "POST", admin, {"licenseeId": OTHER}))
    await gw.auth._store.revoke(created["keyId"], utcnow())
    answer(await call(gw, "keys_rotate", "POST", admin, values={"keyId": created["keyId"]}), 404)


async def test_no_key_or_secret_made_or_shown_over_http_reaches_the_logs(gw, admin, caplog):
    caplog.set_level(logging.DEBUG)
    created = answer(await call(gw, "keys_create", "POST", admin, {"licenseeId": OTHER, "name": "desk"}))
    rotated = answer(await call(gw, "keys_rotate", "POST", admin, {"graceHours": 0}, values={"keyId": created["keyId"]}))
    await call(gw, "keys_current", "GET", rotated["newKey"]["key"])
    await call(gw, "keys_create", "POST", rotated["newKey"]["key"], {"licenseeId": OTHER})  # 403: not an admin's
    await call(gw, "keys_list", "GET", admin[:-3] + "AAA")  # 401: a wrong secret
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for key in (admin, created["key"], rotated["newKey"]["key"]):
        assert key.split(".")[1] not in logged and key not in logged
