"""The free text a caller sends (names, notes) is limited where the request is validated, so nothing
Azure would refuse ever reaches storage: a too-long field is a 400 naming it, and the largest request
validation lets through, every field at its limit, fits Azure's limits with room to spare."""
import json
import uuid
from dataclasses import replace

import pytest
from azure.data.tables.aio import TableClient

from sms.config import Settings, azurite_connection_string
from sms.domain import segments, transitions
from sms.domain.commands import Party, SendMessage
from sms.domain.model import JOB_SIZE, MAX_ERROR_CHARS, MAX_EVENTS, Recipient, Status, utcnow
from sms.domain.validation import MAX_NAME_CHARS, MAX_NOTES_CHARS, Limits, message_from
from sms.storage.handwritten.sending import DirectRequests
from sms.storage.limits import MAX_ENTITY_BYTES, MAX_REQUEST_BYTES, MAX_STRING_BYTES
from sms.storage.tables import TableMessageStore, _message_entity, _recipient_entity
from sms.wire.callbacks import MAX_ID_CHARS
from tests.fakes import LICENSEE, command
from tests.unit.capture import CapturingTransport, batch_answer, parse_batch
from tests.unit.test_batch_limits import azure_entity_size


async def test_a_huge_note_is_a_400_naming_the_field_and_nothing_is_stored(gw):
    body = {"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "hi", "Notes": "n" * 100_000}}
    import azure.functions as func

    response = await gw.functions["send"](func.HttpRequest(
        "POST", "http://localhost/api/send", headers={"Authorization": f"Bearer {gw.key}"}, body=json.dumps(body).encode()))
    status = json.loads(response.get_body())["responseStatus"]
    assert response.status_code == 400 and status["errorCode"] == "ValidationException"
    assert status["errors"] == [{"errorCode": "MaxLength", "fieldName": "SMSModel.Notes",
                                 "message": f"SMSModel.Notes is 100000 characters; the limit is {MAX_NOTES_CHARS}"}]
    assert gw.world.store.messages == {} and gw.world.queue.jobs == []


# The largest the settings allow (SMS_MAX_BODY_CHARS and SMS_MAX_SEGMENTS at the top of their ranges).
WIDEST = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                            "SMS_MAX_BODY_CHARS": "30000", "SMS_MAX_SEGMENTS": "255", "SMS_MAX_RECIPIENTS": "100000"})
LIMITS = Limits(WIDEST.default_region, WIDEST.max_recipients, WIDEST.max_body_chars, WIDEST.max_segments)


@pytest.mark.parametrize("setting, value", [("SMS_MAX_BODY_CHARS", "30001"), ("SMS_MAX_SEGMENTS", "256")])
def test_the_settings_allow_nothing_wider_than_the_case_below(setting, value):
    """Raising a setting's range means rechecking the worst case below: a body of 32,769 characters
    would be over 64 KiB as UTF-16."""
    from sms.config import ConfigError

    with pytest.raises(ConfigError, match=f"{setting}={value} is out of range"):
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", setting: value})


def longest_body(character: str) -> str:
    """The most of `character` a body may hold at those limits (characters and segments)."""
    low, high = 1, LIMITS.max_body_chars
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if segments.count(character * middle).segments <= LIMITS.max_segments else (low, middle - 1)
    return character * low


# Bodies at those limits, each the worst for one measure: the most UTF-16 (30,000 GSM characters), the
# most JSON (each € is 2 GSM septets and 6 bytes of JSON), UCS-2, and emoji (two UTF-16 code units each).
BODIES = {name: longest_body(character) for name, character in
          {"ascii": "a", "quotes": '"', "euro": "€", "cyrillic": "ж", "emoji": "😀"}.items()}
# Names and notes at their limits in the character that costs most: 2 UTF-16 code units, 12 bytes of JSON.
WIDE = "😀"


