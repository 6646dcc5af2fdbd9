"""Reading $batch answers: one ETag per operation in order, or the one refusal mapped to its error."""
import uuid

import pytest
from azure.data.tables.aio import TableClient

from sms.config import azurite_connection_string
from sms.domain.errors import AlreadyExists, RecordChanged, StorageUnavailable
from sms.storage.handwritten.batch_answer import etags
from sms.storage.handwritten.odata import entity_json
from sms.storage.refusals import TransactionRejected
from tests.unit.capture import CapturingTransport, transactions


def answer(*parts: str) -> bytes:
    """A changeset answer as Azure writes it (CRLF line ends), each part a status line plus headers and body."""
    lines = ["--batchresponse_1", "Content-Type: multipart/mixed; boundary=changesetresponse_2", ""]
    for part in parts:
        lines += ["--changesetresponse_2", "Content-Type: application/http", "Content-Transfer-Encoding: binary", "", part]
    lines += ["--changesetresponse_2--", "--batchresponse_1--", ""]
    return "\r\n".join(lines).encode()


def ok(etag: str) -> str:
    return f"HTTP/1.1 204 No Content\r\nContent-ID: 1\r\nX-Content-Type-Options: nosniff\r\nETag: {etag}\r\nCache-Control: no-cache\r\n\r\n"


def refused(status: str, code: str) -> str:
    return (f"HTTP/1.1 {status}\r\nContent-ID: 2\r\nContent-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
            f'{{"odata.error":{{"code":"{code}","message":{{"lang":"en-US","value":"1:{code} happened."}}}}}}')


def test_etags_come_back_in_operation_order():
    tags = [f"W/\"datetime'2026-11-25T01%3A15%3A18.83888{i}Z'\"" for i in range(3)]
    assert etags(answer(*(ok(t) for t in tags)), 3) == tags


def test_an_etag_header_is_found_whatever_its_case():
    assert etags(answer(ok("W/\"x\"").replace("ETag", "etag")), 1) == ['W/"x"']


@pytest.mark.parametrize("body, expected", [
    (answer(ok('W/"a"'), ok('W/"b"')), 2),
    (answer(ok('W/"a"'), ok('W/"b"')).replace(b"\r\n", b"\n"), 2),  # LF only
    (answer(ok('W/"a"  '), ok('W/"b"').replace("ETag: ", "ETag:\t")), 2),  # spaces and tabs around the value
    (answer(ok('W/"a"'), ok('W/"b"').replace("ETag", "etag")), 2),  # another spelling: read part by part
    (answer(ok('W/"a"'), ok('W/"b"').replace("204 No Content", "200 OK")), 2),
    (answer(ok('W/"a"')), 2),  # fewer than asked for
    (answer(ok('W/"a"'), ok("")), 2),  # an empty ETag
    # Shapes neither Azure nor Azurite sends, where counting alone would pair the wrong ETags (review):
    (answer(ok('W/"a"'), ok('W/"b"').replace('ETag: W/"b"\r\n', "")).replace(
        b"Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n",
            b"Content-Type: multipart/mixed; boundary=changesetresponse_2\r\nETag: W/\"outer\"\r\n"), 2),
    (answer(ok('W/"a"').replace("Cache-Control", 'ETag: W/"again"\r\nCache-Control'), ok('W/"b"').replace('ETag: W/"b"\r\n', "")), 2),
    (answer(), 0),
])
def test_the_quick_read_of_a_successful_answer_agrees_with_reading_it_part_by_part(body, expected, monkeypatch):
    from sms.storage.handwritten import batch_answer as batch

    def read(answer_body):
        try:
            return etags(answer_body, expected)
        except TransactionRejected as error:
            return repr(error)

    quick = read(body)
    monkeypatch.setattr(batch, "_STATUS_LINE", batch.re.compile(rb"(?!)"))  # never matches: part by part only
    monkeypatch.setattr(batch, "_ETAG_AS_SENT", batch.re.compile(rb"(?!)"))
    assert quick == read(body)


@pytest.mark.parametrize("status, code, error", [
    ("409 Conflict", "EntityAlreadyExists", AlreadyExists),
    ("412 Precondition Failed", "UpdateConditionNotSatisfied", RecordChanged),
    ("404 Not Found", "ResourceNotFound", RecordChanged),
    ("503 Server Busy", "ServerBusy", StorageUnavailable),
    ("500 Internal Server Error", "InternalError", StorageUnavailable),
    ("429 Too Many Requests", "TooManyRequests", StorageUnavailable),
    ("404 Not Found", "TableNotFound", TransactionRejected),
    ("400 Bad Request", "PropertyValueTooLarge", TransactionRejected),
])
def test_a_refused_operation_raises_its_error(status, code, error):
    with pytest.raises(error):
        etags(answer(refused(status, code)), 2)


