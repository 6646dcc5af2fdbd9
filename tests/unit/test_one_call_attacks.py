"""Issue 30's one-call accept probed as an attacker and an unlucky operator would (the adversarial review), over the
app's own functions and the fakes: every spelling a client may give a tagged commId reads and cancels the one message
it names, and no spelling the rows are not keyed by is taken for it; a job just within the queue message's 64 KiB is
one put and one just past it today's path, each sent once; a job Azure's XML could not carry is never put; bad input
on the one-call path is a 400 with nothing put; an auto-batch whose second put lands unanswered sends each item once when the
rest is resent; 98, 99 and 100 recipients each take their documented path and are sent once; a lost put that meets
another licensee's gate is not called withdrawn."""
import json

import azure.functions as func
import pytest

from sms.domain.errors import NotFound, StorageUnavailable
from sms.domain.jobs import WHOLE_JOB_SIZE
from sms.storage.limits import MAX_QUEUE_MESSAGE_BYTES, fits_queue_message, queue_message_bytes
from tests.fakes import LICENSEE, OTHER, InMemoryWholeJobQueue
from tests.unit.test_one_call_accept import KEYS, NUMBERS, PutLandsUnanswered, call, gateway, post, request, run_worker, send

# -- spellings of a tagged commId ----------------------------------------------------------------------------------


def _spellings(comm_id: str) -> dict[str, str]:
    """What ServiceStack's Guid reader takes for the same id (sms/wire/dto.py parse_guid: any case, dashes, braces)."""
    dashed = f"{comm_id[:8]}-{comm_id[8:12]}-{comm_id[12:16]}-{comm_id[16:20]}-{comm_id[20:]}"
    return {"upper-case": comm_id.upper(), "dashed": dashed, "braced": "{" + dashed + "}", "braced upper-case": "{" + dashed.upper() + "}"}


@pytest.mark.parametrize("spelling", ["upper-case", "dashed", "braced", "braced upper-case"])
async def test_any_spelling_of_a_tagged_id_reads_and_cancels_the_one_message_it_names(spelling):
    """Rows are keyed by the id's "N" form: a GET or DELETE under another spelling must reach them (and its gate), or a
    DELETE would answer cancelled over a gate of its own while the message goes out."""
    gw = await gateway()
    comm_id = await send(gw)
    spelt = _spellings(comm_id)[spelling]
    state = await call(gw, "sms_status", "GET", spelt)
    assert (state["commId"], state["status"]) == (comm_id, "queued")
    assert await call(gw, "sms_cancel", "DELETE", spelt) == {"commId": comm_id, "cancelled": 3, "unaffected": {}}
    await run_worker(gw)
    assert gw.provider.calls == []
    assert (await call(gw, "sms_status", "GET", spelt))["status"] == "cancelled"


async def test_a_tagged_id_is_recognised_only_as_its_rows_spell_it():
    """The use cases read rows under the id as given: were an upper-case (or otherwise odd) spelling recognised, GET
    would answer `queued` for good from the id alone, and DELETE insert a gate under a key no worker reads, answer
    "cancelled": 3, and let the message go. Entry points normalise (parse_guid); the use cases must not rely on it."""
    gw = await gateway()
    comm_id = await send(gw)
    # One whose variant digit is 8 or 9 keeps it through upper-casing: the first check the id meets.
    while comm_id[16] not in "89":
        comm_id = await send(gw)
    for odd in (comm_id.upper(), comm_id[:20].upper() + comm_id[20:], " " + comm_id[1:], comm_id[:4] + "_" + comm_id[5:]):
        assert KEYS.recognised(odd, LICENSEE, gw.clock()) is None, odd
        with pytest.raises(NotFound):
            await gw.use.status.report(odd, LICENSEE)
        with pytest.raises(NotFound):
            await gw.use.cancel.cancel(LICENSEE, odd)
    assert gw.store.gates == {}


# -- the queue message's size and content ----------------------------------------------------------------------------

PADDED = 97  # recipients beside the one whose name is tuned
COFFEE = "☕"  # one character of a name, 3 bytes of UTF-8 in the job (its text is not escaped)


def _named(padding: int, last_name: str) -> list[dict]:
    return [{"PhoneNumber": f"+614120{i:05d}", "Name": COFFEE * padding} for i in range(PADDED)] + [
        {"PhoneNumber": f"+614120{PADDED:05d}", "Name": last_name}]


