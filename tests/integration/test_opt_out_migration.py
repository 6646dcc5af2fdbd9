"""Opt-outs written in the layout before (SmsOptOuts: a partition per licensee, "*" for the shared
scopes) moved to the per-number one, on Azurite: a STOP from before the upgrade keeps blocking."""
import asyncio
from datetime import timedelta

import pytest

from sms.domain.model import utcnow
from sms.storage.inbound import TableOptOutStore
from sms.usecases.optouts import OptOuts
from tests.fakes import ALEX, LICENSEE, OTHER, SAM

GATEWAY_NUMBER = "+61400000000"
KIM = "+61412000003"


@pytest.fixture
async def store(table_service, unique_name):
    opt_outs = TableOptOutStore(table_service.get_table_client(unique_name("opt")), table_service.get_table_client(unique_name("legacy")))
    await opt_outs.create_table()
    await opt_outs._legacy.create_table()
    return opt_outs


async def legacy_stop(store, partition, row, when=None):
    """A row as the version before wrote it (TableOptOutStore.add then)."""
    await store._legacy.upsert_entity({"PartitionKey": partition, "RowKey": row, "OptedOutAt": when or utcnow() - timedelta(days=30)})


async def legacy_rows(store):
    return [(e["PartitionKey"], e["RowKey"]) async for e in store._legacy.list_entities()]


async def test_a_stop_recorded_before_the_upgrade_still_blocks_after_it(store, round_trips):
    await legacy_stop(store, LICENSEE, SAM)  # SAM stopped LICENSEE
    await legacy_stop(store, "*", ALEX)  # ALEX stopped every licensee
    await legacy_stop(store, "*", f"*{GATEWAY_NUMBER}|{KIM}")  # KIM stopped every licensee texting from GATEWAY_NUMBER
    opt_outs = OptOuts(store)
    assert await opt_outs.blocked(LICENSEE, GATEWAY_NUMBER, [SAM, ALEX, KIM]) == set()  # before the migration: not seen

    assert await opt_outs.migrate() == 3
    assert await opt_outs.blocked(LICENSEE, GATEWAY_NUMBER, [SAM, ALEX, KIM]) == {SAM, ALEX, KIM}  # at once, in this process
    assert await opt_outs.blocked(OTHER, GATEWAY_NUMBER, [SAM, ALEX, KIM]) == {ALEX, KIM}
    assert await opt_outs.blocked(OTHER, "+61400000001", [SAM, ALEX, KIM]) == {ALEX}
    assert await OptOuts(store).blocked(LICENSEE, None, [SAM, ALEX, KIM]) == {SAM, ALEX}  # another process, reading storage
    assert await legacy_rows(store) == []  # moved: each deleted once its copy was written

    before = round_trips.count
    assert await store.migrate_legacy() == set()  # again: nothing to do, nothing undone
    assert round_trips.count - before == 1  # one query of an empty table
    assert await store.scopes_for(SAM) == {LICENSEE}


async def test_a_start_after_the_upgrade_stays_started_when_the_migration_runs_again(store):
    await legacy_stop(store, LICENSEE, SAM)
    await legacy_stop(store, "*", f"*{GATEWAY_NUMBER}|{SAM}")
    opt_outs = OptOuts(store)
    await opt_outs.migrate()
    assert await opt_outs.blocked(OTHER, GATEWAY_NUMBER, [SAM]) == {SAM}

    await opt_outs.opt_in(SAM, GATEWAY_NUMBER, LICENSEE)  # START after the upgrade
    assert await opt_outs.migrate() == 0
    assert await OptOuts(store).blocked(LICENSEE, GATEWAY_NUMBER, [SAM]) == set()

    # A migration that read the old STOP before the START and writes its copy only now (another
    # process, slower): the START is newer, so it stays started.
    await legacy_stop(store, LICENSEE, SAM)
    await legacy_stop(store, "*", f"*{GATEWAY_NUMBER}|{SAM}")
    assert await opt_outs.migrate() == 0
    assert await OptOuts(store).blocked(LICENSEE, GATEWAY_NUMBER, [SAM]) == set()
    assert await legacy_rows(store) == []


