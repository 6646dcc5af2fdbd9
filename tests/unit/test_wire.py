import base64
import json

import pytest

from sms import wire
from sms.domain.errors import FieldError, Forbidden, NotFound, StorageUnavailable, Unauthenticated, ValidationFailed
from sms.wire import SMSSend, mapping
from sms.wire.mapping import send_command

GUID = "6F9619FF-8B86-D011-B42D-00C04FC964FF"


def decode(body: bytes, content_type: str = "application/json") -> wire.SMSSend:
    return wire.to_dto(wire.read_body(body, content_type), wire.SMSSend)


def test_property_names_match_in_any_case():
    for body in (
        {"smsModel": {"to": [{"phoneNumber": "+61412345678"}], "messageBody": "hi"}},
        {"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "hi"}},
        {"SMSMODEL": {"TO": [{"PHONENUMBER": "+61412345678"}], "messagebody": "hi"}},
    ):
        request = decode(json.dumps(body).encode())
        assert request.sms_model.to[0].phone_number == "+61412345678"
        assert request.sms_model.message_body == "hi"


def test_from_is_read_under_its_wire_name():
    request = decode(b'{"smsModel": {"from": {"name": "Clinic", "phoneNumber": "+61400000000"}}}')
    assert request.sms_model.from_.name == "Clinic"


@pytest.mark.parametrize("text", [GUID, GUID.lower(), GUID.replace("-", ""), "{" + GUID + "}"])
def test_guids_are_accepted_in_any_form_and_kept_as_32_lowercase_hex(text):
    request = decode(json.dumps({"SMSModel": {"LicenseeId": text}}).encode())
    assert request.sms_model.licensee_id == "6f9619ff8b86d011b42d00c04fc964ff"
    assert send_command(request).licensee_id == "6f9619ff8b86d011b42d00c04fc964ff"  # the form the core compares with the key's


def test_the_all_zero_guid_of_dotnet_clients_reads_as_not_given():
    request = decode(b'{"SMSModel": {"LicenseeId": "00000000000000000000000000000000"}}')
    assert request.sms_model.licensee_id is None


def test_field_errors_name_the_dto_path():
    with pytest.raises(ValidationFailed) as caught:
        decode(b'{"SMSModel": {"To": [{}, {"ContactId": "nope"}], "ReplyIsAllowed": "maybe"}}')
    fields = {e.field_name for e in caught.value.field_errors}
    assert fields == {"SMSModel.To[1].ContactId", "SMSModel.ReplyIsAllowed"}
    assert "'nope' is not a Guid" in caught.value.message


@pytest.mark.parametrize("body, expected", [
    (b"", "empty"),
    (b"   ", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be an object (a SMSSend)"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_unreadable_bodies_are_refused_with_a_reason(body, expected):
    with pytest.raises(ValidationFailed) as caught:
        decode(body)
    assert expected in caught.value.message


def test_responses_are_camel_case_and_omit_nulls():
    body = wire.encode(wire.CommResponse(comm_id="ab" * 16, status=True, message="Queued"), wire.Format.JSON)
    assert json.loads(body) == {"commId": "ab" * 16, "status": True, "message": "Queued"}


def test_errors_have_servicestacks_response_status_shape():
    error = ValidationFailed([FieldError("SMSModel.To", "NotEmpty", "SMSModel.To needs at least one recipient")])
    assert json.loads(wire.encode(wire.error_body(error), wire.Format.JSON)) == {
        "responseStatus": {
            "errorCode": "ValidationException",
            "message": "SMSModel.To needs at least one recipient",
            "errors": [{"errorCode": "NotEmpty", "fieldName": "SMSModel.To", "message": "SMSModel.To needs at least one recipient"}],
        }
    }


@pytest.mark.parametrize("error, status", [
    (ValidationFailed([FieldError("x", "y", "z")]), 400),
    (Unauthenticated("no"), 401),
    (Forbidden("no"), 403),
    (NotFound("no"), 404),
    (StorageUnavailable(), 503),
])
def test_each_error_maps_to_its_http_status(error, status):
    assert wire.error_status(error) == status


@pytest.mark.parametrize("header, message", [
    (None, "Missing API key"),
    ("", "Missing API key"),
    ("Basic !!!", "Malformed Basic"),
    ("Basic " + base64.b64encode(b":secret").decode(), "Malformed"),
    ("Bearer", "Malformed"),
    ("Bearer a b", "Malformed"),
    ("Digest abc", "Malformed"),
])
def test_api_key_from_refuses_missing_or_malformed_headers(header, message):
    with pytest.raises(Unauthenticated, match=message):
        wire.api_key_from(header)


def test_api_key_is_read_from_bearer_in_any_case_or_basic_user_name():
    assert wire.api_key_from("bearer sms_abc.def") == "sms_abc.def"
    assert wire.api_key_from("Basic " + base64.b64encode(b"sms_abc.def:").decode()) == "sms_abc.def"
    assert wire.api_key_from("Basic " + base64.b64encode(b"sms_abc.def:ignored").decode()) == "sms_abc.def"


@pytest.mark.parametrize("result", [
    ("c" * 32, "SMS-CCCCCCCC", True, "Queued for 1 recipient"),
    ("c" * 32, "SMS-CCCCCCCC", False, "Sent to 0 of 2 recipients; 2 failed: 21610 \ud800 \"quoted\" ünïcode 😀"),
    (None, None, False, None),
])
def test_the_send_answer_built_without_validation_encodes_as_the_validated_one_in_every_format(result):
    from sms.domain.commands import SendResult
    from sms.wire.dto import CommResponse
    from sms.wire.mapping import comm_response

    sent = SendResult(*result)
    validated = CommResponse(comm_id=sent.comm_id, reference=sent.reference, status=sent.ok, message=sent.summary)
    for fmt in wire.Format:
        assert wire.encode(comm_response(sent), fmt) == wire.encode(validated, fmt)


def test_a_send_without_an_idempotency_key_never_serialises_the_request(monkeypatch):
    """The fingerprint is the whole request as JSON: work only a keyed send needs, kept off the hot path
    (the entry points make a RequestKey through these two, for every send)."""

    def not_wanted(request) -> str:
        raise AssertionError("serialised without a key")

    request = SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "hi"}})
    monkeypatch.setattr(mapping, "canonical_json", not_wanted)
    assert mapping.request_key(None, request) is None and mapping.batch_keys(None, [request]) is None
    with pytest.raises(AssertionError, match="serialised without a key"):  # with a key, it is made
        mapping.request_key("k", request)
