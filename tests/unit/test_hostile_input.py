"""Input a hostile or careless client sends to the send routes: text that is not valid Unicode, numbers
longer than Python reads, bodies with nothing a phone can show. Each is a 400 naming the field, and
nothing is stored, queued or sent (issue 12, items 8, 10 and 11)."""
import json

import azure.functions as func
import pytest

from tests.fakes import SAM, InMemoryIdempotencyStore, assembled

SURROGATE = "\\ud800"  # a JSON escape for a lone UTF-16 surrogate: valid JSON, not valid Unicode


def send(gw, body: bytes, function="send", headers=None, content_type="application/json"):
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": content_type, **(headers or {})}
    return gw.functions[function](func.HttpRequest("POST", f"http://localhost/api/{function}", headers=headers, body=body))


def refusal(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.get_body()[:300])
    status = json.loads(response.get_body())["responseStatus"]
    assert status["errorCode"] == "ValidationException"
    return status


def nothing_happened(gw) -> bool:
    world = gw.world
    return world.store.messages == {} and world.queue.jobs == [] and world.provider.sent == []


def with_text_at(field: str, text: str) -> bytes:
    """A valid request as JSON, with `text` (raw JSON string content) as the value of `field`."""
    model = {"LicenseeId": "PLACE", "From": {"Name": "Clinic", "PhoneNumber": "+61400000000"},
             "To": [{"Name": "Sam", "PhoneNumber": SAM, "ContactId": "6f9619ff8b86d011b42d00c04fc964ff"}],
             "MessageBody": "hello", "Notes": "a note"}
    document = json.dumps({"SMSModel": model})
    if field == "SMSModel.LicenseeId":
        return document.replace('"PLACE"', f'"{text}"').encode()
    document = document.replace('"PLACE"', "null")
    old = {"SMSModel.From.Name": '"Clinic"', "SMSModel.From.PhoneNumber": '"+61400000000"', "SMSModel.To[0].Name": '"Sam"',
           "SMSModel.To[0].PhoneNumber": f'"{SAM}"', "SMSModel.To[0].ContactId": '"6f9619ff8b86d011b42d00c04fc964ff"',
           "SMSModel.MessageBody": '"hello"', "SMSModel.Notes": '"a note"'}[field]
    return document.replace(old, f'"{text}"').encode()


