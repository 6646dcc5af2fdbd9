"""/api/optouts over the app's own functions and the fakes (issue 29): a licensee lists and searches its opt-outs,
reads a number's history, and adds or removes its own with a reason, recorded with its key's id; a STOP the number
sent to a sender number is shown, never lifted; bad numbers and reasons are 400s naming the field; a read-only key
may read but not change; one licensee never sees another's."""
import json

import azure.functions as func
import pytest

from sms.usecases.auth import new_key
from tests.fakes import LICENSEE, OTHER, SAM

FUNCTIONS = {("GET", ""): "optouts_list", ("GET", "/history"): "optouts_history", ("POST", ""): "optouts_add",
             ("DELETE", ""): "optouts_remove"}


def call(gw, method: str, path: str = "", params=None, body=None, key: str | None = None, content_type="application/json"):
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return gw.functions[FUNCTIONS[method, path]](func.HttpRequest(method, f"http://localhost/api/optouts{path}", headers=headers,
                                                                  params=params or {}, body=raw))


async def ok(gw, *args, **kwargs) -> dict:
    response = await call(gw, *args, **kwargs)
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


async def refused(gw, status: int, *args, **kwargs) -> dict:
    response = await call(gw, *args, **kwargs)
    assert response.status_code == status, response.get_body()
    return json.loads(response.get_body())["responseStatus"]


async def key_of(gw, licensee: str, read_only: bool = False) -> str:
    key, record = new_key(licensee, read_only=read_only)
    await gw.auth._store.add(record)
    return key


def key_id(key: str) -> str:
    return key[4:20]


async def test_a_manual_add_is_listed_with_its_reason_and_key_and_blocks(gw):
    added = await ok(gw, "POST", body={"phoneNumber": "0412 000 001", "reason": "asked by phone"})
    assert {k: added[k] for k in ("phoneNumber", "optedOut", "source", "reason", "byKeyId")} == {
        "phoneNumber": "+61412000001", "optedOut": True, "source": "manual", "reason": "asked by phone", "byKeyId": key_id(gw.key)}
    assert added["blockedElsewhere"] == []
    listed = await ok(gw, "GET", params={"phoneNumber": "+614120"})
    assert [o["phoneNumber"] for o in listed["optOuts"]] == ["+61412000001"] and "continuationToken" not in listed
    assert await gw.use.opt_outs.blocked(LICENSEE, None, ["+61412000001"]) == {"+61412000001"}
    assert (await ok(gw, "GET", params={"phoneNumber": "+6149"}))["optOuts"] == []


async def test_a_removal_lifts_the_licensees_own_and_shows_a_stop_to_a_sender_number(gw):
    world = gw.world
    await world.send(SAM, replies=True)
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    removed = await ok(gw, "DELETE", params={"PhoneNumber": SAM, "reason": "consent on file"})
    assert (removed["optedOut"], removed["reason"], removed["byKeyId"]) == (False, "consent on file", key_id(gw.key))
    assert [(b["scope"], b["sender"], b["optedOut"]) for b in removed["blockedElsewhere"]] == [("sender", "+61400000000", True)]
    again = await refused(gw, 409, "DELETE", params={"phoneNumber": SAM, "reason": "again"})
    assert "never lifts" in again["message"] and "+61400000000" in again["message"]
    history = await ok(gw, "GET", "/history", params={"phoneNumber": SAM})
    assert history["phoneNumber"] == SAM
    assert [(c["scope"], c["source"], c["optedOut"]) for c in history["changes"]] == [
        ("licensee", "manual", False), ("licensee", "stop", True), ("sender", "stop", True)]
    assert (await refused(gw, 404, "DELETE", params={"phoneNumber": "+61412000009", "reason": "x"}))["errorCode"] == "NotFound"


async def test_a_removal_a_stop_overtook_is_a_409_saying_to_read_it_again(gw):
    world = gw.world
    await world.send(SAM, replies=True)
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    record = world.opt_out_index.record

    async def record_then_stop_arrives(change):
        await record(change)
        if change.source == "manual":
            await world.inbound.receive(world.text_from(SAM, "STOP"))

    world.opt_out_index.record = record_then_stop_arrives
    lost = await refused(gw, 409, "DELETE", params={"phoneNumber": SAM, "reason": "consent on file"})
    assert lost["errorCode"] == "Conflict" and "changed meanwhile" in lost["message"] and "read it again" in lost["message"]
    assert [o["optedOut"] for o in (await ok(gw, "GET", params={"phoneNumber": SAM}))["optOuts"]] == [True]


