"""The hot path's transport over a real socket: a loopback aiohttp server stands in for storage.

What arrives from the hot path is what arrives from the SDK for the same request (every header but
the per-request ones, whose signatures the SDK's own SharedKey policies accept), and the transport
retries, gives up and fails as the SDK's pipeline does: a 503 then a 201, a reset connection on a
repeatable and on a non-repeatable $batch, a read that times out. Every adapter here is given the
hot path explicitly, so these run the same under any SMS_STORAGE_REQUESTS.
"""
import asyncio
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from azure.data.tables._authentication import SharedKeyCredentialPolicy as TablesSharedKeyPolicy
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue._shared.authentication import SharedKeyCredentialPolicy as QueueSharedKeyPolicy
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import QUEUE_RETRY, STORAGE_TIMEOUTS, TABLE_RETRY
from sms.config import AZURITE_ACCOUNT, AZURITE_KEY
from sms.domain.errors import StorageUnavailable
from sms.domain.model import SendJob
from sms.storage.handwritten.sending import DirectRequests, LeanRequests
from sms.storage.handwritten.transport import HotPathTransport
from sms.storage.queues import StorageJobQueue, queue_client
from sms.storage.tables import TableMessageStore, storage_errors
from tests.unit.capture import batch_answer
from tests.unit.test_batch_requests import queue_answer

JOB = SendJob(comm_id="a" * 32, first=0, last=0)
PER_REQUEST = {"x-ms-client-request-id", "x-ms-date", "date", "authorization"}
QUEUE_201 = queue_answer(None)


@dataclass
class Arrived:
    method: str
    url: str
    headers: list
    body: bytes


@dataclass
class FakeStorage:
    """Answers each request with the next of `script`: (status, headers, body), "reset" (the connection
    is closed with no answer) or "stall" (no answer for 2 s); the last one answers every request after."""
    port: int = 0
    script: list = field(default_factory=list)
    arrived: list = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.arrived.append(Arrived(request.method, str(request.url), list(request.headers.items()), body))
        action = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if action == "reset":
            request.transport.close()
            return web.Response()
        if action == "stall":
            await asyncio.sleep(2)
            return web.Response()
        if callable(action):
            action = action(self.arrived[-1])
        status, headers, content = action
        return web.Response(status=status, headers=headers, body=content)

    def connection_string(self) -> str:
        endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"QueueEndpoint={endpoint};TableEndpoint={endpoint}")


@pytest.fixture
async def storage():
    fake = FakeStorage()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    await runner.cleanup()


@pytest.fixture
async def hot_path():
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    transport = HotPathTransport(**STORAGE_TIMEOUTS, sleep=sleep)
    transport.waits = waits
    yield transport
    await transport.close()


def batch_202(arrived: Arrived):
    headers = dict(arrived.headers)
    return batch_answer()(HttpRequest(arrived.method, arrived.url, headers=headers, content=arrived.body))


def headers_but_per_request(arrived: Arrived) -> list:
    return sorted((k.lower(), v) for k, v in arrived.headers if k.lower() not in PER_REQUEST)


def sdk_signs_it_the_same(policy, arrived: Arrived) -> bool:
    headers = dict(arrived.headers)
    signed = headers.pop("Authorization")
    request = HttpRequest(arrived.method, arrived.url, headers=headers)
    policy.on_request(PipelineRequest(request, PipelineContext(AioHttpTransport())))
    return request.headers["Authorization"] == signed


row = lambda pk, rk: {"PartitionKey": pk, "RowKey": rk, "Body": "x"}  # noqa: E731


@pytest.mark.parametrize("delay_seconds", [0, 60])
async def test_a_put_arrives_as_send_messages_does(storage, hot_path, delay_seconds):
    storage.script = [QUEUE_201]
    async with QueueServiceClient.from_connection_string(storage.connection_string(), **QUEUE_RETRY) as service:
        await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB, delay_seconds=delay_seconds)
        await queue_client(service, "sms-send", "base64").send_message(
            JOB.to_json(), visibility_timeout=delay_seconds or None, time_to_live=-1 if delay_seconds else None)
    ours, sdk = storage.arrived
    assert (ours.method, ours.url, ours.body) == (sdk.method, sdk.url, sdk.body)
    assert headers_but_per_request(ours) == headers_but_per_request(sdk)
    assert sorted(k.lower() for k, _ in ours.headers) == sorted(k.lower() for k, _ in sdk.headers)
    policy = QueueSharedKeyPolicy(AZURITE_ACCOUNT, AZURITE_KEY)
    assert sdk_signs_it_the_same(policy, ours) and sdk_signs_it_the_same(policy, sdk)


