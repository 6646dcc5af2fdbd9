"""Scheduling on the wire (issue 16): SMSModel's SendAt, ValidUntil, ValidityPeriod and Urgent in JSON, JSV
and form bodies, every 400 they can earn (naming the field, saving nothing), DELETE /api/sms/{commId}, and
the new statuses in the answers and the listing. Over the app's own functions and the fakes, with a clock
the test moves."""
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain.model import Status
from sms.domain.pacing import RequestRateLimiter
from sms.usecases.auth import Authenticator, new_key
from sms.usecases.job_rows import WRITE_ATTEMPTS
from sms.wire import SMSSend, jsv
from sms.wire.dto import SMSModel
from sms.wire.mapping import canonical_json
from tests.fakes import (
    ALEX,
    LICENSEE,
    OTHER,
    SAM,
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryIdempotencyStore,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
)

SYDNEY = timezone(timedelta(hours=11))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def gw():
    clock = Clock()
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    other_key, other_record = new_key(OTHER)
    await keys.add(record)
    await keys.add(other_record)
    store, queue, provider, ledger = InMemoryMessageStore(), InMemoryJobQueue(), RecordingProvider(), InMemoryLedgerStore()
    use = assembled(store, queue, provider, idempotency=InMemoryIdempotencyStore(), ledger=ledger, clock=clock)
    return FakeGateway(use, Authenticator(keys), RequestRateLimiter(0),
                       Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}),
                       clock=clock, store=store, queue=queue, provider=provider, key=key, other_key=other_key)


def _request(method: str, url: str, key: str, body: bytes = b"", content_type: str = "application/json",
             route_params: dict | None = None, params: dict | None = None, headers: dict | None = None) -> func.HttpRequest:
    return func.HttpRequest(method, url, headers={"Authorization": f"Bearer {key}", "Content-Type": content_type, **(headers or {})},
                            route_params=route_params or {}, params=params or {}, body=body)


def send(gw, model: dict, function: str = "sms_send", key: str | None = None, headers: dict | None = None):
    body = json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "Your appointment is today", **model}}).encode()
    return gw.functions[function](_request("POST", f"http://localhost/api/{function}", key or gw.key, body, headers=headers))


def send_as(gw, body: bytes, content_type: str):
    return gw.functions["sms_send"](_request("POST", "http://localhost/api/sms/send", gw.key, body, content_type))


def cancel(gw, comm_id: str, key: str | None = None, params: dict | None = None, method: str = "DELETE"):
    req = _request(method, f"http://localhost/api/sms/{comm_id}", key or gw.key, route_params={"commId": comm_id}, params=params)
    return gw.functions["sms_cancel"](req)


def status(gw, comm_id: str):
    req = _request("GET", f"http://localhost/api/sms/{comm_id}", gw.key, route_params={"commId": comm_id})
    return gw.functions["sms_status"](req)


def listing(gw, params: dict):
    return gw.functions["sms_list"](_request("GET", f"http://localhost/api/sms?{urlencode(params)}", gw.key, params=params))


def body_of(response) -> dict:
    return json.loads(response.get_body())


async def run_jobs(gw) -> None:
    """Run every job queued so far, as the queue trigger would once its delay has passed."""
    jobs, gw.queue.jobs = list(gw.queue.jobs), []
    for job, _ in jobs:
        await gw.use.dispatch.dispatch(job)