@pytest.mark.parametrize(("method", "path", "params", "body", "field"), [
    ("GET", "", {"phoneNumber": "not a number"}, None, "phoneNumber"),
    ("GET", "", {"take": "201"}, None, "take"),
    ("GET", "", {"take": "x"}, None, "take"),
    ("GET", "/history", {}, None, "phoneNumber"),
    ("GET", "/history", {"phoneNumber": "+1"}, None, "phoneNumber"),
    ("POST", "", None, {"phoneNumber": "+61412000001"}, "reason"),
    ("POST", "", None, {"phoneNumber": "+61412000001", "reason": "x" * 501}, "reason"),
    ("POST", "", None, {"phoneNumber": "+61412000001", "reason": "two\nlines"}, "reason"),
    ("POST", "", None, {"phoneNumber": "12", "reason": "r"}, "phoneNumber"),
    ("POST", "", None, {"reason": "r"}, "phoneNumber"),
    ("DELETE", "", {"phoneNumber": "+61412000001"}, None, "reason"),
    ("DELETE", "", {"reason": "r"}, None, "phoneNumber"),
])
async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(gw, method, path, params, body, field):
    status = await refused(gw, 400, method, path, params=params, body=body)
    assert [e["fieldName"] for e in status["errors"]] == [field]
    assert gw.world.opt_out_store.rows == {}


async def test_a_read_only_key_reads_but_does_not_change(gw):
    reader = await key_of(gw, LICENSEE, read_only=True)
    await ok(gw, "GET", key=reader)
    await ok(gw, "GET", "/history", params={"phoneNumber": SAM}, key=reader)
    assert (await refused(gw, 403, "POST", body={"phoneNumber": SAM, "reason": "r"}, key=reader))["errorCode"] == "ReadOnlyKey"
    assert (await refused(gw, 403, "DELETE", params={"phoneNumber": SAM, "reason": "r"}, key=reader))["errorCode"] == "ReadOnlyKey"
    assert gw.world.opt_out_store.rows == {}


async def test_one_licensee_never_sees_or_lifts_anothers(gw):
    other = await key_of(gw, OTHER)
    await ok(gw, "POST", body={"phoneNumber": SAM, "reason": "ours"})
    assert (await ok(gw, "GET", key=other))["optOuts"] == []
    assert (await ok(gw, "GET", "/history", params={"phoneNumber": SAM}, key=other))["changes"] == []
    await refused(gw, 404, "DELETE", params={"phoneNumber": SAM, "reason": "theirs"}, key=other)
    assert await gw.use.opt_outs.blocked(LICENSEE, None, [SAM]) == {SAM}


async def test_the_list_pages_with_its_token(gw):
    for i in range(3):
        await ok(gw, "POST", body={"phoneNumber": f"+6141200000{i}", "reason": "r"})
    first = await ok(gw, "GET", params={"take": "2"})
    rest = await ok(gw, "GET", params={"take": "2", "continuationToken": first["continuationToken"]})
    assert [o["phoneNumber"] for o in first["optOuts"] + rest["optOuts"]] == [f"+6141200000{i}" for i in range(3)]
    assert "continuationToken" not in rest


async def test_a_licensee_id_names_the_keys_own_or_is_refused_never_ignored(gw):
    await ok(gw, "GET", params={"licenseeId": LICENSEE})
    assert (await refused(gw, 400, "GET", params={"licenseeId": "x"}))["errors"][0]["fieldName"] == "licenseeId"
    removal = {"phoneNumber": SAM, "reason": "r", "licenseeId": OTHER}
    assert (await refused(gw, 403, "DELETE", params=removal))["errorCode"] == "NotYourLicensee"
    await refused(gw, 403, "POST", body={"phoneNumber": SAM, "reason": "r", "licenseeId": OTHER})
    assert gw.world.opt_out_store.rows == {}
