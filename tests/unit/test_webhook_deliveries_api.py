"""GET /api/webhooks/{endpointId}/deliveries and POST /api/webhooks/{endpointId}/replay over the app's own
functions and the fakes: the delivery log a page at a time, one event or a time range sent again, each
wrong field a 400 naming it with nothing queued, another licensee's endpoint as missing as a missing one."""
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from sms.domain.events import EventBatch, WebhookEvent, batch_id
from sms.domain.model import utcnow
from sms.storage import DeliveryRecord
from sms.wire import jsv
from tests.fakes import LICENSEE, OTHER
from tests.unit.test_webhooks_api import add, errors, other_key

DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
COMM_A, COMM_B = "ca" * 16, "cb" * 16


def call(gw, function: str, endpoint_id: str, body: bytes = b"", key: str | None = None, params=None,
         content_type: str = "application/json", accept: str | None = None, method: str | None = None):
    method = method or {"webhooks_deliveries": "GET", "webhooks_replay": "POST"}[function]
    headers = {"Authorization": f"Bearer {key or gw.key}", "Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return gw.functions[function](func.HttpRequest(method, f"http://localhost/api/webhooks/{endpoint_id}", headers=headers,
                                                   params=params or {}, route_params={"endpointId": endpoint_id}, body=body))


def replay(gw, endpoint_id: str, body: dict, **options):
    return call(gw, "webhooks_replay", endpoint_id, json.dumps(body).encode(), **options)


async def endpoint(gw, event_types=None) -> str:
    response, added = await add(gw, event_types=event_types)
    assert response.status_code == 200
    return added["endpointId"]


async def written(gw, when: datetime, comm_id: str = COMM_A, licensee: str = LICENSEE,
                  types=("message.sent", "message.delivered")) -> list[WebhookEvent]:
    """A batch of events as the ledger writes one, at `when`."""
    batch = batch_id(when)
    events = tuple(WebhookEvent(f"evt_{batch}_{comm_id}_{i}{t.split('.')[1][0]}", t, json.dumps({"type": t}))
                   for i, t in enumerate(types))
    await gw.world.ledger.add(EventBatch(licensee, comm_id, batch, events))
    return list(events)


def queued(gw):
    return [delivery for delivery, _ in gw.world.deliveries.take()]


def attempt(endpoint_id: str, minutes: int, **fields) -> DeliveryRecord:
    return DeliveryRecord(**{"licensee_id": LICENSEE, "endpoint_id": endpoint_id, "at": DAY + timedelta(minutes=minutes),
                             "event_id": f"evt_{minutes}", "event_type": "message.sent", "attempt": 1, "outcome": "delivered",
                             "status": 200, "latency_ms": 40, **fields})


def body_of(response) -> dict:
    return json.loads(response.get_body())


# -- the delivery log ----------------------------------------------------------------------------

async def test_the_delivery_log_is_newest_first_with_every_field_and_only_this_endpoints(gw):
    mine, theirs = await endpoint(gw), await endpoint(gw)
    await gw.world.delivery_log.add([
        attempt(mine, 1),
        attempt(mine, 3, event_type="message.failed", attempt=2, outcome="retry", status=503, latency_ms=15_002,
                error="503 Service Unavailable", response_body="try later", replay=True),
        attempt(mine, 2, outcome="blocked", status=None, error="resolves to 10.0.0.5, a private address", response_body=""),
        attempt(theirs, 4),
    ])
    response = await call(gw, "webhooks_deliveries", mine)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    page = body_of(response)
    assert [d["eventId"] for d in page["deliveries"]] == ["evt_3", "evt_2", "evt_1"] and "continuationToken" not in page
    assert page["deliveries"][0] == {"at": "2026-11-20T00:03:00Z", "eventId": "evt_3", "eventType": "message.failed", "attempt": 2,
                                     "outcome": "retry", "statusCode": 503, "latencyMs": 15002, "error": "503 Service Unavailable",
                                     "responseBody": "try later", "replay": True}
    blocked = page["deliveries"][1]
    assert blocked["outcome"] == "blocked" and "statusCode" not in blocked and "responseBody" not in blocked
    assert blocked["replay"] is False


async def test_the_log_comes_a_page_at_a_time_with_parameter_names_in_any_case(gw):
    mine = await endpoint(gw)
    await gw.world.delivery_log.add([attempt(mine, m) for m in range(5)])
    first = body_of(await call(gw, "webhooks_deliveries", mine, params={"TAKE": "2"}))
    assert [d["eventId"] for d in first["deliveries"]] == ["evt_4", "evt_3"] and first["continuationToken"]
    second = body_of(await call(gw, "webhooks_deliveries", mine, params={"Take": "2", "CONTINUATIONTOKEN": first["continuationToken"]}))
    assert [d["eventId"] for d in second["deliveries"]] == ["evt_2", "evt_1"]
    last = body_of(await call(gw, "webhooks_deliveries", mine, params={"take": "2", "continuationToken": second["continuationToken"]}))
    assert [d["eventId"] for d in last["deliveries"]] == ["evt_0"] and "continuationToken" not in last


