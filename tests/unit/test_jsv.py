import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.wire import SMSSend, jsv, to_dto

# The seed's own sample request (SMSSend-metadata.txt), placeholders replaced by real values,
# kept in its pretty-printed layout with tabs and new lines.
SEED_SAMPLE = """{
\tSMSModel: 
\t{
\t\tFrom: 
\t\t{
\t\t\tName: Clinic,
\t\t\tPhoneNumber: +61400000000,
\t\t\tContactId: 00000000000000000000000000000000
\t\t},
\t\tTo: 
\t\t[
\t\t\t{
\t\t\t\tName: Sam Citizen,
\t\t\t\tPhoneNumber: 0412 345 678,
\t\t\t\tContactId: 6f9619ff8b86d011b42d00c04fc964ff
\t\t\t}
\t\t],
\t\tMessageBody: "Hello, Sam: your appointment is at 10am",
\t\tReplyIsAllowed: False,
\t\tReplyIsRequired: True,
\t\tNotes: String,
\t\tLinkedObjectId: 00000000000000000000000000000000,
\t\tSuiteId: 00000000000000000000000000000000,
\t\tLicenseeId: 11111111111111111111111111111111
\t},
\tCreateCommunicationReferencesImmediately: False
}"""


def test_the_seeds_sample_request_parses_into_the_dto():
    request = to_dto(jsv.loads(SEED_SAMPLE), SMSSend)
    model = request.sms_model
    assert model.from_.name == "Clinic" and model.from_.contact_id is None  # all-zero Guid = not given
    assert model.to[0].name == "Sam Citizen" and model.to[0].phone_number == "0412 345 678"
    assert model.to[0].contact_id == "6f9619ff8b86d011b42d00c04fc964ff"
    assert model.message_body == "Hello, Sam: your appointment is at 10am"
    assert (model.reply_is_allowed, model.reply_is_required) == (False, True)
    assert model.licensee_id == "1" * 32
    assert request.create_communication_references_immediately is False


def test_writing_follows_the_seeds_response_style():
    assert jsv.dumps({"CommId": "0" * 32, "Reference": "String", "Status": False, "Message": None}) == (
        "{CommId:00000000000000000000000000000000,Reference:String,Status:False}"
    )


@pytest.mark.parametrize("text, quoted", [
    ("plain words", "plain words"),
    ("a,b", '"a,b"'), ("a:b", '"a:b"'), ("{x}", '"{x}"'), ("[x]", '"[x]"'),
    ('say "hi"', '"say ""hi"""'), ("line\nbreak", '"line\nbreak"'), ("cr\rhere", '"cr\rhere"'),
    (" lead", '" lead"'), ("trail ", '"trail "'), ("", '""'), ("ünïcödé ✓", "ünïcödé ✓"),
])
def test_strings_are_quoted_only_when_they_must_be(text, quoted):
    assert jsv.quote(text) == quoted


scalars = st.text()
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(min_size=1), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.dictionaries(st.text(min_size=1), values, max_size=5))
def test_any_map_of_strings_lists_and_maps_round_trips(document):
    assert jsv.loads(jsv.dumps(document)) == document


@settings(max_examples=500)
@given(st.text(alphabet=list('",:{}[]\r\n \t') + ["a", "é", "😀"], max_size=30))
def test_strings_made_of_the_characters_that_force_quoting_round_trip(text):
    assert jsv.loads(jsv.dumps({"K": text, "L": [text, text]})) == {"K": text, "L": [text, text]}


@settings(max_examples=1000)
@given(st.text(max_size=60))
def test_any_input_either_parses_or_raises_jsv_error_with_a_position(text):
    try:
        jsv.loads(text)
    except jsv.JsvError as exc:
        assert 0 <= exc.position <= len(text)


@pytest.mark.parametrize("text, fragment, position", [
    ("{A:1", "expected ',' or '}'", 4),
    ('{A:"unterminated}', "unterminated quoted string", 3),
    ("{A:1}trailing", "after the value", 5),
    ("{A 1}", "expected ':'", 4),
    ("[1,2", "expected ',' or ']'", 4),
    ("{A:x{y}}", "quote it", 4),
    ("", "empty", 0),
])
def test_malformed_input_names_the_problem_and_where(text, fragment, position):
    with pytest.raises(jsv.JsvError) as caught:
        jsv.loads(text)
    assert fragment in str(caught.value) and caught.value.position == position


