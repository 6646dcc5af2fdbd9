"""The licensee's opt-out index beside the truth dispatch reads: STOP/START and manual changes write both, in the
order that leaves a number blocked when the second write fails; the backfill converges; the list and history read it."""
import contextlib
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain.errors import Conflict, NotFound, StorageUnavailable, ValidationFailed
from sms.storage import EVERY_LICENSEE, OptOutChange
from tests.fakes import ALEX, LICENSEE, OTHER, SAM, World

SENDER = EVERY_LICENSEE + "+61400000000"  # World.text_from's number: where the STOP was sent
KEY = "0123456789abcdef"


@pytest.fixture
def world():
    return World()


async def stop(world, number=SAM, body="STOP"):
    await world.send(number, replies=True)
    sms = world.text_from(number, body)
    await world.inbound.receive(sms)
    return sms


async def test_a_stop_is_listed_in_the_licensees_scope_and_the_senders_with_its_history(world):
    sms = await stop(world)
    states, token = await world.use.opt_out_list.page(LICENSEE, "+")
    assert [(s.number, s.opted_out, s.source, s.at) for s in states] == [(SAM, True, "stop", sms.received_at)] and token is None
    assert (await world.opt_out_index.state(SENDER, SAM)).opted_out
    await world.inbound.receive(replace(world.text_from(SAM, "START"), received_at=sms.received_at + timedelta(minutes=1)))
    [state], _ = await world.use.opt_out_list.page(LICENSEE, "+")
    assert (state.opted_out, state.source) == (False, "start")
    history = await world.use.opt_out_list.history(LICENSEE, SAM)
    assert [(c.scope, c.opted_out) for c in history] == [(LICENSEE, False), (SENDER, False), (LICENSEE, True), (SENDER, True)]


async def test_a_stop_whose_index_write_fails_still_blocks_and_its_resend_converges(world):
    await world.send(SAM, replies=True)
    sms = world.text_from(SAM, "STOP")
    world.opt_out_index.fail_writes = 1
    with pytest.raises(StorageUnavailable):
        await world.inbound.receive(sms)
    assert await world.opt_outs.blocked(LICENSEE, None, [SAM]) == {SAM}  # the truth was written first
    await world.inbound.receive(sms)  # the vendor resends what got no 2xx
    await world.inbound.receive(sms)  # and once more: the same rows
    assert [c.opted_out for c in await world.use.opt_out_list.history(LICENSEE, SAM) if c.scope == LICENSEE] == [True]


async def test_a_manual_add_blocks_and_records_the_reason_and_key(world):
    change = await world.opt_outs.add(LICENSEE, ALEX, "asked by phone", KEY)
    assert await world.opt_outs.blocked(LICENSEE, None, [ALEX]) == {ALEX}
    assert await world.opt_outs.blocked(OTHER, None, [ALEX]) == set()
    assert await world.opt_out_index.state(LICENSEE, ALEX) == change
    assert (change.source, change.reason, change.by_key_id) == ("manual", "asked by phone", KEY)


async def test_a_manual_removal_lifts_only_the_licensees_own_scope(world):
    await stop(world)
    change = await world.opt_outs.remove(LICENSEE, SAM, "consent on file", KEY)
    assert (change.opted_out, change.reason, change.by_key_id) == (False, "consent on file", KEY)
    assert world.opt_out_store.scopes == {LICENSEE: set(), SENDER: {SAM}}  # the STOP to the sender number stays
    assert await world.opt_outs.blocked(LICENSEE, "+61400000000", [SAM]) == {SAM}
    assert await world.opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == set()
    assert [c.scope for c in await world.use.opt_out_list.others(SAM)] == [SENDER]
    with pytest.raises(Conflict, match=r"STOP sent to \+61400000000 .* only a START from the number"):
        await world.opt_outs.remove(LICENSEE, SAM, "again", KEY)
    with pytest.raises(NotFound):
        await world.opt_outs.remove(LICENSEE, ALEX, "never opted out", KEY)


async def test_a_removal_whose_index_write_fails_lifts_nothing(world):
    await world.opt_outs.add(LICENSEE, ALEX, "asked by phone", KEY)
    world.opt_out_index.fail_writes = 1
    with pytest.raises(StorageUnavailable):
        await world.opt_outs.remove(LICENSEE, ALEX, "consent on file", KEY)
    assert await world.opt_outs.blocked(LICENSEE, None, [ALEX]) == {ALEX}  # no record of it, so not lifted


async def test_another_licensees_scope_is_not_in_a_history(world):
    await world.opt_outs.add(OTHER, SAM, "theirs", KEY)
    await world.opt_outs.add(LICENSEE, SAM, "ours", KEY)
    assert [c.reason for c in await world.use.opt_out_list.history(LICENSEE, SAM)] == ["ours"]


