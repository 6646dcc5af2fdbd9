"""The hot path's transport (sms/storage/handwritten/: transport.py, signing.py, retries.py), proven to send what the SDK's pipeline sends.

- Signing: the Authorization header our signers compute equals the one azure-storage-queue's and
  azure-data-tables' own SharedKey policies compute for the same request, both ways round.
- Whole requests: the job put and the $batch the hot path hands to aiohttp are the SDK pipeline's,
  header for header, except the headers that differ between any two requests (id, date, signature).
- Entra ID: one token for many requests, refreshed 5 minutes before expiry, one refresh at a time.
- Retries: the decisions and waits of the SDKs' own retry policies, as bootstrap configures them.
Nothing is sent: tests/integration/test_hot_path_wire.py sends over a loopback server.
"""
import asyncio
import time
from dataclasses import dataclass

import pytest
from azure.core.credentials import AccessToken, AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from azure.data.tables._authentication import SharedKeyCredentialPolicy as TablesSharedKeyPolicy
from azure.data.tables.aio import TableServiceClient
from azure.data.tables.aio._policies_async import AsyncTablesRetryPolicy
from azure.storage.queue._shared.authentication import SharedKeyCredentialPolicy as QueueSharedKeyPolicy
from azure.storage.queue._shared.policies import is_retry as queue_sdk_is_retry
from azure.storage.queue._shared.policies_async import ExponentialRetry
from azure.storage.queue.aio import QueueServiceClient
from multidict import CIMultiDict

from sms.bootstrap import QUEUE_RETRY, TABLE_RETRY
from sms.config import AZURITE_ACCOUNT, AZURITE_KEY, azurite_connection_string
from sms.storage.handwritten.retries import QueueRetry, TableRetry
from sms.storage.handwritten.sending import LeanRequests
from sms.storage.handwritten.signing import STORAGE_SCOPE, BearerToken, NoSignature, QueueSharedKey, SasInUrl, TableSharedKey
from sms.storage.handwritten.transport import HotPathTransport
from sms.storage.queues import StorageJobQueue, queue_client
from sms.storage.requests import RETRY_METHODS_WITH_POST
from tests.unit.capture import CapturingTransport, batch_answer, transactions
from tests.unit.test_batch_requests import JOB, PER_REQUEST_HEADERS, entities, queue_answer

DATE = "Wed, 25 Nov 2026 01:02:03 GMT"


# --- a hot path that sends nothing --------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    url: str
    headers: dict
    body: bytes


class _Response:
    """What the hot path reads of an aiohttp ClientResponse."""

    def __init__(self, status: int, headers: dict, content: bytes):
        self.status, self.reason, self.headers, self._content = status, "Canned", CIMultiDict(headers), content

    async def read(self) -> bytes:
        return self._content

    def release(self) -> None:
        pass


class CapturingHotPath(HotPathTransport):
    """Records each attempt as it would go to aiohttp, answers from `answers` (a status, headers and body,
    or an exception to raise), and records the waits between attempts instead of sleeping."""

    def __init__(self, *answers):
        self.waits: list[float] = []

        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        super().__init__(sleep=sleep)
        self.sent: list[Sent] = []
        self._answers = list(answers)

    async def attempt(self, method, url, headers, body):
        self.sent.append(Sent(method, url, dict(headers), body))
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer(self.sent[-1])
        return _Response(*answer)


def queue_201(sent):
    return queue_answer(None)


def batch_202(sent):
    request = HttpRequest(sent.method, sent.url, headers=sent.headers, content=sent.body)
    return batch_answer()(request)


def sdk_authorization(policy, sent) -> str:
    """The Authorization header the SDK's own SharedKey policy computes for a request with these headers."""
    request = HttpRequest(sent.method, sent.url, headers={k: v for k, v in sent.headers.items() if k != "Authorization"})
    policy.on_request(PipelineRequest(request, PipelineContext(AioHttpTransport())))
    return request.headers["Authorization"]