FIELDS = ["SMSModel.MessageBody", "SMSModel.To[0].Name", "SMSModel.To[0].PhoneNumber", "SMSModel.To[0].ContactId",
          "SMSModel.From.Name", "SMSModel.From.PhoneNumber", "SMSModel.LicenseeId", "SMSModel.Notes"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("function", ["send", "send_immediate"])
async def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(gw, field, function):
    status = refusal(await send(gw, with_text_at(field, f"ab{SURROGATE}cd"), function))
    [error] = status["errors"]
    assert (error["fieldName"], error["errorCode"]) == (field, "InvalidUnicode")
    assert "not valid Unicode" in error["message"]
    assert nothing_happened(gw)


@pytest.mark.parametrize("field", ["SMSModel.To[0].Name", "SMSModel.MessageBody", "SMSModel.To[0].PhoneNumber"])
async def test_a_lone_surrogate_with_an_idempotency_key_is_a_400(gw, field):
    """The key's fingerprint is the request as JSON, which cannot hold a lone surrogate."""
    world = gw.world
    gw.use = assembled(world.store, world.queue, world.provider, idempotency=InMemoryIdempotencyStore())
    status = refusal(await send(gw, with_text_at(field, SURROGATE), headers={"Idempotency-Key": "k-1"}))
    assert status["errors"][0]["fieldName"] == field
    assert nothing_happened(gw)


async def test_a_surrogate_in_a_batch_item_names_the_item(gw):
    good = with_text_at("SMSModel.Notes", "fine").decode()
    bad = with_text_at("SMSModel.To[0].Name", SURROGATE).decode()
    status = refusal(await send(gw, f"[{good},{bad}]".encode(), "sms_send_servicestack_batch"))
    assert [e["fieldName"] for e in status["errors"]] == ["[1].SMSModel.To[0].Name"]
    assert nothing_happened(gw)


async def test_a_surrogate_pair_is_one_valid_character(gw):
    """Escaped pairs are how JSON writes an emoji: they must still be accepted."""
    response = await send(gw, with_text_at("SMSModel.MessageBody", "hi \\ud83d\\ude00"), "send_immediate")
    assert response.status_code == 200
    assert [sms.body for sms in gw.world.provider.sent] == ["hi \U0001F600"]


async def test_a_form_field_that_is_not_utf8_is_a_400_naming_it(gw):
    body = b"SMSModel=" + b"%7BTo%3A%5B%7BPhoneNumber%3A%2B61412000001%7D%5D%2CMessageBody%3Ahi%FF%7D"
    status = refusal(await send(gw, body, content_type="application/x-www-form-urlencoded"))
    assert [(e["fieldName"], e["errorCode"]) for e in status["errors"]] == [("SMSModel.MessageBody", "InvalidUnicode")]
    assert nothing_happened(gw)


async def test_multipart_names_and_values_that_are_not_utf8_are_400s(gw):
    def multipart(name: bytes, value: bytes) -> bytes:
        return (b"--b\r\nContent-Disposition: form-data; name=\"" + name + b"\"\r\n\r\n" + value + b"\r\n--b--\r\n")

    value = b"{To:[{PhoneNumber:+61412000001}],MessageBody:hi\xff}"
    status = refusal(await send(gw, multipart(b"SMSModel", value), content_type="multipart/form-data; boundary=b"))
    assert [(e["fieldName"], e["errorCode"]) for e in status["errors"]] == [("SMSModel.MessageBody", "InvalidUnicode")]
    # A field name that is not UTF-8, holding JSV that does not parse: refused, and the answer is readable.
    status = refusal(await send(gw, multipart(b"SMS\xffModel", b"{To:[}"), content_type="multipart/form-data; boundary=b"))
    assert status["errors"][0]["errorCode"] in ("InvalidUnicode", "SerializationException")
    assert nothing_happened(gw)


@pytest.mark.parametrize("field", ["ReplyIsAllowed", "ReplyIsRequired", "CreateCommunicationReferencesImmediately", "Unknown"])
async def test_a_number_longer_than_python_reads_is_a_400(gw, field):
    model = {"To": [{"PhoneNumber": SAM}], "MessageBody": "hi"}
    document = {"SMSModel": model, "CreateCommunicationReferencesImmediately": False}
    (document if field == "CreateCommunicationReferencesImmediately" else model)[field] = "HUGE"
    body = json.dumps(document).replace('"HUGE"', "9" * 5000).encode()
    status = refusal(await send(gw, body))
    assert status["errors"][0]["errorCode"] == "SerializationException"
    assert "digits" in status["message"]
    assert nothing_happened(gw)


INVISIBLE = {
    "NUL": "\x00", "NULs": "\x00" * 20, "controls": "\x01\x02\x1b\x7f", "C1 controls": "\x85\x9f",
    "zero-width space": "\u200b", "zero-width joiners": "\u200c\u200d\u2060", "byte order mark": "\ufeff",
    "bidi marks": "\u200e\u200f\u202e", "soft hyphen": "\u00ad", "mixed": " \t\x00\u200b\n\r\ufeff ",
    "combining marks alone": "\u0301\u0308",
}


@pytest.mark.parametrize("body", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_a_body_with_nothing_a_phone_can_show_is_refused(gw, body):
    status = refusal(await send(gw, json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": body}}).encode(),
                                "send_immediate"))
    [error] = status["errors"]
    assert (error["fieldName"], error["errorCode"]) == ("SMSModel.MessageBody", "NoVisibleText")
    assert nothing_happened(gw)


@pytest.mark.parametrize("body", ["a", "Line one\nline two\ttabbed\r\n", "\u200bhi\u200b", "😀", "👍🏽", "٣", "e\u0301",
                                  "…", "€", "\u00a0.\u00a0",
                                  "\U0001FAE8"])  # an emoji newer than Python 3.11's Unicode database: shown, so sent
async def test_a_body_with_something_visible_is_sent_as_given(gw, body):
    response = await send(gw, json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": body}}).encode(), "send_immediate")
    assert response.status_code == 200, response.get_body()
    assert [sms.body for sms in gw.world.provider.sent] == [body]


@pytest.mark.parametrize("body", ["", " \n\t ", "\u00a0\u3000", "\u2028\u2029"])
async def test_empty_or_white_space_only_is_still_not_empty(gw, body):
    status = refusal(await send(gw, json.dumps({"SMSModel": {"To": [{"PhoneNumber": SAM}], "MessageBody": body}}).encode()))
    assert [(e["fieldName"], e["errorCode"]) for e in status["errors"]] == [("SMSModel.MessageBody", "NotEmpty")]


async def test_a_stored_name_that_is_not_valid_unicode_is_answered_not_a_500(gw):
    """Stored before input was checked (or by another writer): the status route answered 500 on every
    read. It now answers, with U+FFFD where the lone surrogate was."""
    from dataclasses import replace

    comm_id = await gw.world.send(SAM)
    rows = gw.world.store.recipients[comm_id]
    rows[0] = replace(rows[0], name="Sam \ud800")
    for fmt in ("json", "jsv"):
        req = func.HttpRequest("GET", f"http://localhost/api/sms/{comm_id}", headers={"Authorization": f"Bearer {gw.key}"},
                               params={"format": fmt}, route_params={"commId": comm_id}, body=b"")
        response = await gw.functions["sms_status"](req)
        assert response.status_code == 200
        assert "Sam \ufffd" in response.get_body().decode("utf-8")
