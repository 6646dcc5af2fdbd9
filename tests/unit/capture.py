"""An azure-core transport that sends nothing: it records each request the SDK's pipeline would have
sent (after authentication and every other policy) and answers with a canned response."""
from __future__ import annotations

import email
import json
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

Answer = Callable[[Any], "tuple[int, dict[str, str], bytes]"]


class _Canned(AsyncHttpResponseImpl):
    def _body(self) -> bytes:  # the SDK's multipart reader calls this synchronously; the content is here already
        return self._content


class _NothingToClose:
    async def close(self) -> None:
        pass


class CapturingTransport(AsyncHttpTransport):
    def __init__(self, answer: Answer):
        self.requests: list[Any] = []
        self._answer = answer

    async def send(self, request, **kwargs):
        self.requests.append(request)
        status, headers, body = self._answer(request)
        response = _Canned(request=request, internal_response=_NothingToClose(), status_code=status, reason="Canned",
                           content_type=headers.get("Content-Type"), headers=CaseInsensitiveDict(headers),
                           stream_download_generator=None)
        response._content = body
        return response

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        pass


def batch_answer(status_of: Callable[[int], str] = lambda i: "204 No Content") -> Answer:
    """A 202 to any $batch request, with one part per operation in it, each with an ETag naming its index."""

    def answer(request):
        count = len(parse_batch(request)[1])
        lines = ["--batchresponse_1", "Content-Type: multipart/mixed; boundary=changesetresponse_2", ""]
        for i in range(count):
            lines += ["--changesetresponse_2", "Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
                      f"HTTP/1.1 {status_of(i)}", f"Content-ID: {i}", f'ETag: W/"etag-{i}"', "", ""]
        lines += ["--changesetresponse_2--", "--batchresponse_1--", ""]
        return 202, {"Content-Type": "multipart/mixed; boundary=batchresponse_1"}, "\r\n".join(lines).encode()

    return answer


@dataclass
class Operation:
    """One operation of a changeset, as the Table service reads it."""
    content_id: str | None
    method: str
    path: str
    query: dict
    headers: dict[str, str]
    entity: dict | None
    part_headers: dict[str, str] = field(default_factory=dict)


def split_url(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query, keep_blank_values=True)


def parse_batch(request) -> tuple[dict, list[Operation]]:
    """The outer request and its operations, read with the standard library's MIME parser (neither
    implementation's own code), so each side is read the same way."""
    content_type = request.headers["Content-Type"]
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + bytes(request.content))
    assert message.is_multipart(), "the $batch body is not a multipart message"
    [changeset] = message.get_payload()
    assert changeset.get_content_type() == "multipart/mixed", "the batch holds no changeset"
    operations = []
    for part in changeset.get_payload():
        assert part.get_content_type() == "application/http" and part["Content-Transfer-Encoding"] == "binary"
        raw = part.get_payload(decode=True).decode("ascii")
        head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
        request_line, *header_lines = head.split("\n")
        method, url, version = request_line.split(" ")
        assert version == "HTTP/1.1"
        headers = dict(line.split(": ", 1) for line in header_lines)
        path, query = split_url(url)
        operations.append(Operation(part["Content-ID"], method, path, query, headers,
                                    json.loads(body) if body.strip() else None, dict(part.items())))
    path, query = split_url(request.url)
    outer = {"method": request.method, "path": path, "query": query, "headers": dict(request.headers)}
    return outer, operations


def transactions(table: Any, through_sdk: bool = False) -> Any:
    """Transactions on `table` as SMS_STORAGE_REQUESTS=direct writes them (ours, through the client's
    pipeline and so through its transport: a CapturingTransport sees them), or as =sdk does."""
    from sms.storage.handwritten.sending import DirectRequests
    from sms.storage.sdk_requests import SdkRequests

    return (SdkRequests() if through_sdk else DirectRequests()).transactions(table)


def sending_way(part: Any) -> str:
    """The SMS_STORAGE_REQUESTS a message store's transactions or a job queue's puts go out by, from what
    they hold: the SDK's own calls (sdk), the hot path's transport (lean) or an SDK pipeline (direct)."""
    from sms.storage.handwritten.sending import ThroughPipeline
    from sms.storage.handwritten.transport import StorageEndpoint
    from sms.storage.sdk_requests import SdkJobPuts, SdkTransactions

    if isinstance(part, (SdkTransactions, SdkJobPuts)):
        return "sdk"
    if isinstance(part.sender, StorageEndpoint):
        return "lean"
    if isinstance(part.sender, ThroughPipeline):
        return "direct"
    raise AssertionError(f"{part!r} sends by no known way")