def without(headers: dict, names=PER_REQUEST_HEADERS) -> dict:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in names}


# --- signing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:10001/{AZURITE_ACCOUNT}/sms-send/messages",
    f"http://127.0.0.1:10001/{AZURITE_ACCOUNT}/sms-send/messages?visibilitytimeout=45&messagettl=-1",
    "https://acct.queue.core.windows.net/sms-send/messages?messagettl=-1&visibilitytimeout=604800",
    "https://acct.queue.core.windows.net/sms-send?comp=metadata&a=%2Fb%20c",
])
def test_queue_shared_key_is_the_queue_sdks_for_a_fixed_date(url):
    headers = {"Content-Type": "application/xml", "Accept": "application/xml", "Content-Length": "123",
               "x-ms-version": "2026-10-06", "x-ms-date": DATE, "x-ms-client-request-id": "id",
               "User-Agent": "azsdk-python-storage-queue"}
    account = "acct" if "acct" in url else AZURITE_ACCOUNT
    sent = Sent("POST", url, dict(headers), b"")
    asyncio.run(QueueSharedKey(account, AZURITE_KEY).sign("POST", url, sent.headers))
    assert sent.headers["Authorization"] == sdk_authorization(QueueSharedKeyPolicy(account, AZURITE_KEY), sent)
    assert sent.headers["Authorization"].startswith(f"SharedKey {account}:")


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}/$batch",
    "https://acct.table.core.windows.net/$batch",
    "https://acct.table.core.windows.net/Tables?comp=acl&x=1",
])
def test_table_shared_key_is_the_tables_sdks_for_a_fixed_date(url):
    headers = {"Content-Type": "multipart/mixed; boundary=batch_1", "Accept": "application/json", "Content-Length": "9",
               "x-ms-version": "2019-02-02", "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
               "x-ms-date": DATE, "Date": DATE, "x-ms-client-request-id": "id"}
    account = "acct" if "acct" in url else AZURITE_ACCOUNT
    sent = Sent("POST", url, dict(headers), b"")
    asyncio.run(TableSharedKey(account, AZURITE_KEY).sign("POST", url, sent.headers))
    policy = TablesSharedKeyPolicy(AzureNamedKeyCredential(account, AZURITE_KEY))
    assert sent.headers["Authorization"] == sdk_authorization(policy, sent)


def test_the_two_services_sign_differently():
    """The same request signed for Queue and for Table: Table's string leaves out Content-Length and the x-ms- headers."""
    headers = {"Content-Type": "application/xml", "Content-Length": "5", "x-ms-date": DATE, "x-ms-version": "v"}
    url = "https://acct.queue.core.windows.net/q/messages"
    assert QueueSharedKey("acct", AZURITE_KEY).string_to_sign("POST", url, headers) == (
        f"POST\n\n\n5\n\napplication/xml\n\n\n\n\n\n\nx-ms-date:{DATE}\nx-ms-version:v\n/acct/q/messages")
    assert TableSharedKey("acct", AZURITE_KEY).string_to_sign("POST", url, headers) == (
        f"POST\n\napplication/xml\n{DATE}\n/acct/q/messages")


def queue_service(transport) -> QueueServiceClient:
    return QueueServiceClient.from_connection_string(azurite_connection_string(), transport=transport, **QUEUE_RETRY)


def table_service(transport) -> TableServiceClient:
    return TableServiceClient.from_connection_string(azurite_connection_string(), transport=transport, **TABLE_RETRY)