async def test_a_log_token_goes_on_with_its_own_endpoint_only(gw):
    """Issue 23: a token is bound to the log it came from; another endpoint's log refuses it, naming it."""
    mine, theirs = await endpoint(gw), await endpoint(gw)
    await gw.world.delivery_log.add([attempt(mine, m) for m in range(3)] + [attempt(theirs, m) for m in range(3)])
    token = body_of(await call(gw, "webhooks_deliveries", mine, params={"take": "1"}))["continuationToken"]
    response = await call(gw, "webhooks_deliveries", theirs, params={"take": "1", "continuationToken": token})
    assert response.status_code == 400 and errors(response) == ["continuationToken"]
    assert "another" in body_of(response)["responseStatus"]["message"]
    rest = body_of(await call(gw, "webhooks_deliveries", mine, params={"continuationToken": token}))
    assert [d["eventId"] for d in rest["deliveries"]] == ["evt_1", "evt_0"]


async def test_the_log_in_jsv(gw):
    mine = await endpoint(gw)
    await gw.world.delivery_log.add([attempt(mine, 1, error="timed out", status=None)])
    response = await call(gw, "webhooks_deliveries", mine, params={"format": "jsv"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/jsv")
    [row] = jsv.loads(response.get_body().decode())["Deliveries"]
    assert row["EventId"] == "evt_1" and row["Error"] == "timed out" and row["LatencyMs"] == "40" and "StatusCode" not in row


@pytest.mark.parametrize("params, field", [
    ({"take": "x"}, "take"), ({"take": "0"}, "take"), ({"take": "201"}, "take"), ({"take": "-1"}, "take"),
    ({"continuationToken": "not-one-of-ours"}, "continuationToken"),
])
async def test_a_wrong_log_parameter_is_a_400_naming_it(gw, params, field):
    mine = await endpoint(gw)
    response = await call(gw, "webhooks_deliveries", mine, params=params)
    assert response.status_code == 400, response.get_body()
    assert errors(response) == [field]


async def test_a_disabled_endpoint_still_shows_its_log(gw):
    mine = await endpoint(gw)
    await gw.world.delivery_log.add([attempt(mine, 1, outcome="gone", status=410)])
    await disable(gw)
    page = body_of(await call(gw, "webhooks_deliveries", mine))
    assert [(d["outcome"], d["statusCode"]) for d in page["deliveries"]] == [("gone", 410)]


# -- replay --------------------------------------------------------------------------------------

async def disable(gw):
    [stored] = gw.world.webhooks.endpoints.values()
    await gw.world.webhooks.replace(replace(stored, disabled_at=utcnow(), disabled_reason="the receiver answered 410 Gone"))


async def test_one_event_is_queued_again_for_the_endpoint_alone(gw):
    mine = await endpoint(gw)
    sent, delivered = await written(gw, DAY)
    response = await replay(gw, mine, {"eventId": delivered.id})
    assert response.status_code == 200 and body_of(response) == {"queued": 1, "eventId": delivered.id}
    [delivery] = queued(gw)
    assert (delivery.endpoint_id, delivery.comm_id, delivery.batch) == (mine, COMM_A, batch_id(DAY))
    assert delivery.only == (delivered.id,) and delivery.replay is True


async def test_a_replay_request_in_jsv_and_as_a_form(gw):
    mine = await endpoint(gw)
    sent, _ = await written(gw, DAY)
    response = await call(gw, "webhooks_replay", mine, f"{{EventId:{sent.id}}}".encode(), content_type="text/jsv",
                          params={"format": "jsv"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/jsv")
    assert jsv.loads(response.get_body().decode()) == {"Queued": "1", "EventId": sent.id}
    ranged = await call(gw, "webhooks_replay", mine, b"From=2026-11-20T11%3A00%3A00%2B11%3A00&To=2026-11-20",
                        content_type="application/x-www-form-urlencoded", accept="text/jsv")
    assert jsv.loads(ranged.get_body().decode()) == {"Queued": "1"}
    quoted = await call(gw, "webhooks_replay", mine, b'{From:"2026-11-20T11:00:00+11:00",To:2026-11-20}', content_type="text/jsv")
    assert body_of(quoted) == {"queued": 1}
    assert [(d.only, d.batch) for d in queued(gw)] == [((sent.id,), batch_id(DAY)), (None, batch_id(DAY)), (None, batch_id(DAY))]


async def test_a_time_range_queues_each_batch_written_in_it_once(gw):
    mine = await endpoint(gw)
    await written(gw, DAY - timedelta(microseconds=1))  # before the range
    await written(gw, DAY)  # its first instant: in
    await written(gw, DAY + timedelta(hours=5), COMM_B)
    await written(gw, DAY + timedelta(hours=6), licensee=OTHER)  # another licensee's
    await written(gw, DAY + timedelta(days=1))  # its end: out
    response = await replay(gw, mine, {"from": "2026-11-20T11:00:00+11:00", "to": "2026-11-21T00:00:00Z"})
    assert response.status_code == 200 and body_of(response) == {"queued": 2}
    assert [(d.comm_id, d.batch, d.only, d.replay) for d in queued(gw)] == [
        (COMM_A, batch_id(DAY), None, True), (COMM_B, batch_id(DAY + timedelta(hours=5)), None, True)]
    # Days, as GET /api/sms takes them: To takes its day whole.
    assert body_of(await replay(gw, mine, {"From": "2026-11-20", "To": "2026-11-20"})) == {"queued": 2}


async def test_a_long_range_answers_a_token_that_goes_on_with_the_same_range(gw, monkeypatch):
    from sms.usecases import delivery

    monkeypatch.setattr(delivery, "REPLAY_BATCHES", 2)
    mine = await endpoint(gw)
    for hour in range(3):
        await written(gw, DAY + timedelta(hours=hour))
    span = {"from": "2026-11-20", "to": "2026-11-21"}
    first = body_of(await replay(gw, mine, span))
    assert first["queued"] == 2 and first["continuationToken"]
    rest = body_of(await replay(gw, mine, {**span, "continuationToken": first["continuationToken"]}))
    assert rest == {"queued": 1}
    assert [d.batch for d in queued(gw)] == [batch_id(DAY + timedelta(hours=h)) for h in range(3)]


async def test_a_replay_token_goes_on_with_its_own_endpoint_and_range_only(gw, monkeypatch):
    """Issue 23: a token from one range, or one endpoint, passed with another went on where the first
    stopped, skipping events of the second. Refused now, naming it, and nothing is queued."""
    from sms.usecases import delivery

    monkeypatch.setattr(delivery, "REPLAY_BATCHES", 1)
    mine, theirs = await endpoint(gw), await endpoint(gw)
    for hour in range(3):
        await written(gw, DAY + timedelta(hours=hour))
    span = {"from": "2026-11-20", "to": "2026-11-21"}
    token = body_of(await replay(gw, mine, span))["continuationToken"]
    queued(gw)
    for other, body in ((mine, {"from": "2026-11-20T01:00:00Z", "to": "2026-11-21"}), (mine, {"from": "2026-11-20", "to": "2026-11-22"}),
                        (theirs, span)):
        response = await replay(gw, other, {**body, "continuationToken": token})
        assert response.status_code == 400 and errors(response) == ["continuationToken"], (other, body)
        assert queued(gw) == []
    # The same range written another way is the same range.
    again = body_of(await replay(gw, mine, {"from": "2026-11-20T11:00:00+11:00", "to": "2026-11-22T00:00:00Z", "continuationToken": token}))
    assert again == {"queued": 1, "continuationToken": again["continuationToken"]} and [d.batch for d in queued(gw)] == [
        batch_id(DAY + timedelta(hours=1))]


@pytest.mark.parametrize("body, fields", [
    ({}, ["EventId"]),
    ({"eventId": "  ", "from": ""}, ["EventId"]),
    ({"eventId": "evt_x", "from": "2026-11-20", "to": "2026-11-21"}, ["EventId"]),
    ({"eventId": "evt_x", "to": "2026-11-21"}, ["EventId"]),
    ({"eventId": "evt_x", "continuationToken": "2"}, ["ContinuationToken"]),
    ({"from": "2026-11-20"}, ["To"]),
    ({"to": "2026-11-20"}, ["From"]),
    ({"from": "2026-11-20T09:00:00", "to": "2026-11-21T09:00:00+11:00"}, ["From"]),  # no offset
    ({"from": "2026-11-20T09:00:00+11:00:30", "to": "2026-11-21T09:00:00+1100"}, ["From", "To"]),  # offsets: Z or +HH:MM
    ({"from": "2026-11-20T09:00:00Z", "to": "tomorrow"}, ["To"]),
    ({"from": "last week", "to": "2026-11-21T09:00:00"}, ["From", "To"]),
    ({"from": "0001-01-01T00:00:00+01:00", "to": "9999-12-31"}, ["From", "To"]),  # outside what a datetime holds in UTC
    ({"from": "0001-01-01T00:00:00Z", "to": "2026-11-21"}, ["From"]),  # a datetime holds it, the stores' keys do not (issue 23)
    ({"from": "2026-11-20", "to": "2300-01-01"}, ["To"]),
    ({"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, ["From"]),  # from after to
    ({"from": "2026-11-20T00:00:00+11:00", "to": "2026-11-19T13:00:00Z"}, ["From"]),  # the same instant
    ({"from": "2026-11-20", "to": "2026-11-21", "continuationToken": "not-one-of-ours"}, ["continuationToken"]),
    ({"eventId": 7}, ["EventId"]),
    ({"from": ["2026-11-20"], "to": "2026-11-21"}, ["From"]),
])
async def test_a_wrong_replay_request_is_a_400_naming_the_field_and_queues_nothing(gw, body, fields):
    mine = await endpoint(gw)
    await written(gw, DAY)
    response = await replay(gw, mine, body)
    assert response.status_code == 400, response.get_body()
    assert body_of(response)["responseStatus"]["errorCode"] == "ValidationException"
    assert errors(response) == fields
    assert queued(gw) == []


async def test_an_empty_or_unreadable_replay_body_is_a_400(gw):
    mine = await endpoint(gw)
    for body in (b"", b"{not json", b"[1]"):
        assert (await call(gw, "webhooks_replay", mine, body)).status_code == 400
    assert queued(gw) == []


async def test_a_disabled_endpoint_is_not_replayed_to_until_it_is_enabled(gw):
    mine = await endpoint(gw)
    sent, _ = await written(gw, DAY)
    await disable(gw)
    for body in ({"eventId": sent.id}, {"from": "2026-11-20", "to": "2026-11-21"}):
        response = await replay(gw, mine, body)
        assert response.status_code == 400 and errors(response) == ["EndpointId"]
        assert "enable it" in body_of(response)["responseStatus"]["message"]
    assert queued(gw) == []
    await gw.functions["webhooks_enable"](func.HttpRequest("POST", "http://localhost/", headers={"Authorization": f"Bearer {gw.key}"},
                                                           route_params={"endpointId": mine}, body=b""))
    assert body_of(await replay(gw, mine, {"eventId": sent.id})) == {"queued": 1, "eventId": sent.id}


async def test_an_event_the_endpoint_does_not_take_is_refused_and_a_missing_one_is_404(gw):
    mine = await endpoint(gw, event_types=["message.failed"])
    sent, _ = await written(gw, DAY)
    refused = await replay(gw, mine, {"eventId": sent.id})
    assert refused.status_code == 400 and errors(refused) == ["EventId"] and "message.sent" in body_of(refused)["responseStatus"]["message"]
    theirs, = await written(gw, DAY, COMM_B, licensee=OTHER, types=("message.failed",))
    for event_id in (theirs.id, sent.id.replace("_0s", "_5f"), "evt_not_ours"):
        missing = await replay(gw, mine, {"eventId": event_id})
        assert missing.status_code == 404 and body_of(missing)["responseStatus"]["errorCode"] == "NotFound"
    assert queued(gw) == []


async def test_another_licensees_endpoint_answers_exactly_as_a_missing_one(gw):
    mine = await endpoint(gw)
    sent, _ = await written(gw, DAY)
    await gw.world.delivery_log.add([attempt(mine, 1)])
    theirs_key = await other_key(gw)
    for function, body in (("webhooks_deliveries", b""), ("webhooks_replay", json.dumps({"eventId": sent.id}).encode()),
                           ("webhooks_replay", b'{"from": "2026-11-20", "to": "2026-11-21"}')):
        theirs = await call(gw, function, mine, body, key=theirs_key)
        missing = await call(gw, function, "d" * 32, body, key=theirs_key)
        assert theirs.status_code == missing.status_code == 404
        assert body_of(theirs)["responseStatus"]["message"].replace(mine, "X") == \
            body_of(missing)["responseStatus"]["message"].replace("d" * 32, "X")
        assert "evt_1" not in theirs.get_body().decode()
    assert queued(gw) == []


async def test_a_wrong_method_is_405_and_a_gateway_without_delivery_is_a_500_without_detail(gw):
    mine = await endpoint(gw)
    wrong = await call(gw, "webhooks_replay", mine, method="GET")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    wrong = await call(gw, "webhooks_deliveries", mine, b'{"eventId": "x"}', method="POST")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"
    gw.use = replace(gw.use, delivery=None)
    for function, body in (("webhooks_deliveries", b""), ("webhooks_replay", b'{"from": "2026-11-20", "to": "2026-11-21"}')):
        broken = await call(gw, function, mine, body)
        assert broken.status_code == 500
        assert body_of(broken)["responseStatus"]["message"] == "An unexpected error occurred"
