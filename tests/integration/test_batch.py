"""The hand-written $batch writer against real Table storage: what it writes reads back like what
the SDK writes, a transaction is all or nothing, and each refusal becomes the right error."""
import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.data.tables import AccountSasPermissions, ResourceTypes, generate_account_sas
from azure.data.tables.aio import TableServiceClient

from sms.bootstrap import build
from sms.config import AZURITE_ACCOUNT, AZURITE_KEY, Settings
from sms.domain.errors import AlreadyExists, RecordChanged
from sms.storage.refusals import TransactionRejected
from tests.integration.conftest import STORAGE_REQUESTS_UNDER_TEST
from tests.unit.capture import sending_way


@pytest.fixture
async def table(table_service, unique_name):
    client = table_service.get_table_client(unique_name("batch"))
    await client.create_table()
    return client


def row(pk: str, rk: str, **values) -> dict:
    return {"PartitionKey": pk, "RowKey": rk, **values}


async def test_rows_read_back_exactly_like_rows_the_sdk_wrote(table, storage_requests):
    pk = uuid.uuid4().hex
    values = {"Text": "it's \"quoted\", ünïcödé ✓ and\r\nlines", "Flag": True, "Off": False, "Count": 2**31 - 1,
              "Negative": -(2**31), "When": datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=timezone.utc), "Absent": None}
    await table.create_entity(row(pk, "sdk", **values))
    etags = await storage_requests.transactions(table).create([row(pk, "ours", **values)])

    sdk, ours = await table.get_entity(pk, "sdk"), await table.get_entity(pk, "ours")
    assert {k: v for k, v in ours.items() if k != "RowKey"} == {k: v for k, v in sdk.items() if k != "RowKey"}
    assert [type(v) for v in ours.values()] == [type(v) for v in sdk.values()]
    assert etags == [ours.metadata["etag"]]


async def test_text_that_imitates_the_multipart_framing_stays_text(table, storage_requests):
    """Caller-supplied text (a message body, a name) rides inside the $batch body: it must not be able
    to end an operation or start one of its own."""
    pk = uuid.uuid4().hex
    forged = ('\r\n--changeset_x--\r\n--batch_x\r\nContent-Type: application/http\r\n\r\n'
              f"DELETE {table.url}/{table.table_name}(PartitionKey='{pk}',RowKey='victim') HTTP/1.1\r\n\r\n\u2028\u0085")
    writer = storage_requests.transactions(table)
    await writer.create([row(pk, "victim", Body="keep me")])
    await writer.create([row(pk, "a", Body=forged)])
    assert (await table.get_entity(pk, "a"))["Body"] == forged
    assert (await table.get_entity(pk, "victim"))["Body"] == "keep me"


async def test_replace_keeps_a_read_back_datetime_to_the_tick(table, storage_requests):
    pk = uuid.uuid4().hex
    writer = storage_requests.transactions(table)
    [etag] = await writer.create([row(pk, "a", When=datetime.now(timezone.utc), Count=1)])
    read = await table.get_entity(pk, "a")

    [new_etag] = await writer.replace([(dict(read, Count=2), etag)])

    again = await table.get_entity(pk, "a")
    assert again["When"].tables_service_value == read["When"].tables_service_value
    assert again["Count"] == 2 and again.metadata["etag"] == new_etag != etag


async def test_keys_with_quotes_and_unicode_address_the_right_row(table, storage_requests):
    pk, rk = "O'Brien ü", "it''s 100% 'ok'"
    writer = storage_requests.transactions(table)
    [etag] = await writer.create([row(pk, rk, Count=1)])
    await writer.replace([(row(pk, rk, Count=2), etag)])
    assert (await table.get_entity(pk, rk))["Count"] == 2


async def test_a_replace_that_meets_a_changed_row_changes_none_of_the_transaction(table, storage_requests):
    pk = uuid.uuid4().hex
    writer = storage_requests.transactions(table)
    etags = await writer.create([row(pk, f"r{i}", Count=0) for i in range(3)])
    await table.update_entity(row(pk, "r1", Count=7))  # someone else got there first

    with pytest.raises(RecordChanged):
        await writer.replace([(row(pk, f"r{i}", Count=1), etag) for i, etag in enumerate(etags)])

    assert [e["Count"] async for e in table.list_entities()] == [0, 7, 0]


