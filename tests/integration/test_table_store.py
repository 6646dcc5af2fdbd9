"""What only the real Table service can show: round trips, write ordering, outages."""
from dataclasses import replace
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables.aio import TableServiceClient

from sms.domain import transitions
from sms.domain.errors import StorageUnavailable
from sms.domain.jobs import GATE_MATERIALIZED, Gate
from sms.domain.model import Status, utcnow
from sms.storage.tables import MESSAGE_ROW, TableMessageStore
from tests.integration.test_store_contract import message


@pytest.fixture
async def store(table_service, unique_name, round_trips):
    table = TableMessageStore(table_service.get_table_client(unique_name("msgs")))
    await table.create_table()
    round_trips.count = 0
    return table


@pytest.mark.parametrize("recipients, transactions", [(1, 1), (99, 1), (100, 2), (199, 2), (250, 3), (1000, 11)])
async def test_a_message_costs_one_transaction_per_hundred_rows(store, round_trips, recipients, transactions):
    msg, rows = message(f"{recipients:032x}", recipients)
    await store.add(msg, rows)
    assert round_trips.count == transactions


@pytest.mark.parametrize("recipients", [1, 99, 100, 101])
async def test_staging_writes_nothing_for_a_message_within_the_commit_room(store, round_trips, recipients):
    """Accept puts a job after staging, not beside it, when staging writes nothing: commit_room must be
    exactly what the last transaction holds beside the message row."""
    msg, rows = message(f"{recipients:032x}", recipients)
    await store.stage(msg, rows)
    assert (round_trips.count == 0) == (recipients <= store.commit_room)


@pytest.mark.parametrize("recipients", [1, 98])
async def test_a_gate_goes_in_the_one_transaction_with_the_rows_and_message_row(store, round_trips, recipients):
    """Issue 30: a one-call message's rows, message row and gate: one transaction, Azure's 100 operations at most."""
    msg, rows = message(f"{recipients:032x}", recipients)
    await store.add(msg, rows, Gate(GATE_MATERIALIZED, msg.licensee_id, utcnow()))
    assert round_trips.count == 1
    assert len((await store.load(msg.comm_id))[1]) == recipients


async def test_a_job_costs_one_round_trip_to_load_one_to_claim_one_to_record(store, round_trips):
    msg, rows = message("5" * 32, 300)
    await store.add(msg, rows)
    round_trips.count = 0

    _, job = await store.load(msg.comm_id, 100, 199)
    claimed = await store.update_recipients(msg.comm_id, [r.moved_to(Status.SENDING, at=utcnow()) for r in job])
    await store.update_recipients(msg.comm_id, [r.moved_to(Status.SENT, at=utcnow()) for r in claimed])

    assert len(job) == 100 and round_trips.count == 3


async def test_a_timeline_keeps_each_steps_provider_outcome_and_code_and_the_claims_sender(store):
    """Issue 26: the claim names its provider and sender; a pass to the next provider and a refusal keep
    what the failure meant and the provider's code, through the Timeline property and back."""
    msg, [row] = message("6" * 32, 1)
    [row] = await store.add(msg, [row])
    claimed = transitions.claimed(row, "c1", at=utcnow(), provider="acs-au", sent_from="+61480000000")
    passed = transitions.passed_on(claimed, "c1", "twilio-au", "Not taken by acs-au", at=utcnow(), code="503")
    failed = transitions.failed(passed, "invalid To", at=utcnow(), outcome="refused", code="21211")
    await store.update_recipients(msg.comm_id, [failed])
    _, [stored] = await store.load(msg.comm_id)
    assert (stored.provider, stored.sent_from) == ("twilio-au", "+61480000000")
    assert [(e.status, e.provider, e.outcome, e.code) for e in stored.events] == [
        (Status.SENDING, "acs-au", None, None), (Status.SENDING, "twilio-au", "not_taken", "503"),
        (Status.FAILED, None, "refused", "21211")]


async def test_rows_written_before_timelines_show_what_their_columns_prove(store):
    """A row from before recipients kept a Timeline: queued at CreatedAt, claimed at FirstAttemptAt,
    its status at UpdatedAt with its provider id. A Timeline that cannot be read falls back the same way."""
    msg, rows = message("a" * 32, 2)
    stored = await store.add(msg, rows)
    claimed_at, changed_at = utcnow() - timedelta(seconds=30), utcnow() - timedelta(seconds=20)
    old = [replace(r, status=Status.SENT, attempts=1, first_attempt_at=claimed_at, updated_at=changed_at,
                   provider_message_id="p-old") for r in stored]
    await store.update_recipients(msg.comm_id, old)  # no events: written as the code before timelines wrote it
    entities = {e["RowKey"]: e async for e in store._table.list_entities()}
    assert "Timeline" not in entities["r000000"]
    await store._table.update_entity({"PartitionKey": msg.comm_id, "RowKey": "r000001", "Timeline": "{not json"})

    _, loaded = await store.load(msg.comm_id)
    for row in loaded:
        assert [(e.status, e.at, e.provider_message_id, e.attempt) for e in row.timeline] == [
            (Status.QUEUED, row.created_at, None, None), (Status.SENDING, claimed_at, None, 1),
            (Status.SENT, changed_at, "p-old", None)]
    # Its next step is appended to what it proved, and from then on the row keeps its own Timeline.
    await store.update_recipients(msg.comm_id, [transitions.receipt(loaded[0], Status.DELIVERED, "p-old", None, at=utcnow())])
    _, [delivered] = await store.load(msg.comm_id, 0, 0)
    assert delivered.events[:2] == loaded[0].events and [e.status for e in delivered.timeline] == [
        Status.QUEUED, Status.SENDING, Status.SENT, Status.DELIVERED]


async def test_a_message_whose_last_transaction_fails_stays_invisible(store, monkeypatch):
    """The message row lands last, so a half-written message is never seen (or sent).

    The failure is injected: Azurite accepts a batch that inserts an existing row, where Azure refuses it.
    """
    msg, rows = message("6" * 32, 250)
    real_submit = store._transactions.submit

    async def fail_with_message_row(transaction):
        if f'"RowKey":"{MESSAGE_ROW}"'.encode() in transaction.request.content:
            raise HttpResponseError("injected: storage failed mid-request")
        return await real_submit(transaction)

    monkeypatch.setattr(store._transactions, "submit", fail_with_message_row)
    with pytest.raises(StorageUnavailable):  # the client is told: 503
        await store.add(msg, rows)
    monkeypatch.undo()

    assert len([e async for e in store._table.list_entities()]) == 250 - 99  # the earlier chunks did land
    assert await store.load(msg.comm_id) is None


async def test_unreachable_storage_is_storage_unavailable():
    dead = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    async with TableServiceClient.from_connection_string(dead, retry_total=0) as service:
        with pytest.raises(StorageUnavailable):
            await TableMessageStore(service.get_table_client("msgs")).load("7" * 32)
