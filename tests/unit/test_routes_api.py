"""/api/routes over the app's own functions and the fakes (issue 26): a licensee reads its routing table
(its own, or the deployment's default, saying which), sets it and clears it with its key, in JSON, JSV or
a form; a body that is no table is a 400 naming each problem in ServiceStack's shape, nothing saved; and
one licensee's key never reads or changes another's table."""
import json
from urllib.parse import quote

import azure.functions as func
import pytest

from sms.domain.routing import MAX_RULES
from sms.usecases.auth import new_key
from sms.wire import jsv
from tests.fakes import LICENSEE, OTHER

DEFAULT = {"source": "default", "rules": [{"match": "*", "providers": ["recording"]}]}  # the fakes' one provider
RULES = [{"match": "au", "providers": ["recording"], "sender": "+61400000000"}, {"match": "+1", "providers": ["recording"]},
         {"match": "*", "providers": ["recording"], "sender": "Clinic"}]
STORED = [{"match": "AU", "providers": ["recording"], "sender": "+61400000000"}, {"match": "+1", "providers": ["recording"]},
          {"match": "*", "providers": ["recording"], "sender": "Clinic"}]
FUNCTIONS = {"GET": "routes_show", "PUT": "routes_set", "DELETE": "routes_clear"}


def call(gw, method: str, body: bytes = b"", key: str | None = None, content_type: str = "application/json",
         accept: str | None = None, params=None):
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return gw.functions[FUNCTIONS[method]](func.HttpRequest(method, "http://localhost/api/routes", headers=headers, params=params or {},
                                                            body=body))


async def answer(gw, method: str, body=None, key: str | None = None) -> dict:
    response = await call(gw, method, json.dumps(body).encode() if body is not None else b"", key)
    assert response.status_code == 200, response.get_body()
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_body())


def stored(gw, licensee: str = LICENSEE) -> str | None:
    settings = gw.use.licensees._store.settings.get(licensee)
    return settings.routes if settings else None


async def other_key(gw) -> str:
    key, record = new_key(OTHER)
    await gw.auth._store.add(record)
    return key


async def test_without_its_own_table_a_licensee_reads_the_default_marked_as_such(gw):
    assert await answer(gw, "GET") == DEFAULT


async def test_a_table_is_set_answered_as_stored_read_back_and_cleared(gw):
    assert await answer(gw, "PUT", {"rules": RULES}) == {"source": "licensee", "rules": STORED}
    assert json.loads(stored(gw)) == STORED
    assert await answer(gw, "GET") == {"source": "licensee", "rules": STORED}
    assert await gw.use.licensees.routes_for(LICENSEE) == gw.use.licensees.parse_routes(STORED)  # what dispatch reads
    # What GET answers can be put back as it is: its source is not a field of the request.
    assert await answer(gw, "PUT", await answer(gw, "GET")) == {"source": "licensee", "rules": STORED}
    assert await answer(gw, "DELETE") == DEFAULT
    assert stored(gw) is None and await answer(gw, "GET") == DEFAULT
    assert await answer(gw, "DELETE") == DEFAULT  # clearing what is clear: the same answer