async def test_a_replace_of_a_removed_row_is_a_record_changed(table, storage_requests):
    pk = uuid.uuid4().hex
    writer = storage_requests.transactions(table)
    [etag] = await writer.create([row(pk, "a")])
    await table.delete_entity(pk, "a")
    with pytest.raises(RecordChanged):
        await writer.replace([(row(pk, "a", Count=1), etag)])
    assert [e async for e in table.list_entities()] == []


async def test_creating_an_existing_row_is_already_exists_and_writes_nothing(table, storage_requests):
    pk = uuid.uuid4().hex
    writer = storage_requests.transactions(table)
    await writer.create([row(pk, "b", Count=1)])
    with pytest.raises(AlreadyExists):
        await writer.create([row(pk, "a"), row(pk, "b", Count=2)])
    assert [(e["RowKey"], e["Count"]) async for e in table.list_entities()] == [("b", 1)]


async def test_a_missing_table_is_rejected_not_mistaken_for_a_race(table_service, unique_name, storage_requests):
    writer = storage_requests.transactions(table_service.get_table_client(unique_name("missing")))
    with pytest.raises(TransactionRejected) as raised:
        await writer.create([row("p", "a")])
    assert raised.value.status == 404 and raised.value.code == "TableNotFound"


async def test_a_wrong_account_key_is_the_services_403(emulator, table, storage_requests):
    wrong = emulator.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    async with TableServiceClient.from_connection_string(wrong) as service:
        with pytest.raises(HttpResponseError) as raised:
            await storage_requests.transactions(service.get_table_client(table.table_name)).create([row("p", "a")])
    assert raised.value.status_code == 403
    assert [e async for e in table.list_entities()] == []


async def test_a_transaction_is_one_round_trip_through_the_clients_pipeline(table, round_trips, storage_requests):
    pk = uuid.uuid4().hex  # one partition: Azure refuses a transaction across partitions (Azurite did not)
    round_trips.count = 0
    await storage_requests.transactions(table).create([row(pk, f"r{i:03d}") for i in range(100)])
    assert round_trips.count == 1



class DroppingProxy:
    """TCP to Azurite's table port, except that the first `drop` connections are closed as soon as a
    request arrives on them: a connection reset before storage saw anything."""

    def __init__(self, target_port: int, drop: int = 1):
        self.target_port, self.drop, self.connections = target_port, drop, 0

    async def __aenter__(self) -> "DroppingProxy":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drop:
            await reader.read(1)
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)


async def through(emulator, proxy: DroppingProxy, table_name: str, storage_requests):
    connection = emulator.connection_string.replace(f":{emulator.table_port}/", f":{proxy.port}/")
    service = TableServiceClient.from_connection_string(connection, retry_backoff_factor=0.05)
    return service, storage_requests.transactions(service.get_table_client(table_name))


async def test_a_replace_is_sent_again_after_a_connection_reset(emulator, table, storage_requests):
    pk = uuid.uuid4().hex
    [etag] = await storage_requests.transactions(table).create([row(pk, "a", Count=1)])
    async with DroppingProxy(emulator.table_port) as proxy:
        service, writer = await through(emulator, proxy, table.table_name, storage_requests)
        async with service:
            await writer.replace([(row(pk, "a", Count=2), etag)])
    assert proxy.connections == 2
    assert (await table.get_entity(pk, "a"))["Count"] == 2


async def test_an_insert_is_not_sent_again_after_a_connection_reset(emulator, table, storage_requests):
    async with DroppingProxy(emulator.table_port) as proxy:
        service, writer = await through(emulator, proxy, table.table_name, storage_requests)
        async with service:
            with pytest.raises(ServiceRequestError):
                await writer.create([row(uuid.uuid4().hex, "a")])
    assert proxy.connections == 1
    assert [e async for e in table.list_entities()] == []


def table_sas(emulator) -> str:
    return generate_account_sas(AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
                                ResourceTypes(service=True, container=True, object=True),
                                AccountSasPermissions(read=True, add=True, update=True, write=True),
                                expiry=datetime.now(timezone.utc) + timedelta(hours=1))


