"""An admin key acts for any licensee (issue 29): every route whose work is one licensee's data takes an optional
licenseeId (query string, or a POST or PUT body's field). An admin key gets that licensee's data; a licensee key naming
another licensee is a 403 naming the problem, on every such route (a table over the route table, so a new route cannot
forget it); a licenseeId that is no Guid is a 400 naming it. Over the app's own functions and the fakes."""
import json
import re
from dataclasses import replace

import azure.functions as func
import pytest

from sms.entrypoints.named import NAMED_ROUTES, operation_of
from sms.entrypoints.openapi import document
from sms.entrypoints.operations import OPERATIONS
from sms.entrypoints.routes import ACTING_KINDS, ROUTES
from sms.usecases.auth import new_key
from tests.fakes import LICENSEE, OTHER, SAM

GOOD = json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hello"}}).encode()
VALUES = {"commId": "c" * 32, "endpointId": "c" * 32, "operation": "SMSSend", "format": "json", "keyId": "0123456789abcdef"}
UNKEYED = {"health", "openapi", "metadata", "types", "metadata_page", "receipts_acs", "receipts_twilio", "inbound_twilio", "console"}
# The keyed kinds that do not act for a named licensee, and why: a route added later is in one list or the other.
NOT_ACTING = {
    **dict.fromkeys(("send", "send_now", "batch", "reply", "estimate"), "a send's body names its licensee (SMSModel.LicenseeId)"),
    "providers": "the deployment's, no licensee's",
    **dict.fromkeys(("keys_current", "keys_list", "keys_create", "keys_rotate", "keys_revoke", "licensees_list"),
                    "admin key routes that name their own licensee, or the key itself"),
}
KEYED = [r for r in (*ROUTES, *NAMED_ROUTES) if r.kind not in UNKEYED]
ACTING = [r for r in KEYED if r.kind in ACTING_KINDS]


def call_route(gw, route, key, licensee=None, in_body=False):
    """The route called as documented, with `key`, naming `licensee` in the query string (or the body's licenseeId)."""
    own = operation_of(route)
    values = {name: VALUES[name] for name in re.findall(r"\{(\w+)", (own.routes[0] if own else route).path)}
    method = route.working_methods[0]
    params = {**(values if own else {}), **({"licenseeId": licensee} if licensee and not in_body else {})}
    body = {"licenseeId": licensee} if in_body else {}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return gw.functions[route.name](func.HttpRequest(
        method, f"http://h/{route.path}", headers=headers, params=params, route_params={} if own else values,
        body=json.dumps(body).encode() if method in ("POST", "PUT") else b""))


def status_of(response) -> tuple[int, str | None]:
    body = json.loads(response.get_body()) if response.get_body() else {}
    return response.status_code, body.get("responseStatus", {}).get("errorCode")


def make_admin(gw) -> str:
    store = gw.auth._store
    store.records[gw.key[4:20]] = replace(store.records[gw.key[4:20]], role="admin")
    return gw.key


def test_every_keyed_kind_acts_for_a_named_licensee_or_says_why_not():
    assert {r.kind for r in KEYED} == set(ACTING_KINDS) | set(NOT_ACTING)
    assert not set(ACTING_KINDS) & set(NOT_ACTING)


@pytest.mark.parametrize("route", ACTING, ids=[r.name for r in ACTING])
async def test_a_licensee_key_naming_another_licensee_is_refused_and_changes_nothing(gw, route):
    for in_body in (False, True) if route.working_methods[0] in ("POST", "PUT") else (False,):
        response = await call_route(gw, route, gw.key, OTHER.upper(), in_body)
        assert status_of(response) == (403, "NotYourLicensee"), response.get_body()
        message = json.loads(response.get_body())["responseStatus"]["message"]
        assert OTHER in message and "admin key" in message
    assert gw.world.store.messages == {} and gw.world.webhooks.endpoints == {} and gw.use.licensees._store.settings == {}


@pytest.mark.parametrize("route", ACTING, ids=[r.name for r in ACTING])
async def test_a_licensee_key_may_name_its_own_licensee_in_any_guid_form(gw, route):
    dashed = f"{LICENSEE[:8]}-{LICENSEE[8:12]}-{LICENSEE[12:16]}-{LICENSEE[16:20]}-{LICENSEE[20:]}".upper()
    response = await call_route(gw, route, gw.key, dashed)
    assert status_of(response)[1] != "NotYourLicensee" and response.status_code != 403, response.get_body()


@pytest.mark.parametrize("route", ACTING, ids=[r.name for r in ACTING])
async def test_a_licensee_id_that_is_no_guid_is_a_400_naming_it(gw, route):
    make_admin(gw)
    response = await call_route(gw, route, gw.key, "not-a-licensee")
    assert response.status_code == 400, response.get_body()
    errors = json.loads(response.get_body())["responseStatus"]["errors"]
    assert [e["fieldName"] for e in errors] == ["licenseeId"] and "not-a-licensee" in errors[0]["message"]


async def test_the_routes_that_do_not_act_for_a_licensee_ignore_licensee_id_as_before(gw):
    # A send still goes by SMSModel.LicenseeId: a licenseeId in the query string names nobody.
    send = next(r for r in ROUTES if r.name == "send")
    response = await gw.functions["send"](func.HttpRequest(
        "POST", "http://h/api/send", headers={"Content-Type": "application/json", "Authorization": f"Bearer {gw.key}"},
        params={"licenseeId": OTHER}, body=GOOD))
    assert response.status_code == 200, response.get_body()
    assert send.kind not in ACTING_KINDS
    assert {m.licensee_id for m in gw.world.store.messages.values()} == {LICENSEE}


