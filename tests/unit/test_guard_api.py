"""/api/guard over the app's own functions and the fakes (issue 27): a licensee reads the guard its messages
go by (its own, or the deployment's default, saying which), tightens it with its key in JSON or JSV, and goes
back to the default; a change that would loosen it is a 403 naming each field, nothing saved; a body that is
no guard is a 400 naming each problem; one licensee's key never reads or changes another's guard."""
import json

import azure.functions as func
import pytest

from sms.usecases.auth import new_key
from tests.fakes import LICENSEE, OTHER

FUNCTIONS = {"GET": "guard_show", "PUT": "guard_set", "DELETE": "guard_clear"}
DEFAULT = {"source": "default", "countries": {"AU": "allow"}, "otherCountries": "block",
           "numberTypes": {"premium_rate": "block", "shared_cost": "block"}, "pumping": "enforce", "safeList": [],
           "caps": {}}  # null caps and a null currency left out, as every answer leaves out nulls


def call(gw, method: str, body: bytes = b"", key: str | None = None, content_type: str = "application/json", accept: str | None = None):
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return gw.functions[FUNCTIONS[method]](func.HttpRequest(method, "http://localhost/api/guard", headers=headers, body=body))


async def answer(gw, method: str, body=None, key: str | None = None, *, live: bool = False) -> dict:
    """The answer; a GET's without what it adds beside the guard (spent, prefixBlocks), unless `live`."""
    response = await call(gw, method, json.dumps(body).encode() if body is not None else b"", key)
    assert response.status_code == 200, response.get_body()
    answered = json.loads(response.get_body())
    if method == "GET" and not live:
        assert set(answered) >= {"spent", "prefixBlocks"}
        answered.pop("spent"), answered.pop("prefixBlocks")
    return answered


def stored(gw, licensee: str = LICENSEE) -> str | None:
    settings = gw.use.licensees._store.settings.get(licensee)
    return settings.guard if settings else None


async def test_without_its_own_guard_a_licensee_reads_the_default_marked_as_such(gw):
    assert await answer(gw, "GET") == DEFAULT


async def test_a_licensee_tightens_its_guard_reads_it_back_and_can_put_back_what_it_read(gw):
    tightened = await answer(gw, "PUT", {"Countries": {"au": "monitor"}, "caps": {"dailySegments": 1000, "monthlyCost": "250"}})
    assert tightened == {**DEFAULT, "source": "licensee", "countries": {"AU": "monitor"},
                         "caps": {"dailySegments": 1000, "monthlyCost": "250.00"}}
    assert await answer(gw, "GET") == tightened
    assert (await gw.use.licensees.guard(LICENSEE)).caps.daily_segments == 1000  # what accept and dispatch read
    # Source, currency, spent and prefixBlocks are not fields of a change: what GET answered can be put back as it is.
    assert await answer(gw, "PUT", await answer(gw, "GET", live=True)) == tightened


async def test_a_get_answers_what_each_cap_has_used_and_the_live_prefix_blocks(gw):
    from datetime import timedelta

    from sms.domain.model import utcnow
    from sms.domain.pumping import PrefixBlock

    await answer(gw, "PUT", {"caps": {"dailySegments": 10}})
    await gw.use.spend.reserve(LICENSEE, (await gw.use.licensees.guard(LICENSEE)).caps, "c" * 32, 3, 150_000)
    now = utcnow()
    await gw.use.pumping._store.put(PrefixBlock(LICENSEE, "+4479461", now, now + timedelta(minutes=30), 40, 2, timedelta(hours=1)))
    shown = await answer(gw, "GET", live=True)
    by_cap = {u["cap"]: u for u in shown["spent"]}
    assert set(by_cap) == {"dailySegments", "dailyCost", "monthlySegments", "monthlyCost"}
    assert (by_cap["dailySegments"]["limit"], by_cap["dailySegments"]["used"]) == (10, 3)
    assert "limit" not in by_cap["dailyCost"] and by_cap["dailyCost"]["used"] == "0.15"
    assert by_cap["dailySegments"]["period"] == now.date().isoformat()  # the licensee's zone: UTC until it sets one
    [block] = shown["prefixBlocks"]
    assert (block["prefix"], block["sends"], block["confirmed"]) == ("+4479461", 40, 2)


async def test_jsv_in_and_out(gw):
    response = await call(gw, "PUT", b"{Countries:{FR:block},Caps:{DailySegments:20}}", content_type="text/jsv", accept="text/jsv")
    assert response.status_code == 200, response.get_body()
    assert response.headers["Content-Type"].startswith("text/jsv")
    text = response.get_body().decode()
    assert "FR:block" in text and "DailySegments:20" in text