async def test_names_in_any_case_jsv_and_forms(gw):
    pascal = {"Rules": [{"Match": "AU", "Providers": ["recording"], "Sender": "Clinic 1"}, {"MATCH": "*", "providers": ["recording"]}]}
    assert (await answer(gw, "PUT", pascal))["rules"][0] == {"match": "AU", "providers": ["recording"], "sender": "Clinic 1"}
    body = b"{Rules:[{Match:NZ,Providers:[recording]},{Match:*,Providers:[recording],Sender:Clinic}]}"
    response = await call(gw, "PUT", body, content_type="text/jsv", accept="text/jsv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/jsv")
    shown = jsv.loads(response.get_body().decode())
    assert shown == {"Source": "licensee", "Rules": [{"Match": "NZ", "Providers": ["recording"]},
                                                     {"Match": "*", "Providers": ["recording"], "Sender": "Clinic"}]}
    form = ("Rules=" + quote("[{Match:US,Providers:[recording]},{Match:*,Providers:[recording]}]")).encode()
    response = await call(gw, "PUT", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and json.loads(response.get_body())["rules"][0] == {"match": "US", "providers": ["recording"]}
    listed = jsv.loads((await call(gw, "GET", params={"format": "jsv"})).get_body().decode())
    assert listed["Source"] == "licensee" and listed["Rules"][0]["Match"] == "US"


def _errors(response) -> list[tuple[str, str]]:
    status = json.loads(response.get_body())["responseStatus"]
    assert status["errorCode"] == "ValidationException" and status["message"]
    return [(e["fieldName"], e["errorCode"]) for e in status.get("errors", [])]


@pytest.mark.parametrize("body, errors", [
    ({"rules": [{"match": "*", "providers": ["twilio"]}]}, [("Rules[0].Providers[0]", "UnknownProvider")]),
    ({"rules": [{"match": "XX", "providers": ["recording"]}, {"match": "+1", "providers": ["recording"], "sender": "+0"}]},
     [("Rules[0].Match", "InvalidValue"), ("Rules[1].Sender", "InvalidValue")]),
    ({"rules": [{"match": "*", "providers": ["recording"]}, {"match": "AU", "providers": ["recording"]}]}, [("Rules[1]", "Unreachable")]),
    ({"rules": [{"match": "AU", "providers": ["recording", "recording"]}]}, [("Rules[0].Providers[1]", "Duplicate")]),
    ({"rules": [{"match": "AU", "providers": []}]}, [("Rules[0].Providers", "NotEmpty")]),
    ({"rules": []}, [("Rules", "NotEmpty")]),
    ({}, [("Rules", "NotEmpty")]),
    ({"rules": None}, [("Rules", "NotEmpty")]),
    ({"rules": [{"match": f"+{n}", "providers": ["recording"]} for n in range(10_000, 10_001 + MAX_RULES)]}, [("Rules", "MaxCount")]),
    # Types, as every request's DTO reads them (sms.wire): the field named, in the contract's names.
    ({"rules": "AU"}, [("Rules", "ListType")]),
    ({"rules": [{"match": 61, "providers": ["recording"]}]}, [("Rules[0].Match", "StringType")]),
    ({"rules": [{"match": "AU", "providers": "recording"}]}, [("Rules[0].Providers", "ListType")]),
    ({"rules": [{"match": "AU", "providers": ["recording"], "provder": "x"}]}, [("Rules[0].provder", "ExtraForbidden")]),
    ({"rules": ["AU"]}, [("Rules[0]", "ModelType")]),
])
async def test_a_body_that_is_no_table_is_a_400_naming_each_problem_and_nothing_is_saved(gw, body, errors):
    await answer(gw, "PUT", {"rules": [{"match": "*", "providers": ["recording"]}]})
    before = stored(gw)
    response = await call(gw, "PUT", json.dumps(body).encode())
    assert response.status_code == 400, response.get_body()
    assert _errors(response) == errors
    assert stored(gw) == before


@pytest.mark.parametrize("body, status", [
    (b"", 400), (b"[{", 400), (b"[]", 400), (b'"AU"', 400), (b"[" * 100_000, 400), (b'{"rules": ["\\ud800"]}', 400),
    (b'{"rules": [{"match": "\\ud800", "providers": ["recording"]}]}', 400), (b"\xff\xfe", 400),
])
async def test_bodies_no_reader_takes_are_400s_never_500s(gw, body, status):
    response = await call(gw, "PUT", body)
    assert response.status_code == status, response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["message"]
    assert stored(gw) is None


async def test_a_body_past_the_request_limit_is_a_413(gw):
    huge = json.dumps({"rules": [{"match": "*", "providers": ["recording"], "sender": "x" * gw.settings.max_request_bytes}]})
    assert (await call(gw, "PUT", huge.encode())).status_code == 413


async def test_one_licensee_never_reads_or_changes_another_s_table(gw):
    theirs = await other_key(gw)
    await answer(gw, "PUT", {"rules": RULES})
    assert await answer(gw, "GET", key=theirs) == DEFAULT
    assert await answer(gw, "DELETE", key=theirs) == DEFAULT
    assert await answer(gw, "GET") == {"source": "licensee", "rules": STORED}
    mine = {"source": "licensee", "rules": [{"match": "*", "providers": ["recording"], "sender": "Other"}]}
    assert await answer(gw, "PUT", {"rules": mine["rules"]}, key=theirs) == mine
    assert await answer(gw, "GET") == {"source": "licensee", "rules": STORED}
    assert json.loads(stored(gw, OTHER)) == mine["rules"] and json.loads(stored(gw, LICENSEE)) == STORED
    # Naming another licensee, in the body or the query, is refused to a licensee key (only an admin key acts for one).
    for response in (await call(gw, "PUT", json.dumps({"rules": RULES, "licenseeId": OTHER}).encode()),
                     await call(gw, "DELETE", params={"licenseeId": OTHER})):
        assert response.status_code == 403 and json.loads(response.get_body())["responseStatus"]["errorCode"] == "NotYourLicensee"
    assert json.loads(stored(gw, OTHER)) == mine["rules"]


async def test_without_a_key_nothing_is_read_or_changed(gw):
    for method in FUNCTIONS:
        response = await gw.functions[FUNCTIONS[method]](func.HttpRequest(method, "http://localhost/api/routes", headers={},
                                                                          body=json.dumps({"rules": RULES}).encode()))
        assert response.status_code == 401
    assert stored(gw) is None


async def test_a_stored_table_this_version_cannot_read_is_a_409_saying_what_to_do_never_a_500(gw):
    """Issue 26: a table written by hand in storage, or by a version with other rules, is not a 500: the
    answer names the licensee, why, and how to set or clear it; clearing it works."""
    from dataclasses import replace as replaced

    from sms.storage import LicenseeSettings

    store = gw.use.licensees._store
    current = store.settings.get(LICENSEE) or LicenseeSettings(LICENSEE)
    await store.put(replaced(current, routes='[{"match": "*", "providers": []}]'))  # written past the use case's checks
    response = await call(gw, "GET")
    body = json.loads(response.get_body())["responseStatus"]
    assert response.status_code == 409 and body["errorCode"] == "Conflict"
    assert "stored routing table cannot be read" in body["message"] and "DELETE /api/routes" in body["message"]
    assert await answer(gw, "DELETE") == DEFAULT
