"""A licensee's ledger partitions ("shards") and paging across them: the ledger's listing and the
webhook events' time ranges both read one RowKey range in each shard and merge them in key order.

A licensee's ledger is SHARDS partitions, "<licensee>|<shard>", the shard from the commId, so one busy
licensee spreads its writes over SHARDS partitions (Azure's target is 2,000 entities a second per
partition: "Scalability and performance targets for Table storage") and a page costs SHARDS queries,
run together. Every row about one message is in its shard.
"""
from __future__ import annotations

import asyncio
import base64
import heapq
import json
from typing import Awaitable, Callable, TypeVar

from azure.data.tables import TableEntity

from . import invalid_token

SHARDS = 3
END = "~"  # sorts after every character a key part holds (digits, letters, '+', '|'); "nothing more here"
MAX_TOKEN_CHARS = 4096

T = TypeVar("T")
# (partition, the last RowKey a page looked at there or None) -> (rows in RowKey order, whether it has more)
Fetch = Callable[[str, "str | None"], Awaitable[tuple[list[TableEntity], bool]]]


def partition(licensee_id: str, comm_id: str) -> str:
    """The ledger partition of one of the licensee's messages."""
    return f"{licensee_id}|{int(comm_id[:2], 16) % SHARDS}"


async def page_shards(licensee_id: str, token: str | None, take: int, fetch: Fetch,
                      kept: Callable[[TableEntity], T | None]) -> tuple[list[T], str | None]:
    """Up to `take` rows across the licensee's shards in RowKey order, each as `kept` makes it (None:
    looked at, not kept), and the token to go on from (None when every shard is done).

    Merged up to where a shard that has more stops: past it, a row of that shard could come before
    rows it has not shown yet. A token's keys are only used inside this licensee's partitions and the
    caller's range, whatever the token says."""
    after = read_token(token) if token else {}
    shards = [p for shard in range(SHARDS) if after.get(p := f"{licensee_id}|{shard}") != END]
    pages = await asyncio.gather(*(fetch(p, after.get(p)) for p in shards))
    frontier = min((rows[-1]["RowKey"] for rows, more in pages if more and rows), default=None)
    merged = heapq.merge(*([(row["RowKey"], p, row) for row in rows] for p, (rows, _) in zip(shards, pages, strict=True)))
    found: list[T] = []
    looked = dict.fromkeys(shards, 0)
    for key, p, row in merged:
        if len(found) == take or (frontier is not None and key > frontier):
            break
        looked[p] += 1
        after[p] = key
        if (item := kept(row)) is not None:
            found.append(item)
    for p, (rows, more) in zip(shards, pages, strict=True):
        if not more and looked[p] == len(rows):
            after[p] = END  # this shard has nothing more in range
    mine = {p: key for p, key in after.items() if p.startswith(f"{licensee_id}|")}
    ended = all(mine.get(f"{licensee_id}|{shard}") == END for shard in range(SHARDS))
    return found, None if ended else write_token(mine)


def write_token(starts: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(starts, separators=(",", ":")).encode()).decode().rstrip("=")


def read_token(token: str) -> dict[str, str]:
    """What write_token wrote; ValidationFailed (invalid_token) for anything else. A token comes back
    from the client, so whatever it decodes to is refused here unless it has the shape of ours: JSON
    nested past the reader's depth (RecursionError), and keys of printable ASCII only, as every
    partition and row key is (a lone surrogate would fail the query's encoding: issue 23)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid_token()
    try:
        starts = json.loads(base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4)))
    except (ValueError, UnicodeEncodeError, RecursionError):
        starts = None
    if not isinstance(starts, dict) or not all(_a_key(k) and _a_key(v) for k, v in starts.items()):
        raise invalid_token()
    return starts


def _a_key(text: object) -> bool:
    return isinstance(text, str) and text.isascii() and text.isprintable()
