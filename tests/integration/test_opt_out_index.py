"""SmsOptOutIndex on Azurite (issue 29): a change's state and history rows go in one transaction of the scope's partition,
the same change again writes the same rows, the list pages by number and prefix, and the backfill from
SmsOptOutsByNumber is idempotent and converges after a write that failed half way."""
import asyncio
import uuid
from datetime import timedelta

import pytest

from sms.domain.errors import Conflict, ValidationFailed
from sms.domain.model import utcnow
from sms.storage import EVERY_LICENSEE, OptOutChange
from sms.storage.inbound import TableOptOutStore
from sms.storage.optout_index import TableOptOutIndex
from sms.usecases.optouts import OptOuts
from tests.fakes import ALEX, LICENSEE, OTHER, SAM

KEY = "0123456789abcdef"


@pytest.fixture
async def stores(table_service, unique_name):
    truth = TableOptOutStore(table_service.get_table_client(unique_name("truth")))
    index = TableOptOutIndex(table_service.get_table_client(unique_name("index")))
    await truth.create_table()
    await index.create_table()
    return truth, index


async def rows(index):
    return [(e["PartitionKey"], e["RowKey"]) async for e in index._table.list_entities()]


async def test_a_change_is_its_state_and_history_in_the_scopes_partition_and_again_the_same_rows(stores):
    _, index = stores
    at = utcnow()
    stop = OptOutChange(LICENSEE, SAM, True, at, "stop")
    await index.record(stop)
    await index.record(stop)  # a vendor's resend: the same change
    start = OptOutChange(LICENSEE, SAM, False, at + timedelta(minutes=1), "manual", "consent on file", KEY)
    await index.record(start)
    assert {pk for pk, _ in await rows(index)} == {LICENSEE} and len(await rows(index)) == 3  # one state, two changes
    assert await index.state(LICENSEE, SAM) == start
    assert await index.history(LICENSEE, SAM) == [start, stop]
    assert await index.history(LICENSEE, ALEX) == [] and await index.state(EVERY_LICENSEE, SAM) is None


async def test_the_list_pages_by_number_within_a_prefix(stores):
    _, index = stores
    numbers = [f"+6141200000{i}" for i in range(5)]
    for number in [*numbers, "+61499000000", "+6141200000"]:
        await index.record(OptOutChange(LICENSEE, number, True, utcnow(), "manual", "r", KEY))
    found, token = [], None
    while True:
        page, token = await index.states(LICENSEE, "+614120000", 2, token)
        found += [c.number for c in page]
        if token is None:
            break
        with pytest.raises(ValidationFailed):
            await index.states(LICENSEE, "+6149", 2, token)  # another search's token
    assert found == ["+6141200000", *numbers]
    assert [c.number for c in (await index.states(LICENSEE, "+61412000003", 50, None))[0]] == ["+61412000003"]
    assert (await index.states(EVERY_LICENSEE, "+", 50, None)) == ([], None)


async def test_the_backfill_is_idempotent_and_converges_after_a_half_written_change(stores, round_trips):
    truth, index = stores
    at = utcnow() - timedelta(days=1)
    await truth.add(LICENSEE, SAM, at)
    await truth._table.upsert_entity({"PartitionKey": ALEX, "RowKey": EVERY_LICENSEE, "OptedOutAt": at})  # before Source was kept
    opt_outs = OptOuts(truth, index=index)
    assert await opt_outs.backfill() == 2
    assert (await index.state(EVERY_LICENSEE, ALEX)).source == "stop"
    before = round_trips.count
    assert await opt_outs.backfill() == 0  # done once: one read of its mark
    assert round_trips.count - before == 1
    assert await opt_outs.backfill(again=True) == 0  # nothing to repair: the same rows, nothing written
    assert len(await rows(index)) == 5  # two states, two changes, the mark

    # A STOP whose truth was written and whose index write failed (its process stopped between the two): repaired.
    later = at + timedelta(hours=1)
    await truth.add(LICENSEE, ALEX, later)
    # A removal whose index was written and whose truth write failed: the number stays blocked, and the newer record
    # is left (it looks the same as one whose truth write is on its way); the client's retry writes the truth.
    removal = OptOutChange(LICENSEE, SAM, False, later, "manual", "consent", KEY)
    await index.record(removal)
    assert await opt_outs.backfill(again=True) == 1
    assert (await index.state(LICENSEE, ALEX)).opted_out and await index.state(LICENSEE, SAM) == removal
    assert await opt_outs.blocked(LICENSEE, None, [SAM, ALEX]) == {SAM, ALEX}


