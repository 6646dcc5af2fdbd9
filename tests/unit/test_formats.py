import json
from urllib.parse import urlencode

import pytest

from sms.errors import UnsupportedMediaType, ValidationFailed
from sms.wire import CommResponse, Format, SMSSend, encode, read_body, response_format, to_dto, to_dtos


@pytest.mark.parametrize("query, suffix, accept, expected", [
    (None, None, None, Format.JSON),
    (None, None, "*/*", Format.JSON),
    (None, None, "text/jsv", Format.JSV),
    (None, None, "application/jsv", Format.JSV),
    (None, None, "text/html, application/json;q=0.5, text/jsv;q=0.9", Format.JSV),
    (None, None, "text/jsv;q=0, application/json", Format.JSON),
    (None, "jsv", "application/json", Format.JSV),  # a suffix beats Accept
    ("json", "jsv", "text/jsv", Format.JSON),  # ?format beats both
    ("JSV", None, None, Format.JSV),
    ("xml", None, "text/jsv", Format.JSV),  # a format we do not speak falls through
])
def test_response_format_precedence(query, suffix, accept, expected):
    assert response_format(query, suffix, accept) is expected


MODEL = {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "Hi, there"}


def test_json_jsv_and_form_bodies_read_the_same():
    as_json = read_body(json.dumps({"SMSModel": MODEL}).encode(), "application/json; charset=utf-8")
    as_jsv = read_body(b'{SMSModel:{To:[{PhoneNumber:+61412345678}],MessageBody:"Hi, there"}}', "text/jsv")
    as_form = read_body(urlencode({"SMSModel": '{To:[{PhoneNumber:+61412345678}],MessageBody:"Hi, there"}'}).encode(),
                        "application/x-www-form-urlencoded")
    dtos = [to_dto(data, SMSSend) for data in (as_json, as_jsv, as_form)]
    assert dtos[0] == dtos[1] == dtos[2]
    assert dtos[0].sms_model.message_body == "Hi, there"


def test_multipart_form_posts_are_read():
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"SMSModel\"\r\n\r\n"
        "{To:[{PhoneNumber:+61412345678}],MessageBody:hello}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"CreateCommunicationReferencesImmediately\"\r\n\r\n"
        "true\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    request = to_dto(read_body(body, f"multipart/form-data; boundary={boundary}"), SMSSend)
    assert request.sms_model.message_body == "hello" and request.create_communication_references_immediately is True


def test_a_body_without_content_type_is_read_in_the_routes_format():
    assert read_body(b"{A:b}", None, Format.JSV) == {"A": "b"}
    assert read_body(b'{"A":"b"}', None) == {"A": "b"}


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "image/png"])
def test_unsupported_media_types_are_refused(content_type):
    with pytest.raises(UnsupportedMediaType, match=content_type):
        read_body(b"<x/>", content_type)


@pytest.mark.parametrize("body, content_type, fragment", [
    (b"{SMSModel:{To:[}", "text/jsv", "not valid JSV"),
    (b"SMSModel=%7BTo%3A%5B", "application/x-www-form-urlencoded", "Form field 'SMSModel' is not valid JSV"),
    (b"garbage", "multipart/form-data; boundary=nope", "could not be read"),
])
def test_malformed_bodies_are_400s_that_say_why(body, content_type, fragment):
    with pytest.raises(ValidationFailed) as caught:
        read_body(body, content_type)
    assert fragment in caught.value.message


def test_jsv_responses_use_the_dotnet_names():
    response = CommResponse(comm_id="ab" * 16, reference="SMS-ABABABAB", status=True, message="Queued for 1 recipient")
    assert encode(response, Format.JSV) == b"{CommId:abababababababababababababababab,Reference:SMS-ABABABAB,Status:True,Message:Queued for 1 recipient}"
    assert encode([response], Format.JSON).startswith(b'[{"commId":')


def test_batches_are_checked_whole_and_errors_name_the_item():
    good = {"SMSModel": MODEL}
    assert len(to_dtos([good, good], SMSSend, limit=5)) == 2
    with pytest.raises(ValidationFailed) as caught:
        to_dtos([good, {"SMSModel": {"LicenseeId": "nope"}}, 7], SMSSend, limit=5)
    assert [e.field_name for e in caught.value.field_errors] == ["[1].SMSModel.LicenseeId", ""]
    with pytest.raises(ValidationFailed, match="1 to 2 requests"):
        to_dtos([good] * 3, SMSSend, limit=2)
    with pytest.raises(ValidationFailed, match="must be a list"):
        to_dtos(good, SMSSend, limit=2)


def read_as_dto(body: bytes, content_type: str):
    """What a send route does with a body: anything but a clean 400/415 would be a 500."""
    try:
        return to_dto(read_body(body, content_type), SMSSend)
    except (ValidationFailed, UnsupportedMediaType):
        return None


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b"[" * 100_000),
    ("application/json", b'{"a":' * 50_000),
    ("text/jsv", b"{A:" * 50_000),
    ("application/x-www-form-urlencoded", b"SMSModel=" + b"[" * 100_000),
])
def test_deep_nesting_is_a_clean_400(content_type, body):
    with pytest.raises(ValidationFailed, match="nested deeper"):
        read_body(body, content_type)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(
    ["application/json", "text/jsv", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "", "text/plain"]))
def test_any_bytes_in_any_declared_format_is_a_dto_or_a_clean_refusal(body, content_type):
    read_as_dto(body, content_type)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["SMSModel", "smsModel", "To", "to", "PhoneNumber", "MessageBody", "From", "LicenseeId", "x"]), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500)
@given(document=json_like)
def test_any_json_document_is_a_dto_or_a_clean_refusal(document):
    read_as_dto(json.dumps(document).encode(), "application/json")
