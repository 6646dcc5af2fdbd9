"""The version-2 job (issue 30): the whole of a newly accepted message in one queue message, the same rows out
however often it is read; versions told apart, an unknown one never taken for a malformed job and dropped; and
the queue's size rule, Azure's 64 KiB of encoded text."""
import json
from base64 import b64encode
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
from azure.storage.queue import TextBase64EncodePolicy

from sms.domain.jobs import NotWhole, WholeJob, parse_job
from sms.domain.model import Contact, Message, Recipient, SendJob, Status, UnknownJobVersion, evolved
from sms.entrypoints import worker
from sms.storage.limits import MAX_QUEUE_MESSAGE_BYTES, fits_queue_message, queue_message_bytes

AT = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=timezone.utc)
COMM_ID = "c" * 32
LICENSEE = "a" * 32


def accepted(count: int = 2, **changes) -> tuple[Message, list[Recipient]]:
    """A message as accept checks it, every field set."""
    message = Message(
        comm_id=COMM_ID, licensee_id=LICENSEE, body="Tea at 3 — ☕ <b>&</b>", sender=Contact("Clinic", "+61400000000", "k1"),
        recipient_count=count, encoding="UCS-2", segments=1, reply_is_allowed=True, reply_is_required=True, notes="née \"x\"",
        linked_object_id="linked", suite_id="suite", created_at=AT, valid_until=AT + timedelta(hours=2), urgent=True,
        estimated_cost=123_456_789_012, currency="AUD")
    message = evolved(message, **changes)
    recipients = [Recipient(comm_id=COMM_ID, seq=i, recipient_id=f"{i:032x}", phone_number=f"+6141234{i:04d}",
                            name="Zoë 😀" if i % 2 else None, contact_id=f"c{i}" if i % 3 else None, created_at=AT, updated_at=AT)
                  for i in range(count)]
    return message, recipients


def whole_job_of(size: int) -> WholeJob:
    """A job whose text is `size` bytes of UTF-8."""
    message, recipients = accepted(1, notes="")
    base = len(WholeJob.of(message, recipients).to_json().encode())
    job = WholeJob.of(evolved(message, notes="n" * (size - base)), recipients)
    assert len(job.to_json().encode()) == size
    return job