def test_nesting_is_limited():
    deep = "{A:" * 40 + "x" + "}" * 40
    with pytest.raises(jsv.JsvError, match="nested deeper than 32"):
        jsv.loads(deep)
    assert jsv.loads("[" * 10 + "]" * 10, max_depth=10) == [[[[[[[[[[]]]]]]]]]]


# -- hostile input: text that is not valid Unicode, control characters, any depth ----------------

# Every code point, and lone surrogates (category Cs) often: Hypothesis leaves them out unless asked,
# and st.text() draws from its alphabet by code point, so 2,048 surrogates would almost never come up.
any_character = st.characters(exclude_categories=()) | st.characters(categories=["Cs"])


def any_text(min_size: int = 0, max_size: int | None = None):
    return st.lists(any_character, min_size=min_size, max_size=max_size).map("".join)


@settings(max_examples=300)
@given(st.dictionaries(any_text(min_size=1), any_text(), max_size=5))
def test_any_text_even_lone_surrogates_and_controls_round_trips(document):
    """JSV is text in, text out: which text a request may hold is read_body's rule, not the codec's."""
    assert jsv.loads(jsv.dumps(document)) == document


@settings(max_examples=500)
@given(any_text(max_size=60))
def test_any_text_with_any_code_point_either_parses_or_raises_jsv_error(text):
    try:
        jsv.loads(text)
    except jsv.JsvError as exc:
        assert 0 <= exc.position <= len(text)


@settings(max_examples=200)
@given(depth=st.integers(min_value=1, max_value=5000), opener=st.sampled_from(["[", "{A:"]))
def test_any_depth_parses_within_the_limit_and_is_a_jsv_error_past_it(depth, opener):
    closer = "]" if opener == "[" else "}"
    text = opener * depth + ("x" if opener != "[" else "") + closer * depth
    if depth <= jsv.MAX_DEPTH:
        jsv.loads(text)
    else:
        with pytest.raises(jsv.JsvError, match="nested deeper"):
            jsv.loads(text)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_any_bytes_in_a_jsv_form_field_are_data_of_valid_unicode_or_a_clean_400(raw):
    """A form field holding JSV is percent-decoded bytes: those that are not UTF-8 are refused, naming
    the field, and nothing that is not valid Unicode gets through."""
    from urllib.parse import quote_from_bytes

    from sms.domain.errors import ValidationFailed
    from sms.wire import read_body
    from sms.wire.formats import invalid_unicode_at

    body = b"SMSModel=" + quote_from_bytes(b"{To:[{Name:" + raw + b"}]}").encode()
    try:
        data = read_body(body, "application/x-www-form-urlencoded")
    except ValidationFailed as exc:
        assert all(e.error_code in ("SerializationException", "InvalidUnicode") for e in exc.field_errors)
        return
    assert _strings(data) and all(invalid_unicode_at(s) is None for s in _strings(data))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_an_instant_is_written_as_the_json_answer_writes_it_with_z_for_utc():
    """ServiceStack writes a UTC DateTime with a 'Z' (ServiceStack.Text src/ServiceStack.Text/Common/DateTimeSerializer.cs,
    XsdDateTimeFormat "yyyy-MM-ddTHH:mm:ss.fffffffZ"), as our JSON answers do (pydantic): JSV wrote '+00:00'. It writes
    it unquoted (src/ServiceStack.Text/Jsv/JsvTypeSerializer.cs, WriteDateTime: no ToCsvField), and reads it back so."""
    from datetime import datetime, timedelta, timezone

    from sms.wire import Format, encode
    from sms.wire.dto import WebhookDeliveryAttempt

    at = datetime(2026, 11, 25, 4, 20, 31, 500000, tzinfo=timezone.utc)
    assert jsv.dumps({"At": at}) == "{At:2026-11-25T04:20:31.500000Z}"
    assert jsv.dumps({"At": at.replace(microsecond=0)}) == "{At:2026-11-25T04:20:31Z}"
    assert jsv.dumps({"At": at.astimezone(timezone(timedelta(hours=11)))}) == "{At:2026-11-25T15:20:31.500000+11:00}"
    assert jsv.loads(jsv.dumps({"At": at})) == {"At": "2026-11-25T04:20:31.500000Z"}
    state = WebhookDeliveryAttempt(at=at, event_id="evt_1", event_type="message.sent", attempt=1, outcome="delivered", latency_ms=5,
                                 replay=False)
    json_at = json.loads(encode(state, Format.JSON))["at"]
    assert f"At:{json_at}," in encode(state, Format.JSV).decode()
