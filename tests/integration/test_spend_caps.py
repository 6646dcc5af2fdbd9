"""Spend caps on Azurite (issue 27): concurrent accepts against the last room of a cap take exactly that
room, within one process (coalesced) and across two (the counters' ETags), and nothing refused is stored."""
import asyncio
import uuid

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.spend import Cap, CapReached
from tests.fakes import command, sms_of


def numbers(n: int) -> list[str]:
    return [f"+614120{i:05d}" for i in range(n)]


async def race(gateways, licensee: str, n: int) -> tuple[list, list]:
    """n accepts at once, one recipient (one segment) each, spread over the gateways in turn."""
    sends = [gateways[i % len(gateways)].accept(command(number), licensee) for i, number in enumerate(numbers(n))]
    results = await asyncio.gather(*sends, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, CapReached)]
    assert not unexpected, unexpected
    return [r for r in results if not isinstance(r, BaseException)], [r for r in results if isinstance(r, CapReached)]


async def test_fifty_concurrent_accepts_against_room_for_ten_leave_exactly_ten(adapters):
    licensee = uuid.uuid4().hex
    sms = sms_of(adapters)
    await sms.use.licensees.set_guard(licensee, {"caps": {"dailySegments": 10}}, may_loosen=True)
    accepted, refused = await race([sms], licensee, 50)
    assert (len(accepted), len(refused)) == (10, 40)
    assert all(e.error_code == "DailySegmentCap" for e in refused)
    spent = {u.cap: u.used for u in await sms.use.spend.spent(licensee)}
    assert spent[Cap.DAILY_SEGMENTS] == spent[Cap.MONTHLY_SEGMENTS] == 10
    stored = [await adapters.messages.message(r.comm_id) for r in accepted]
    assert all(m is not None for m in stored)


@pytest.fixture
async def second_process(emulator):
    """Another process's adapters over the same Azurite: its own clients, caches and lanes."""
    built = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    yield built
    await built.close()


async def test_two_processes_racing_for_the_last_room_take_exactly_it(adapters, second_process):
    licensee = uuid.uuid4().hex
    one, two = sms_of(adapters), sms_of(second_process)
    await one.use.licensees.set_guard(licensee, {"caps": {"dailySegments": 10}}, may_loosen=True)
    accepted, refused = await race([one, two], licensee, 50)
    assert (len(accepted), len(refused)) == (10, 40)
    spent = {u.cap: u.used for u in await two.use.spend.spent(licensee)}
    assert spent[Cap.DAILY_SEGMENTS] == 10


async def test_counters_hold_int64_and_a_stale_etag_or_a_second_create_is_refused(adapters):
    from sms.domain.errors import RecordChanged
    from sms.storage import SpendCounter

    licensee, store = uuid.uuid4().hex, adapters.spend
    big = 5_000 * 10**6 * 1_000  # 5,000,000 in millionths: far past Int32
    written = await store.write(licensee, [SpendCounter("day-20261206", 7, big), SpendCounter("month-202612", 7, big)])
    read = await store.read(licensee, ["day-20261206", "month-202612", "day-20261207"])
    assert [(c.segments, c.cost) for c in read.values()] == [(7, big), (7, big), (0, 0)]
    assert read["day-20261207"].etag is None
    with pytest.raises(RecordChanged):  # another writer created the period first
        await store.write(licensee, [SpendCounter("day-20261206", 8, big)])
    await store.write(licensee, [SpendCounter(c.key, 8, big, c.etag) for c in written])
    with pytest.raises(RecordChanged):  # both rows or neither: the stale month row fails the whole transaction
        await store.write(licensee, [SpendCounter("day-20261207", 1, 1), SpendCounter("month-202612", 9, big, written[1].etag)])
    assert (await store.read(licensee, ["day-20261207"]))["day-20261207"].etag is None


@pytest.fixture
async def counted(emulator, round_trips):
    """Adapters whose every storage response is counted (as bench/fanout.py counts them)."""
    built = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}), on_response=round_trips)
    await built.ensure_storage()
    yield built
    await built.close()


async def test_an_accept_costs_no_extra_round_trip_without_caps_and_one_with_them(counted, round_trips):
    licensee = uuid.uuid4().hex
    sms = sms_of(counted)
    await sms.accept(command("+61412000001"), licensee)  # settings, endpoints and the like read and cached
    round_trips.count = 0
    await sms.accept(command("+61412000001"), licensee)
    without = round_trips.count
    await sms.use.licensees.set_guard(licensee, {"caps": {"dailySegments": 100, "monthlySegments": 1000}}, may_loosen=True)
    await sms.accept(command("+61412000001"), licensee)  # the guard read again; the counters read, then written
    round_trips.count = 0
    await sms.accept(command("+61412000001"), licensee)
    assert without >= 2 and round_trips.count == without + 1  # the counters' write alone: this process wrote them last