async def test_a_start_before_the_migration_ran_removes_the_legacy_stop(store):
    await legacy_stop(store, LICENSEE, SAM)
    await legacy_stop(store, "*", ALEX)
    opt_outs = OptOuts(store)
    await opt_outs.opt_in(SAM, GATEWAY_NUMBER, LICENSEE)  # a START that came before any migration ran
    assert await legacy_rows(store) == [("*", ALEX)]
    await opt_outs.migrate()
    assert await OptOuts(store).blocked(LICENSEE, GATEWAY_NUMBER, [SAM, ALEX]) == {ALEX}


async def test_a_stop_the_version_before_wrote_after_a_start_blocks_once_moved(store):
    """During an upgrade (a slot swap), a process of the version before may still record a STOP in the old layout."""
    opt_outs = OptOuts(store)
    await opt_outs.opt_out(SAM, GATEWAY_NUMBER, LICENSEE)
    await opt_outs.opt_in(SAM, GATEWAY_NUMBER, LICENSEE)
    await legacy_stop(store, LICENSEE, SAM, when=utcnow() + timedelta(seconds=1))  # newer than the START
    assert await opt_outs.blocked(LICENSEE, GATEWAY_NUMBER, [SAM]) == set()
    assert await opt_outs.migrate() == 1  # the sweeper's run: this process applies it at once
    assert await opt_outs.blocked(LICENSEE, GATEWAY_NUMBER, [SAM]) == {SAM}


async def test_migrations_running_at_once_lose_nothing(store):
    numbers = [f"+614130{i:05d}" for i in range(60)]
    for number in numbers:
        await legacy_stop(store, LICENSEE, number)
    await asyncio.gather(*(store.migrate_legacy() for _ in range(3)))  # three processes starting together
    assert await OptOuts(store).blocked(LICENSEE, None, numbers) == set(numbers)
    assert await legacy_rows(store) == []


async def test_rows_not_in_the_legacy_layout_are_left_where_they_are(store):
    await legacy_stop(store, "*", f"nonsense|{SAM}")
    await legacy_stop(store, "*", f"*{GATEWAY_NUMBER}|")
    assert await store.migrate_legacy() == set()
    assert sorted(await legacy_rows(store)) == [("*", f"*{GATEWAY_NUMBER}|"), ("*", f"nonsense|{SAM}")]


async def test_no_legacy_table_is_nothing_to_move(table_service, unique_name):
    store = TableOptOutStore(table_service.get_table_client(unique_name("opt")), table_service.get_table_client(unique_name("none")))
    await store.create_table()
    assert await store.migrate_legacy() == set()
    await store.remove(LICENSEE, SAM)  # START deletes in a table that is not there: not an error
    assert await store.scopes_for(SAM) == set()


async def test_the_gateway_moves_them_before_it_sends_anything(emulator, tmp_path):
    import random

    from azure.data.tables.aio import TableServiceClient

    from sms.bootstrap import build
    from sms.config import Settings
    from sms.storage.inbound import LEGACY_OPT_OUTS_TABLE
    from sms.storage.tables import create_table
    from sms.usecases.optouts import OptOuts

    number, other = (f"+6149{random.randrange(10**7):07d}" for _ in range(2))  # the real tables: numbers no other test uses
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        legacy = service.get_table_client(LEGACY_OPT_OUTS_TABLE)
        await create_table(legacy)
        await legacy.upsert_entity({"PartitionKey": LICENSEE, "RowKey": number, "OptedOutAt": utcnow()})
    gw = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string, "SMS_CONSOLE_OUTBOX": str(tmp_path / "o.jsonl")}))
    try:
        await gw.ensure_storage()
        assert await OptOuts(gw.opt_outs).blocked(LICENSEE, None, [number, other]) == {number}
    finally:
        await gw.close()
