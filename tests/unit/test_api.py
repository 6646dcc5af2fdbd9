"""The HTTP trigger functions, called directly as the Functions worker calls them, over fakes."""
import json
from dataclasses import replace
from datetime import timedelta

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain.errors import StorageUnavailable
from sms.domain.pacing import RequestRateLimiter
from sms.entrypoints.routes import IMMEDIATE_ROUTES, SEND_ROUTES
from sms.usecases.auth import Authenticator, new_key
from sms.usecases.idempotency import IN_PROGRESS_GRACE
from tests.fakes import (
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryIdempotencyStore,
    InMemoryJobQueue,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
)

LICENSEE = "a" * 32
OTHER = "b" * 32


@pytest.fixture
async def gateway():
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    other_key, other_record = new_key(OTHER)
    await keys.add(record)
    await keys.add(other_record)
    store, provider, idempotency = InMemoryMessageStore(), RecordingProvider(), InMemoryIdempotencyStore()
    return FakeGateway(
        assembled(store, InMemoryJobQueue(), provider, idempotency=idempotency),
        Authenticator(keys), RequestRateLimiter(0),
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SMS_MAX_REQUEST_BYTES": "2048"}),
        store=store, provider=provider, idempotency=idempotency, key=key, other_key=other_key,
    )