@pytest.mark.parametrize("change, loosened", [
    ({"countries": {"GB": "allow"}}, "Countries.GB: block -> allow"),
    ({"numberTypes": {"premium_rate": "allow"}}, "NumberTypes.premium_rate: block -> allow"),
    ({"pumping": "off"}, "Pumping: enforce -> off"),
    ({"safeList": ["+614"]}, "SafeList: adds +614"),
    ({"caps": {"dailySegments": 1001}}, "Caps.DailySegments: 1000 -> 1001"),
    ({"caps": {"dailySegments": None}}, "Caps.DailySegments: 1000 -> none"),
])
async def test_a_change_that_would_loosen_the_guard_is_a_403_naming_it_and_nothing_is_saved(gw, change, loosened):
    await answer(gw, "PUT", {"caps": {"dailySegments": 1000}})
    before = stored(gw)
    response = await call(gw, "PUT", json.dumps(change).encode())
    assert response.status_code == 403, response.get_body()
    status = json.loads(response.get_body())["responseStatus"]
    assert loosened in status["message"] and "python -m sms guard set" in status["message"]
    assert stored(gw) == before


async def test_going_back_to_the_default_is_a_loosening_only_when_the_default_permits_more(gw):
    await answer(gw, "PUT", {"caps": {"dailySegments": 1000}})
    response = await call(gw, "DELETE")
    assert response.status_code == 403
    assert "Caps.DailySegments: 1000 -> none" in json.loads(response.get_body())["responseStatus"]["message"]
    assert stored(gw) is not None
    # The operator made the licensee's guard looser than the default: the licensee may go back to it.
    await gw.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}, "caps": {"dailySegments": None}}, may_loosen=True)
    assert await answer(gw, "DELETE") == DEFAULT and stored(gw) is None


@pytest.mark.parametrize("body, fields", [
    ({"countries": {"XX": "allow"}, "pumping": "sometimes"}, ["Countries.XX", "Pumping"]),
    ({"caps": {"dailyCost": "ten dollars"}}, ["Caps.dailyCost"]),
    ({"caps": {"dailyCost": "1e999999999", "monthlyCost": "1e-999999999"}}, ["Caps.dailyCost", "Caps.monthlyCost"]),
    ({"safeList": ["+61 4x"]}, ["SafeList[0]"]),
    ({"safeList": ["+6\u0661\u0664"]}, ["SafeList[0]"]),  # Arabic-Indic digits after the first: no stored number has them
    ({"colour": "red"}, ["colour"]),
    ([{"countries": {}}], ["Guard"]),
])
async def test_a_body_that_is_no_guard_is_a_400_naming_each_problem(gw, body, fields):
    response = await call(gw, "PUT", json.dumps(body).encode())
    assert response.status_code == 400, response.get_body()
    assert [e["fieldName"] for e in json.loads(response.get_body())["responseStatus"]["errors"]] == fields
    assert stored(gw) is None


@pytest.mark.parametrize("body", [b"", b"{", b"[" * 100_000, b'{"countries": {"\\ud800": "allow"}}', b"\xff\xfe",
                                  json.dumps({"countries": {str(i): "block" for i in range(5000)}}).encode()])
async def test_bodies_no_reader_takes_are_400s_never_500s(gw, body):
    response = await call(gw, "PUT", body)
    assert response.status_code == 400, response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["message"]
    assert stored(gw) is None


async def test_one_licensee_never_reads_or_changes_another_s_guard(gw):
    theirs, record = new_key(OTHER)
    await gw.auth._store.add(record)
    await answer(gw, "PUT", {"countries": {"AU": "monitor"}})
    assert await answer(gw, "GET", key=theirs) == DEFAULT
    await answer(gw, "PUT", {"caps": {"monthlySegments": 5}}, key=theirs)
    assert "monthlySegments" not in (await answer(gw, "GET"))["caps"]
    assert (await answer(gw, "GET", key=theirs))["countries"] == {"AU": "allow"}


async def test_without_a_key_nothing_is_read_or_changed(gw):
    for method, name in FUNCTIONS.items():
        response = await gw.functions[name](func.HttpRequest(method, "http://localhost/api/guard", headers={},
                                                             body=b'{"caps": {"dailySegments": 1}}'))
        assert response.status_code == 401
    assert stored(gw) is None
