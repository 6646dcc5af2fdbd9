"""What only the real Table service can show: round trips, write ordering, outages."""
import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables.aio import TableServiceClient

from sms.errors import StorageUnavailable
from sms.model import Status
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


async def test_a_job_costs_one_round_trip_to_load_one_to_claim_one_to_record(store, round_trips):
    msg, rows = message("5" * 32, 300)
    await store.add(msg, rows)
    round_trips.count = 0

    _, job = await store.load(msg.comm_id, 100, 199)
    claimed = await store.update_recipients(msg.comm_id, [r.moved_to(Status.SENDING) for r in job])
    await store.update_recipients(msg.comm_id, [r.moved_to(Status.SENT) for r in claimed])

    assert len(job) == 100 and round_trips.count == 3


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
