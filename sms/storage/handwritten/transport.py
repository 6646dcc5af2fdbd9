"""The hot path's own transport: the hand-written requests (the job put, the commit transaction) sent over
one aiohttp session per process, signed, timed out and retried as the SDK pipelines would, without
azure-core's pipeline (SMS_STORAGE_REQUESTS=lean). See HotPathTransport for why, and what it costs to own.
"""
from __future__ import annotations

import asyncio
import functools
import time
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Awaitable, Callable, Mapping

import aiohttp
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineContext, PipelineResponse
from azure.core.rest import HttpRequest

from ...domain.model import new_guid
from .retries import QueueRetry, TableRetry
from .signing import Signer, signer_for_queue, signer_for_table

try:  # aiohttp 3.10+: a connect timeout, which azure-core maps to ServiceRequestTimeoutError
    from aiohttp.client_exceptions import ConnectionTimeoutError
except ImportError:  # pragma: no cover
    ConnectionTimeoutError = ()  # type: ignore[assignment,misc]


class HotPathTransport:
    """Sends the gateway's own requests for the job put and the commit transaction over ONE long-lived
    aiohttp ClientSession per process, signed here.

    Why it exists: per accepted message, azure-core's pipeline and its aiohttp transport around these two
    calls cost about 2 ms of CPU, while a bare aiohttp client signing by hand (bench/bare_floor.py) costs
    about half (issue 17; docs/scaling.md, "Where the accept path's CPU went": no single policy stands out,
    so trimming the pipeline buys nothing measurable). The requests themselves are the ones job_put.py and
    batch_request.py build byte for byte like the SDK's; only the sending changes.

    What it costs to own, because the SDK no longer does it for these two calls:
    - signing (signing.py): SharedKey for Queue and for Table, a SAS carried in the URL, and Entra ID bearer
      tokens from the app's AsyncTokenCredential, cached and refreshed 5 minutes early;
    - retries (retries.py): the rules of each SDK's policy as the gateway configures them (QUEUE_RETRY, the
      tables' retry_total=3, a $batch POST repeated after a connection error only when it is repeatable);
    - timeouts (connect 5 s, read 20 s, bootstrap.STORAGE_TIMEOUTS) and the mapping of aiohttp's errors to
      azure-core's (ServiceRequestError, ServiceResponseError), which storage_errors expects;
    - the headers the SDK adds: x-ms-date (and Date for Table), x-ms-client-request-id, User-Agent.
    tests/unit/test_hot_path.py proves each against the SDK's own code; SMS_STORAGE_REQUESTS=direct or
    =sdk puts these two calls back on the SDK's pipeline should an SDK upgrade change what it sends.
    Not carried over: a bearer-token challenge (a 401 naming another tenant), secondary-location retries
    (the gateway configures none), distributed tracing spans of the two calls and azure-core's HTTP logging.
    """

    def __init__(self, *, connection_timeout: float = 5, read_timeout: float = 20,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._timeout = aiohttp.ClientTimeout(sock_connect=connection_timeout, sock_read=read_timeout)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    def for_queue(self, client: Any, retry: QueueRetry) -> "StorageEndpoint":
        """What sending through `client` (an aio QueueClient) would use: its credential, its response hook."""
        return StorageEndpoint(self, signer_for_queue(client.credential), retry, *pipeline_parts(client))

    def for_table(self, client: Any, retry: TableRetry) -> "StorageEndpoint":
        """What sending through `client` (an aio TableClient) would use: its credential, its response hook."""
        return StorageEndpoint(self, signer_for_table(client.credential), retry, *pipeline_parts(client), sends_date=True)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env as the SDK clients are built (config.proxy_lookup_options): a proxy in the environment
            # is used, and with none configured aiohttp does not look for one on every request.
            self._session = aiohttp.ClientSession(auto_decompress=False, trust_env=bool(urllib.request.getproxies()))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def attempt(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> aiohttp.ClientResponse:
        """One try, with aiohttp's errors mapped as azure-core's aiohttp transport maps them."""
        try:
            return await self.session().request(method, url, headers=headers, data=body, timeout=self._timeout,
                                                allow_redirects=False)
        except aiohttp.ClientResponseError as err:
            raise ServiceResponseError(err, error=err) from err
        except ConnectionTimeoutError as err:
            raise ServiceRequestTimeoutError(err, error=err) from err
        except asyncio.TimeoutError as err:
            raise ServiceResponseTimeoutError(err, error=err) from err
        except aiohttp.ClientError as err:
            raise ServiceRequestError(err, error=err) from err

    async def read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except asyncio.TimeoutError as err:
            raise ServiceResponseTimeoutError(err, error=err) from err
        except aiohttp.ClientError as err:
            raise ServiceResponseError(err, error=err) from err
        finally:
            response.release()


@dataclass(frozen=True)
class StorageRequest:
    """A hand-written request: what azure-core's HttpRequest holds of it, without the 5 us its constructor
    costs (two per accepted message). `for_pipeline` gives the SDK pipeline's own (=direct)."""
    method: str
    url: str
    headers: dict[str, str]
    content: bytes

    def __post_init__(self) -> None:
        # As HttpRequest sets it from a body of bytes (azure.core.rest._helpers.set_content_body): the
        # Queue service's string to sign includes it.
        if self.content and "Content-Length" not in self.headers:
            self.headers["Content-Length"] = str(len(self.content))

    def for_pipeline(self) -> HttpRequest:
        return HttpRequest(self.method, self.url, content=self.content, headers=self.headers)


def http_date() -> str:
    """Now as an RFC 1123 date, as the SDKs' x-ms-date: formatdate(usegmt=True), made once a second."""
    return _http_date_of(int(time.time()))


@functools.lru_cache(maxsize=2)
def _http_date_of(second: int) -> str:
    return formatdate(second, usegmt=True)


class Answer:
    """A storage answer, with what HttpResponseError and the gateway's readers use of azure-core's."""

    def __init__(self, request: StorageRequest | HttpRequest, status: int, reason: str, headers: Mapping[str, str], content: bytes):
        self.request, self.status_code, self.reason, self.headers, self.content = request, status, reason, headers, content

    def text(self, encoding: str | None = None) -> str:
        return self.content.decode(encoding or "utf-8", errors="replace")

    def body(self) -> bytes:
        return self.content


class StorageEndpoint:
    """The hot path's transport bound to one SDK client's account: its signer, retry rule, User-Agent
    and response hook (what a benchmark or a test counts round trips with)."""

    def __init__(self, transport: HotPathTransport, signer: Signer, retry: QueueRetry | TableRetry,
                 user_agent: str | None, on_response: Callable[[Any], None] | None, *, sends_date: bool = False):
        self.transport, self.signer, self.retry = transport, signer, retry
        self._user_agent, self._on_response, self._sends_date = user_agent, on_response, sends_date

    def headers(self, request: StorageRequest | HttpRequest, date: str, request_id: str) -> dict[str, str]:
        """The request's headers as the SDK's pipeline completes them, before signing."""
        headers = dict(request.headers)
        headers["x-ms-date"] = date
        if self._sends_date:  # azure-data-tables' StorageHeadersPolicy sets both
            headers["Date"] = date
        headers["x-ms-client-request-id"] = request_id
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        return headers

    async def send(self, request: StorageRequest | HttpRequest, *, repeatable: bool = False) -> Answer:
        """Sends `request` with the SDK's retry rule; raises azure-core's ServiceRequestError or
        ServiceResponseError as its pipeline would. `repeatable`: a POST safe to send again."""
        body = bytes(request.content or b"")
        method = request.method.upper()
        # One per call, kept across retries, as the SDKs do. azure-core makes it with uuid1, which costs
        # 13 us here against 1 for new_guid (py-spy: 4% of the dev host's busy CPU under accept load); the
        # header is "a client-generated, opaque value" (Queue and Table REST: request headers), so any unique one will do.
        request_id = new_guid(dashes=True, guessable=True)
        attempt = 0
        while True:
            attempt += 1
            headers = self.headers(request, http_date(), request_id)
            url = await self.signer.sign(method, request.url, headers)
            try:
                response = await self.transport.attempt(method, url, headers, body)
            except (ServiceRequestError, ServiceResponseError) as error:
                wait = self.retry.after_error(method, error, attempt, repeatable)
                if wait is None:
                    raise
                await self.transport._sleep(wait)
                continue
            wait = self.retry.after_status(method, response.status, response.headers, attempt, repeatable)
            if wait is not None:
                response.release()
                self._hook(request, response.status, response.reason or "", response.headers, b"")
                await self.transport._sleep(wait)
                continue
            content = await self.transport.read(response)
            return self._hook(request, response.status, response.reason or "", response.headers, content)

    def _hook(self, request, status, reason, headers, content) -> Answer:
        answer = Answer(request, status, reason, headers, content)
        if self._on_response is not None:
            self._on_response(PipelineResponse(request, answer, PipelineContext(None)))
        return answer


def pipeline_parts(client: Any) -> tuple[str | None, Callable[[Any], None] | None]:
    """The User-Agent and the raw_response_hook an SDK client's pipeline was configured with. Private parts
    of the SDK, read once per client at start: tests/unit/test_sdk_private_parts.py names each."""
    user_agent = hook = None
    for policy in client._client._client._pipeline._impl_policies:
        policy = getattr(policy, "_policy", policy)
        if user_agent is None and hasattr(policy, "user_agent"):
            user_agent = policy.user_agent
        if hook is None and getattr(policy, "_response_callback", None) is not None:
            hook = policy._response_callback
    return user_agent, hook