def post(gw, function: str, body, key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gw.functions[function](func.HttpRequest("POST", f"http://localhost/api/{function}", headers=headers, body=data))


def get_status(gw, comm_id: str, key: str):
    req = func.HttpRequest("GET", f"http://localhost/api/sms/{comm_id}", headers={"Authorization": f"Bearer {key}"},
                           route_params={"commId": comm_id}, body=b"")
    return gw.functions["sms_status"](req)


GOOD = {"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "hello"}}


@pytest.mark.parametrize("name", sorted(SEND_ROUTES) + sorted(IMMEDIATE_ROUTES))
async def test_each_send_function_answers_a_comm_response(gateway, name):
    response = await post(gateway, name, GOOD, gateway.key)
    body = json.loads(response.get_body())
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["status"] is True and len(body["commId"]) == 32
    expected = "Sent to 1 of 1 recipient" if name in IMMEDIATE_ROUTES else "Queued for 1 recipient"
    assert body["message"] == expected


async def test_missing_and_bad_keys_get_401_with_a_clear_message(gateway):
    missing = await post(gateway, "send", GOOD, None)
    assert missing.status_code == 401
    assert "Missing API key" in json.loads(missing.get_body())["responseStatus"]["message"]
    wrong = await post(gateway, "send", GOOD, gateway.key[:-2] + "zz")
    assert wrong.status_code == 401
    assert json.loads(wrong.get_body())["responseStatus"]["errorCode"] == "Unauthorized"


async def test_bad_input_gets_400_naming_the_field(gateway):
    response = await post(gateway, "send", {"SMSModel": {"To": [{"PhoneNumber": "123"}], "MessageBody": "x"}}, gateway.key)
    status = json.loads(response.get_body())["responseStatus"]
    assert response.status_code == 400
    assert status["errors"][0]["fieldName"] == "SMSModel.To[0].PhoneNumber"


async def test_a_chunked_body_gets_a_400_saying_it_is_not_supported(gateway):
    """The Functions host hands a function no body unless Content-Length > 0 (GrpcMessageConversionExtensions.ToRpcHttp,
    host 4.1037.0): a body sent chunked arrives empty, with its transfer-encoding header. A 400 naming the header says
    what to change (send a Content-Length); "the body is empty" alone would puzzle a client that sent one. Not 411
    Length Required: every other unreadable request is a 400 in ServiceStack's shape, which its clients already handle."""
    for function, body in (("send", b""), ("send_immediate", b""), ("webhooks_add", b"")):
        req = func.HttpRequest("POST", f"http://localhost/api/{function}", body=body,
                               headers={"Authorization": f"Bearer {gateway.key}", "Transfer-Encoding": "chunked",
                                        "Content-Type": "application/json"})
        response = await gateway.functions[function](req)
        status = json.loads(response.get_body())["responseStatus"]
        assert response.status_code == 400, function
        assert status["errors"] == [{"errorCode": "NotSupported", "fieldName": "Transfer-Encoding", "message": status["message"]}]
        assert "chunked" in status["message"] and "Content-Length" in status["message"]
    assert gateway.store.messages == {}


async def test_an_empty_body_gets_a_400_that_names_chunked_bodies_too(gateway):
    """Whatever stripped the header on the way, an empty body says that a chunked one arrives empty."""
    response = await post(gateway, "send", b"", gateway.key)
    message = json.loads(response.get_body())["responseStatus"]["message"]
    assert response.status_code == 400 and "empty" in message and "chunked" in message and "Content-Length" in message


async def test_malformed_json_gets_400_not_500(gateway):
    response = await post(gateway, "send", b'{"SMSModel": ', gateway.key)
    assert response.status_code == 400
    assert "not valid JSON" in json.loads(response.get_body())["responseStatus"]["message"]


async def test_another_licensee_in_the_body_gets_403(gateway):
    body = {"SMSModel": {**GOOD["SMSModel"], "LicenseeId": OTHER}}
    assert (await post(gateway, "send", body, gateway.key)).status_code == 403


async def test_status_is_for_the_keys_licensee_only(gateway):
    comm_id = json.loads((await post(gateway, "send", GOOD, gateway.key)).get_body())["commId"]
    mine = await get_status(gateway, comm_id, gateway.key)
    assert mine.status_code == 200 and json.loads(mine.get_body())["recipients"][0]["status"] == "queued"
    theirs = await get_status(gateway, comm_id, gateway.other_key)
    assert theirs.status_code == 404 and json.loads(theirs.get_body())["responseStatus"]["errorCode"] == "NotFound"
    assert (await get_status(gateway, "not-a-guid", gateway.key)).status_code == 400


async def test_storage_outage_is_a_503_and_a_bug_is_a_500_without_internals(gateway, monkeypatch):
    async def down(*args):
        raise StorageUnavailable()

    monkeypatch.setattr(gateway.use.accept, "queue", down)
    response = await post(gateway, "send", GOOD, gateway.key)
    assert response.status_code == 503

    async def bug(*args):
        raise KeyError("internal detail")

    monkeypatch.setattr(gateway.use.accept, "queue", bug)
    response = await post(gateway, "send", GOOD, gateway.key)
    text = response.get_body().decode()
    assert response.status_code == 500
    assert "internal detail" not in text and "Traceback" not in text


def call(gw, function: str, method="POST", body=b"", headers=None, route_params=None, params=None):
    req = func.HttpRequest(method, f"http://localhost/{function}", headers=headers or {}, body=body,
                           route_params=route_params or {}, params=params or {})
    return gw.functions[function](req)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


async def test_other_methods_on_a_send_route_get_405_with_allow(gateway):
    response = await call(gateway, "send", method="GET", headers=bearer(gateway.key))
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert json.loads(response.get_body())["responseStatus"]["errorCode"] == "MethodNotAllowed"


async def test_a_body_over_the_limit_gets_413(gateway):
    response = await call(gateway, "send", body=b'{"SMSModel": {"Notes": "' + b"x" * 3000 + b'"}}', headers=bearer(gateway.key))
    assert response.status_code == 413
    assert "limit is 2048" in json.loads(response.get_body())["responseStatus"]["message"]


async def test_an_unsupported_content_type_gets_415(gateway):
    response = await call(gateway, "send", body=b"<SMSSend/>", headers={**bearer(gateway.key), "Content-Type": "application/xml"})
    assert response.status_code == 415


async def test_errors_in_jsv_use_the_dotnet_names(gateway):
    response = await call(gateway, "send", body=b"{SMSModel:{To:[],MessageBody:x}}",
                          headers={**bearer(gateway.key), "Content-Type": "text/jsv", "Accept": "text/jsv"})
    assert response.status_code == 400 and response.headers["Content-Type"] == "text/jsv; charset=utf-8"
    assert response.get_body().decode() == (
        "{ResponseStatus:{ErrorCode:ValidationException,Message:SMSModel.To needs at least one recipient,"
        "Errors:[{ErrorCode:NotEmpty,FieldName:SMSModel.To,Message:SMSModel.To needs at least one recipient}]}}"
    )


@pytest.mark.parametrize("suffix, content_type", [("json", "application/json"), ("jsv", "text/jsv"), ("JSV", "text/jsv")])
async def test_a_format_suffix_picks_the_response_format(gateway, suffix, content_type):
    response = await call(gateway, "send_with_format", body=json.dumps(GOOD).encode(), headers=bearer(gateway.key),
                          route_params={"format": suffix})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type)


async def test_an_unknown_suffix_is_404(gateway):
    response = await call(gateway, "send_with_format", body=b"{}", headers=bearer(gateway.key), route_params={"format": "xml"})
    assert response.status_code == 404


async def test_json_reply_route_takes_one_request_or_a_batch(gateway):
    one = await call(gateway, "json_reply", body=json.dumps(GOOD).encode(), headers=bearer(gateway.key),
                     route_params={"operation": "SMSSend"})
    assert one.status_code == 200 and json.loads(one.get_body())["status"] is True

    batch = await call(gateway, "json_reply", body=json.dumps([GOOD, GOOD]).encode(), headers=bearer(gateway.key),
                       route_params={"operation": "SMSSend[]"})
    replies = json.loads(batch.get_body())
    assert batch.status_code == 200 and [r["status"] for r in replies] == [True, True]
    assert replies[0]["commId"] != replies[1]["commId"]

    jsv_reply = await call(gateway, "jsv_reply", body=b"{SMSModel:{To:[{PhoneNumber:+61412345678}],MessageBody:hi}}",
                           headers=bearer(gateway.key), route_params={"operation": "smssend"})
    assert jsv_reply.status_code == 200 and jsv_reply.get_body().startswith(b"{CommId:")


async def test_a_batch_with_one_bad_item_saves_nothing(gateway):
    bad = {"SMSModel": {"To": [{"PhoneNumber": "nope"}], "MessageBody": "x"}}
    response = await call(gateway, "json_reply", body=json.dumps([GOOD, bad]).encode(), headers=bearer(gateway.key),
                          route_params={"operation": "SMSSend[]"})
    assert response.status_code == 400
    assert json.loads(response.get_body())["responseStatus"]["errors"][0]["fieldName"] == "[1].SMSModel.To[0].PhoneNumber"
    assert gateway.store.messages == {}


async def test_servicestacks_auto_batch_route_takes_a_list(gateway):
    batch = await call(gateway, "sms_send_servicestack_batch", body=json.dumps([GOOD, GOOD]).encode(), headers=bearer(gateway.key))
    replies = json.loads(batch.get_body())
    assert batch.status_code == 200 and [r["status"] for r in replies] == [True, True]
    assert len(gateway.store.messages) == 2


async def test_an_unknown_operation_is_404(gateway):
    response = await call(gateway, "json_reply", body=b"{}", headers=bearer(gateway.key), route_params={"operation": "Hello"})
    assert response.status_code == 404 and "SMSSend" in json.loads(response.get_body())["responseStatus"]["message"]


async def test_basic_auth_with_the_key_as_user_name_works(gateway):
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(f"{gateway.key}:".encode()).decode()}
    response = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=basic)
    assert response.status_code == 200


