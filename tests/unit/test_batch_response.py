"""Reading $batch answers: one ETag per operation in order, or the one refusal mapped to its error."""
import uuid

import pytest

from sms.errors import AlreadyExists, RecordChanged, StorageUnavailable
from sms.storage.batch import TransactionRejected, _entity_json, _etags


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
    assert _etags(answer(*(ok(t) for t in tags)), 3) == tags


def test_an_etag_header_is_found_whatever_its_case():
    assert _etags(answer(ok("W/\"x\"").replace("ETag", "etag")), 1) == ['W/"x"']


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
        _etags(answer(refused(status, code)), 2)


def test_a_refusal_with_an_unreadable_body_still_says_what_came_back():
    with pytest.raises(TransactionRejected, match="400.*not json"):
        _etags(answer("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nnot json"), 1)


def test_an_answer_with_fewer_results_than_operations_is_not_taken_as_success():
    with pytest.raises(TransactionRejected, match="expected 2 results, read 1"):
        _etags(answer(ok('W/"a"')), 2)


def test_types_the_gateway_does_not_store_are_refused_before_anything_is_sent():
    for value in (1.5, 2**31, -(2**31) - 1, b"bytes", uuid.uuid4()):
        with pytest.raises(TypeError, match="Value"):
            _entity_json({"Value": value})
