"""/api/settings over the app's own functions and the fakes (issue 29): a licensee reads its quiet hours and
time zone with its key and changes them, in JSON, JSV or a form, through the use case `python -m sms licensees
set` uses; a window or a zone that is wrong is a 400 naming the field, nothing saved; a change that keeps losing
races is a 409 to make again; one licensee's key never reads or changes another's settings; and the quiet hours
set here are the ones dispatch holds messages by."""
import json
from datetime import timedelta
from urllib.parse import quote

import azure.functions as func
import pytest

from sms.domain.errors import RecordChanged
from sms.domain.model import Status, utcnow
from sms.domain.quiet import is_held
from sms.usecases.auth import new_key
from sms.wire import jsv
from tests.fakes import LICENSEE, OTHER

FUNCTIONS = {"GET": "settings_show", "PUT": "settings_set"}
DEFAULT = {"licenseeId": LICENSEE, "timeZone": "UTC"}  # no quiet hours, never changed: the nulls left out, as every answer's


def call(gw, method: str, body: bytes = b"", key: str | None = None, content_type: str = "application/json",
         accept: str | None = None, params=None):
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return gw.functions[FUNCTIONS[method]](func.HttpRequest(method, "http://localhost/api/settings", headers=headers,
                                                            params=params or {}, body=body))


async def answer(gw, method: str, body=None, key: str | None = None) -> dict:
    """The answer, its updatedAt checked and left out (when the row was last written is no test's constant)."""
    response = await call(gw, method, json.dumps(body).encode() if body is not None else b"", key)
    assert response.status_code == 200, response.get_body()
    assert response.headers["Content-Type"].startswith("application/json")
    answered = json.loads(response.get_body())
    if "updatedAt" in answered:
        settings = stored(gw, answered["licenseeId"])
        assert settings is not None and answered.pop("updatedAt") == settings.updated_at.isoformat().replace("+00:00", "Z")
    return answered


def stored(gw, licensee: str = LICENSEE):
    return gw.use.licensees._store.settings.get(licensee)


def kept(gw, licensee: str = LICENSEE) -> tuple | None:
    settings = stored(gw, licensee)
    return (settings.quiet_hours, settings.time_zone, settings.etag) if settings else None


async def other_key(gw) -> str:
    key, record = new_key(OTHER)
    await gw.auth._store.add(record)
    return key


async def test_without_settings_a_licensee_reads_no_quiet_hours_in_utc(gw):
    assert await answer(gw, "GET") == DEFAULT
    assert stored(gw) is None  # a read writes nothing


async def test_settings_are_set_answered_as_stored_read_back_changed_in_part_and_cleared(gw):
    set_ = await answer(gw, "PUT", {"quietHours": "9:00-8:00", "timeZone": " Australia/Sydney "})
    assert set_ == {**DEFAULT, "quietHours": "09:00-08:00", "timeZone": "Australia/Sydney"}  # as the CLI stores them
    assert (stored(gw).quiet_hours, stored(gw).time_zone) == ("09:00-08:00", "Australia/Sydney")
    assert await answer(gw, "GET") == set_
    # What is not given is kept, as `licensees set` keeps it; a null is not given.
    assert await answer(gw, "PUT", {"timeZone": "Europe/London", "quietHours": None}) == {**set_, "timeZone": "Europe/London"}
    assert await answer(gw, "PUT", {"quietHours": "21:30-07:15"}) == {**DEFAULT, "quietHours": "21:30-07:15", "timeZone": "Europe/London"}
    # What GET answers can be put back as it is: licenseeId and updatedAt are not fields of a change.
    before = await answer(gw, "GET")
    assert await answer(gw, "PUT", json.loads((await call(gw, "GET")).get_body())) == before
    assert await answer(gw, "PUT", {"noQuietHours": True}) == {**DEFAULT, "timeZone": "Europe/London"}
    assert stored(gw).quiet_hours is None and await answer(gw, "GET") == {**DEFAULT, "timeZone": "Europe/London"}
    assert await answer(gw, "PUT", {"noQuietHours": False, "timeZone": "UTC"}) == DEFAULT  # false: nothing to clear