async def test_a_backfill_beside_a_newer_change_does_not_write_its_history_row(stores):
    truth, index = stores
    at = utcnow()
    await truth.add(LICENSEE, SAM, at - timedelta(hours=1))
    newer = OptOutChange(LICENSEE, SAM, False, at, "start")
    await index.record(newer)
    assert not await index.converge(OptOutChange(LICENSEE, SAM, True, at - timedelta(hours=1), "stop"))
    assert await index.history(LICENSEE, SAM) == [newer]  # the create failed whole: no history row without its state


async def test_python_m_sms_optouts_reindex_repairs_what_the_index_lacks(emulator, monkeypatch, capsys):
    from sms.bootstrap import build
    from sms.config import Settings
    from sms.entrypoints import cli

    number = f"+6141288{uuid.uuid4().int % 10**4:04d}"
    licensee = uuid.uuid4().hex
    adapters = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        await adapters.ensure_storage()  # the startup backfill has run: a STOP written now only to the truth is missing
        await adapters.opt_outs.add(licensee, number, utcnow())
        monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
        monkeypatch.setattr(cli, "load_local_settings", lambda: None)
        assert await asyncio.to_thread(cli.main, ["optouts", "reindex"]) == 0  # cli.main runs its own loop, as in a shell
        assert "Wrote " in capsys.readouterr().out
        assert (await adapters.opt_out_index.state(licensee, number)).opted_out
    finally:
        await adapters.close()


SENT_TO = "+61400000000"


@pytest.mark.parametrize("lands", ["before the index write", "after the index write"])
async def test_a_stop_landing_during_a_manual_removal_stays_and_the_removal_says_so(stores, lands):
    """Issue 29's race on Azurite: a STOP lands between the removal's read of the truth and its tombstone. The tombstone
    depends on the ETag read (412), so the STOP stays, the removal answers Conflict, and the index is the STOP's again,
    with no history of a removal never made. The STOP's time is older than the removal's (a vendor's clock behind ours):
    what decides is what the removal saw, not the times."""
    truth, index = stores
    opt_outs = OptOuts(truth, index=index)
    await opt_outs.opt_out(SAM, SENT_TO, LICENSEE, utcnow() - timedelta(hours=1))
    late_stop_at = utcnow() - timedelta(minutes=1)
    read, record = truth.rows_for, index.record

    async def read_then_stop_arrives(number):
        rows = await read(number)
        truth.rows_for = read
        await opt_outs.opt_out(SAM, SENT_TO, LICENSEE, late_stop_at)
        return rows

    async def record_then_stop_arrives(change):
        await record(change)
        if change.source == "manual":
            await opt_outs.opt_out(SAM, SENT_TO, LICENSEE, late_stop_at)

    if lands == "before the index write":
        truth.rows_for = read_then_stop_arrives
    else:
        index.record = record_then_stop_arrives
    with pytest.raises(Conflict, match="changed meanwhile .* read it again"):
        await opt_outs.remove(LICENSEE, SAM, "consent on file", KEY)
    assert await opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == {SAM}
    state = await index.state(LICENSEE, SAM)
    assert (state.opted_out, state.source, state.at) == (True, "stop", late_stop_at)
    assert [c.source for c in await index.history(LICENSEE, SAM)] == ["stop", "stop"]


async def test_a_manual_add_landing_during_a_start_stays(stores):
    truth, index = stores
    opt_outs = OptOuts(truth, index=index)
    await opt_outs.opt_out(SAM, SENT_TO, LICENSEE, utcnow() - timedelta(hours=1))
    record = index.record

    async def record_then_add_arrives(change):
        await record(change)
        if change.source == "start" and change.scope == LICENSEE:
            await opt_outs.add(LICENSEE, SAM, "asked by phone", KEY)

    index.record = record_then_add_arrives
    await opt_outs.opt_in(SAM, SENT_TO, LICENSEE)
    assert await opt_outs.blocked(LICENSEE, "+61499999999", [SAM]) == {SAM}
    assert await opt_outs.blocked(OTHER, SENT_TO, [SAM]) == set()  # the STOP to the sender number: lifted, as nothing changed it
    state = await index.state(LICENSEE, SAM)
    assert (state.opted_out, state.source, state.reason) == (True, "manual", "asked by phone")
    assert [c.source for c in await index.history(LICENSEE, SAM)] == ["manual", "stop"]