@pytest.mark.parametrize("delay_seconds", [0, 45])
async def test_a_job_put_on_the_hot_path_is_send_messages_request_and_signature(delay_seconds):
    sdk_transport, hot_path = CapturingTransport(queue_answer), CapturingHotPath(queue_201)
    async with queue_service(sdk_transport) as service:
        await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB, delay_seconds=delay_seconds)
        await queue_client(service, "sms-send", "base64").send_message(
            JOB.to_json(), visibility_timeout=delay_seconds or None, time_to_live=-1 if delay_seconds else None)
    [ours], [sdk] = hot_path.sent, sdk_transport.requests
    assert (ours.method, ours.url, ours.body) == (sdk.method, sdk.url, bytes(sdk.content))
    assert without(ours.headers) == without(dict(sdk.headers))
    assert set(without(ours.headers)) >= {"content-type", "accept", "x-ms-version", "content-length", "user-agent"}
    assert {k.lower() for k in ours.headers} == {k.lower() for k in sdk.headers}  # the per-request ones too
    # Our signature is the SDK policy's for our request; and ours, on the SDK's own request, is the SDK's.
    assert ours.headers["Authorization"] == sdk_authorization(QueueSharedKeyPolicy(AZURITE_ACCOUNT, AZURITE_KEY), ours)
    theirs = Sent(sdk.method, sdk.url, {k: v for k, v in sdk.headers.items() if k != "Authorization"}, b"")
    await QueueSharedKey(AZURITE_ACCOUNT, AZURITE_KEY).sign(theirs.method, theirs.url, theirs.headers)
    assert theirs.headers["Authorization"] == sdk.headers["Authorization"]


@pytest.mark.parametrize("shape", ["inserting", "replacing", "upserting"])
async def test_a_transaction_on_the_hot_path_is_the_pipelines_request_and_signature(shape):
    """The same $batch (one Transaction's request) through the TableClient's pipeline and over the hot path."""
    sdk_transport, hot_path = CapturingTransport(batch_answer()), CapturingHotPath(batch_202)
    async with table_service(sdk_transport) as service:
        table = service.get_table_client("SmsMessages")
        lean, direct = LeanRequests(hot_path).transactions(table), transactions(table)
        rows = entities() if shape != "replacing" else [(e, "*") for e in entities()]
        transaction = getattr(lean, shape)(rows)
        assert await lean.submit(transaction) == ['W/"etag-0"', 'W/"etag-1"', 'W/"etag-2"']
        await direct.submit(transaction)
        await table.submit_transaction([("create", e) for e in entities()])
    [ours], (pipeline, sdk) = hot_path.sent, sdk_transport.requests
    assert (ours.method, ours.url, ours.body) == (pipeline.method, pipeline.url, bytes(pipeline.content))
    assert without(ours.headers) == without(dict(pipeline.headers))
    assert {k.lower() for k in ours.headers} == {k.lower() for k in pipeline.headers}
    policy = TablesSharedKeyPolicy(AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY))
    assert ours.headers["Authorization"] == sdk_authorization(policy, ours)
    theirs = Sent(sdk.method, sdk.url, {k: v for k, v in sdk.headers.items() if k != "Authorization"}, b"")
    await TableSharedKey(AZURITE_ACCOUNT, AZURITE_KEY).sign(theirs.method, theirs.url, theirs.headers)
    assert theirs.headers["Authorization"] == sdk.headers["Authorization"]  # submit_transaction's own request


async def test_a_sas_from_a_table_connection_string_goes_on_the_url_as_the_pipeline_puts_it():
    sdk_transport, hot_path = CapturingTransport(batch_answer()), CapturingHotPath(batch_202)
    sas = "se=2030-01-01&sp=au&sv=2019-02-02&ss=t&srt=o&sig=abc%3D"
    async with TableServiceClient.from_connection_string(
            f"TableEndpoint=http://127.0.0.1:10002/{AZURITE_ACCOUNT};SharedAccessSignature={sas}", transport=sdk_transport) as service:
        table = service.get_table_client("SmsMessages")
        transaction = LeanRequests(hot_path).transactions(table).inserting(entities())
        await LeanRequests(hot_path).transactions(table).submit(transaction)
        await transactions(table).submit(transaction)
    [ours], [pipeline] = hot_path.sent, sdk_transport.requests
    assert ours.url == pipeline.url and ours.url.endswith(f"/$batch?{sas}")
    assert "Authorization" not in ours.headers and "Authorization" not in pipeline.headers
    assert await SasInUrl("?a=1").sign("POST", "https://x/$batch?b=2", {}) == "https://x/$batch?b=2&a=1"