def test_a_refusal_with_an_unreadable_body_still_says_what_came_back():
    with pytest.raises(TransactionRejected, match="400.*not json"):
        etags(answer("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nnot json"), 1)


def test_an_answer_with_fewer_results_than_operations_is_not_taken_as_success():
    with pytest.raises(TransactionRejected, match="expected 2 results, read 1"):
        etags(answer(ok('W/"a"')), 2)


def test_types_the_gateway_does_not_store_are_refused_before_anything_is_sent():
    for value in (1.5, 2**31, -(2**31) - 1, b"bytes", uuid.uuid4()):
        with pytest.raises(TypeError, match="Value"):
            entity_json({"Value": value})


# Microsoft's own examples of entity group transaction responses, from "Performing entity group
# transactions" in the Table service REST reference:
# https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
# ("Sample Response for Create, Update, and Delete Operations", JSON; "Sample Error Response", JSON and
# Atom). Copied from the page's published source (MicrosoftDocs' azure-docs-rest-apis,
# docs-ref-conceptual/storageservices/Performing-Entity-Group-Transactions.md) without the two spaces
# Markdown puts at each line's end for a line break; the Atom example without "6E7", the size of the
# chunk (Transfer-Encoding: chunked) that an HTTP client removes. The page's failed-changeset examples
# are these two ("0:One of the request inputs is out of range.", "3:One of the request inputs is not
# valid."); the JSON one is not well-formed (its message string is never closed), as published.
DOCUMENTED_SUCCESS = """--batchresponse_e69b1c6c-62ff-471e-ab88-9a4aeef0a880
Content-Type: multipart/mixed; boundary=changesetresponse_a6253244-7e21-42a8-a149-479ee9e94a25

--changesetresponse_a6253244-7e21-42a8-a149-479ee9e94a25
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
Content-ID: 1
X-Content-Type-Options: nosniff
Cache-Control: no-cache
Preference-Applied: return-no-content
DataServiceVersion: 3.0;
Location: https://myaccount.table.core.windows.net/Blogs(PartitionKey='Channel_19',RowKey='1')
DataServiceId: https://myaccount.table.core.windows.net/Blogs (PartitionKey='Channel_19',RowKey='1')
ETag: W/"0x8D101F7E4B662C4"

--changesetresponse_a6253244-7e21-42a8-a149-479ee9e94a25
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
Content-ID: 2
X-Content-Type-Options: nosniff
Cache-Control: no-cache
Preference-Applied: return-no-content
DataServiceVersion: 3.0;
Location: https://myaccount.table.core.windows.net/Blogs (PartitionKey='Channel_19',RowKey='2')
DataServiceId: https://myaccount.table.core.windows.net/Blogs (PartitionKey='Channel_19',RowKey='2')
ETag: W/"0x8C134F7A4B692D8"

--changesetresponse_a6253244-7e21-42a8-a149-479ee9e94a25
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
Content-ID: 3
X-Content-Type-Options: nosniff
Cache-Control: no-cache
DataServiceVersion: 1.0;
ETag: W/"0x8A541B7C4D699D7"

--changesetresponse_a6253244-7e21-42a8-a149-479ee9e94a25--
--batchresponse_e69b1c6c-62ff-471e-ab88-9a4aeef0a880--
"""
DOCUMENTED_SUCCESS_TYPE = "multipart/mixed; boundary=batchresponse_e69b1c6c-62ff-471e-ab88-9a4aeef0a880"
DOCUMENTED_ETAGS = ['W/"0x8D101F7E4B662C4"', 'W/"0x8C134F7A4B692D8"', 'W/"0x8A541B7C4D699D7"']