async def test_status_accepts_a_format_suffix_on_the_comm_id(gateway):
    comm_id = json.loads((await post(gateway, "send", GOOD, gateway.key)).get_body())["commId"]
    response = await call(gateway, "sms_status", method="GET", headers=bearer(gateway.key), route_params={"commId": f"{comm_id}.jsv"})
    assert response.status_code == 200 and response.get_body().startswith(f"{{CommId:{comm_id},".encode())


async def test_status_with_an_unknown_format_suffix_is_404_as_readme_says(gateway):
    comm_id = json.loads((await post(gateway, "send", GOOD, gateway.key)).get_body())["commId"]
    response = await call(gateway, "sms_status", method="GET", headers=bearer(gateway.key), route_params={"commId": f"{comm_id}.xml"})
    assert response.status_code == 404
    assert json.loads(response.get_body())["responseStatus"]["message"] == "Unknown format suffix '.xml': use .json or .jsv"


async def test_openapi_and_metadata_are_served_without_a_key(gateway):
    document = await call(gateway, "openapi", method="GET")
    assert document.status_code == 200 and json.loads(document.get_body())["openapi"].startswith("3.")
    page = await call(gateway, "metadata", method="GET")
    assert page.status_code == 200 and b"<h2>SMSSend</h2>" in page.get_body()


async def test_an_idempotency_key_replays_the_original_answer(gateway):
    headers = {**bearer(gateway.key), "Idempotency-Key": "order-42"}
    first = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=headers)
    again = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=headers)
    assert first.status_code == again.status_code == 200 and first.get_body() == again.get_body()
    other = {"SMSModel": {**GOOD["SMSModel"], "MessageBody": "different"}}
    reused = await call(gateway, "send", body=json.dumps(other).encode(), headers=headers)
    assert reused.status_code == 422
    assert json.loads(reused.get_body())["responseStatus"]["errorCode"] == "IdempotencyKeyReused"