async def test_a_change_keeps_the_routes_and_guard_the_same_row_holds(gw):
    await gw.use.licensees.set_routes(LICENSEE, gw.use.licensees.parse_routes([{"match": "*", "providers": ["recording"]}]))
    routes = stored(gw).routes
    await answer(gw, "PUT", {"quietHours": "22:00-07:00"})
    assert stored(gw).routes == routes


async def test_names_in_any_case_jsv_and_forms(gw):
    assert await answer(gw, "PUT", {"QuietHours": "22:00-07:00", "TIMEZONE": "Pacific/Auckland"}) == {
        **DEFAULT, "quietHours": "22:00-07:00", "timeZone": "Pacific/Auckland"}
    response = await call(gw, "PUT", b"{QuietHours:20:00-06:00,TimeZone:Australia/Perth}", content_type="text/jsv", accept="text/jsv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/jsv")
    shown = jsv.loads(response.get_body().decode())
    shown.pop("UpdatedAt")
    assert shown == {"LicenseeId": LICENSEE, "QuietHours": "20:00-06:00", "TimeZone": "Australia/Perth"}
    form = f"TimeZone={quote('America/New_York')}&NoQuietHours=True".encode()
    response = await call(gw, "PUT", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.get_body()
    assert (stored(gw).quiet_hours, stored(gw).time_zone) == (None, "America/New_York")
    listed = jsv.loads((await call(gw, "GET", params={"format": "jsv"})).get_body().decode())
    assert listed["TimeZone"] == "America/New_York" and "QuietHours" not in listed


def _errors(response) -> list[tuple[str, str]]:
    status = json.loads(response.get_body())["responseStatus"]
    assert status["errorCode"] == "ValidationException" and status["message"]
    return [(e["fieldName"], e["errorCode"]) for e in status.get("errors", [])]


@pytest.mark.parametrize("body, errors", [
    ({"quietHours": "9pm-8am"}, [("QuietHours", "InvalidValue")]),
    ({"quietHours": "21:00-21:00"}, [("QuietHours", "InvalidValue")]),
    ({"quietHours": "24:00-08:00"}, [("QuietHours", "InvalidValue")]),
    ({"quietHours": ""}, [("QuietHours", "InvalidValue")]),
    ({"timeZone": "Mars/Olympus_Mons"}, [("TimeZone", "InvalidValue")]),
    ({"timeZone": "../../etc/passwd"}, [("TimeZone", "InvalidValue")]),
    ({"timeZone": ""}, [("TimeZone", "InvalidValue")]),
    ({"timeZone": "x" * 10_000}, [("TimeZone", "InvalidValue")]),
    ({"quietHours": "21:00", "timeZone": "Sydney"}, [("TimeZone", "InvalidValue"), ("QuietHours", "InvalidValue")]),
    # The CLI's --quiet-hours and --no-quiet-hours are one or the other; so are these.
    ({"quietHours": "21:00-08:00", "noQuietHours": True}, [("NoQuietHours", "InvalidValue")]),
    # Types, as every request's DTO reads them (sms.wire): the field named, in the contract's names.
    ({"quietHours": 2100}, [("QuietHours", "StringType")]),
    ({"timeZone": ["UTC"]}, [("TimeZone", "StringType")]),
    ({"noQuietHours": "yes"}, [("NoQuietHours", "BoolType")]),
    ({"noQuietHours": 1}, [("NoQuietHours", "BoolType")]),
    # Nothing to change, as `licensees set` with no option is refused: a misspelt name is not a silent no-op.
    ({}, [("", "NotEmpty")]),
    ({"quietHour": "21:00-08:00"}, [("", "NotEmpty")]),
    ({"quietHours": None, "noQuietHours": False}, [("", "NotEmpty")]),
])
async def test_a_wrong_field_is_a_400_naming_it_and_nothing_is_saved(gw, body, errors):
    await answer(gw, "PUT", {"quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"})
    before = kept(gw)
    response = await call(gw, "PUT", json.dumps(body).encode())
    assert response.status_code == 400, response.get_body()
    assert _errors(response) == errors
    assert kept(gw) == before


@pytest.mark.parametrize("body", [
    b"", b"[{", b"[]", b'"21:00-08:00"', b"[" * 100_000, b'{"quietHours": "\\ud800"}', b'{"timeZone": "\\udfff"}', b"\xff\xfe",
])
async def test_bodies_no_reader_takes_are_400s_never_500s(gw, body):
    response = await call(gw, "PUT", body)
    assert response.status_code == 400, response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["message"]
    assert stored(gw) is None


async def test_a_body_past_the_request_limit_is_a_413(gw):
    huge = json.dumps({"quietHours": "21:00-08:00", "timeZone": "x" * gw.settings.max_request_bytes})
    assert (await call(gw, "PUT", huge.encode())).status_code == 413
    assert stored(gw) is None


async def test_a_change_that_keeps_losing_races_is_a_409_to_make_again_and_nothing_is_saved(gw):
    """The row is ETag-checked (routes and guard write it too): a change decided again from the row as it then stands,
    and after Licensees.WRITE_ATTEMPTS lost races answered as PUT /api/routes and /api/guard answer one."""
    await answer(gw, "PUT", {"quietHours": "21:00-08:00"})
    before = kept(gw)
    store = gw.use.licensees._store

    async def always_changed(settings):
        raise RecordChanged("changed")

    store.put = always_changed
    response = await call(gw, "PUT", json.dumps({"timeZone": "Australia/Sydney"}).encode())
    body = json.loads(response.get_body())["responseStatus"]
    assert response.status_code == 409 and body["errorCode"] == "Conflict" and response.headers["Retry-After"] == "1"
    assert "kept changing" in body["message"] and "make it again" in body["message"]
    assert kept(gw) == before


async def test_one_licensee_never_reads_or_changes_another_s_settings(gw):
    theirs = await other_key(gw)
    await answer(gw, "PUT", {"quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"})
    assert await answer(gw, "GET", key=theirs) == {**DEFAULT, "licenseeId": OTHER}
    assert await answer(gw, "PUT", {"timeZone": "Europe/Paris"}, key=theirs) == {"licenseeId": OTHER, "timeZone": "Europe/Paris"}
    assert await answer(gw, "GET") == {**DEFAULT, "quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"}
    # Naming another licensee, in the body or the query, is refused to a licensee key (only an admin key acts for one).
    for response in (await call(gw, "PUT", json.dumps({"noQuietHours": True, "licenseeId": LICENSEE}).encode(), key=theirs),
                     await call(gw, "GET", key=theirs, params={"licenseeId": LICENSEE})):
        assert response.status_code == 403 and json.loads(response.get_body())["responseStatus"]["errorCode"] == "NotYourLicensee"
    assert kept(gw)[:2] == ("21:00-08:00", "Australia/Sydney") and kept(gw, OTHER)[:2] == (None, "Europe/Paris")


async def test_without_a_key_nothing_is_read_or_changed(gw):
    for method in FUNCTIONS:
        response = await gw.functions[FUNCTIONS[method]](func.HttpRequest(method, "http://localhost/api/settings", headers={},
                                                                          body=b'{"quietHours": "21:00-08:00"}'))
        assert response.status_code == 401
    assert stored(gw) is None


async def test_the_quiet_hours_set_here_are_the_ones_dispatch_holds_messages_by(gw):
    """A window around now, in the licensee's zone: an Australian mobile (its range spans several zones) is taken to
    be in that zone, so a message to it waits, with the reason; cleared, the next message goes."""
    now = utcnow()
    window = f"{now - timedelta(hours=2):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    await answer(gw, "PUT", {"quietHours": window, "timeZone": "UTC"})
    comm_id = await gw.world.send("+61412345678")
    held = await gw.world.recipient(comm_id)
    assert held.status is Status.QUEUED and is_held(held.last_error) and window in held.last_error
    assert gw.world.provider.sent == []
    await answer(gw, "PUT", {"noQuietHours": True})
    sent = await gw.world.recipient(await gw.world.send("+61412345679"))
    assert sent.status is Status.SENT and len(gw.world.provider.sent) == 1


async def test_the_operations_are_served_at_their_servicestack_names_too(gw):
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
    response = await gw.functions["op_set_licensee_settings"](func.HttpRequest(
        "PUT", "http://localhost/api/SetLicenseeSettings", headers=headers, body=b'{"quietHours": "22:00-06:00"}'))
    assert response.status_code == 200, response.get_body()
    response = await gw.functions["op_get_licensee_settings"](func.HttpRequest(
        "GET", "http://localhost/api/GetLicenseeSettings", headers=headers, body=b""))
    assert json.loads(response.get_body())["quietHours"] == "22:00-06:00"
