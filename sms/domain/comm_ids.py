"""Tagged commIds: an id the gateway can recognise as one it minted for a licensee, before any row of it exists.

On the one-call accept (issue 30) the queue message is the only durable write while the caller waits; the
message's rows are written by the worker, about a second later. A GET or DELETE in that second must not answer
404 for a message the gateway accepted, and must not believe a made-up id either. So the id carries its accept
time and a keyed tag over the licensee it belongs to: recognising it is arithmetic and one HMAC, no storage call.

The id is still 32 lowercase hex digits that parse as a Guid (the wire contract's "N" format), an RFC 9562
version-8 UUID ("custom", https://www.rfc-editor.org/rfc/rfc9562#section-5.8). Every other id the gateway mints
is version 4 (model.new_guid; the keyed path's uuid4), and a tagged id must carry version 8 and the RFC variant,
so no version-4 id is ever taken for a tagged one. Of the 122 bits left beside version and variant, in order:

    R  64 bits  random (os.urandom). Leading, so the reference (the first 8 hex digits), the ledger's shards
                (storage/shards.py) and PartitionKeys stay random: time first would be Azure's prepend/append
                anti-pattern (learn.microsoft.com/azure/storage/tables/table-storage-design-patterns).
                Two ids collide only if R and the millisecond match: at 2,000 accepts a second, about 1e-9 a
                year, against 2e-4 for the 48 bits first proposed (a collision is detected by the materializer,
                never recovered: the caller holds the id).
    T  30 bits  accept time, in milliseconds since the epoch, modulo 2**30 (12.4 days, more than the window W)
    C   7 bits  recipients - 1 (a one-call message is one job: 1 to 100 recipients)
    H  21 bits  HMAC-SHA256 under the deployment's key over (licensee, R, the *full* millisecond time, C)

The tag covers the full time, not T: an id from an earlier turn of T's 12.4 days is rebuilt with the wrong time
and fails (but for 2**-21), so T's wrap never makes an old id young. C is what a cancel before the rows exist
answers ("cancelled": n) and what a provisional GET says as recipientCount. Encoding and segments are not in the
id: 16 more bits would leave the tag 5, and a tag is what keeps one licensee's made-up id from cancelling
another's message, so a provisional answer says less for that second instead (issue 30's progress note).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

RANDOM_BITS = 64
TIME_BITS = 30
COUNT_BITS = 7
TAG_BITS = 21
assert RANDOM_BITS + TIME_BITS + COUNT_BITS + TAG_BITS == 122  # 128 less the version (4) and variant (2) bits
MAX_RECIPIENTS = 1 << COUNT_BITS  # 128: more than one job's 100 (model.JOB_SIZE)

VERSION = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TIME_TURN = 1 << TIME_BITS  # ms
# The only spelling a tagged id is recognised in: 32 lowercase hex digits (the "N" form its rows are keyed by), version 8,
# the RFC variant. Not int(comm_id, 16)'s leniency: an upper-case, spaced or underscored spelling would pass it, be
# answered `queued` from the id alone while the rows under the real key move on, and have a cancel insert a gate under
# a key no worker reads, answer "cancelled", and let the message go (entry points normalise, wire/dto.py parse_guid;
# a caller that does not must meet a 404, not that).
_TAGGED = re.compile(r"[0-9a-f]{12}8[0-9a-f]{3}[89ab][0-9a-f]{15}")
_DOMAIN = b"sms/commid/1\x00"  # the tag's purpose and layout version, so this key's HMACs mean nothing elsewhere

# The longest a tagged message can wait before its rows exist, so how long its id is recognised without them.
# A one-call job waits on sms-accept (put with messagettl=-1, so it never expires there) and is retried there
# maxDequeueCount times, visibilityTimeout apart (host.json: 5 times, 10 s); then the Functions host copies it to
# sms-accept-poison with the default time-to-live, 7 days (Put Message: "If this parameter is omitted, the default
# time-to-live is 7 days", learn.microsoft.com/rest/api/storageservices/put-message; the host's
# QueueProcessor.CopyMessageToPoisonQueueAsync puts message.Body with no TTL, azure-sdk-for-net
# sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueueProcessor.cs), where the poison
# handler writes its rows failed. After 7 days there nothing can write them; the spare day covers the minutes of
# retries before it and a backlog on sms-accept. An id older than this with no rows answers 404, as today.
POISON_COPY_TTL = timedelta(days=7)
RECOGNISED_FOR = POISON_COPY_TTL + timedelta(days=1)
# An id minted by an instance whose clock runs ahead of this one's still counts as just minted.
CLOCK_SKEW = timedelta(seconds=60)
assert RECOGNISED_FOR + CLOCK_SKEW < timedelta(milliseconds=_TIME_TURN)


@dataclass(frozen=True)
class Tagged:
    """What a recognised id says about its message."""

    accepted_at: datetime  # to the millisecond: the message's createdAt once its rows exist
    recipient_count: int


def to_millisecond(at: datetime) -> datetime:
    """`at` as a tagged id can carry it: a one-call message's createdAt is this, so its id and its rows agree."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