async def _post_to(gw, to: list[dict]) -> str:
    body = {"SMSModel": {"To": to, "MessageBody": "Your results are ready"}}
    response = await gw.functions["sms_send"](request(gw, "POST", "http://h/api/sms/send", body))
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())["commId"]


@pytest.mark.parametrize("over", [0, 1])
async def test_a_job_at_64_kib_after_base64_is_one_put_and_one_byte_past_it_is_todays_path_each_sent_once(over):
    """Put Message: "The encoded message can be up to 64 KiB in size" (learn.microsoft.com/rest/api/storageservices/
    put-message), the 64 KiB being the message text's UTF-8 (learn.microsoft.com/archive/blogs/avkashchauhan/windows-
    azure-queue-can-have-64kb-message-content-and-how-64kb-content-is-calculated): base64, 49,152 bytes of JSON."""
    gw = await gateway()
    # Measured: every id, number and time is as long in the next one, and each character the names gain adds its bytes.
    await _post_to(gw, _named(100, "x"))
    measured = len(gw.accept_jobs.jobs.pop().text.encode())
    target = 49_152 + over
    padding = 100 + (target - measured - 300) // (3 * PADDED)  # leaves 300 to 590 bytes for the last name to fill
    gap = target - measured - 3 * PADDED * (padding - 100)
    comm_id = await _post_to(gw, _named(padding, "x" + COFFEE * (gap // 3) + "x" * (gap % 3)))
    assert comm_id[12] == "8"  # tagged either way
    if over:
        assert gw.accept_jobs.jobs == [] and len(gw.queue.jobs) == 1  # the rows at accept, its job on sms-send
        for job, _ in gw.queue.jobs:
            await gw.use.dispatch.dispatch(job)
    else:
        [job] = gw.accept_jobs.jobs
        assert queue_message_bytes(job.text, "base64") == MAX_QUEUE_MESSAGE_BYTES
        await run_worker(gw)
    assert len(gw.provider.calls) == len(set(gw.provider.calls)) == PADDED + 1


class XmlQueue(InMemoryWholeJobQueue):
    """sms-accept under host.json messageEncoding none: the job's text goes in Put Message's XML as it is."""

    def fits(self, job) -> bool:
        return fits_queue_message(job.text, "none")


@pytest.mark.parametrize("character", ["\ufffe", "\uffff"])
async def test_text_xml_cannot_carry_is_never_put_unencoded_but_saved_todays_way(character):
    """Put Message: "The message must be in a format that can be included in an XML request with UTF-8 encoding";
    XML 1.0 has no U+FFFE or U+FFFF (Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF],
    https://www.w3.org/TR/xml/#charsets). The job's JSON carries text unescaped, so such a body, which validation
    takes (valid Unicode), would be a put Azure refuses: the message not accepted, or not as the client sent it."""
    assert not fits_queue_message(f'{{"body":"a{character}"}}', "none")
    assert fits_queue_message(f'{{"body":"a{character}"}}', "base64")  # base64 carries any bytes
    gw = await gateway(accept_jobs=XmlQueue())
    comm_id = await send(gw, to=[NUMBERS[0]], MessageBody=f"Your results are ready {character}")
    assert gw.accept_jobs.jobs == [] and gw.store.messages[comm_id].body.endswith(character)


def test_text_xml_can_carry_fits_unencoded():
    for text in ("a\tb\nc", "\ud7ff\ue000\ufffd", "😀", "<&>"):
        assert fits_queue_message(text, "none"), repr(text)


# -- input that must be a 400, nothing put ----------------------------------------------------------------------------

BAD = {
    "a lone surrogate in the body": {"MessageBody": "Hi \ud800"},
    "a lone surrogate in a name": {"To": [{"PhoneNumber": NUMBERS[0], "Name": "\udfff"}]},
    "a lone surrogate in the notes": {"Notes": "\ud83d"},
    "a number for the body": {"MessageBody": 5},
    "a list for a name": {"To": [{"PhoneNumber": NUMBERS[0], "Name": ["x"]}]},
    "a contact id that is no Guid": {"To": [{"PhoneNumber": NUMBERS[0], "ContactId": "nope"}]},
    "an object for the notes": {"Notes": {"a": 1}},
    "notes of 4,001 characters": {"Notes": "😀" * 4001},
    "a name of 201 characters": {"To": [{"PhoneNumber": NUMBERS[0], "Name": "☕" * 201}]},
    "a string for To": {"To": NUMBERS[0]},
}


@pytest.mark.parametrize("what", list(BAD))
async def test_bad_input_on_the_one_call_path_is_a_400_and_nothing_is_put(what):
    gw = await gateway()
    model = {"To": [{"PhoneNumber": NUMBERS[0]}], "MessageBody": "Hi", **BAD[what]}
    text = json.dumps({"SMSModel": model})  # escapes lone surrogates, as a client's JSON would
    response = await gw.functions["sms_send"](_raw(gw, text))
    assert response.status_code == 400, response.get_body()
    assert "responseStatus" in json.loads(response.get_body())
    assert gw.accept_jobs.jobs == [] and gw.store.messages == {}


def _raw(gw, text: str) -> func.HttpRequest:
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
    return func.HttpRequest("POST", "http://h/api/sms/send", headers=headers, route_params={}, params={}, body=text.encode())


# -- an auto-batch whose second put lands unanswered -------------------------------------------------------------------


class SecondPutLandsUnanswered(InMemoryWholeJobQueue):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    async def put(self, job) -> None:
        self.puts += 1
        await super().put(job)
        if self.puts == 2:
            raise StorageUnavailable()


async def test_an_unkeyed_batch_whose_second_put_is_lost_says_one_done_and_its_resent_rest_sends_each_once():
    gw = await gateway(accept_jobs=SecondPutLandsUnanswered())
    items = [{"SMSModel": {"To": [{"PhoneNumber": n}], "MessageBody": "Hi"}} for n in NUMBERS]
    refused = await gw.functions["sms_send_servicestack_batch"](request(gw, "POST", "http://h/api/SMSSend[]", items))
    assert refused.status_code == 503 and refused.headers["X-AutoBatch-Completed"] == "1"
    assert json.loads(refused.get_body())["responseStatus"]["meta"] == {"AutoBatchIndex": "1"}
    resent = await gw.functions["sms_send_servicestack_batch"](request(gw, "POST", "http://h/api/SMSSend[]", items[1:]))
    assert resent.status_code == 200, resent.get_body()
    await run_worker(gw)  # the first item, the second's landed (withdrawn) job and the resend's two
    assert sorted(gw.provider.calls) == sorted(NUMBERS)


# -- 98, 99 and 100 recipients -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [WHOLE_JOB_SIZE, WHOLE_JOB_SIZE + 1, WHOLE_JOB_SIZE + 2])
async def test_98_recipients_are_one_put_99_and_100_todays_path_each_sent_once(count):
    gw = await gateway()
    to = [f"+614120{i:05d}" for i in range(count)]
    comm_id = await send(gw, to=to)
    if count <= WHOLE_JOB_SIZE:
        assert comm_id[12] == "8" and len(gw.accept_jobs.jobs) == 1 and gw.queue.jobs == []
        await run_worker(gw)
    else:
        assert comm_id[12] == "4" and gw.accept_jobs.jobs == [] and len(gw.queue.jobs) == 1
        for job, _ in gw.queue.jobs:
            await gw.use.dispatch.dispatch(job)
    assert sorted(gw.provider.calls) == sorted(to)
    state = await call(gw, "sms_status", "GET", comm_id)
    assert (state["status"], len(state["recipients"])) == ("sent", count)



# -- a withdrawal that meets another licensee's gate -------------------------------------------------------------------


async def test_a_lost_put_whose_id_another_licensee_closed_is_not_called_withdrawn():
    """A made-up id passes for one of another licensee's once in 2**21 (sms/domain/comm_ids.py), and such a cancel's
    gate is ignored by the worker, which writes the rows queued and sends (sms/usecases/materialize.py). A lost put that
    meets it has not been withdrawn: a 503 saying "nothing will be sent" would have the client send it again, and the
    landed job send it too. Its outcome is unknown, as a lost commit's is."""
    gw = None

    async def foreign_cancel(job):
        await gw.store.close_gate(job.message.comm_id, OTHER, gw.clock())

    gw = await gateway(accept_jobs=PutLandsUnanswered(foreign_cancel))
    refused = await post(gw, NUMBERS[0])
    assert refused.status_code == 503
    assert "withdrawn" not in json.loads(refused.get_body())["responseStatus"]["message"]
    await run_worker(gw)
    assert gw.provider.calls == [NUMBERS[0]]  # what the answer must not have denied