async def test_the_backfill_writes_what_the_index_lacks_once_and_again_to_repair(world):
    at = world.text_from(SAM, "x").received_at
    await world.opt_out_store.add(LICENSEE, SAM, at)  # written before the index existed
    await world.opt_out_store.add(EVERY_LICENSEE, ALEX, at)
    assert await world.opt_outs.backfill() == 2
    assert (await world.opt_out_index.state(LICENSEE, SAM)).source == "stop"
    await world.opt_out_store.add(LICENSEE, ALEX, at)  # a STOP whose index write never happened
    assert await world.opt_outs.backfill() == 0  # done once: not every start
    assert await world.opt_outs.backfill(again=True) == 1
    assert await world.opt_outs.backfill(again=True) == 0  # idempotent
    # A newer state is left as it is: a removal whose truth write is on its way.
    newer = OptOutChange(LICENSEE, SAM, False, at + timedelta(seconds=1), "manual", "consent", KEY)
    await world.opt_out_index.record(newer)
    assert await world.opt_outs.backfill(again=True) == 0
    assert await world.opt_out_index.state(LICENSEE, SAM) == newer


async def test_the_list_pages_by_number_and_searches_by_prefix(world):
    numbers = [f"+6141200000{i}" for i in range(5)] + ["+61499000000"]
    for number in numbers:
        await world.opt_outs.add(LICENSEE, number, "r", KEY)
    first, token = await world.use.opt_out_list.page(LICENSEE, "+614120", take=3)
    rest, end = await world.use.opt_out_list.page(LICENSEE, "+614120", take=3, token=token)
    assert [s.number for s in first + rest] == numbers[:5] and end is None
    with pytest.raises(ValidationFailed, match="another query"):
        await world.use.opt_out_list.page(LICENSEE, "+6149", take=3, token=token)
    for take in (0, 201):
        with pytest.raises(ValidationFailed, match="take"):
            await world.use.opt_out_list.page(LICENSEE, "+", take=take)


async def test_a_stop_that_lands_while_a_manual_removal_is_under_way_still_blocks(world):
    """Review (issue 29): the removal checks the truth, writes the index, then tombstones the licensee's row without
    a condition, so a STOP the number sends in between is overwritten: lifted by a removal that never saw it, and the
    index then says "opted out" while dispatch sends. A removal may lift only the opt-out it read."""
    await stop(world)
    record = world.opt_out_index.record
    late_stop = world.text_from(SAM, "STOP")  # the person texts STOP again, just as the operator presses Remove

    async def record_then_stop_arrives(change):
        await record(change)
        if change.source == "manual":
            await world.inbound.receive(late_stop)

    world.opt_out_index.record = record_then_stop_arrives
    with contextlib.suppress(Conflict):  # refusing the removal (what it read has changed since) is a fine answer too
        await world.opt_outs.remove(LICENSEE, SAM, "consent on file", KEY)
    assert await world.opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == {SAM}, "the later STOP was lifted"
    truth = {row.scope: row.opted_out for row in await world.opt_out_store.rows_for(SAM)}
    assert truth[LICENSEE] == (await world.opt_out_index.state(LICENSEE, SAM)).opted_out, "the list disagrees with dispatch"


async def test_a_manual_add_that_lands_while_a_start_is_under_way_still_blocks(world):
    """The other direction of the same race: a START reads the number's opt-outs, writes the index, then lifts each
    scope in the truth. A licensee's manual add landing in between was made after what the START read, so the START
    may not lift it (the safe side: not texting); the scopes nothing changed in are lifted as ever."""
    await stop(world)
    record = world.opt_out_index.record

    async def record_then_add_arrives(change):
        await record(change)
        if change.source == "start" and change.scope == LICENSEE:
            await world.opt_outs.add(LICENSEE, SAM, "asked by phone", KEY)

    world.opt_out_index.record = record_then_add_arrives
    await world.inbound.receive(world.text_from(SAM, "START"))
    assert await world.opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == {SAM}, "the later add was lifted"
    assert await world.opt_outs.blocked(OTHER, "+61400000000", [SAM]) == set()  # the STOP to the sender number: lifted
    state = await world.opt_out_index.state(LICENSEE, SAM)
    assert (state.opted_out, state.source, state.reason) == (True, "manual", "asked by phone"), "the list disagrees with dispatch"
    assert "start" not in [c.source for c in await world.use.opt_out_list.history(LICENSEE, SAM) if c.scope == LICENSEE]


async def test_a_removal_that_lost_its_race_says_so_even_when_taking_back_its_record_fails(world, caplog):
    """The Conflict is what the caller must hear: an error instead would have it retry, and the retry would lift the
    STOP it never saw. The index write that failed is logged."""
    await stop(world)
    record = world.opt_out_index.record

    async def record_then_stop_arrives(change):
        await record(change)
        if change.source == "manual":
            await world.inbound.receive(world.text_from(SAM, "STOP"))
            world.opt_out_index.fail_writes = 1  # storage goes away before the removal takes its record back

    world.opt_out_index.record = record_then_stop_arrives
    with pytest.raises(Conflict, match="changed meanwhile .* read it again"):
        await world.opt_outs.remove(LICENSEE, SAM, "consent on file", KEY)
    assert await world.opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == {SAM}
    assert "could not take back" in caplog.text