class CommIdKeys:
    """Mints and recognises tagged commIds under the deployment's key (SMS_COMMID_KEY), and during a rotation
    recognises those minted under the previous one too (SMS_COMMID_KEY_PREVIOUS)."""

    def __init__(self, key: bytes, previous: bytes | None = None, *, random_bits: Callable[[], int] | None = None):
        if not key:
            raise ValueError("a commId key is needed")
        self._keys = (hmac.new(key, _DOMAIN, hashlib.sha256),) + ((hmac.new(previous, _DOMAIN, hashlib.sha256),) if previous else ())
        self._random = random_bits or (lambda: int.from_bytes(os.urandom(RANDOM_BITS // 8), "big"))

    def mint(self, licensee_id: str, accepted_at: datetime, recipient_count: int) -> str:
        """A new tagged id for a message of `recipient_count` recipients accepted at `accepted_at` (taken to the ms)."""
        if not 1 <= recipient_count <= MAX_RECIPIENTS:
            raise ValueError(f"a tagged id carries 1 to {MAX_RECIPIENTS} recipients, not {recipient_count}")
        random = self._random() & ((1 << RANDOM_BITS) - 1)
        at = _ms(accepted_at)
        count = recipient_count - 1
        tag = self._tag(self._keys[0], licensee_id, random, at, count)
        fields = (((random << TIME_BITS | at % _TIME_TURN) << COUNT_BITS | count) << TAG_BITS) | tag
        # 122 bits around the version (bits 79-76) and the variant (bits 63-62, "10").
        n = (fields >> 74) << 80 | VERSION << 76 | ((fields >> 62) & 0xFFF) << 64 | 0b10 << 62 | fields & ((1 << 62) - 1)
        return f"{n:032x}"

    def recognised(self, comm_id: str, licensee_id: str, now: datetime) -> Tagged | None:
        """What `comm_id` says, when it is an id minted under this deployment's key (or the previous one) for
        `licensee_id`, within RECOGNISED_FOR of `now`; None for anything else, a version-4 id first of all."""
        if not _TAGGED.fullmatch(comm_id):
            return None
        n = int(comm_id, 16)
        fields = (n >> 80) << 74 | ((n >> 64) & 0xFFF) << 62 | n & ((1 << 62) - 1)
        tag = fields & ((1 << TAG_BITS) - 1)
        count = (fields >> TAG_BITS) & ((1 << COUNT_BITS) - 1)
        turn = (fields >> (TAG_BITS + COUNT_BITS)) & (_TIME_TURN - 1)
        random = fields >> (TAG_BITS + COUNT_BITS + TIME_BITS)
        # The latest time up to now (and the skew allowed) whose remainder is T: the only one it can be in the window.
        latest = _ms(now + CLOCK_SKEW)
        at = latest - (latest - turn) % _TIME_TURN
        if _ms(now) - at > RECOGNISED_FOR // timedelta(milliseconds=1):
            return None
        given = tag.to_bytes(3, "big")
        # Every key is tried, whichever matches, so the time taken says nothing about which one (or how close).
        matches = [hmac.compare_digest(given, self._tag(key, licensee_id, random, at, count).to_bytes(3, "big")) for key in self._keys]
        if not any(matches):
            return None
        return Tagged(_EPOCH + timedelta(milliseconds=at), count + 1)

    @staticmethod
    def _tag(keyed, licensee_id: str, random: int, at: int, count: int) -> int:
        mac = keyed.copy()
        mac.update(f"{licensee_id}\x00{random:016x}{at:012x}{count:02x}".encode())
        return int.from_bytes(mac.digest()[:3], "big") >> (24 - TAG_BITS)


def recognised_by(keys: CommIdKeys | None, comm_id: str, licensee_id: str, now: datetime) -> Tagged | None:
    """CommIdKeys.recognised, or None where no key is configured (no id is then ever taken for a tagged one)."""
    return None if keys is None else keys.recognised(comm_id, licensee_id, now)