def test_a_whole_job_reads_back_as_the_rows_accept_would_have_written():
    message, recipients = accepted(5)
    job = WholeJob.of(message, recipients, "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    again = WholeJob.from_json(job.to_json())
    assert again.message == message
    assert list(again.recipients) == recipients
    assert again.traceparent == job.traceparent
    assert again.ids() == SendJob(COMM_ID, 0, 4, job.traceparent)
    assert WholeJob.from_json(again.to_json()).to_json() == job.to_json()  # the same text however often it is read


def test_absent_fields_read_back_absent():
    message, recipients = accepted(1, notes=None, linked_object_id=None, suite_id=None, valid_until=None, urgent=False,
                                   reply_is_allowed=False, reply_is_required=False, estimated_cost=None, currency=None,
                                   sender=Contact())
    job = WholeJob.of(message, recipients)
    assert WholeJob.from_json(job.to_json()).message == message
    assert set(json.loads(job.to_json())) == {"v", "commId", "licenseeId", "at", "body", "enc", "seg", "from", "to"}


def test_text_in_any_script_is_carried_as_utf8_not_escaped():
    """A \\uXXXX escape costs 6 to 12 bytes a character against UTF-8's 1 to 4: more of a request fits in 64 KiB."""
    message, recipients = accepted(2)
    text = WholeJob.of(message, recipients).to_json()
    assert "☕" in text and "😀" in text and "\\u" not in text


@pytest.mark.parametrize("changes, why", [
    ({"send_at": AT + timedelta(days=1)}, "scheduled"),
    ({"blocked": 1}, "blocked"),
    ({"created_at": AT.replace(microsecond=456001)}, "millisecond"),
])
def test_a_message_only_its_rows_can_hold_is_not_whole(changes, why):
    message, recipients = accepted(2, **changes)
    if "created_at" in changes:
        recipients = [evolved(r, created_at=message.created_at, updated_at=message.created_at) for r in recipients]
    with pytest.raises(NotWhole, match=why):
        WholeJob.of(message, recipients)


@pytest.mark.parametrize("count", [99, 100, 101])
def test_more_recipients_than_one_transaction_holds_beside_the_message_and_gate_are_not_whole(count):
    """Issue 30: the worker writes a whole job's rows in one transaction with the message row and the gate (Azure's
    100 operations): rows written before it would be written again by every run of the job, over rows a run before
    had sent."""
    message, recipients = accepted(count)
    with pytest.raises(NotWhole, match="1 to 98"):
        WholeJob.of(message, recipients)
    assert WholeJob.of(*accepted(98)).ids().last == 97


def test_a_recipient_not_just_queued_is_not_whole():
    message, recipients = accepted(2)
    with pytest.raises(NotWhole, match="recipient 1"):
        WholeJob.of(message, [recipients[0], evolved(recipients[1], status=Status.BLOCKED)])


def test_each_version_is_read_as_itself():
    message, recipients = accepted(1)
    whole = WholeJob.of(message, recipients)
    ids = SendJob(COMM_ID, 0, 0)
    assert parse_job(whole.to_json()) == whole
    assert parse_job(ids.to_json()) == ids
    assert parse_job(json.dumps({"v": 1, "commId": COMM_ID, "first": 0, "last": 0})) == ids


@pytest.mark.parametrize("version", [3, 0, "2", None])
def test_an_unknown_version_is_unknown_never_malformed(version):
    text = json.dumps({"v": version, "commId": COMM_ID, "first": 0, "last": 0})
    for read in (parse_job, SendJob.from_json, WholeJob.from_json):
        with pytest.raises(UnknownJobVersion) as raised:
            read(text)
        assert not isinstance(raised.value, ValueError)  # what the poison handlers drop


def test_a_version_2_job_is_never_read_as_ids_only():
    """SendJob.from_json ignores keys it does not know: without the version check a whole job would be read as
    a job whose rows are missing, and dropped by an earlier poison handler."""
    message, recipients = accepted(1)
    with pytest.raises(UnknownJobVersion):
        SendJob.from_json(WholeJob.of(message, recipients).to_json())


@pytest.mark.parametrize("text", ["[]", "3", "not json", '{"v":2}', '{"v":2,"commId":"x"}',
                                  '{"v":2,"commId":"' + "c" * 32 + '","licenseeId":"nope","at":0,"body":"","enc":"GSM-7","seg":1,'
                                  '"from":[null,null,null],"to":[["r","+61412345678",null,null]]}'])
def test_what_no_version_wrote_is_malformed(text):
    with pytest.raises(ValueError):
        parse_job(text)


async def test_the_poison_handler_leaves_an_unknown_version_on_its_queue():
    """It raises, so the host leaves the message where it is (a poison queue has no poison queue) for a release that knows it."""
    async def no_gateway():
        raise AssertionError("not reached")

    app = func.FunctionApp()
    app.register_functions(worker.blueprint(no_gateway))
    functions = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}
    message, recipients = accepted(1)
    for body in (WholeJob.of(message, recipients).to_json(), json.dumps({"v": 9, "commId": COMM_ID})):
        with pytest.raises(UnknownJobVersion):
            await functions["send_job_poison"](func.QueueMessage(body=body.encode()))
    await functions["send_job_poison"](func.QueueMessage(body=b"not a job"))  # malformed: dropped, as before


# -- the queue's size rule ---------------------------------------------------------------------------------------------


def test_base64_fits_up_to_49152_bytes_of_json():
    """4 characters for every 3 bytes: 49,152 bytes encode to 65,536 characters, Azure's 64 KiB."""
    assert fits_queue_message(whole_job_of(49_152).text, "base64")
    assert not fits_queue_message(whole_job_of(49_153).text, "base64")


@pytest.mark.parametrize("text", ["a", "ab", "abc", "abcd", "☕", "😀x", whole_job_of(49_151).text, whole_job_of(49_152).text,
                                  whole_job_of(49_153).text])
def test_the_base64_size_is_what_the_sdk_and_our_put_encode(text):
    expected = len(TextBase64EncodePolicy().encode(text))
    assert queue_message_bytes(text, "base64") == expected == len(b64encode(text.encode()))


def test_without_encoding_the_size_is_the_escaped_text():
    """messageEncoding none: the text goes in the XML body escaped (& is 5 bytes, < and > 4)."""
    assert queue_message_bytes("a&b<c>", "none") == len("a&amp;b&lt;c&gt;")
    assert fits_queue_message("x" * MAX_QUEUE_MESSAGE_BYTES, "none")
    assert not fits_queue_message("x" * (MAX_QUEUE_MESSAGE_BYTES - 4) + "&", "none")
    assert queue_message_bytes("☕", "none") == 3


def test_text_no_put_can_carry_does_not_fit():
    assert queue_message_bytes("\ud800", "base64") is None
    assert not fits_queue_message("\ud800", "base64") and not fits_queue_message("\ud800", "none")