def _z(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- the new properties in every body format -----------------------------------------------------


def _jsv_model(send_at: str) -> str:
    return f'{{To:[{{PhoneNumber:"{SAM}"}}],MessageBody:hello,SendAt:"{send_at}",ValidityPeriod:7200,Urgent:true}}'


@pytest.mark.parametrize("form", ["json", "jsv", "jsv unquoted", "form", "multipart"])
async def test_send_at_validity_and_urgent_are_read_from_every_body_format(gw, form):
    send_at = (gw.clock.now + timedelta(hours=2)).astimezone(SYDNEY)
    text = send_at.isoformat()  # 2026-...T...+11:00
    if form == "json":
        body, content_type = json.dumps({"smsModel": {"to": [{"phoneNumber": SAM}], "messageBody": "hello", "sendAt": text,
                                                      "validityPeriod": 7200, "urgent": True}}).encode(), "application/json"
    elif form == "jsv":
        body, content_type = f"{{SMSModel:{_jsv_model(text)}}}".encode(), "text/jsv"
    elif form == "jsv unquoted":  # a colon inside a JSV value reads without quotes too
        jsv = f"{{SMSModel:{{To:[{{PhoneNumber:{SAM}}}],MessageBody:hello,SendAt:{text},ValidityPeriod:7200,Urgent:True}}}}"
        body, content_type = jsv.encode(), "text/jsv"
    elif form == "form":
        body, content_type = urlencode({"SMSModel": _jsv_model(text)}).encode(), "application/x-www-form-urlencoded"
    else:
        body = (f'--b\r\nContent-Disposition: form-data; name="SMSModel"\r\n\r\n{_jsv_model(text)}\r\n--b--\r\n').encode()
        content_type = "multipart/form-data; boundary=b"
    response = await send_as(gw, body, content_type)
    answer = body_of(response)
    assert response.status_code == 200, answer
    assert answer["status"] is True and answer["message"] == f"Scheduled for 1 recipient at {_z(send_at)}"
    message = gw.store.messages[answer["commId"]]
    assert message.send_at == send_at and message.valid_until == send_at + timedelta(seconds=7200) and message.urgent is True
    [(job, delay)] = gw.queue.jobs
    assert job.comm_id == answer["commId"] and delay == 7200  # the job waits on the queue until sendAt


async def test_a_dotnet_datetimeoffset_and_nulls_from_a_python_servicestack_client_are_read(gw):
    """ServiceStack.Text writes a DateTimeOffset with seven fractional digits; dataclasses_json writes None as null."""
    send_at = (gw.clock.now + timedelta(hours=3)).astimezone(SYDNEY)
    dotnet = send_at.strftime("%Y-%m-%dT%H:%M:%S.0000000+11:00")
    answer = body_of(await send(gw, {"SendAt": dotnet, "ValidUntil": None, "ValidityPeriod": None, "Urgent": None}))
    assert answer["message"] == f"Scheduled for 1 recipient at {_z(send_at)}"
    message = gw.store.messages[answer["commId"]]
    assert message.send_at == send_at and message.valid_until is None and message.urgent is False


async def test_valid_until_is_read_and_a_send_without_send_at_is_queued_at_once(gw):
    until = gw.clock.now + timedelta(minutes=30)
    answer = body_of(await send(gw, {"ValidUntil": _z(until), "Urgent": False}))
    assert answer["message"] == "Queued for 1 recipient"
    message = gw.store.messages[answer["commId"]]
    assert message.send_at is None and message.valid_until == until and message.urgent is False
    assert [delay for _, delay in gw.queue.jobs] == [0]


async def test_a_serviceStack_client_that_sends_none_of_them_is_answered_as_before(gw):
    """The seed's DTOs know nothing of scheduling: their requests, null properties and all, keep their answers."""
    seed = {"SMSModel": {"From": None, "To": [{"Name": "Sam", "PhoneNumber": SAM, "ContactId": "0" * 32}], "MessageBody": "hi",
                         "ReplyIsAllowed": False, "ReplyIsRequired": False, "Notes": None, "LinkedObjectId": None,
                         "SuiteId": None, "LicenseeId": None}, "CreateCommunicationReferencesImmediately": False}
    for fmt in ("json", "jsv"):
        response = await gw.functions["sms_send_servicestack"](_request(
            "POST", "http://localhost/api/SMSSend", gw.key, json.dumps(seed).encode(), params={"format": fmt}))
        text = response.get_body().decode()
        comm_id = (json.loads(text)["commId"] if fmt == "json" else jsv.loads(text)["CommId"])
        reference = f"SMS-{comm_id[:8].upper()}"
        # The seed's fields as before, then what the message costs (issue 27; no price table here: no cost, no currency).
        assert text == (f'{{"commId":"{comm_id}","reference":"{reference}","status":true,"message":"Queued for 1 recipient",'
                        '"encoding":"GSM-7","segments":1,"recipients":1,"blocked":0}'
                        if fmt == "json" else f"{{CommId:{comm_id},Reference:{reference},Status:True,Message:Queued for 1 recipient,"
                                              "Encoding:GSM-7,Segments:1,Recipients:1,Blocked:0}")
        message = gw.store.messages[comm_id]
        assert message.send_at is None and message.valid_until is None and message.urgent is False
        assert [r.status for r in gw.store.recipients[comm_id].values()] == [Status.QUEUED]


async def test_a_scheduled_send_shows_scheduled_in_its_status_in_json_and_jsv(gw):
    send_at = gw.clock.now + timedelta(days=3)
    comm_id = body_of(await send(gw, {"SendAt": _z(send_at)}))["commId"]
    state = body_of(await status(gw, comm_id))
    assert state["status"] == "scheduled"
    [recipient] = state["recipients"]
    assert recipient["status"] == "scheduled" and [step["status"] for step in recipient["timeline"]] == ["scheduled"]
    req = _request("GET", f"http://localhost/api/sms/{comm_id}.jsv", gw.key, route_params={"commId": f"{comm_id}.jsv"})
    assert jsv.loads((await gw.functions["sms_status"](req)).get_body().decode())["Status"] == "scheduled"


async def test_the_status_says_when_and_until_when_and_an_unscheduled_one_says_nothing_new(gw):
    send_at = gw.clock.now + timedelta(days=3)
    comm_id = body_of(await send(gw, {"SendAt": _z(send_at), "ValidityPeriod": 600, "Urgent": True}))["commId"]
    state = body_of(await status(gw, comm_id))
    assert (state["sendAt"], state["validUntil"], state["urgent"]) == (_z(send_at), _z(send_at + timedelta(seconds=600)), True)
    plain = body_of(await status(gw, body_of(await send(gw, {}))["commId"]))
    assert not {"sendAt", "validUntil", "urgent"} & set(plain)


async def test_an_early_job_sends_nothing_and_the_job_at_send_at_sends(gw):
    send_at = gw.clock.now + timedelta(hours=1)
    comm_id = body_of(await send(gw, {"SendAt": _z(send_at)}))["commId"]
    await run_jobs(gw)  # its queue delay cut short: put back, nothing sent
    assert gw.provider.sent == [] and [d for _, d in gw.queue.jobs] == [3600]
    gw.clock.now = send_at
    await run_jobs(gw)
    assert [s.to for s in gw.provider.sent] == [SAM] and body_of(await status(gw, comm_id))["status"] == "sent"


# -- every 400: the field named, nothing saved, nothing queued -----------------------------------

HOUR = timedelta(hours=1)


def _cases(now: datetime) -> list[tuple[str, dict, str, str]]:
    """(what, SMSModel properties, the field named, its errorCode)"""
    return [
        ("sendAt in the past", {"SendAt": _z(now - HOUR)}, "SMSModel.SendAt", "InThePast"),
        ("sendAt too far ahead", {"SendAt": _z(now + timedelta(days=36))}, "SMSModel.SendAt", "TooFarAhead"),
        ("sendAt without an offset", {"SendAt": (now + HOUR).replace(tzinfo=None).isoformat()}, "SMSModel.SendAt", "NoOffset"),
        ("sendAt not an instant", {"SendAt": "tomorrow at 9"}, "SMSModel.SendAt", "InvalidValue"),
        ("sendAt a number", {"SendAt": 1795600000}, "SMSModel.SendAt", "StringType"),
        ("validUntil without an offset", {"ValidUntil": (now + HOUR).replace(tzinfo=None).isoformat()}, "SMSModel.ValidUntil", "NoOffset"),
        ("validUntil in the past", {"ValidUntil": _z(now - HOUR)}, "SMSModel.ValidUntil", "InThePast"),
        ("validUntil before sendAt", {"SendAt": _z(now + 2 * HOUR), "ValidUntil": _z(now + HOUR)}, "SMSModel.ValidUntil", "BeforeSendAt"),
        ("both validity forms", {"ValidUntil": _z(now + HOUR), "ValidityPeriod": 60}, "SMSModel.ValidityPeriod", "Conflict"),
        ("validityPeriod not a number", {"ValidityPeriod": "abc"}, "SMSModel.ValidityPeriod", "IntType"),
        ("validityPeriod a fraction", {"ValidityPeriod": 1.5}, "SMSModel.ValidityPeriod", "IntType"),
        ("validityPeriod true", {"ValidityPeriod": True}, "SMSModel.ValidityPeriod", "IntType"),
        ("validityPeriod zero", {"ValidityPeriod": 0}, "SMSModel.ValidityPeriod", "InvalidValue"),
        ("validityPeriod too long", {"ValidityPeriod": 36 * 86400}, "SMSModel.ValidityPeriod", "InvalidValue"),
        ("validityPeriod huge", {"ValidityPeriod": 10 ** 40}, "SMSModel.ValidityPeriod", "InvalidValue"),
        ("urgent maybe", {"Urgent": "maybe"}, "SMSModel.Urgent", "BoolType"),
        ("urgent a list", {"Urgent": [True]}, "SMSModel.Urgent", "BoolType"),
    ]


CASE_NAMES = [c[0] for c in _cases(datetime.now(timezone.utc))]


@pytest.mark.parametrize("what", CASE_NAMES)
async def test_each_wrong_scheduling_property_is_a_400_naming_it_and_saves_nothing(gw, what):
    [(_, model, field, code)] = [c for c in _cases(gw.clock.now) if c[0] == what]
    for function in ("sms_send", "send_immediate", "sms_send_servicestack"):
        response = await send(gw, model, function)
        assert response.status_code == 400, (function, response.get_body())
        problem = body_of(response)["responseStatus"]
        assert problem["errorCode"] and field in problem["message"]
        assert [(e["fieldName"], e["errorCode"]) for e in problem["errors"]] == [(field, code)]
    assert gw.store.messages == {} and gw.queue.jobs == [] and gw.provider.sent == []


@pytest.mark.parametrize("model, field", [
    ("{To:[{PhoneNumber:+61412000001}],MessageBody:hi,ValidityPeriod:abc}", "SMSModel.ValidityPeriod"),
    ("{To:[{PhoneNumber:+61412000001}],MessageBody:hi,Urgent:maybe}", "SMSModel.Urgent"),
    ("{To:[{PhoneNumber:+61412000001}],MessageBody:hi,SendAt:2026-11-26T09:00:00}", "SMSModel.SendAt"),
    ("{To:[{PhoneNumber:+61412000001}],MessageBody:hi,SendAt:[1]}", "SMSModel.SendAt"),
])
@pytest.mark.parametrize("content_type", ["text/jsv", "application/x-www-form-urlencoded"])
async def test_wrong_types_in_jsv_and_forms_are_400s_naming_the_field_in_both_formats(gw, model, field, content_type):
    body = f"{{SMSModel:{model}}}".encode() if content_type == "text/jsv" else urlencode({"SMSModel": model}).encode()
    for fmt in ("json", "jsv"):
        req = _request("POST", "http://localhost/api/sms/send", gw.key, body, content_type, params={"format": fmt})
        response = await gw.functions["sms_send"](req)
        assert response.status_code == 400
        text = response.get_body().decode()
        errors = body_of(response)["responseStatus"]["errors"] if fmt == "json" else jsv.loads(text)["ResponseStatus"]["Errors"]
        assert [e["fieldName" if fmt == "json" else "FieldName"] for e in errors] == [field]
    assert gw.store.messages == {} and gw.queue.jobs == []


# -- strict types (issue 23, item 10): as README documents them, in each body format -------------

# In JSON a value carries its own type: Urgent is a JSON boolean (or null), ValidityPeriod a JSON integer
# (or null). A string, a number for a boolean or a boolean for a number is refused, whatever it says.
JSON_WRONG_TYPES = [
    ("Urgent", "yes", "BoolType"), ("Urgent", "true", "BoolType"), ("Urgent", "True", "BoolType"), ("Urgent", 1, "BoolType"),
    ("Urgent", 0, "BoolType"), ("Urgent", "", "BoolType"), ("Urgent", 1.0, "BoolType"),
    ("ValidityPeriod", "60", "IntType"), ("ValidityPeriod", "", "IntType"), ("ValidityPeriod", 60.0, "IntType"),
    ("ValidityPeriod", 1.5, "IntType"), ("ValidityPeriod", True, "IntType"), ("ValidityPeriod", "abc", "IntType"),
]


@pytest.mark.parametrize("field, value, code", JSON_WRONG_TYPES, ids=[f"{f}={v!r}" for f, v, _ in JSON_WRONG_TYPES])
async def test_json_urgent_and_validity_period_take_only_their_json_types(gw, field, value, code):
    for function in ("sms_send", "send_immediate", "sms_send_servicestack"):
        response = await send(gw, {field: value}, function)
        assert response.status_code == 400, (function, response.get_body())
        [error] = body_of(response)["responseStatus"]["errors"]
        assert (error["fieldName"], error["errorCode"]) == (f"SMSModel.{field}", code)
        assert "JSON" in error["message"]
    assert gw.store.messages == {} and gw.queue.jobs == [] and gw.provider.sent == []


@pytest.mark.parametrize("urgent", [True, False, None])
async def test_json_urgent_takes_true_false_and_null(gw, urgent):
    answer = body_of(await send(gw, {"Urgent": urgent, "ValidityPeriod": 600}))
    assert answer["status"] is True
    message = gw.store.messages[answer["commId"]]
    assert message.urgent is bool(urgent) and message.valid_until == gw.clock.now + timedelta(seconds=600)


def _text_body(model: str, content_type: str) -> bytes:
    """SMSModel written as JSV, as a JSV body or as a form's field (url-encoded or multipart)."""
    if content_type == "text/jsv":
        return f"{{SMSModel:{model}}}".encode()
    if content_type.startswith("multipart/"):
        return f'--b\r\nContent-Disposition: form-data; name="SMSModel"\r\n\r\n{model}\r\n--b--\r\n'.encode()
    return urlencode({"SMSModel": model}).encode()


TEXT_FORMATS = ["text/jsv", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]
# In JSV and forms every value is text: a boolean is True or False (as ServiceStack writes it; its
# reader's bool.Parse takes any case), a whole number digits only. ServiceStack's own shorthands for
# a bool (1, 0, t, y, on, ...) are not a boolean's text: README's Urgent is a boolean.
TEXT_REFUSED = [("Urgent", text, "BoolParsing") for text in ("yes", "1", "0", "on", "off", "t", "y", "N", "maybe", "truee", '" true"')] + [
    ("ValidityPeriod", text, "IntParsing") for text in ("+60", "-60", "60.0", "6e1", "1_000", '" 60"', "0x3c", "\u0663", "sixty")] + [
    ("ValidityPeriod", "9" * 5000, "InvalidValue")]  # digits, but more than int() reads: out of range, not a 500


@pytest.mark.parametrize("field, text, code", TEXT_REFUSED, ids=[f"{f}={t[:12]}" for f, t, _ in TEXT_REFUSED])
@pytest.mark.parametrize("content_type", TEXT_FORMATS)
async def test_jsv_and_form_text_is_parsed_strictly(gw, field, text, code, content_type):
    body = _text_body(f"{{To:[{{PhoneNumber:{SAM}}}],MessageBody:hi,{field}:{text}}}", content_type)
    response = await send_as(gw, body, content_type)
    assert response.status_code == 400, response.get_body()
    [error] = body_of(response)["responseStatus"]["errors"]
    assert (error["fieldName"], error["errorCode"]) == (f"SMSModel.{field}", code)
    assert gw.store.messages == {} and gw.queue.jobs == [] and gw.provider.sent == []


TEXT_ACCEPTED = [("True", True), ("true", True), ("TRUE", True), ('"True"', True), ("False", False), ("false", False), ("", False)]


@pytest.mark.parametrize("text, urgent", TEXT_ACCEPTED)
@pytest.mark.parametrize("content_type", TEXT_FORMATS)
async def test_jsv_and_form_booleans_and_whole_numbers_read_as_written(gw, text, urgent, content_type):
    body = _text_body(f"{{To:[{{PhoneNumber:{SAM}}}],MessageBody:hi,Urgent:{text},ValidityPeriod:0600}}", content_type)
    answer = body_of(await send_as(gw, body, content_type))
    assert answer["status"] is True, answer
    message = gw.store.messages[answer["commId"]]
    assert message.urgent is urgent and message.valid_until == gw.clock.now + timedelta(seconds=600)


# The seed's booleans (ReplyIsAllowed, ReplyIsRequired, CreateCommunicationReferencesImmediately) stay as
# lenient as a ServiceStack server is: ServiceStack.Text reads a bool property's JSON string or number
# with the same parser as JSV text (DeserializeBuiltin -> ParseBoolean: "true", "1", "0", "on", ...).
SEED_LENIENT = [("true", True), ("True", True), (1, True), (0, False), ("1", True), ("0", False), ("on", True), ("f", False)]


@pytest.mark.parametrize("value, meant", SEED_LENIENT, ids=[repr(v) for v, _ in SEED_LENIENT])
async def test_the_seeds_booleans_read_as_servicestack_reads_them(gw, value, meant):
    request = {"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi", "ReplyIsAllowed": value, "ReplyIsRequired": value},
               "CreateCommunicationReferencesImmediately": value}
    response = await gw.functions["sms_send_servicestack"](_request("POST", "http://localhost/api/SMSSend", gw.key,
                                                                    json.dumps(request).encode()))
    answer = body_of(response)
    assert response.status_code == 200, answer
    message = gw.store.messages[answer["commId"]]
    assert (message.reply_is_allowed, message.reply_is_required) == (meant, meant)