@pytest.mark.parametrize("headers, status, fragment", [
    ({"Idempotency-Key": "x" * 256}, 400, "1 to 255 printable characters"),
    ({"Repeatability-Request-ID": "r1", "Repeatability-First-Sent": "yesterday"}, 400, "must be an HTTP date"),
    ({"Repeatability-Request-ID": "r1", "Repeatability-First-Sent": "Mon, 01 Jan 2024 00:00:00 GMT"}, 412, "older than the 24-hour window"),
])
async def test_bad_idempotency_headers_are_refused(gateway, headers, status, fragment):
    response = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers={**bearer(gateway.key), **headers})
    assert response.status_code == status
    assert fragment in json.loads(response.get_body())["responseStatus"]["message"]


async def test_repeatability_headers_work_like_an_idempotency_key(gateway):
    from email.utils import format_datetime

    from sms.domain.model import utcnow

    headers = {**bearer(gateway.key), "Repeatability-Request-ID": "8d5c2a50-1d2e-4e3a-9c1f-2f0a1b2c3d4e",
               "Repeatability-First-Sent": format_datetime(utcnow(), usegmt=True)}
    first = await call(gateway, "send_immediate", body=json.dumps(GOOD).encode(), headers=headers)
    again = await call(gateway, "send_immediate", body=json.dumps(GOOD).encode(), headers=headers)
    assert first.get_body() == again.get_body() and len(gateway.provider.sent) == 1


async def test_a_batch_with_an_idempotency_key_answers_a_resend_as_it_did_and_saves_nothing_new(gateway):
    headers = {**bearer(gateway.key), "Idempotency-Key": "b1"}
    first = await call(gateway, "json_reply", body=json.dumps([GOOD, GOOD]).encode(), headers=headers,
                       route_params={"operation": "SMSSend[]"})
    again = await call(gateway, "json_reply", body=json.dumps([GOOD, GOOD]).encode(), headers=headers,
                       route_params={"operation": "SMSSend[]"})
    assert first.status_code == again.status_code == 200 and first.get_body() == again.get_body()
    assert len(gateway.store.messages) == 2  # two items, each once
    other = await call(gateway, "json_reply", body=json.dumps([GOOD]).encode(), headers={**bearer(gateway.key), "Idempotency-Key": "b1[0]"},
                       route_params={"operation": "SMSSend[]"})
    assert other.status_code == 200 and len(gateway.store.messages) == 3  # a client's own key never meets an item's


async def test_a_licensee_over_its_request_rate_gets_429_with_retry_after(gateway):
    now = [0.0]
    gateway.requests = RequestRateLimiter(per_minute=3, clock=lambda: now[0])
    statuses = [(await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=bearer(gateway.key))).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=bearer(gateway.key))
    assert limited.headers["Retry-After"] == "20"  # 3 a minute: a token every 20 s
    other = await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=bearer(gateway.other_key))
    assert other.status_code == 200  # another licensee has its own allowance
    now[0] = 20.0
    assert (await call(gateway, "send", body=json.dumps(GOOD).encode(), headers=bearer(gateway.key))).status_code == 200


