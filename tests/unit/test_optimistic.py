"""The one optimistic-concurrency loop (sms/usecases/optimistic.py): decide from what is stored, write
if nothing changed since, and on a lost race read again and decide again."""
import asyncio

import pytest

from sms.domain.errors import RecordChanged
from sms.usecases.optimistic import update_optimistically


class Row:
    """A stored value with a version, and writers that may get in first."""

    def __init__(self, value: int, races: int = 0):
        self.value, self.version, self.races, self.reads, self.writes = value, 0, races, 0, 0

    async def read(self):
        self.reads += 1
        return self.value, self.version

    async def write(self, planned):
        value, version = planned
        self.writes += 1
        if self.races:  # someone else wrote first
            self.races -= 1
            self.value, self.version = self.value + 10, self.version + 1
        if version != self.version:
            raise RecordChanged("changed")
        self.value, self.version = value, version + 1
        return value


def double(state):
    value, version = state
    return value * 2, version


async def test_a_lost_race_is_decided_again_from_what_is_stored():
    row = Row(1, races=2)
    assert await update_optimistically(row.read, double, row.write, attempts=3, what="row") == 42  # (1+10+10)*2
    assert (row.reads, row.writes) == (3, 3)


async def test_it_gives_up_after_its_attempts_naming_what():
    row = Row(1, races=5)
    with pytest.raises(RecordChanged, match="row 7 kept changing under 3 attempts"):
        await update_optimistically(row.read, double, row.write, attempts=3, what="row 7")
    assert (row.reads, row.writes) == (3, 3)  # no read after the last refusal: nothing would use it


async def test_nothing_to_change_writes_nothing():
    row = Row(1)
    assert await update_optimistically(row.read, lambda state: None, row.write, attempts=3, what="row") is None
    assert row.writes == 0


async def test_a_state_in_hand_skips_the_first_read():
    row = Row(1)
    assert await update_optimistically(row.read, double, row.write, attempts=3, what="row", current=(1, 0)) == 2
    assert row.reads == 0


# -- backoff: the ledger's writers racing a burst of receipts ---------------------------------------------


async def _lose(times: int, backoff: float, monkeypatch) -> list[float]:
    """Writes that lose `times` races then land; the waits taken before each read again."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds):
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    row = Row(1, races=times)
    assert await update_optimistically(row.read, lambda s: (s[0] + 1, s[1]), row.write, attempts=times + 1, what="x",
                                       backoff=backoff) == 12 + 10 * (times - 1)
    return waits


async def test_a_writer_that_lost_waits_a_random_while_that_doubles_before_reading_again(monkeypatch):
    waits = await _lose(3, 0.02, monkeypatch)
    assert len(waits) == 3 and all(0 <= w <= 0.02 * 2**i for i, w in enumerate(waits))


async def test_without_backoff_it_reads_again_at_once(monkeypatch):
    assert await _lose(3, 0.0, monkeypatch) == []