# Instants: an offset of hours and minutes only, Z or +HH:MM / -HH:MM (RFC 3339's). Python would read
# seconds in an offset (+10:00:30) and the basic form (+1000); neither is what README documents.
OFFSETS_REFUSED = ["+10:00:30", "+10:00:30.5", "+1000", "-0530", "+10", "+10:0", "+24:00", "+1:00"]


@pytest.mark.parametrize("offset", OFFSETS_REFUSED)
@pytest.mark.parametrize("field", ["SendAt", "ValidUntil"])
async def test_an_instant_whose_offset_is_not_hours_and_minutes_is_a_400(gw, field, offset):
    text = (gw.clock.now + 2 * HOUR).replace(tzinfo=None).isoformat(timespec="seconds") + offset
    for body, content_type in ((json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi", field: text}}).encode(),
                                "application/json"),
                               (_text_body(f'{{To:[{{PhoneNumber:{SAM}}}],MessageBody:hi,{field}:"{text}"}}', "text/jsv"), "text/jsv")):
        response = await send_as(gw, body, content_type)
        assert response.status_code == 400, response.get_body()
        [error] = body_of(response)["responseStatus"]["errors"]
        assert (error["fieldName"], error["errorCode"]) == (f"SMSModel.{field}", "InvalidValue")
        assert "+HH:MM" in error["message"]
    assert gw.store.messages == {} and gw.queue.jobs == []


