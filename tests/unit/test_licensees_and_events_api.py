"""GET /api/licensees (admin keys only) and GET /api/sms/{commId}/events (any key, its own licensee's messages) over
the app's own functions and the fakes (issue 29)."""
import json
from dataclasses import replace
from datetime import timedelta

import azure.functions as func
import pytest

from sms.domain.model import utcnow
from sms.storage import LicenseeSettings
from sms.usecases.auth import new_key
from tests.fakes import ALEX, LICENSEE, OTHER, SAM


def call(gw, name, key, params=None, values=None, method="GET"):
    headers = {"Authorization": f"Bearer {key}"}
    return gw.functions[name](func.HttpRequest(method, f"http://h/{name}", headers=headers, params=params or {},
                                               route_params=values or {}, body=b""))


def answer(response) -> dict:
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


def refusal(response, status) -> dict:
    assert response.status_code == status, response.get_body()
    return json.loads(response.get_body())["responseStatus"]


def make_admin(gw) -> str:
    store = gw.auth._store
    store.records[gw.key[4:20]] = replace(store.records[gw.key[4:20]], role="admin")
    gw.auth.forget(gw.key[4:20])  # this worker's cached record: the licensee key it was
    return gw.key


async def add_key(gw, licensee, **kind):
    key, record = new_key(licensee, **kind)
    await gw.auth._store.add(record)
    return key, record


# -- GET /api/licensees --

async def test_an_admin_lists_every_licensee_with_a_key_or_settings_sorted_by_id(gw):
    admin = make_admin(gw)
    third, fourth = "c" * 32, "0" * 31 + "1"
    await add_key(gw, OTHER)
    await add_key(gw, OTHER, read_only=True)
    _, gone = await add_key(gw, third)
    await gw.auth._store.revoke(gone.key_id, utcnow())
    await add_key(gw, third, expires_at=utcnow() - timedelta(minutes=1))
    await gw.use.licensees.set(OTHER, quiet_hours="21:00-08:00", no_quiet_hours=False, time_zone="Australia/Sydney")
    await gw.use.licensees.set_guard(OTHER, {"caps": {"dailySegments": 10}}, may_loosen=True)
    await gw.use.licensees._store.put(LicenseeSettings(fourth, routes='[{"match":"*","providers":["recording"]}]'))

    listed = answer(await call(gw, "licensees_list", admin))["licensees"]
    assert [s["licenseeId"] for s in listed] == sorted([LICENSEE, OTHER, third, fourth])
    by_id = {s["licenseeId"]: s for s in listed}
    assert by_id[OTHER] == {"licenseeId": OTHER, "activeKeys": 2, "hasOwnRoutes": False, "hasOwnGuard": True,
                            "quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"}
    assert by_id[third] == {"licenseeId": third, "activeKeys": 0, "hasOwnRoutes": False, "hasOwnGuard": False, "timeZone": "UTC"}
    assert (by_id[fourth]["activeKeys"], by_id[fourth]["hasOwnRoutes"]) == (0, True)  # settings, no key: a licensee still
    assert by_id[LICENSEE]["activeKeys"] == 1
    assert answer(await call(gw, "op_query_licensees", admin)) == {"licensees": listed}


async def test_a_licensee_key_may_not_list_licensees(gw):
    status = refusal(await call(gw, "licensees_list", gw.key), 403)
    assert status["errorCode"] == "AdminOnly" and "GET /api/licensees" in status["message"]


# -- GET /api/sms/{commId}/events --

async def events_of(gw, comm_id, key=None, **params):
    return answer(await call(gw, "sms_events", key or gw.key, params, {"commId": comm_id}))


async def test_a_message_s_events_are_the_ones_its_endpoints_were_sent_oldest_first(gw):
    world = gw.world
    await world.use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events", None)
    comm_id = await world.send(SAM, ALEX)
    other = await world.send(SAM)  # another message of the same licensee: not among them
    stored = [e for (lic, c, _), batch in sorted(world.ledger.event_batches.items(), key=lambda item: item[0][2])
              if c == comm_id for e in batch]
    assert [e.type for e in stored] == ["message.sent", "message.sent"]

    listed = await events_of(gw, comm_id.upper())
    assert listed["commId"] == comm_id and "continuationToken" not in listed
    assert [(e["id"], e["type"], e["payload"]) for e in listed["events"]] == [(e.id, e.type, e.body) for e in stored]
    assert listed["events"][0]["at"] == json.loads(stored[0].body)["timestamp"].replace("+00:00", "Z")
    assert {json.loads(e["payload"])["data"]["commId"] for e in listed["events"]} == {comm_id} != {other}


async def test_events_come_a_page_at_a_time_and_a_token_serves_only_its_own_message(gw):
    world = gw.world
    await world.use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events", None)
    comm_id = await world.send(SAM, ALEX, "+61412345680")
    other = await world.send(SAM)
    first = await events_of(gw, comm_id, take="2")
    assert len(first["events"]) == 2 and first["continuationToken"]
    rest = await events_of(gw, comm_id, take="2", continuationToken=first["continuationToken"])
    assert len(rest["events"]) == 1 and "continuationToken" not in rest
    assert len({e["id"] for e in first["events"] + rest["events"]}) == 3
    misused = await call(gw, "sms_events", gw.key, {"continuationToken": first["continuationToken"]}, {"commId": other})
    assert refusal(misused, 400)["errors"][0]["fieldName"] == "continuationToken"


@pytest.mark.parametrize("params, field", [({"take": "0"}, "take"), ({"take": "501"}, "take"), ({"take": "many"}, "take"),
                                           ({"continuationToken": "not-ours"}, "continuationToken")])
async def test_a_page_asked_for_wrongly_is_a_400_naming_the_parameter(gw, params, field):
    comm_id = await gw.world.send(SAM)
    assert [e["fieldName"] for e in refusal(await call(gw, "sms_events", gw.key, params, {"commId": comm_id}), 400)["errors"]] \
        == [field]


async def test_another_licensees_message_answers_as_a_missing_one_and_an_admin_names_the_licensee(gw):
    world = gw.world
    await world.use.webhooks.add(OTHER, "https://crm.example.org/sms-events", None)
    theirs = await world.send(SAM, licensee=OTHER)
    mine = refusal(await call(gw, "sms_events", gw.key, values={"commId": theirs}), 404)["message"]
    missing = refusal(await call(gw, "sms_events", gw.key, values={"commId": "d" * 32}), 404)["message"]
    assert mine.replace(theirs, "X") == missing.replace("d" * 32, "X")
    assert refusal(await call(gw, "sms_events", gw.key, {"licenseeId": OTHER}, {"commId": theirs}), 403)["errorCode"] == \
        "NotYourLicensee"
    admin = make_admin(gw)
    assert [e["type"] for e in (await events_of(gw, theirs, admin, licenseeId=OTHER))["events"]] == ["message.sent"]
    assert refusal(await call(gw, "sms_events", admin, values={"commId": "not-a-guid"}), 400)["errors"][0]["fieldName"] == "commId"


async def test_a_licensee_without_endpoints_kept_no_events_so_a_message_lists_none(gw):
    comm_id = await gw.world.send(SAM)
    assert (await events_of(gw, comm_id))["events"] == []