async def test_a_transaction_arrives_as_it_does_through_the_tableclients_pipeline(storage, hot_path):
    storage.script = [batch_202]
    async with TableServiceClient.from_connection_string(storage.connection_string(), **TABLE_RETRY) as service:
        table = service.get_table_client("SmsMessages")
        transaction = LeanRequests(hot_path).transactions(table).inserting([row("p", "a"), row("p", "b")])
        await LeanRequests(hot_path).transactions(table).submit(transaction)
        await DirectRequests().transactions(table).submit(transaction)
    ours, pipeline = storage.arrived
    assert (ours.method, ours.url, ours.body) == (pipeline.method, pipeline.url, pipeline.body)
    assert headers_but_per_request(ours) == headers_but_per_request(pipeline)
    assert sorted(k.lower() for k, _ in ours.headers) == sorted(k.lower() for k, _ in pipeline.headers)
    policy = TablesSharedKeyPolicy(AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY))
    assert sdk_signs_it_the_same(policy, ours) and sdk_signs_it_the_same(policy, pipeline)


async def test_a_503_then_a_201_puts_the_job_once_more_after_the_queue_sdks_wait(storage, hot_path, round_trips):
    storage.script = [(503, {}, b"ServerBusy"), QUEUE_201]
    async with QueueServiceClient.from_connection_string(storage.connection_string(), raw_response_hook=round_trips) as service:
        await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB)
    assert len(storage.arrived) == 2 and round_trips.count == 2  # the client's hook sees each answer, as before
    assert len(hot_path.waits) == 1 and 1.5 <= hot_path.waits[0] <= 2.5
    assert storage.arrived[0].body == storage.arrived[1].body


async def test_a_503_then_a_202_commits_the_transaction(storage, hot_path):
    storage.script = [(503, {}, b""), batch_202]
    async with TableServiceClient.from_connection_string(storage.connection_string()) as service:
        etags = await LeanRequests(hot_path).transactions(service.get_table_client("SmsMessages")).create([row("p", "a")])
    assert etags == ['W/"etag-0"'] and len(storage.arrived) == 2 and hot_path.waits == [0]


async def test_a_reset_connection_repeats_a_repeatable_transaction(storage, hot_path):
    storage.script = ["reset", batch_202]
    async with TableServiceClient.from_connection_string(storage.connection_string()) as service:
        etags = await LeanRequests(hot_path).transactions(service.get_table_client("SmsMessages")).replace([(row("p", "a"), "*")])
    assert etags == ['W/"etag-0"'] and len(storage.arrived) == 2


async def test_a_reset_connection_never_repeats_an_insert_and_is_an_outage_to_the_caller(storage, hot_path):
    storage.script = ["reset", batch_202]
    async with TableServiceClient.from_connection_string(storage.connection_string()) as service:
        table = service.get_table_client("SmsMessages")
        with pytest.raises(ServiceRequestError):
            await LeanRequests(hot_path).transactions(table).create([row("p", "a")])
        assert len(storage.arrived) == 1
        storage.script = ["reset", batch_202]
        # Through the stores' own error mapping, as accept meets it: storage out of reach (503 to the client).
        with pytest.raises(StorageUnavailable):
            await storage_errors(TableMessageStore(table, LeanRequests(hot_path))._transactions.create)([row("q", "a")])
        assert len(storage.arrived) == 2


async def test_a_read_that_times_out_is_not_repeated_for_an_insert_and_is_for_a_put(storage):
    hot_path = HotPathTransport(connection_timeout=5, read_timeout=0.3, sleep=lambda s: asyncio.sleep(0))
    try:
        storage.script = ["stall"]
        async with TableServiceClient.from_connection_string(storage.connection_string()) as service:
            with pytest.raises(ServiceResponseError):
                await LeanRequests(hot_path).transactions(service.get_table_client("SmsMessages")).create([row("p", "a")])
        assert len(storage.arrived) == 1
        storage.arrived.clear()
        async with QueueServiceClient.from_connection_string(storage.connection_string(), **QUEUE_RETRY) as service:
            with pytest.raises(StorageUnavailable):
                await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB)
        assert len(storage.arrived) == 3  # the queue SDK's policy repeats any request, twice here
    finally:
        await hot_path.close()


async def test_a_refusal_is_the_sdks_error_with_its_status(storage, hot_path):
    storage.script = [(404, {"x-ms-error-code": "QueueNotFound"}, b"<?xml version=\"1.0\"?><Error><Code>QueueNotFound</Code></Error>")]
    async with QueueServiceClient.from_connection_string(storage.connection_string()) as service:
        with pytest.raises(HttpResponseError) as raised:
            await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB)
    assert raised.value.status_code == 404 and len(storage.arrived) == 1
