"""Cost before sending (issue 27): every accept answers what the message costs, POST /api/sms/estimate answers the
same without storing anything, SMSModel.SmartEncoding replaces typographic characters, MaxSegments and MaxPrice
refuse and block. Over the app's own functions and fakes of every port."""
import json
import unicodedata

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain import segments
from sms.domain.pacing import RequestRateLimiter
from sms.domain.prices import parse_prices
from sms.domain.smart_encoding import GSM_EQUIVALENTS, with_gsm_equivalents
from sms.usecases.auth import Authenticator, new_key
from tests.fakes import (
    EVERY_COUNTRY,
    LICENSEE,
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryIdempotencyStore,
    InMemoryJobQueue,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
)

AU, AU2, US, GB = "+61412000001", "+61412000002", "+12025550123", "+447400123456"
# Per segment: AU 0.05, US 0.0079 (USD); no row prices GB.
PRICES = parse_prices("country,provider,price,currency\nAU,*,0.05,USD\nUS,*,0.0079,USD\n")
CURLY = "Don\u2019t forget: your appointment is at 10am"


def gateway(**options) -> FakeGateway:
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    store, queue, idempotency = InMemoryMessageStore(), InMemoryJobQueue(), InMemoryIdempotencyStore()
    use = assembled(store, queue, RecordingProvider(), idempotency=idempotency, **options)
    return FakeGateway(use, Authenticator(keys), RequestRateLimiter(0),
                       Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}),
                       store=store, queue=queue, idempotency=idempotency, key=key, record=record, keys=keys)


@pytest.fixture
async def gw():
    gw = gateway(prices=PRICES)
    await gw.keys.add(gw.record)
    return gw


@pytest.fixture
async def everywhere():
    """Every country allowed; GB has no price."""
    gw = gateway(prices=PRICES, default_guard=EVERY_COUNTRY)
    await gw.keys.add(gw.record)
    return gw


