"""GET /api/sms over the app's own functions and the fakes: the listing's shape in JSON and JSV, its
filters as a client writes them, and a 400 naming each parameter that is wrong."""
import json
from datetime import timedelta
from urllib.parse import urlencode

import azure.functions as func
import pytest

from sms.domain.local_days import LocalDays
from sms.domain.model import Status, utcnow
from sms.wire import jsv
from tests.fakes import ALEX, LICENSEE, SAM


def get(gw, params: dict, function: str = "sms_list", key: str | None = None, route_params: dict | None = None):
    url = f"http://localhost/api/sms?{urlencode(params)}"
    return gw.functions[function](func.HttpRequest("GET", url, params=params, route_params=route_params or {},
                                                   headers={"Authorization": f"Bearer {key or gw.key}"}, body=b""))


async def test_the_listing_is_newest_first_with_counts_and_a_token_to_the_end(gw):
    gw.world.provider.refuse = {ALEX: "blocked"}
    first = await gw.world.send(SAM, ALEX)
    second = await gw.world.send(SAM)
    response = await get(gw, {"take": "1"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    page = json.loads(response.get_body())
    [newest] = page["messages"]
    assert newest["commId"] == second and newest["status"] == "sent" and newest["counts"] == {"sent": 1}
    assert newest["reference"] == f"SMS-{second[:8].upper()}" and newest["preview"] == "Hello" and newest["recipientCount"] == 1
    rest = json.loads((await get(gw, {"take": "1", "continuationToken": page["continuationToken"]})).get_body())
    assert [m["commId"] for m in rest["messages"]] == [first] and rest["messages"][0]["counts"] == {"sent": 1, "failed": 1}
    assert rest["messages"][0]["status"] == "partially_sent" and rest.get("continuationToken") is None


async def test_a_search_by_phone_number_in_any_format_says_how_that_recipients_sms_stands(gw):
    comm_id = await gw.world.send(SAM, ALEX)
    await gw.use.inbound.apply_receipt(f"{comm_id}:1", Status.DELIVERED, "p-2")
    page = json.loads((await get(gw, {"PhoneNumber": "0412 000 002"})).get_body())  # ALEX, written as a person would
    [found] = page["messages"]
    assert found["commId"] == comm_id and found["recipient"] == {"phoneNumber": ALEX, "status": "delivered"}
    assert "status" not in found and "counts" not in found  # the message's are on GET /api/sms/{commId}


async def test_jsv_by_suffix_and_status_filter(gw):
    gw.world.provider.refuse = {ALEX: "blocked"}
    failed = await gw.world.send(ALEX)
    await gw.world.send(SAM)
    response = await get(gw, {"status": "failed"}, function="sms_list_with_format", route_params={"format": "jsv"})
    assert response.headers["Content-Type"].startswith("text/jsv")
    page = jsv.loads(response.get_body().decode())
    assert [m["CommId"] for m in page["Messages"]] == [failed]


@pytest.mark.parametrize("params, field", [
    ({"take": "0"}, "take"), ({"take": "many"}, "take"), ({"take": "201"}, "take"),
    ({"status": "lost"}, "status"), ({"phoneNumber": "12"}, "phoneNumber"), ({"linkedObjectId": "x"}, "linkedObjectId"),
    ({"from": "yesterday"}, "from"), ({"from": "2026-11-25T10:00:00"}, "from"), ({"from": "2026-11-26", "to": "2026-11-25"}, "to"),
    ({"reference": "SMS-1"}, "reference"), ({"continuationToken": "!!"}, "continuationToken"),
    ({"to": "9999-12-31"}, "to"), ({"to": "9999-12-31T23:00:00-05:00"}, "to"),  # past the last instant there is: not a 500
    ({"to": "0001-01-01T00:00:00Z"}, "to"), ({"from": "1969-12-31"}, "from"),  # issue 23: before the stores' keys begin
    # An offset is Z or hours and minutes, as SendAt's (one reader: sms/domain/instants.py).
    ({"from": "2026-11-25T10:00:00+10:00:30"}, "from"), ({"to": "2026-11-25T10:00:00+1000"}, "to"),
])
async def test_a_wrong_parameter_is_a_400_naming_it_and_nothing_else_happens(gw, params, field):
    response = await get(gw, params)
    body = json.loads(response.get_body())
    assert response.status_code == 400, body
    assert [e["fieldName"] for e in body["responseStatus"]["errors"]] == [field]


async def test_a_token_from_another_query_is_a_400_naming_it_and_the_same_query_written_again_goes_on(gw):
    """Issue 23: a token passed back with other filters went on inside the other query, from where the
    first stopped, and the list came back short or empty. README said it started again; it did not."""
    gw.world.provider.refuse = {ALEX: "blocked"}
    for _ in range(3):
        await gw.world.send(SAM, ALEX)
    yesterday = utcnow().date() - timedelta(days=1)
    first = {"take": "1", "phoneNumber": "+61412000002", "from": yesterday.isoformat()}
    token = json.loads((await get(gw, first)).get_body())["continuationToken"]
    others = ({"take": "1"}, {**first, "phoneNumber": SAM}, {**first, "status": "failed"},
              {**first, "from": str(yesterday - timedelta(days=1))})
    for other in others:
        response = await get(gw, {**other, "continuationToken": token})
        body = json.loads(response.get_body())
        assert response.status_code == 400, (other, body)
        assert [e["fieldName"] for e in body["responseStatus"]["errors"]] == ["continuationToken"]
        assert "another query" in body["responseStatus"]["message"]
    # The same filters written otherwise (the number as a person writes it, the day as an instant) are the same query.
    same = {"take": "5", "PHONENUMBER": "0412 000 002", "from": f"{yesterday}T11:00:00+11:00", "continuationToken": token}
    rest = json.loads((await get(gw, same)).get_body())
    assert len(rest["messages"]) == 2 and all(m["recipient"]["phoneNumber"] == ALEX for m in rest["messages"])


async def test_another_licensees_key_sees_none_of_it(gw):
    from sms.usecases.auth import new_key

    await gw.world.send(SAM)
    key, record = new_key("b" * 32)
    await gw.auth._store.add(record)
    page = json.loads((await get(gw, {}, key=key)).get_body())
    assert page["messages"] == [] and page.get("continuationToken") is None
    assert (await get(gw, {}, key="sms_0000000000000000.bad")).status_code == 401


async def test_usage_counts_today_as_asked_and_refuses_a_range_it_cannot_read(gw):
    gw.world.provider.refuse = {ALEX: "blocked"}
    await gw.world.send(SAM, ALEX)
    await gw.world.send(SAM)
    response = await gw.functions["usage"](func.HttpRequest("GET", "http://localhost/api/usage", params={}, body=b"",
                                                            headers={"Authorization": f"Bearer {gw.key}"}))
    [today] = json.loads(response.get_body())["days"]
    # The refused recipient counts in recipients and byStatus, not in what the provider bills.
    assert (today["messages"], today["recipients"], today["segments"]) == (2, 3, 2)
    assert today["byStatus"] == {"sent": 2, "failed": 1} and today["byProvider"] == {"recording": 2}
    for params, field in (({"from": "last week"}, "from"), ({"from": "2026-01-01", "to": "2027-06-01"}, "to"),
                          ({"from": "2026-11-25", "to": "2026-11-24"}, "to")):
        refused = await gw.functions["usage"](func.HttpRequest("GET", "http://localhost/api/usage", params=params, body=b"",
                                                               headers={"Authorization": f"Bearer {gw.key}"}))
        assert refused.status_code == 400
        assert [e["fieldName"] for e in json.loads(refused.get_body())["responseStatus"]["errors"]] == [field]


async def test_usage_answers_in_the_licensees_days_and_names_the_zone_each_day_was_counted_in(gw):
    """Issue 25: with a zone set, `from`, `to` and today are the licensee's own days (Kiritimati is 14
    hours ahead of UTC: its today is UTC's tomorrow for most of the UTC day), and each day says its zone,
    in JSON and in JSV."""
    zone = "Pacific/Kiritimati"
    await gw.use.licensees.set(LICENSEE, time_zone=zone)
    before = LocalDays(zone).day_of(utcnow())
    await gw.world.send(SAM)
    after = LocalDays(zone).day_of(utcnow())
    auth = {"Authorization": f"Bearer {gw.key}"}
    [today] = json.loads((await gw.functions["usage"](func.HttpRequest("GET", "http://localhost/api/usage", params={},
                                                                        body=b"", headers=auth))).get_body())["days"]
    assert today["day"] in {before.isoformat(), after.isoformat()} and today["timeZone"] == zone
    params = {"from": today["day"], "to": today["day"]}
    answer = await gw.functions["usage_with_format"](func.HttpRequest(
        "GET", "http://localhost/api/usage.jsv", params=params, route_params={"format": "jsv"}, body=b"", headers=auth))
    assert [(d["Day"], d["TimeZone"]) for d in jsv.loads(answer.get_body().decode())["Days"]] == [(today["day"], zone)]