@pytest.mark.parametrize("offset", ["Z", "z", "+00:00", "-00:00", "+11:00", "-05:30", "+14:00", "-12:00"])
async def test_an_instant_with_z_or_an_hours_and_minutes_offset_is_read(gw, offset):
    local = timezone.utc if offset in ("Z", "z", "+00:00", "-00:00") else timezone(
        (1 if offset[0] == "+" else -1) * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    send_at = (gw.clock.now + 2 * HOUR).astimezone(local)
    answer = body_of(await send(gw, {"SendAt": send_at.replace(tzinfo=None).isoformat(timespec="seconds") + offset}))
    assert answer["message"] == f"Scheduled for 1 recipient at {_z(send_at)}"


async def test_empty_values_from_a_form_mean_not_given(gw):
    body = urlencode({"SMSModel": "{To:[{PhoneNumber:+61412000001}],MessageBody:hi,SendAt:,ValidUntil:,ValidityPeriod:}"}).encode()
    answer = body_of(await send_as(gw, body, "application/x-www-form-urlencoded"))
    assert answer["message"] == "Queued for 1 recipient"
    message = gw.store.messages[answer["commId"]]
    assert message.send_at is None and message.valid_until is None


async def test_an_immediate_send_with_send_at_is_a_400_and_sends_nothing(gw):
    for function in ("send_immediate", "sms_send_immediate", "send_message_immediate"):
        response = await send(gw, {"SendAt": _z(gw.clock.now + HOUR)}, function)
        assert response.status_code == 400
        [error] = body_of(response)["responseStatus"]["errors"]
        assert error["fieldName"] == "SMSModel.SendAt" and "/api/sms/send" in error["message"]
    assert gw.store.messages == {} and gw.queue.jobs == [] and gw.provider.sent == []
    # ValidityPeriod alone is fine there: an SMS not handed over in time is not sent.
    answer = body_of(await send(gw, {"ValidityPeriod": 600, "Urgent": True}, "send_immediate"))
    assert answer["status"] is True and answer["message"] == "Sent to 1 of 1 recipient"


async def test_an_auto_batch_item_with_a_wrong_send_at_is_named_by_its_index_and_nothing_is_saved(gw):
    good = {"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi", "SendAt": _z(gw.clock.now + HOUR)}}
    bad = {"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi", "SendAt": _z(gw.clock.now - HOUR)}}
    req = _request("POST", "http://localhost/api/SMSSend[]", gw.key, json.dumps([good, bad]).encode())
    response = await gw.functions["sms_send_servicestack_batch"](req)
    assert response.status_code == 400
    assert [e["fieldName"] for e in body_of(response)["responseStatus"]["errors"]] == ["[1].SMSModel.SendAt"]
    assert gw.store.messages == {} and gw.queue.jobs == []
    req = _request("POST", "http://localhost/api/SMSSend[]", gw.key, json.dumps([good, good]).encode())
    answers = body_of(await gw.functions["sms_send_servicestack_batch"](req))
    assert [a["message"] for a in answers] == [f"Scheduled for 1 recipient at {_z(gw.clock.now + HOUR)}"] * 2