@pytest.mark.parametrize("where", ["connection string", "account url"])
async def test_a_transaction_works_with_an_account_sas(emulator, table, where, storage_requests):
    """With a SAS instead of the account key. From a connection string the SDK signs each request with
    the SAS (a credential policy); in the account URL it is part of every URL the client builds."""
    endpoint = f"http://127.0.0.1:{emulator.table_port}/{AZURITE_ACCOUNT}"
    sas = table_sas(emulator)
    service = (TableServiceClient.from_connection_string(f"TableEndpoint={endpoint};SharedAccessSignature={sas}")
               if where == "connection string" else TableServiceClient(f"{endpoint}?{sas}"))
    pk = uuid.uuid4().hex
    async with service:
        writer = storage_requests.transactions(service.get_table_client(table.table_name))
        if where == "account url" and storage_requests.setting == "sdk":
            # The SDK's submit_transaction builds its $batch URL from the host alone and drops a SAS given in
            # the URL (Azure/azure-sdk-for-python#17093: wrap it in AzureSasCredential instead). The gateway
            # builds its clients from a connection string, where the SAS is such a credential (case above).
            with pytest.raises(HttpResponseError) as raised:
                await writer.create([row(pk, "a", Count=1)])
            assert raised.value.status_code == 403
            return
        [etag] = await writer.create([row(pk, "a", Count=1)])
        await writer.replace([(row(pk, "a", Count=2), etag)])
    assert (await table.get_entity(pk, "a"))["Count"] == 2


async def test_a_sas_is_checked_so_a_wrong_one_is_refused(emulator, table, storage_requests):
    """Proves the test above means something: Azurite does check the SAS it is given."""
    endpoint = f"http://127.0.0.1:{emulator.table_port}/{AZURITE_ACCOUNT}"
    forged = table_sas(emulator).replace("sig=", "sig=AAAA")
    async with TableServiceClient.from_connection_string(f"TableEndpoint={endpoint};SharedAccessSignature={forged}") as service:
        with pytest.raises(HttpResponseError) as raised:
            await storage_requests.transactions(service.get_table_client(table.table_name)).create([row(uuid.uuid4().hex, "a")])
    assert raised.value.status_code == 403


async def test_the_suite_writes_through_the_path_it_was_asked_for(storage_requests, emulator, unique_name):
    """The SMS_STORAGE_REQUESTS=sdk run of this suite really sends through the SDK (whose bodies carry
    Edm.String annotations ours leave out), and the default (lean) one over the hot path's transport, in the
    adapters tests build and in those the gateway builds."""
    bodies = []
    async with TableServiceClient.from_connection_string(
            emulator.connection_string, raw_response_hook=lambda r: bodies.append(r.http_request.content)) as service:
        table = service.get_table_client(unique_name("path"))
        await table.create_table()
        bodies.clear()
        await storage_requests.transactions(table).create([row("p", "a", Text="x")])
    through_sdk = STORAGE_REQUESTS_UNDER_TEST == "sdk"
    assert len(bodies) == 1 and (b"Edm.String" in bodies[0]) is through_sdk
    gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        assert sending_way(gateway.messages._transactions) == sending_way(gateway.jobs._puts) == STORAGE_REQUESTS_UNDER_TEST
        assert sending_way(storage_requests.transactions(table)) == STORAGE_REQUESTS_UNDER_TEST
    finally:
        await gateway.close()


async def test_an_upsert_writes_rows_whether_or_not_they_are_there_and_can_be_repeated(table, storage_requests):
    """Insert Or Replace Entity (a PUT with no If-Match): rows no reader can see yet are rewritten by a
    request that is finishing an earlier attempt's work, instead of failing on the rows it left."""
    pk = uuid.uuid4().hex
    writer = storage_requests.transactions(table)
    await writer.create([row(pk, "left", Body="an earlier attempt")])
    rows = [row(pk, "left", Body="this attempt"), row(pk, "new", Body="this attempt")]
    etags = await writer.submit(writer.upserting(rows))
    again = await writer.submit(writer.upserting(rows))
    assert len(etags) == len(again) == 2 and etags != again
    assert again == [(await table.get_entity(pk, rk)).metadata["etag"] for rk in ("left", "new")]
    assert [(await table.get_entity(pk, rk))["Body"] for rk in ("left", "new")] == ["this attempt"] * 2
    assert writer.upserting([row(pk, "x")]).repeatable and not writer.inserting([row(pk, "x")]).repeatable