def call(gw, name, method, key, body=None, params=None, values=None):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    data = json.dumps(body).encode() if body is not None else b""
    return gw.functions[name](func.HttpRequest(method, f"http://h/{name}", headers=headers, params=params or {},
                                               route_params=values or {}, body=data))


def answer(response) -> dict:
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


async def test_an_admin_key_reads_and_changes_another_licensees_data(gw):
    admin = make_admin(gw)
    comm_id = await gw.world.send(SAM, licensee=OTHER)
    mine = await gw.world.send(SAM)
    assert answer(await call(gw, "sms_status", "GET", admin, params={"licenseeId": OTHER}, values={"commId": comm_id}))["commId"] \
        == comm_id
    listed = answer(await call(gw, "sms_list", "GET", admin, params={"licenseeId": OTHER}))
    assert [m["commId"] for m in listed["messages"]] == [comm_id]
    assert [m["commId"] for m in answer(await call(gw, "sms_list", "GET", admin))["messages"]] == [mine]  # its own, unnamed

    settings = answer(await call(gw, "settings_set", "PUT", admin, {"timeZone": "Europe/Paris", "licenseeId": OTHER}))
    assert (settings["licenseeId"], settings["timeZone"]) == (OTHER, "Europe/Paris")
    assert gw.use.licensees._store.settings[OTHER].time_zone == "Europe/Paris" and LICENSEE not in gw.use.licensees._store.settings
    # What GET answers for that licensee can be put back as it is: it names the licensee it is about.
    shown = answer(await call(gw, "settings_show", "GET", admin, params={"licenseeId": OTHER}))
    assert answer(await call(gw, "settings_set", "PUT", admin, shown))["licenseeId"] == OTHER

    endpoint = answer(await call(gw, "webhooks_add", "POST", admin, {"url": "https://hooks.example.org/", "licenseeId": OTHER}))
    assert [e["endpointId"] for e in answer(await call(gw, "webhooks_list", "GET", admin, params={"licenseeId": OTHER}))["endpoints"]] \
        == [endpoint["endpointId"]]
    assert answer(await call(gw, "webhooks_list", "GET", admin))["endpoints"] == []


async def test_an_admin_key_may_loosen_a_licensees_guard_and_a_licensee_key_still_may_not(gw):
    theirs, record = new_key(OTHER)
    await gw.auth._store.add(record)
    admin = make_admin(gw)
    answer(await call(gw, "guard_set", "PUT", theirs, {"caps": {"dailySegments": 1000}}))
    refused = await call(gw, "guard_set", "PUT", theirs, {"caps": {"dailySegments": 2000}})
    assert refused.status_code == 403 and "Caps.DailySegments: 1000 -> 2000" in refused.get_body().decode()
    loosened = answer(await call(gw, "guard_set", "PUT", admin, {"caps": {"dailySegments": 2000}, "licenseeId": OTHER}))
    assert loosened["caps"]["dailySegments"] == 2000
    assert answer(await call(gw, "guard_show", "GET", theirs))["caps"]["dailySegments"] == 2000
    # Back to the default, looser than its own: the admin key may; the licensee's key could not have.
    answer(await call(gw, "guard_set", "PUT", theirs, {"caps": {"dailySegments": 100}}))
    assert (await call(gw, "guard_clear", "DELETE", theirs)).status_code == 403
    assert answer(await call(gw, "guard_clear", "DELETE", admin, params={"licenseeId": OTHER}))["source"] == "default"


async def test_a_query_and_a_body_naming_different_licensees_is_a_400_never_one_of_them_silently(gw):
    """Review (issue 29): the query's licenseeId wins and the body's is dropped, so an admin putting back what GET answered
    for one licensee (its body names it) under another's ?licenseeId= changes the other one, no word said."""
    admin = make_admin(gw)
    shown = answer(await call(gw, "settings_show", "GET", admin, params={"licenseeId": OTHER}))
    response = await call(gw, "settings_set", "PUT", admin, {**shown, "timeZone": "Asia/Tokyo"}, params={"licenseeId": LICENSEE})
    assert response.status_code == 400, response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["errors"][0]["fieldName"].lower() == "licenseeid"
    assert LICENSEE not in gw.use.licensees._store.settings and OTHER not in gw.use.licensees._store.settings


async def test_the_servicestack_named_routes_pass_licensee_id_through(gw):
    admin = make_admin(gw)
    answer(await call(gw, "op_set_licensee_settings", "PUT", admin, {"timeZone": "Asia/Tokyo", "licenseeId": OTHER}))
    shown = answer(await call(gw, "op_get_licensee_settings", "GET", admin, params={"licenseeId": OTHER}))
    assert (shown["licenseeId"], shown["timeZone"]) == (OTHER, "Asia/Tokyo")


async def test_the_request_rate_is_charged_to_the_keys_own_licensee(gw):
    admin = make_admin(gw)
    asked = []
    gw.requests.retry_after = lambda licensee: asked.append(licensee)
    answer(await call(gw, "settings_show", "GET", admin, params={"licenseeId": OTHER}))
    assert asked == [LICENSEE]


def test_each_acting_operation_has_licensee_id_in_its_request_and_openapi_lists_it_on_each_route():
    for op in OPERATIONS:
        if set(op.kinds) & ACTING_KINDS:
            field = op.request.model_fields.get("licensee_id")
            assert field is not None and "admin keys only" in field.description.lower(), op.name
    paths = document()["paths"]
    for route in ROUTES:
        if route.kind in ACTING_KINDS and not route.has_format_suffix:
            operation = paths["/" + route.path][route.working_methods[0].lower()]
            named = [p for p in operation["parameters"] if p["name"] == "licenseeId"]
            assert len(named) == 1 and named[0]["in"] == "query" and named[0]["schema"]["format"] == "uuid", route.name
            assert "NotYourLicensee" in operation["responses"]["403"]["description"], route.name