def widest_request(body: str, recipients: int) -> SendMessage:
    return command(
        *(Party(WIDE * MAX_NAME_CHARS, f"+614{i:08d}", uuid.uuid4().hex) for i in range(recipients)), body=body,
        sender=Party(WIDE * MAX_NAME_CHARS, "Clinic Name", uuid.uuid4().hex), notes=WIDE * MAX_NOTES_CHARS,
        reply_is_allowed=True, reply_is_required=True, linked_object_id=uuid.uuid4().hex, suite_id=uuid.uuid4().hex,
        licensee_id=LICENSEE,
    )


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("recipients", [99, 250])
async def test_the_widest_valid_request_fits_azures_limits_with_room_to_spare(body, recipients):
    """Validated, mapped to entities and written through the real store over a transport that sends
    nothing: every transaction passes the checks before sending. 99 recipients are the message's own
    transaction; 250 make two more of 100 recipient rows each."""
    message, rows = message_from(widest_request(body, recipients), LICENSEE, LIMITS, utcnow())
    assert len(rows) == recipients  # accepted: this is a real worst case
    assert len(body) == 30_000 or message.segments > 250  # and as long as the limits let a body be

    transport = CapturingTransport(batch_answer())
    async with TableClient.from_connection_string(azurite_connection_string(), "SmsMessages", transport=transport) as table:
        await TableMessageStore(table, DirectRequests()).add(message, rows)  # StorageLimitExceeded if any check failed

    assert len(transport.requests) == (1 if recipients == 99 else 3)
    assert max(len(request.content) for request in transport.requests) < MAX_REQUEST_BYTES / 4
    assert sum(len(parse_batch(request)[1]) for request in transport.requests) == recipients + 1
    entities = [_message_entity(message)] + [_recipient_entity(r) for r in rows]
    assert max(azure_entity_size(e) for e in entities) < MAX_ENTITY_BYTES / 8
    strings = [v for e in entities for v in e.values() if isinstance(v, str)]
    assert max(len(v.encode("utf-16-le")) for v in strings) <= MAX_STRING_BYTES * 0.92
    assert max(sum(v is not None for v in e.values()) for e in entities) < 20  # of 255 properties


@pytest.mark.parametrize("field, limit", [("Notes", MAX_NOTES_CHARS), ("From.Name", MAX_NAME_CHARS), ("To[0].Name", MAX_NAME_CHARS)])
def test_each_text_field_is_limited_in_characters(field, limit):
    def request(length: int) -> SendMessage:
        text = WIDE * length  # an emoji is one character, however many bytes it takes
        return command(Party(text if field == "To[0].Name" else "Sam", "0412345678"), body="hi",
                       sender=Party(text if field == "From.Name" else "Clinic"), notes=text if field == "Notes" else None)

    message_from(request(limit), LICENSEE, Limits(), utcnow())
    from sms.domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as raised:
        message_from(request(limit + 1), LICENSEE, Limits(), utcnow())
    [error] = raised.value.field_errors
    assert (error.field_name, error.error_code) == (f"SMSModel.{field}", "MaxLength")
    assert error.message == f"SMSModel.{field} is {limit + 1} characters; the limit is {limit}"


# Every string property the messages table keeps for a send request, and what bounds it before anything
# is written. A new stored string fails the test below until its limit is named here (and checked).
STORED_STRINGS = {
    "PartitionKey": "the commId, ours", "RowKey": "ours", "LicenseeId": "the API key's licensee, ours",
    "Body": "SMS_MAX_BODY_CHARS (at most 30,000) and SMS_MAX_SEGMENTS", "FromName": "MAX_NAME_CHARS",
    "FromNumber": "E.164 (phonenumbers) or an 11-character sender id", "FromContactId": "a Guid (parse_guid)",
    "Encoding": "GSM-7 or UCS-2", "Notes": "MAX_NOTES_CHARS", "LinkedObjectId": "a Guid", "SuiteId": "a Guid",
    "RecipientId": "ours", "PhoneNumber": "E.164 (phonenumbers)", "Name": "MAX_NAME_CHARS", "ContactId": "a Guid",
    "Status": "a Status", "ProviderMessageId": "the provider's, or a callback's (wire.callbacks.MAX_ID_CHARS)",
    "LastError": "model.MAX_ERROR_CHARS", "ClaimId": "ours (a uuid4 hex per dispatch, usecases/job_rows.py)",
    "Timeline": "model.MAX_EVENTS events, each reason model.MAX_EVENT_ERROR_CHARS, the provider id once (MAX_PROVIDER_ID_CHARS)",
}


def test_every_string_a_send_stores_has_a_named_limit():
    message, rows = message_from(widest_request(BODIES["emoji"], 1), LICENSEE, LIMITS, utcnow())
    sent = full_timeline(rows[0]).moved_to(rows[0].status, provider_message_id="SM" + "0" * 32, last_error="e" * 5000, at=utcnow())
    strings = {name for entity in (_message_entity(message), _recipient_entity(sent))
               for name, value in entity.items() if isinstance(value, str)}
    assert strings == set(STORED_STRINGS)
    assert len(sent.last_error) == MAX_ERROR_CHARS


