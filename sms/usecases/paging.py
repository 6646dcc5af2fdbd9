"""Continuation tokens bound to the query they go on with.

A store's token says where a page stopped, inside the query it was read with. Passed back with another
query (other filters, another time range, another endpoint's log) it went on from there inside that
one, and what came before was skipped: issue 23 found lists short or empty, and nothing said so. So the
token a use case answers with carries a digest of its query, and one that comes back with another is
refused:

    <12 hex digits: the query's digest>.<the store's token>

The licensee is not in the digest: a store reads only the key's licensee's partitions whatever a token
says, so another licensee's token with the same filters reads nothing of theirs (it starts again). The
digest is no secret and needs none: it tells queries apart, and what a forged token can reach is the
store's to limit.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from ..domain.errors import FieldError, ValidationFailed
from ..storage import invalid_token

_DIGEST_CHARS = 12


def bind(token: str | None, *query: object) -> str | None:
    """The store's token for the next page, bound to the query read (None, no more pages, stays None)."""
    return None if token is None else f"{_digest(query)}.{token}"


def unbind(token: str | None, *query: object) -> str | None:
    """The store's token inside one `bind` made for this same query (None for none). ValidationFailed
    naming continuationToken for one this gateway did not issue (tokens issued before they were bound
    included) or issued for another query."""
    if not token:
        return None
    digest, dot, inner = token.partition(".")
    if not dot or not inner or len(digest) != _DIGEST_CHARS:
        raise invalid_token()
    if digest != _digest(query):
        raise ValidationFailed([FieldError(
            "continuationToken", "InvalidValue", "continuationToken: was issued for another query (other filters, time range "
                                                 "or endpoint): pass it with the query it came from, or start again without it")])
    return inner


def _digest(query: tuple[object, ...]) -> str:
    """Of the query's values as the use case holds them, normalised (instants in UTC, numbers in E.164...),
    so the same query written another way has the same digest."""
    text = json.dumps([value.isoformat() if isinstance(value, datetime) else value for value in query], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]