async def test_a_batch_interrupted_by_storage_says_how_many_it_completed_and_a_keyed_retry_sends_nothing_twice(gateway):
    """Issue 12, item 3: an auto-batch answering 503 had already saved and queued part of itself, and
    its answer did not say which part; resending it texted those numbers twice. ServiceStack's
    answer for this is the X-AutoBatch-Completed header (and ResponseStatus.Meta["AutoBatchIndex"]);
    an Idempotency-Key on the batch makes the resend safe, item by item."""
    from sms.domain.errors import StorageUnavailable

    items = [{"SMSModel": {"To": [{"PhoneNumber": f"+6141200{i:04d}"}], "MessageBody": f"item {i}"}} for i in range(5)]
    store = gateway.store
    commit, calls = store.commit, []

    async def third_write_fails(staged):
        calls.append(staged.message.comm_id)
        if len(calls) == 3:
            raise StorageUnavailable()
        return await commit(staged)

    store.commit = third_write_fails
    headers = {**bearer(gateway.key), "Idempotency-Key": "batch-7"}
    interrupted = await call(gateway, "sms_send_servicestack_batch", body=json.dumps(items).encode(), headers=headers)
    assert interrupted.status_code == 503
    assert interrupted.headers["X-AutoBatch-Completed"] == "2"
    assert json.loads(interrupted.get_body())["responseStatus"]["meta"] == {"AutoBatchIndex": "2"}
    assert len(store.messages) == 2

    store.commit = commit
    # At once, the interrupted item may still be being written, as far as its key can tell: wait.
    too_soon = await call(gateway, "sms_send_servicestack_batch", body=json.dumps(items).encode(), headers=headers)
    assert too_soon.status_code == 409 and too_soon.headers["X-AutoBatch-Completed"] == "2"
    assert len(store.messages) == 2
    keys = gateway.idempotency.records
    for name, record in list(keys.items()):  # the client retries a little later
        keys[name] = replace(record, created_at=record.created_at - IN_PROGRESS_GRACE - timedelta(seconds=1))
    retried = await call(gateway, "sms_send_servicestack_batch", body=json.dumps(items).encode(), headers=headers)
    answers = json.loads(retried.get_body())
    assert retried.status_code == 200 and retried.headers["X-AutoBatch-Completed"] == "5"
    assert [a["status"] for a in answers] == [True] * 5
    assert [a["commId"] for a in answers[:2]] == calls[:2]  # the first two are the ones already saved
    assert len(store.messages) == 5  # and each item is saved once
    again = await call(gateway, "sms_send_servicestack_batch", body=json.dumps(items).encode(), headers=headers)
    assert json.loads(again.get_body()) == answers


@pytest.mark.parametrize("params, headers", [({"format": "jsv"}, {}), ({"format": "JSV"}, {}), ({}, {"Accept": "text/jsv"})])
async def test_health_answers_in_jsv_when_asked_as_every_route_does(gateway, params, headers):
    """?format=jsv (and Accept) choose the answer's format on every route, /api/health too; it answered JSON regardless."""
    req = func.HttpRequest("GET", "http://localhost/api/health", params=params, headers=headers, body=b"")
    response = await gateway.functions["health"](req)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/jsv; charset=utf-8"
    assert response.get_body() == (b"{Status:ok,Storage:{Status:ok},Provider:{Name:recording,Status:ok,Breaker:closed},"
                                   b"Providers:[{Name:recording,Status:ok,Breaker:closed}]}")
    default = await gateway.functions["health"](func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert json.loads(default.get_body())["status"] == "ok"
    assert default.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_the_providers_route_shows_each_providers_circuit_and_needs_a_key(gateway):
    """GET /api/providers (issue 26): every provider, closed until its calls fail, then open with why."""
    assert (await call(gateway, "providers", "GET")).status_code == 401
    answer = await call(gateway, "providers", "GET", headers=bearer(gateway.key))
    [provider] = json.loads(answer.get_body())["providers"]
    assert (provider["name"], provider["state"], provider["failuresInARow"], provider["countries"]) == ("recording", "closed", 0, [])

    breakers = gateway.use.breakers
    for _ in range(5):
        breakers.called("recording", False, "connection refused")
    breakers.delivered("recording|AU", False)
    [provider] = json.loads((await call(gateway, "providers", "GET", headers=bearer(gateway.key))).get_body())["providers"]
    assert provider["state"] == "open" and provider["reason"].startswith("5 calls in a row failed")
    assert [(c["country"], c["state"]) for c in provider["countries"]] == [("AU", "closed")]


async def test_health_shows_each_providers_breaker_and_stays_200_while_another_provider_can_send(gateway):
    """Issue 26: a provider down while another can send is `degraded`, still 200 (a load balancer keeps the
    worker); every provider down is 503. Each provider's breaker in this worker is beside its own answer."""
    from sms.providers import ProviderSet

    use = assembled(InMemoryMessageStore(), InMemoryJobQueue(), providers=ProviderSet([RecordingProvider(), Named("twilio-us")]))
    gateway.use = use
    for _ in range(5):
        use.breakers.called("twilio-us", False, "connection refused")
    gateway.down = {"twilio-us"}
    response = await gateway.functions["health"](func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    report = json.loads(response.get_body())
    assert response.status_code == 200 and report["status"] == "degraded"
    assert [(p["name"], p["status"], p["breaker"]) for p in report["providers"]] == [("recording", "ok", "closed"),
                                                                                     ("twilio-us", "unreachable", "open")]
    gateway.down = {"recording", "twilio-us"}
    assert (await gateway.functions["health"](func.HttpRequest("GET", "http://localhost/api/health", body=b""))).status_code == 503


class Named(RecordingProvider):
    def __init__(self, name):
        super().__init__()
        self.name = name