# -- the idempotency fingerprint -----------------------------------------------------------------

# Computed at ddb34f5 (before SMSModel had the scheduling properties) with send_command(request).as_sent(), now canonical_json(request):
# keys stored then must still match their retries.
BEFORE = {
    "full": ({"SMSModel": {"From": {"Name": "Clinic", "PhoneNumber": "Clinic"},
                           "To": [{"Name": "Sam", "PhoneNumber": "0412 345 678", "ContactId": "6F9619FF-8B86-D011-B42D-00C04FC964FF"}],
                           "MessageBody": "Your appointment is tomorrow", "ReplyIsAllowed": True, "Notes": "n",
                           "LinkedObjectId": "11111111-1111-1111-1111-111111111111", "LicenseeId": "a" * 32},
              "CreateCommunicationReferencesImmediately": True},
             '{"sms_model":{"licensee_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","from_":{"name":"Clinic","phone_number":"Clinic",'
             '"contact_id":null},"to":[{"name":"Sam","phone_number":"0412 345 678","contact_id":"6f9619ff8b86d011b42d00c04fc964ff"}],'
             '"message_body":"Your appointment is tomorrow","reply_is_allowed":true,"reply_is_required":false,"notes":"n",'
             '"linked_object_id":"11111111111111111111111111111111","suite_id":null},"create_communication_references_immediately":true}'),
    "minimal": ({"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "hello"}},
                '{"sms_model":{"licensee_id":null,"from_":null,"to":[{"name":null,"phone_number":"+61412345678","contact_id":null}],'
                '"message_body":"hello","reply_is_allowed":false,"reply_is_required":false,"notes":null,"linked_object_id":null,'
                '"suite_id":null},"create_communication_references_immediately":false}'),
    "no model": ({}, '{"sms_model":null,"create_communication_references_immediately":false}'),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_a_request_without_the_new_properties_has_the_fingerprint_it_had_before_them(name):
    request, before = BEFORE[name]
    assert canonical_json(SMSSend.model_validate(request)) == before
    if request:  # given as not given (null, or Urgent false), they change nothing either
        nulls = {**request, "SMSModel": {**request["SMSModel"], "SendAt": None, "ValidUntil": None, "ValidityPeriod": None,
                                         "Urgent": False}}
        assert canonical_json(SMSSend.model_validate(nulls)) == before


def test_each_new_property_given_is_in_the_fingerprint():
    base = {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi"}
    texts = {canonical_json(SMSSend.model_validate({"SMSModel": {**base, **extra}}))
             for extra in ({}, {"SendAt": "2026-11-26T09:00:00+11:00"}, {"SendAt": "2026-11-26T09:00:00+10:00"},
                           {"ValidUntil": "2026-11-26T09:00:00Z"}, {"ValidityPeriod": 60}, {"ValidityPeriod": 0}, {"Urgent": True})}
    assert len(texts) == 7


def test_smsmodel_has_the_seeds_properties_and_the_extensions_only():
    """A property added to SMSModel would change every old key's fingerprint unless canonical_json leaves it out."""
    seed = {"licensee_id", "from_", "to", "message_body", "reply_is_allowed", "reply_is_required", "notes", "linked_object_id", "suite_id"}
    assert list(SMSModel.model_fields) == [*[f for f in SMSModel.model_fields if f in seed], *SMSModel.EXTENSIONS]
    assert set(SMSModel.model_fields) == seed | set(SMSModel.EXTENSIONS)


async def test_a_retry_with_the_same_key_answers_as_the_first_and_a_changed_send_at_is_422(gw):
    send_at = _z(gw.clock.now + HOUR)
    first = await send(gw, {"SendAt": send_at}, headers={"Idempotency-Key": "k-1"})
    again = await send(gw, {"SendAt": send_at}, headers={"Idempotency-Key": "k-1"})
    assert first.get_body() == again.get_body() and len(gw.store.messages) == 1
    moved = await send(gw, {"SendAt": _z(gw.clock.now + 2 * HOUR)}, headers={"Idempotency-Key": "k-1"})
    assert moved.status_code == 422 and len(gw.store.messages) == 1


# -- DELETE /api/sms/{commId} --------------------------------------------------------------------


async def test_cancel_stops_every_waiting_recipient_and_answers_the_counts(gw):
    comm_id = body_of(await send(gw, {"To": [{"PhoneNumber": SAM}, {"PhoneNumber": ALEX}], "SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    response = await cancel(gw, comm_id)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert body_of(response) == {"commId": comm_id, "cancelled": 2, "unaffected": {}}
    state = body_of(await status(gw, comm_id))
    assert state["status"] == "cancelled" and {r["status"] for r in state["recipients"]} == {"cancelled"}
    again = body_of(await cancel(gw, comm_id.upper()))  # the commId in any form a Guid takes
    assert again == {"commId": comm_id, "cancelled": 0, "unaffected": {"cancelled": 2}}
    gw.clock.now += 2 * HOUR
    await run_jobs(gw)
    assert gw.provider.sent == []  # its job, when it comes, sends nothing


async def test_cancel_leaves_what_has_gone_and_says_so(gw):
    gw.provider.refuse = {ALEX: "number is blocked"}
    comm_id = body_of(await send(gw, {"To": [{"PhoneNumber": SAM}, {"PhoneNumber": ALEX}]}))["commId"]
    await run_jobs(gw)
    assert body_of(await cancel(gw, comm_id)) == {"commId": comm_id, "cancelled": 0, "unaffected": {"failed": 1, "sent": 1}}


async def test_cancel_answers_jsv_by_suffix_and_by_format_and_404s_another_suffix(gw):
    comm_id = body_of(await send(gw, {"SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    by_suffix = await cancel(gw, f"{comm_id}.jsv")
    assert by_suffix.status_code == 200 and by_suffix.headers["Content-Type"].startswith("text/jsv")
    assert by_suffix.get_body().decode() == f"{{CommId:{comm_id},Cancelled:1,Unaffected:{{}}}}"
    by_query = await cancel(gw, comm_id, params={"format": "jsv"})
    assert jsv.loads(by_query.get_body().decode()) == {"CommId": comm_id, "Cancelled": "0", "Unaffected": {"cancelled": "1"}}
    assert body_of(await cancel(gw, f"{comm_id}.json"))["unaffected"] == {"cancelled": 1}
    xml = await cancel(gw, f"{comm_id}.xml")
    assert xml.status_code == 404 and "format suffix" in body_of(xml)["responseStatus"]["message"]


async def test_a_cancel_that_keeps_losing_races_answers_409_with_retry_after_never_500(gw):
    """Past any real race (each one lost leaves a recipient fewer to cancel): another writer changes the
    rows before every write of the cancel. It gives up, and says to try again; nothing was cancelled."""
    comm_id = body_of(await send(gw, {"To": [{"PhoneNumber": SAM}, {"PhoneNumber": ALEX}], "SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    writes, honest = [], gw.store.update_recipients

    async def changed_first(comm_id, recipients):
        writes.append(len(recipients))
        rows = gw.store.recipients[comm_id]
        for r in recipients:
            rows[r.seq] = replace(rows[r.seq], etag=f"changed-{len(writes)}")
        return await honest(comm_id, recipients)

    gw.store.update_recipients = changed_first
    response = await cancel(gw, comm_id)
    assert response.status_code == 409 and response.headers["Retry-After"] == "1"
    refused = body_of(response)["responseStatus"]
    assert refused["errorCode"] == "Conflict" and "cancel it again" in refused["message"]
    # Both together, then each on its own (a dispatch claiming as it goes looks like this), each JobRows' attempts.
    assert writes == [2] * WRITE_ATTEMPTS + [1] * 2 * WRITE_ATTEMPTS and body_of(await status(gw, comm_id))["status"] == "scheduled"
    gw.store.update_recipients = honest
    assert body_of(await cancel(gw, comm_id)) == {"commId": comm_id, "cancelled": 2, "unaffected": {}}


async def test_another_licensees_message_is_404_exactly_as_a_missing_one_and_stays_as_it_was(gw):
    comm_id = body_of(await send(gw, {"SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    theirs = await cancel(gw, comm_id, key=gw.other_key)
    missing = await cancel(gw, "d" * 32, key=gw.other_key)
    assert theirs.status_code == missing.status_code == 404
    assert body_of(theirs)["responseStatus"]["message"].replace(comm_id,
                                                                "X") == body_of(missing)["responseStatus"]["message"].replace("d" * 32, "X")
    assert body_of(await status(gw, comm_id))["status"] == "scheduled"


async def test_cancel_refuses_a_comm_id_that_is_not_a_guid_and_methods_other_than_delete(gw):
    bad = await cancel(gw, "not-a-guid")
    assert bad.status_code == 400 and body_of(bad)["responseStatus"]["errors"][0]["fieldName"] == "commId"
    comm_id = body_of(await send(gw, {"SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    for method in ("GET", "POST", "PUT", "PATCH"):  # the host routes only DELETE here; called anyway, the function says 405
        response = await cancel(gw, comm_id, method=method)
        assert response.status_code == 405 and response.headers["Allow"] == "DELETE"
    assert body_of(await status(gw, comm_id))["status"] == "scheduled"


# -- the new statuses in the listing -------------------------------------------------------------


async def test_the_listing_finds_cancelled_and_expired_messages_by_status(gw):
    cancelled = body_of(await send(gw, {"To": [{"PhoneNumber": SAM}], "SendAt": _z(gw.clock.now + HOUR)}))["commId"]
    await cancel(gw, cancelled)
    expired = body_of(await send(gw, {"To": [{"PhoneNumber": ALEX}], "ValidityPeriod": 60}))["commId"]
    gw.clock.now += timedelta(minutes=2)  # its job runs after its ValidityPeriod
    await run_jobs(gw)
    assert gw.provider.sent == []
    state = body_of(await status(gw, expired))
    assert state["status"] == "expired" and state["recipients"][0]["error"]
    for wanted, comm_id in (("cancelled", cancelled), ("expired", expired), ("EXPIRED", expired)):
        page = body_of(await listing(gw, {"status": wanted}))
        assert [(m["commId"], m["status"], m["counts"]) for m in page["messages"]] == [(comm_id, wanted.lower(), {wanted.lower(): 1})]


async def test_the_listing_finds_a_scheduled_message_by_status(gw):
    comm_id = body_of(await send(gw, {"SendAt": _z(gw.clock.now + timedelta(days=10))}))["commId"]
    await run_jobs(gw)  # the first hop of its wait ends early: the job is put back
    page = body_of(await listing(gw, {"status": "scheduled"}))
    assert [m["commId"] for m in page["messages"]] == [comm_id]


@pytest.mark.parametrize("wanted", ["scheduled", "cancelled", "expired"])
async def test_the_listing_takes_each_new_status_as_a_filter(gw, wanted):
    response = await listing(gw, {"status": wanted})
    assert response.status_code == 200 and body_of(response)["messages"] == []