async def test_each_credential_gets_its_signer():
    transport = HotPathTransport()
    async with queue_service(CapturingTransport(queue_answer)) as queues, table_service(CapturingTransport(batch_answer())) as tables:
        assert isinstance(transport.for_queue(queues.get_queue_client("q"), QueueRetry()).signer, QueueSharedKey)
        assert isinstance(transport.for_table(tables.get_table_client("T"), TableRetry()).signer, TableSharedKey)
    credential = CountingCredential()
    async with QueueServiceClient("https://acct.queue.core.windows.net", credential=credential) as queues, \
            TableServiceClient("https://acct.table.core.windows.net", credential=credential) as tables:
        assert isinstance(transport.for_queue(queues.get_queue_client("q"), QueueRetry()).signer, BearerToken)
        assert isinstance(transport.for_table(tables.get_table_client("T"), TableRetry()).signer, BearerToken)
    async with QueueServiceClient("https://acct.queue.core.windows.net?sv=1&sig=x") as queues, \
            TableServiceClient("https://acct.table.core.windows.net", credential=AzureSasCredential("sv=1&sig=x")) as tables:
        assert isinstance(transport.for_queue(queues.get_queue_client("q"), QueueRetry()).signer, NoSignature)
        assert isinstance(transport.for_table(tables.get_table_client("T"), TableRetry()).signer, SasInUrl)


# --- Entra ID tokens -----------------------------------------------------------------------------------


class CountingCredential:
    """An AsyncTokenCredential that counts get_token calls, and how many run at once."""

    def __init__(self, clock=lambda: 1_000_000.0, lifetime: float = 3600):
        self.calls, self.running, self.most_at_once, self.scopes = 0, 0, 0, []
        self._clock, self._lifetime = clock, lifetime

    async def get_token(self, *scopes, **kwargs):
        self.calls += 1
        self.scopes.append(scopes)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.01)  # a token service's round trip, during which others ask too
            return AccessToken(f"token-{self.calls}", int(self._clock() + self._lifetime))
        finally:
            self.running -= 1

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass


async def test_one_token_serves_many_requests_and_is_refreshed_five_minutes_early_one_refresh_at_a_time():
    now = [1_000_000.0]
    credential = CountingCredential(clock=lambda: now[0])
    signer = BearerToken(credential, clock=lambda: now[0])
    url = "https://acct.queue.core.windows.net/q/messages"

    async def many() -> set[str]:
        headers = [{} for _ in range(50)]
        await asyncio.gather(*(signer.sign("POST", url, h) for h in headers))
        return {h["Authorization"] for h in headers}

    assert await many() == {"Bearer token-1"}
    assert (credential.calls, credential.scopes) == (1, [(STORAGE_SCOPE,)])
    now[0] += 3600 - 301  # still more than 5 minutes left
    assert await many() == {"Bearer token-1"} and credential.calls == 1
    now[0] += 2  # less than 5 minutes left: refreshed, once, however many ask at that moment
    assert await many() == {"Bearer token-2"} and credential.calls == 2
    assert credential.most_at_once == 1


async def test_a_token_goes_only_over_https():
    signer = BearerToken(CountingCredential())
    with pytest.raises(ServiceRequestError, match="non-https"):
        await signer.sign("POST", "http://127.0.0.1:10001/acct/q/messages", {})


async def test_a_job_put_with_a_token_carries_it_and_asks_once():
    credential, hot_path = CountingCredential(clock=time.time), CapturingHotPath(queue_201)
    async with QueueServiceClient("https://acct.queue.core.windows.net", credential=credential) as service:
        jobs = StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path))
        await asyncio.gather(*(jobs.put(JOB) for _ in range(10)))
    assert credential.calls == 1 and {s.headers["Authorization"] for s in hot_path.sent} == {"Bearer token-1"}


# --- retries: the SDK policies' own decisions ----------------------------------------------------------