def full_timeline(row: Recipient) -> Recipient:
    """The largest timeline a recipient can keep: retries at the widest SMS_MAX_SEND_ATTEMPTS, every reason
    and the provider's id at their limits in emoji, and the last ten steps the ones that carry the most
    (four releases with their reasons, the claim, sent with the provider's id, undelivered with the carrier's)."""
    for attempt in range(1, 50):
        row = transitions.released(transitions.claimed(row, f"d{attempt}", at=utcnow()), WIDE * 5000, at=utcnow())
    row = transitions.sent(transitions.claimed(row, "d50", at=utcnow()), WIDE * MAX_ID_CHARS, at=utcnow())
    return transitions.receipt(row, Status.UNDELIVERED, WIDE * MAX_ID_CHARS, WIDE * 5000, at=utcnow())


async def test_a_job_of_recipients_with_full_timelines_fits_azures_limits():
    """The worst case above after sending: a job's 100 recipient rows, each with the widest name, a full
    timeline, the longest reason and provider id, written back as one transaction by the real store over
    a transport that sends nothing (StorageLimitExceeded if any check failed)."""
    message, rows = message_from(widest_request(BODIES["ascii"], JOB_SIZE), LICENSEE, LIMITS, utcnow())
    done = [replace(full_timeline(r), etag='W/"1"') for r in rows]
    assert all(len(r.events) == MAX_EVENTS and r.events_omitted == 2 * 49 + 2 + 1 - MAX_EVENTS for r in done)
    assert sum(e.error is not None for e in done[0].events) == 5 and sum(e.provider_message_id is not None for e in done[0].events) == 1

    transport = CapturingTransport(batch_answer())
    async with TableClient.from_connection_string(azurite_connection_string(), "SmsMessages", transport=transport) as table:
        await TableMessageStore(table, DirectRequests()).update_recipients(message.comm_id, done)

    [request] = transport.requests  # one transaction for the job, as without timelines
    assert len(request.content) < MAX_REQUEST_BYTES * 3 / 4
    entities = [_recipient_entity(r) for r in done]
    assert max(azure_entity_size(e) for e in entities) < MAX_ENTITY_BYTES / 64
    assert max(len(e["Timeline"].encode("utf-16-le")) for e in entities) <= MAX_STRING_BYTES / 8
    assert max(sum(v is not None for v in e.values()) for e in entities) < 20  # of 255 properties


async def test_the_widest_inbound_sms_the_callbacks_accept_fits_azures_limits(gw):
    """Every field of an ACS SMSReceived at its limit, in the characters that cost most, is accepted;
    written by the real store (over a transport that sends nothing), its keys and strings are inside
    what Azure takes: keys 1 KiB without / \\ # ? or controls, strings 64 KiB, the entity 1 MiB."""
    from sms.storage.inbound import TableInboundStore
    from sms.wire.callbacks import MAX_ID_CHARS, MAX_INBOUND_BODY_CHARS
    from tests.unit.test_callbacks_api import grid

    data = {"messageId": WIDE * MAX_ID_CHARS, "from": "+" + "9" * 15, "to": "+" + "W" * 20,
            "message": WIDE * MAX_INBOUND_BODY_CHARS, "receivedTimestamp": "2026-11-24T23:00:00Z"}
    response = await grid(gw, [{"id": "i" * MAX_ID_CHARS, "eventType": "Microsoft.Communication.SMSReceived", "data": data}])
    assert response.status_code == 200
    [stored] = gw.world.inbound_store.stored.values()

    transport = CapturingTransport(lambda request: (204, {"ETag": 'W/"x"'}, b""))
    async with TableClient.from_connection_string(azurite_connection_string(), "SmsInbound", transport=transport) as table:
        await TableInboundStore(table, table, table).add(stored)
    [request] = transport.requests
    entity = json.loads(request.content)
    for key in ("PartitionKey", "RowKey"):
        assert len(entity[key].encode("utf-16-le")) <= 1024
        assert not set(entity[key]) & set("/\\#?") and all(c >= " " and not "\x7f" <= c <= "\x9f" for c in entity[key])
    assert max(len(v.encode("utf-16-le")) for v in entity.values() if isinstance(v, str)) <= MAX_STRING_BYTES / 3
    assert azure_entity_size(entity) < MAX_ENTITY_BYTES / 40