def call(gw, function: str, body, *, method: str = "POST", fmt: str | None = None, content_type: str = "application/json",
         headers: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = func.HttpRequest(method, f"http://localhost/api/{function}", body=data, params={"format": fmt} if fmt else {},
                           headers={"Authorization": f"Bearer {gw.key}", "Content-Type": content_type, **(headers or {})})
    return gw.functions[function](req)


def sms(*numbers: str, body: str = "Hello", **options) -> dict:
    return {"SMSModel": {"To": [{"PhoneNumber": n} for n in numbers], "MessageBody": body, **options}}


def answer(response) -> dict:
    return json.loads(response.get_body())


def field_errors(response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.get_body()
    return [(e["fieldName"], e["message"]) for e in answer(response)["responseStatus"]["errors"]]


# -- smart encoding: the table --------------------------------------------------------------------------


@pytest.mark.parametrize("typographic, plain", [
    ("\u2018quoted\u2019", "'quoted'"), ("\u201cquoted\u201d", '"quoted"'), ("\u201equoted\u201c", '"quoted"'),
    ("it\u02bcs", "it's"), ("5\u2032 10\u2033", "5' 10\""), ("\u00abbonjour\u00bb", '"bonjour"'), ("`tick\u00b4", "'tick'"),
    ("9\u201310", "9-10"), ("now\u2014or never", "now-or never"), ("\u22125", "-5"), ("well\u2011known", "well-known"),
    ("\u2022 one", "- one"), ("wait\u2026", "wait..."),
    ("10\u00a0am", "10 am"), ("a\u2002b\u2003c\u2009d\u200ae", "a b c d e"), ("1\u202f000", "1 000"), ("a\u3000b", "a b"), ("a\tb", "a b"),
    ("line\u2028next", "line\nnext"), ("soft\u00adhyphen\u200b", "softhyphen"), ("\ufeffBOM", "BOM"),
])
def test_each_typographic_character_becomes_its_gsm_equivalent(typographic, plain):
    assert with_gsm_equivalents(typographic) == plain
    assert segments.count(plain).encoding == "GSM-7"


def test_every_replacement_is_gsm_7_and_letters_are_never_replaced():
    for code, replacement in GSM_EQUIVALENTS.items():
        assert segments.count(replacement or "x").encoding == "GSM-7", hex(code)
        # No letter or digit of a script (the modifier letters, Lm, are the apostrophes and primes of the table).
        assert unicodedata.category(chr(code)) not in ("Lu", "Ll", "Lt", "Lo", "Nd"), hex(code)
    assert with_gsm_equivalents("ça coûte \u2039x\u203a \U0001F600") == "ça coûte \u2039x\u203a \U0001F600"


async def test_a_curly_quote_goes_as_gsm_7_in_one_segment_with_smart_encoding_and_as_ucs_2_without(gw):
    plain = answer(await call(gw, "sms_send", sms(AU, body=CURLY)))
    smart = answer(await call(gw, "sms_send", sms(AU, body=CURLY, SmartEncoding=True)))
    assert (plain["encoding"], plain["segments"]) == ("UCS-2", 1)
    assert (smart["encoding"], smart["segments"]) == ("GSM-7", 1)
    long = CURLY + " " + "x" * 100  # 143 characters: 3 UCS-2 segments, 1 in GSM-7
    assert answer(await call(gw, "sms_send", sms(AU, body=long)))["segments"] == 3
    assert answer(await call(gw, "sms_send", sms(AU, body=long, SmartEncoding=True)))["segments"] == 1
    # The body stored (and so sent) is the replaced one; without the option, the body as it came.
    assert gw.store.messages[smart["commId"]].body == "Don't forget: your appointment is at 10am"
    assert gw.store.messages[plain["commId"]].body == CURLY


async def test_smart_encoding_takes_only_a_boolean_in_json_and_true_or_false_in_jsv(gw):
    for value in ("yes", 1, {"a": 1}, [True]):
        assert [f for f, _ in field_errors(await call(gw, "sms_send", sms(AU, SmartEncoding=value)))] == ["SMSModel.SmartEncoding"]
    jsv = f"{{SMSModel:{{To:[{{PhoneNumber:{AU}}}],MessageBody:\"{CURLY}\",SmartEncoding:True}}}}".encode()
    assert answer(await call(gw, "sms_send", jsv, content_type="text/jsv"))["encoding"] == "GSM-7"


# -- MaxSegments ---------------------------------------------------------------------------------------


async def test_max_segments_exactly_at_the_bodys_segments_is_sent_and_one_under_is_refused_naming_both(gw):
    two = "x" * 161  # GSM-7: 2 segments
    sent = await call(gw, "sms_send", sms(AU, body=two, MaxSegments=2))
    assert sent.status_code == 200 and answer(sent)["segments"] == 2
    refused = await call(gw, "sms_send", sms(AU, body=two, MaxSegments=1))
    assert field_errors(refused) == [("SMSModel.MaxSegments", "SMSModel.MessageBody needs 2 SMS segments (GSM-7); "
                                                              "SMSModel.MaxSegments allows 1")]
    assert len(gw.store.messages) == 1  # the refused one saved nothing


@pytest.mark.parametrize("value", [0, 256, -1, "abc", "2", True, 2.5, {"a": 1}, [2], 10**30])
async def test_a_max_segments_that_is_not_1_to_255_is_refused_naming_it(gw, value):
    response = await call(gw, "sms_send", sms(AU, MaxSegments=value))
    assert [f for f, _ in field_errors(response)] == ["SMSModel.MaxSegments"]


async def test_max_segments_in_jsv_is_digits(gw):
    jsv = f"{{SMSModel:{{To:[{{PhoneNumber:{AU}}}],MessageBody:hi,MaxSegments:1}}}}".encode()
    assert (await call(gw, "sms_send", jsv, content_type="text/jsv")).status_code == 200
    bad = f"{{SMSModel:{{To:[{{PhoneNumber:{AU}}}],MessageBody:hi,MaxSegments:one}}}}".encode()
    assert [f for f, _ in field_errors(await call(gw, "sms_send", bad, content_type="text/jsv"))] == ["SMSModel.MaxSegments"]


# -- MaxPrice ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_price", ["0.10", 0.1, "0.1", 0.10])
async def test_max_price_exactly_at_a_recipients_cost_sends_it(gw, max_price):
    body = "x" * 161  # 2 segments to AU: 0.10
    response = answer(await call(gw, "sms_send", sms(AU, body=body, MaxPrice=max_price)))
    assert (response["recipients"], response["blocked"], response["estimatedCost"]) == (1, 0, "0.10")


async def test_max_price_one_micro_under_a_recipients_cost_blocks_it_with_the_reason_and_the_rest_goes(gw):
    response = answer(await call(gw, "sms_send", sms(AU, "+61412000009", body="x" * 161, MaxPrice="0.099999")))
    assert (response["recipients"], response["blocked"], response["estimatedCost"]) == (0, 2, "0.00")
    rows = gw.store.recipients[response["commId"]]
    assert {r.status.value for r in rows.values()} == {"blocked"}
    assert rows[0].last_error == "it costs 0.10 USD, over the message's MaxPrice of 0.099999 USD"
    mixed = answer(await call(gw, "sms_send", sms(AU, "+61412000009", body="hi", MaxPrice="0.05")))
    assert (mixed["recipients"], mixed["blocked"], mixed["estimatedCost"]) == (2, 0, "0.10")


async def test_a_max_price_blocks_a_recipient_the_price_table_cannot_price(everywhere):
    response = answer(await call(everywhere, "sms_send", sms(AU, GB, MaxPrice="1")))
    assert (response["recipients"], response["blocked"], response["estimatedCost"]) == (1, 1, "0.05")
    assert "no price for GB" in everywhere.store.recipients[response["commId"]][1].last_error


@pytest.mark.parametrize("value", ["abc", -1, "-1", "1e400", "NaN", "Infinity", "0.0000001", "1" * 40, "x" * 100_000, "",
                                   True, False, {"a": 1}, [1], {"$numberDecimal": "1"}, 10**13, "1e13",
                                   "1e999999999", "1e-999999999"])
async def test_a_max_price_that_is_not_an_amount_is_refused_naming_it_never_a_500(gw, value):
    response = await call(gw, "sms_send", sms(AU, MaxPrice=value))
    errors = field_errors(response)
    assert [f for f, _ in errors] == ["SMSModel.MaxPrice"]
    assert not gw.store.messages


async def test_a_json_number_too_large_for_a_float_is_refused_naming_max_price(gw):
    raw = b'{"SMSModel":{"To":[{"PhoneNumber":"' + AU.encode() + b'"}],"MessageBody":"hi","MaxPrice":1e400}}'
    assert [f for f, _ in field_errors(await call(gw, "sms_send", raw))] == ["SMSModel.MaxPrice"]


# -- what every accept answers --------------------------------------------------------------------------


async def test_a_send_answers_its_cost_after_the_seeds_fields_with_those_the_guard_blocked_left_out(gw):
    response = answer(await call(gw, "sms_send", sms(AU, AU2, US, body="x" * 161)))  # US: outside the default guard's AU
    assert list(response)[:4] == ["commId", "reference", "status", "message"]
    assert response["message"] == "Queued for 3 recipients"  # as before: the seed's fields keep their values
    assert {k: response[k] for k in list(response)[4:]} == {
        "encoding": "GSM-7", "segments": 2, "recipients": 2, "blocked": 1, "estimatedCost": "0.20", "currency": "USD"}


async def test_an_answer_without_a_price_for_one_recipient_has_no_cost(everywhere):
    response = answer(await call(everywhere, "sms_send", sms(AU, GB)))
    assert (response["recipients"], response["blocked"], response["currency"]) == (2, 0, "USD")
    assert "estimatedCost" not in response  # null: the table cannot price GB


async def test_without_a_price_table_there_is_no_cost_and_no_currency():
    gw = gateway()
    await gw.keys.add(gw.record)
    response = answer(await call(gw, "sms_send", sms(AU)))
    assert response["recipients"] == 1 and "estimatedCost" not in response and "currency" not in response


async def test_jsv_answers_the_cost_under_the_dtos_net_names(gw):
    text = (await call(gw, "sms_send", sms(AU, US), fmt="jsv")).get_body().decode()
    assert text.endswith(",Message:Queued for 2 recipients,Encoding:GSM-7,Segments:1,Recipients:1,Blocked:1,EstimatedCost:0.05,"
                         "Currency:USD}")


async def test_the_immediate_send_and_the_auto_batch_answer_the_cost_too(gw):
    now = answer(await call(gw, "sms_send_immediate", sms(AU, body="x" * 161)))
    assert now["message"] == "Sent to 1 of 1 recipient" and (now["segments"], now["estimatedCost"]) == (2, "0.10")
    batch = answer(await call(gw, "sms_send_servicestack_batch", [sms(AU), sms(AU, AU2)]))
    assert [(b["recipients"], b["estimatedCost"]) for b in batch] == [(1, "0.05"), (2, "0.10")]


async def test_a_retry_under_its_idempotency_key_answers_the_cost_the_first_did(gw):
    first = answer(await call(gw, "sms_send", sms(AU, US), headers={"Idempotency-Key": "k1"}))
    # The price table changes meanwhile: the retry answers what the message cost when it was accepted.
    gw.use.accept._screening._prices = parse_prices("country,provider,price,currency\nAU,*,9,EUR\n")
    again = answer(await call(gw, "sms_send", sms(AU, US), headers={"Idempotency-Key": "k1"}))
    assert again == first and (first["estimatedCost"], first["currency"], first["blocked"]) == ("0.05", "USD", 1)


# -- POST /api/sms/estimate -----------------------------------------------------------------------------


async def test_estimate_answers_the_figures_and_a_line_per_recipient_and_stores_nothing(gw):
    response = await call(gw, "sms_estimate", sms(AU, US, "+61 190 0123 456", body="x" * 161, MaxPrice="0.10"),
                          headers={"Idempotency-Key": "e1"})
    body = answer(response)
    assert response.status_code == 200
    assert {k: v for k, v in body.items() if k != "lines"} == {
        "encoding": "GSM-7", "segments": 2, "recipients": 1, "blocked": 2, "estimatedCost": "0.10", "currency": "USD"}
    au, us, premium = body["lines"]
    assert au == {"phoneNumber": AU, "country": "AU", "numberType": "mobile", "provider": "recording", "cost": "0.10", "action": "allow"}
    assert (us["country"], us["cost"], us["action"]) == ("US", "0.0158", "block")
    assert us["reason"] == "country US is blocked by this licensee's guard (otherCountries)"
    assert (premium["numberType"], premium["action"]) == ("premium_rate", "block")
    # Nothing stored, queued or claimed: the same key then sends.
    assert not gw.store.messages and not gw.queue.jobs and not gw.idempotency.records
    assert (await call(gw, "sms_send", sms(AU), headers={"Idempotency-Key": "e1"})).status_code == 200


async def test_estimate_takes_a_bare_sms_model_jsv_and_an_auto_batch(gw):
    bare = answer(await call(gw, "sms_estimate", {"to": [{"phoneNumber": AU}], "messageBody": CURLY, "smartEncoding": True}))
    assert (bare["encoding"], bare["estimatedCost"]) == ("GSM-7", "0.05")
    jsv = f"{{SMSModel:{{To:[{{PhoneNumber:{AU}}}],MessageBody:hi}}}}".encode()
    assert answer(await call(gw, "sms_estimate", jsv, content_type="text/jsv"))["recipients"] == 1
    text = (await call(gw, "sms_estimate", sms(AU), fmt="jsv")).get_body().decode()
    assert text.startswith("{Encoding:GSM-7,Segments:1,Recipients:1,Blocked:0,EstimatedCost:0.05,Currency:USD,Lines:[{PhoneNumber:")
    listed = answer(await call(gw, "sms_estimate", [sms(AU), {"to": [{"phoneNumber": AU}, {"phoneNumber": AU2}], "messageBody": "hi"}]))
    assert [e["estimatedCost"] for e in listed] == ["0.05", "0.10"]


@pytest.mark.parametrize("body", [
    {"SMSModel": {"To": [{"PhoneNumber": "123"}], "MessageBody": ""}},
    {"SMSModel": {"To": [{"PhoneNumber": AU}], "MessageBody": "hi", "MaxPrice": "abc", "MaxSegments": 0}},
    {"SMSModel": {"To": [], "MessageBody": "hi", "SendAt": "tomorrow"}},
    {"SMSModel": {"To": [{"PhoneNumber": AU}], "MessageBody": "hi", "MaxPrice": {"nested": {"deep": [1]}}}},
    {"SMSModel": "not an object"},
])
async def test_estimate_refuses_bad_input_exactly_as_a_send_does(gw, body):
    sent, estimated = await call(gw, "sms_send", body), await call(gw, "sms_estimate", body)
    assert estimated.status_code == sent.status_code == 400
    assert answer(estimated) == answer(sent)


async def test_estimate_needs_a_key_and_answers_other_methods_405():
    gw = gateway(prices=PRICES)  # its key not added: unknown
    assert (await call(gw, "sms_estimate", sms(AU))).status_code == 401
    await gw.keys.add(gw.record)
    refused = await call(gw, "sms_estimate", b"", method="GET")
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