class _Status:
    def __init__(self, status: int, headers: dict):
        self.status_code, self.headers = status, headers


STATUSES = [200, 201, 202, 204, 304, 400, 403, 404, 408, 409, 412, 413, 429, 500, 501, 502, 503, 504, 505, 507, 599]


@pytest.mark.parametrize("repeatable", [False, True])
@pytest.mark.parametrize("retry_after", [None, "1"])
@pytest.mark.parametrize("status", STATUSES)
def test_table_retries_are_azure_cores_for_each_status(status, retry_after, repeatable):
    """azure-core's RetryPolicy under azure-data-tables, built as bootstrap builds it: how many attempts a
    $batch POST gets when every answer is `status`, and the waits between them."""
    policy = AsyncTablesRetryPolicy(**TABLE_RETRY)
    settings = policy.configure_retries({"retry_on_methods": RETRY_METHODS_WITH_POST} if repeatable else {})
    request = HttpRequest("POST", "https://acct.table.core.windows.net/$batch")
    headers = {"Retry-After": retry_after} if retry_after else {}
    response = PipelineResponse(request, _Status(status, headers), PipelineContext(None))
    sdk_waits = []
    while policy.is_retry(settings, response) and policy.increment(settings, response=response):
        sdk_waits.append(float(retry_after) if retry_after else policy.get_backoff_time(settings))
    rule, our_waits, attempt = TableRetry(), [], 1
    while (wait := rule.after_status("POST", status, headers, attempt, repeatable)) is not None:
        our_waits.append(wait)
        attempt += 1
    assert our_waits == sdk_waits


@pytest.mark.parametrize("repeatable", [False, True])
@pytest.mark.parametrize("error", [ServiceRequestError("reset"), ServiceResponseError("read timed out")])
def test_table_retries_after_an_error_are_azure_cores(error, repeatable):
    policy = AsyncTablesRetryPolicy(**TABLE_RETRY)
    settings = policy.configure_retries({"retry_on_methods": RETRY_METHODS_WITH_POST} if repeatable else {})
    request = HttpRequest("POST", "https://acct.table.core.windows.net/$batch")
    pipeline_request = PipelineRequest(request, PipelineContext(None))
    sdk_waits = []
    while policy._is_method_retryable(settings, request) and policy.increment(settings, response=pipeline_request, error=error):
        sdk_waits.append(policy.get_backoff_time(settings))
    rule, our_waits, attempt = TableRetry(), [], 1
    while (wait := rule.after_error("POST", error, attempt, repeatable)) is not None:
        our_waits.append(wait)
        attempt += 1
    assert our_waits == sdk_waits
    assert len(our_waits) == (3 if repeatable else 0)  # a non-repeatable POST is never sent twice after an error


@pytest.mark.parametrize("status", STATUSES)
def test_queue_retries_are_the_queue_sdks_for_each_status(status):
    """azure-storage-queue's ExponentialRetry as QUEUE_RETRY builds it: attempts, and waits inside its jitter range."""
    policy = ExponentialRetry(**QUEUE_RETRY)
    request = HttpRequest("POST", "https://acct.queue.core.windows.net/q/messages")
    settings = policy.configure_retries(PipelineRequest(request, PipelineContext(None)))
    response = PipelineResponse(request, _Status(status, {}), PipelineContext(None))
    sdk_ranges = []
    while queue_sdk_is_retry(response, settings["mode"]) and policy.increment(settings, request=request, response=response.http_response):
        backoff = QUEUE_RETRY["initial_backoff"] + QUEUE_RETRY["increment_base"] ** settings["count"]
        sdk_ranges.append((backoff - QUEUE_RETRY["random_jitter_range"], backoff + QUEUE_RETRY["random_jitter_range"]))
        assert sdk_ranges[-1][0] <= policy.get_backoff_time(settings) <= sdk_ranges[-1][1]
    rule, our_waits, attempt = QueueRetry(**QUEUE_RETRY), [], 1
    while (wait := rule.after_status("POST", status, {}, attempt, False)) is not None:
        our_waits.append(wait)
        attempt += 1
    assert len(our_waits) == len(sdk_ranges)
    assert all(low <= wait <= high for wait, (low, high) in zip(our_waits, sdk_ranges, strict=True))


