"""Reading a $batch answer, by hand: only what the gateway uses of it, each operation's status and ETag.
azure-data-tables parses it with the standard library's `email.parser` (see batch_request.py)."""
from __future__ import annotations

import re

from ..refusals import TransactionRejected, refused_operation

# The changeset's boundary, declared at the top of the body (the batch's is in the response's headers).
_BOUNDARY = re.compile(rb'boundary="?([^\s;"]+)')
# Where an operation's status line and headers end. A part with no body, as Azure documents a 204,
# ends right there: its boundary follows the headers' blank line with no line end of its own.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_ETAG = re.compile(rb"^etag:[ \t]*(.+?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
# For the usual answer (etags): an operation's status line, and its ETag header as Azure and Azurite
# spell it, each on a line of its own (a line of an answer's JSON body cannot start them: JSON escapes a
# newline in a string). A literal after the newline lets the scan skip ahead, which '^' with
# re.MULTILINE and IGNORECASE do not: a fifth of the time.
_STATUS_LINE = re.compile(rb"\nHTTP/1\.1 (\d{3})")
_ETAG_AS_SENT = re.compile(rb"\nETag:[ \t]*([^\s][^\r\n]*?)[ \t]*\r?\n")


def etags(body: bytes, expected: int) -> list[str]:
    """The ETag of each of the `expected` operations, in order; or the error of the one storage refused."""
    # The usual answer, every operation done, read in two scans (a third of the time of splitting it
    # into parts): one ETag after each status line and before the next. Anything else is read part by
    # part below.
    if body.startswith(b"--") and expected:
        statuses = list(_STATUS_LINE.finditer(body))
        if len(statuses) == expected and all(status.group(1).startswith(b"2") for status in statuses):
            found = list(_ETAG_AS_SENT.finditer(body))
            ends = [status.start() for status in statuses[1:]] + [len(body)]
            placed = zip(statuses, found, ends, strict=True)
            if len(found) == expected and all(status.end() < etag.start() < end for status, etag, end in placed):
                return [etag.group(1).decode() for etag in found]
    results = _results(body)
    failed = next(((status, payload) for status, _, payload in results if not 200 <= status < 300), None)
    if failed is not None:
        raise refused_operation(*failed)
    read = [match.group(1).decode() for _, headers, _ in results if (match := _ETAG.search(headers))]
    if len(results) != expected or len(read) != expected:
        raise TransactionRejected(202, "UnreadableResponse", f"expected {expected} results, read {len(read)}")
    return read


def _results(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """(status, headers, body) of each operation in a changeset response, in order; or the one
    answer to a batch that failed as a whole, which comes without a changeset."""
    if not body.startswith(b"--"):
        return []
    parts = body.split(body.split(b"\n", 1)[0].rstrip())  # the body opens with the batch's delimiter
    if changeset := _BOUNDARY.search(body):
        parts = [piece for part in parts for piece in part.split(b"--" + changeset.group(1))]
    results = []
    for part in parts:
        start = part.find(b"HTTP/1.1 ")
        if start < 0:  # a part's MIME headers alone, or the closing delimiters
            continue
        head, *rest = _END_OF_HEADERS.split(part[start:], maxsplit=1)
        status_line, _, headers = head.partition(b"\n")
        results.append((int(status_line[9:12]), headers, rest[0].strip() if rest else b""))
    return results