DOCUMENTED_JSON_ERROR = """--batchresponse_4e1c04af-af2b-4cfc-9e35-7677a5efcfca
Content-Type: multipart/mixed; boundary=changesetresponse_e2a26601-bba8-4c1a-8a8c-bb66badcbca1

--changesetresponse_e2a26601-bba8-4c1a-8a8c-bb66badcbca1
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
Content-ID: 1
X-Content-Type-Options: nosniff
DataServiceVersion: 3.0;
Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8

{"odata.error":{"code":"OutOfRangeInput","message":{"lang":"en-US","value":"0:One of the request inputs is out of range.\\nRequestId:8abd3c55-a72e-47ba-ae0b-ba43abeb76ae\\nTime:2013-10-14T19:21:58.0890048Z}}}
--changesetresponse_e2a26601-bba8-4c1a-8a8c-bb66badcbca1--
--batchresponse_4e1c04af-af2b-4cfc-9e35-7677a5efcfca--
"""  # noqa: E501 - Microsoft's documented answer, verbatim
DOCUMENTED_JSON_ERROR_TYPE = "multipart/mixed; boundary=batchresponse_4e1c04af-af2b-4cfc-9e35-7677a5efcfca"

DOCUMENTED_ATOM_ERROR = """--batchresponse_7ab1553a-7dd6-44e7-8107-bf1ea1ab1876
Content-Type: multipart/mixed; boundary=changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec

--changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
Content-ID: 4
Content-Type: application/xml
Cache-Control: no-cache
DataServiceVersion: 1.0;

<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">
  <code>InvalidInput</code>
  <message xml:lang="en-US">3:One of the request inputs is not valid.</message>
</error>
--changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec--
--batchresponse_7ab1553a-7dd6-44e7-8107-bf1ea1ab1876--
"""

LINE_ENDS = pytest.mark.parametrize("eol", ["\r\n", "\n"], ids=["CRLF", "LF"])


def documented(text: str, eol: str) -> bytes:
    return text.replace("\n", eol).encode()


@LINE_ENDS
def test_the_documented_successful_changeset_gives_each_operations_etag(eol):
    assert etags(documented(DOCUMENTED_SUCCESS, eol), 3) == DOCUMENTED_ETAGS


@LINE_ENDS
def test_the_documented_failed_changeset_is_refused_with_its_code_and_message(eol):
    with pytest.raises(TransactionRejected) as raised:
        etags(documented(DOCUMENTED_JSON_ERROR, eol), 3)
    assert (raised.value.status, raised.value.code) == (400, "OutOfRangeInput")
    assert "0:One of the request inputs is out of range." in str(raised.value)


@LINE_ENDS
def test_the_documented_atom_error_is_refused_with_its_code(eol):
    with pytest.raises(TransactionRejected) as raised:
        etags(documented(DOCUMENTED_ATOM_ERROR, eol), 4)
    assert (raised.value.status, raised.value.code) == (400, "InvalidInput")
    assert "3:One of the request inputs is not valid." in str(raised.value)


def test_a_batch_refused_as_a_whole_without_a_changeset_still_says_why():
    """A 202 whose one part answers the whole batch (no changeset in it) is read as that refusal."""
    body = documented(DOCUMENTED_ATOM_ERROR, "\r\n").replace(
        b"--changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec--\r\n", b"").replace(
        b"Content-Type: multipart/mixed; boundary=changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec\r\n\r\n"
        b"--changesetresponse_6cc856b4-8cb9-41eb-b8d2-bb73475c6cec\r\n", b"")
    assert b"changeset" not in body
    with pytest.raises(TransactionRejected, match="400 InvalidInput"):
        etags(body, 2)


@LINE_ENDS
@pytest.mark.parametrize("through_sdk", [False, True], ids=["direct", "sdk"])
async def test_both_paths_read_the_documented_answers_alike(eol, through_sdk):
    """Served to our path and to the SDK's submit_transaction alike: the same ETags, the same error."""
    def serving(text: str, content_type: str):
        return CapturingTransport(lambda request: (202, {"Content-Type": content_type}, documented(text, eol)))

    rows = [{"PartitionKey": "Channel_19", "RowKey": str(i), "Rating": 9} for i in (1, 2, 3)]
    async with TableClient.from_connection_string(
            azurite_connection_string(), "Blogs", transport=serving(DOCUMENTED_SUCCESS, DOCUMENTED_SUCCESS_TYPE)) as table:
        assert await transactions(table, through_sdk).create(rows) == DOCUMENTED_ETAGS
    async with TableClient.from_connection_string(
            azurite_connection_string(), "Blogs", transport=serving(DOCUMENTED_JSON_ERROR, DOCUMENTED_JSON_ERROR_TYPE)) as table:
        with pytest.raises(TransactionRejected) as raised:
            await transactions(table, through_sdk).create(rows)
    assert (raised.value.status, raised.value.code) == (400, "OutOfRangeInput")