@pytest.mark.parametrize("error", [ServiceRequestError("reset"), ServiceResponseError("read timed out")])
def test_queue_retries_after_an_error_are_the_queue_sdks(error):
    policy = ExponentialRetry(**QUEUE_RETRY)
    request = HttpRequest("POST", "https://acct.queue.core.windows.net/q/messages")
    settings = policy.configure_retries(PipelineRequest(request, PipelineContext(None)))
    sdk_retries = 0
    while policy.increment(settings, request=request, error=error):
        sdk_retries += 1
    rule, attempt = QueueRetry(**QUEUE_RETRY), 1
    while rule.after_error("POST", error, attempt, False) is not None:
        attempt += 1
    assert attempt - 1 == sdk_retries == 2


def test_the_default_rules_are_the_ones_bootstrap_configures():
    assert QueueRetry() == QueueRetry(**QUEUE_RETRY) and TableRetry() == TableRetry(**TABLE_RETRY)


# --- retries: what the transport does with them --------------------------------------------------------


async def test_a_put_answered_503_then_201_is_sent_twice_after_the_sdks_wait():
    hot_path = CapturingHotPath((503, {}, b"busy"), queue_201)
    async with queue_service(CapturingTransport(queue_answer)) as service:
        await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB)
    first, second = hot_path.sent
    assert first.headers["x-ms-client-request-id"] == second.headers["x-ms-client-request-id"]
    assert len(hot_path.waits) == 1 and 1.5 <= hot_path.waits[0] <= 2.5


async def test_a_reset_connection_repeats_a_repeatable_transaction_and_never_an_insert():
    reset = ServiceRequestError("Connection reset by peer")
    async with table_service(CapturingTransport(batch_answer())) as service:
        table = service.get_table_client("SmsMessages")
        hot_path = CapturingHotPath(reset, batch_202)
        writer = LeanRequests(hot_path).transactions(table)
        assert await writer.replace([(e, "*") for e in entities()]) == ['W/"etag-0"', 'W/"etag-1"', 'W/"etag-2"']
        assert len(hot_path.sent) == 2 and hot_path.waits == [0]
        hot_path = CapturingHotPath(reset, batch_202)
        with pytest.raises(ServiceRequestError):
            await LeanRequests(hot_path).transactions(table).create(entities())
        assert len(hot_path.sent) == 1


async def test_a_put_with_no_answer_is_tried_three_times_then_fails_as_the_sdk_fails():
    from sms.domain.errors import StorageUnavailable

    hot_path = CapturingHotPath(ServiceResponseError("read timed out"))
    async with queue_service(CapturingTransport(queue_answer)) as service:
        with pytest.raises(StorageUnavailable) as raised:
            await StorageJobQueue(service, "sms-send", "base64", LeanRequests(hot_path)).put(JOB)
    assert isinstance(raised.value.__cause__, ServiceResponseError) and len(hot_path.sent) == 3


def test_the_date_made_once_a_second_is_formatdates_at_every_moment(monkeypatch):
    from email.utils import formatdate

    from sms.storage.handwritten import transport as hot_path

    for moment in (1764979200.0, 1764979200.999, 1764979201.0, 1764979259.5, 1764979260.25):
        monkeypatch.setattr(hot_path.time, "time", lambda moment=moment: moment)
        assert hot_path.http_date() == formatdate(moment, usegmt=True)


def test_new_guids_are_random_version_4_uuids_in_both_forms():
    import uuid

    from sms.domain.model import new_guid

    made = [new_guid(dashes=dashes, guessable=guessable) for dashes in (False, True) for guessable in (False, True) for _ in range(1000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert text == (str(parsed) if "-" in text else parsed.hex)
