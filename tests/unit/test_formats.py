import json
from urllib.parse import urlencode

import pytest

from sms.domain.errors import UnsupportedMediaType, ValidationFailed
from sms.domain.model import utcnow
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
    assert encode(response, Format.JSV) == (b"{CommId:abababababababababababababababab,Reference:SMS-ABABABAB,Status:True,"
                                            b"Message:Queued for 1 recipient}")
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
        st.sampled_from(["SMSModel", "smsModel", "To", "to", "PhoneNumber", "MessageBody", "From", "LicenseeId", "x"]), children,
            max_size=4),
    max_leaves=30,
)


@settings(max_examples=500)
@given(document=json_like)
def test_any_json_document_is_a_dto_or_a_clean_refusal(document):
    read_as_dto(json.dumps(document).encode(), "application/json")


# -- hostile documents: lone surrogates, numbers past Python's digit limit, any depth, invisible bodies

from sms.domain.validation import Limits, message_from  # noqa: E402
from sms.wire.formats import invalid_unicode_at  # noqa: E402
from sms.wire.mapping import send_command  # noqa: E402

# Every code point, and lone surrogates (category Cs) often: Hypothesis leaves them out unless asked,
# and st.text() draws from its alphabet by code point, so 2,048 surrogates would almost never come up.
any_character = st.characters(exclude_categories=()) | st.characters(categories=["Cs"])


def any_text(min_size: int = 0, max_size: int | None = None):
    return st.lists(any_character, min_size=min_size, max_size=max_size).map("".join)
# JSON texts written out by hand, so they can hold what json.dumps cannot write (a 5,000-digit number).
json_leaf = (any_text(max_size=12).map(json.dumps)  # ensure_ascii: a lone surrogate becomes "\udXXX"
             | st.integers(min_value=1, max_value=6000).map(lambda digits: "9" * digits)
             | st.sampled_from(["true", "false", "null", "1e999999", "-0.5"]))
json_text = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
    | st.lists(st.tuples(st.sampled_from(['"SMSModel"', '"To"', '"PhoneNumber"', '"MessageBody"', '"Name"', '"\\ud800"', '"x"']),
                         children), max_size=3)
    .map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"),
    max_leaves=12,
)


@settings(max_examples=500)
@given(document=json_text)
def test_any_json_text_is_data_of_valid_unicode_or_a_clean_refusal(document):
    try:
        data = read_body(document.encode(), "application/json")
    except ValidationFailed as exc:
        assert all(e.error_code in ("SerializationException", "InvalidUnicode") for e in exc.field_errors)
        return
    assert all(invalid_unicode_at(text) is None for text in _all_strings(data))
    read_as_dto(document.encode(), "application/json")


def _all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *_all_strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in _all_strings(item)]
    return []


@settings(max_examples=300)
@given(text=any_text(min_size=1, max_size=20), field=st.sampled_from(["MessageBody", "Notes", "Name", "PhoneNumber"]),
       content_type=st.sampled_from(["application/json", "text/jsv", "application/x-www-form-urlencoded"]))
def test_a_field_holding_text_that_is_not_valid_unicode_is_refused_naming_it(text, field, content_type):
    from urllib.parse import quote_from_bytes

    from sms.wire import jsv

    model = {"To": [{"PhoneNumber": "+61412345678", "Name": "Sam"}], "MessageBody": "hi", "Notes": "n"}
    (model["To"][0] if field in ("Name", "PhoneNumber") else model)[field] = text
    # Bytes as a client would have to send a lone surrogate: a JSON escape, or bytes that are not UTF-8
    # (ED A0 80 for U+D800) in JSV or a form. JSON joins an escaped high and low surrogate into one
    # character, so what it means is read back the way the server reads it.
    if content_type == "application/json":
        body, meant = json.dumps({"SMSModel": model}).encode(), json.loads(json.dumps(text))
    elif content_type == "text/jsv":
        body, meant = jsv.dumps({"SMSModel": model}).encode("utf-8", "surrogatepass"), text
    else:  # ServiceStack's form: each property a field, a complex one written as JSV
        body, meant = b"SMSModel=" + quote_from_bytes(jsv.dumps(model).encode("utf-8", "surrogatepass")).encode(), text
    invalid = invalid_unicode_at(meant) is not None
    path = f"SMSModel.To[0].{field}" if field in ("Name", "PhoneNumber") else f"SMSModel.{field}"
    try:
        read_body(body, content_type)
    except ValidationFailed as exc:
        assert invalid, f"valid text refused: {exc.message}"
        if content_type != "text/jsv":  # a JSV body that is not UTF-8 is refused whole
            assert [(e.field_name, e.error_code) for e in exc.field_errors] == [(path, "InvalidUnicode")]
        return
    assert not invalid


@settings(max_examples=100)
@given(depth=st.integers(min_value=1, max_value=20_000), content_type=st.sampled_from(["application/json", "text/jsv"]))
def test_any_depth_is_data_or_a_clean_400(depth, content_type):
    body = ("[" * depth + "]" * depth).encode()
    try:
        read_body(body, content_type)
    except ValidationFailed as exc:
        assert "nested deeper" in exc.message


invisible = st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"])


@settings(max_examples=300)
@given(body=st.text(invisible, min_size=0, max_size=30), content_type=st.sampled_from(["application/json", "text/jsv"]))
def test_a_body_with_nothing_a_phone_can_show_is_never_accepted(body, content_type):
    from sms.wire import jsv

    document = {"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": body}}
    raw = json.dumps(document).encode() if content_type == "application/json" else jsv.dumps(document).encode()
    request = read_as_dto(raw, content_type)
    with pytest.raises(ValidationFailed) as caught:
        message_from(send_command(request), "a" * 32, Limits(), utcnow())
    assert [(e.field_name, e.error_code) for e in caught.value.field_errors] in (
        [("SMSModel.MessageBody", "NotEmpty")], [("SMSModel.MessageBody", "NoVisibleText")])


@settings(max_examples=300)
@given(before=st.text(invisible, max_size=5), shown=st.characters(categories=["L", "N", "P", "S"]),
       after=st.text(invisible | st.characters(categories=["L", "N", "P", "S"]), max_size=5))
def test_a_body_with_one_visible_character_passes_the_visibility_check(before, shown, after):
    request = SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": before + shown + after}})
    message, _ = message_from(send_command(request), "a" * 32, Limits(), utcnow())
    assert message.body == before + shown + after


@settings(max_examples=300)
@given(text=any_text(max_size=40), fmt=st.sampled_from(list(Format)))
def test_any_answer_text_encodes_as_utf8(text, fmt):
    """An answer may quote what the client sent; it is always readable UTF-8, never a 500."""
    encoded = encode(CommResponse(comm_id=text, message=text), fmt)
    encoded.decode("utf-8")
