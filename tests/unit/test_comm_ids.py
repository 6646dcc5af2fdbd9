"""Tagged commIds (issue 30): recognised for their own licensee, under the key or the previous one, for
RECOGNISED_FOR after accept; never a version-4 id; 64 random bits."""
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain.comm_ids import CLOCK_SKEW, RECOGNISED_FOR, CommIdKeys, Tagged, to_millisecond
from sms.domain.model import new_guid

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
LICENSEE = "a" * 32
AT = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=timezone.utc)


def test_an_id_is_recognised_for_its_licensee_with_its_time_and_count():
    comm_id = CommIdKeys(KEY).mint(LICENSEE, AT, 7)
    assert len(comm_id) == 32 and comm_id == comm_id.lower()
    parsed = uuid.UUID(comm_id)
    assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
    assert CommIdKeys(KEY).recognised(comm_id, LICENSEE, AT + timedelta(seconds=1)) == Tagged(AT, 7)


def test_the_time_is_kept_to_the_millisecond_so_the_rows_can_say_the_same():
    at = AT.replace(microsecond=456789)
    assert to_millisecond(at) == AT
    assert CommIdKeys(KEY).recognised(CommIdKeys(KEY).mint(LICENSEE, at, 1), LICENSEE, at).accepted_at == AT


def test_another_licensee_another_key_or_a_changed_digit_is_not_recognised():
    keys = CommIdKeys(KEY)
    comm_id = keys.mint(LICENSEE, AT, 1)
    assert keys.recognised(comm_id, "b" * 32, AT) is None
    assert CommIdKeys(OTHER_KEY).recognised(comm_id, LICENSEE, AT) is None
    for i in range(32):
        if i in (12, 16):
            continue
        changed = comm_id[:i] + format(int(comm_id[i], 16) ^ 1, "x") + comm_id[i + 1:]
        assert keys.recognised(changed, LICENSEE, AT) is None, i


@pytest.mark.parametrize("made", [
    lambda: new_guid(),  # every id minted today: version 4
    lambda: uuid.uuid4().hex,  # the keyed path's
    lambda: "",
    lambda: "z" * 32,
    lambda: "0" * 32,
])
def test_an_id_not_minted_tagged_is_never_recognised(made):
    keys = CommIdKeys(KEY)
    for _ in range(200):
        assert keys.recognised(made(), LICENSEE, AT) is None


def test_a_version_4_id_with_a_valid_tag_in_its_bits_is_still_not_recognised():
    """The version digit alone decides: a tagged id's bits with version 4 written over them is not tagged."""
    keys = CommIdKeys(KEY)
    comm_id = keys.mint(LICENSEE, AT, 1)
    assert keys.recognised(comm_id[:12] + "4" + comm_id[13:], LICENSEE, AT) is None


def test_a_rotation_recognises_ids_minted_under_the_previous_key_and_mints_under_the_new():
    old = CommIdKeys(OTHER_KEY)
    rotated = CommIdKeys(KEY, previous=OTHER_KEY)
    before = old.mint(LICENSEE, AT, 3)
    after = rotated.mint(LICENSEE, AT, 3)
    assert rotated.recognised(before, LICENSEE, AT) == Tagged(AT, 3)
    assert rotated.recognised(after, LICENSEE, AT) == Tagged(AT, 3)
    assert old.recognised(after, LICENSEE, AT) is None
    assert CommIdKeys(KEY).recognised(before, LICENSEE, AT) is None  # the rotation over: the previous key dropped


def test_recognised_for_the_window_and_not_after():
    keys = CommIdKeys(KEY)
    comm_id = keys.mint(LICENSEE, AT, 1)
    assert keys.recognised(comm_id, LICENSEE, AT + RECOGNISED_FOR) == Tagged(AT, 1)
    assert keys.recognised(comm_id, LICENSEE, AT + RECOGNISED_FOR + timedelta(milliseconds=1)) is None


def test_an_id_from_a_clock_running_ahead_counts_as_just_minted():
    keys = CommIdKeys(KEY)
    comm_id = keys.mint(LICENSEE, AT + CLOCK_SKEW, 1)
    assert keys.recognised(comm_id, LICENSEE, AT) == Tagged(AT + CLOCK_SKEW, 1)


def test_the_time_wrapping_never_makes_an_old_id_young():
    """T keeps the time modulo 2**30 ms (12.4 days); the tag covers the full time, so a turn later the id fails."""
    keys = CommIdKeys(KEY)
    comm_id = keys.mint(LICENSEE, AT, 1)
    turn = timedelta(milliseconds=1 << 30)
    for later in (turn, 2 * turn, turn + timedelta(days=1)):
        assert keys.recognised(comm_id, LICENSEE, AT + later) is None


def test_the_id_holds_64_random_bits():
    """Issue 30: at least 64 random bits, so two accepts in one millisecond collide about once in 1e9 years at
    2,000 a second. Every one of the 64 bits is in the id, and nothing else the id carries moves them."""
    seen = set()
    for bit in range(64):
        keys = CommIdKeys(KEY, random_bits=lambda bit=bit: 1 << bit)
        comm_id = keys.mint(LICENSEE, AT, 1)
        assert keys.recognised(comm_id, LICENSEE, AT) == Tagged(AT, 1)
        seen.add(comm_id)
    assert len(seen) == 64
    draws = iter([5, 5])
    same = CommIdKeys(KEY, random_bits=lambda: next(draws))
    assert same.mint(LICENSEE, AT, 1) == same.mint(LICENSEE, AT, 1)  # the rest is a function of them: no hidden entropy


def test_ids_minted_at_one_instant_are_unique_and_random_first():
    keys = CommIdKeys(KEY)
    ids = [keys.mint(LICENSEE, AT, 1) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    # The reference (the first 8 hex digits) and the ledger's shard (the first 2) stay random.
    firsts = [int(i[:2], 16) for i in ids]
    assert min(firsts) < 8 and max(firsts) > 247


@pytest.mark.parametrize("count", [1, 2, 99, 100, 128])
def test_every_one_job_count_is_carried(count):
    keys = CommIdKeys(KEY, random_bits=lambda: random.getrandbits(64))
    assert keys.recognised(keys.mint(LICENSEE, AT, count), LICENSEE, AT).recipient_count == count


@pytest.mark.parametrize("count", [0, 129])
def test_a_count_the_id_cannot_carry_is_refused(count):
    with pytest.raises(ValueError, match="recipients"):
        CommIdKeys(KEY).mint(LICENSEE, AT, count)
