"""Wires the real adapters together, once per worker process.

Nothing here runs at import: the Functions host indexes zero functions when importing
the app raises, so settings are read and clients built on first use instead.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential
from azure.storage.queue.aio import QueueServiceClient

from . import telemetry
from .auth import Authenticator
from .inbound import InboundService
from .optouts import OptOuts
from .config import SEND_QUEUE, Settings, proxy_lookup_options, queue_message_encoding
from .errors import StorageUnavailable
from .pacing import RequestRateLimiter, RetryPolicy, SenderRateLimiter
from .providers import SmsProvider, create_provider
from .service import SmsService
from .validation import Limits
from .storage.idempotency import TableIdempotencyStore
from .storage.inbound import TableInboundStore, TableOptOutStore
from .storage.queues import StorageJobQueue, create_queue, queue_client
from .storage.tables import TableApiKeyStore, TableMessageStore


@dataclass
class Gateway:
    settings: Settings
    sms: SmsService
    auth: Authenticator
    keys: TableApiKeyStore
    messages: TableMessageStore
    jobs: StorageJobQueue
    provider: SmsProvider
    inbound: InboundService
    requests: RequestRateLimiter
    _inbound_store: TableInboundStore
    _opt_out_store: TableOptOutStore
    _opt_outs: OptOuts
    _idempotency_store: TableIdempotencyStore
    _tables: TableServiceClient
    _queues: QueueServiceClient
    _credential: AsyncTokenCredential | None = None

    async def ensure_storage(self) -> None:
        """Create the tables and queues when missing (Azurite, a fresh account). Idempotent."""
        encoding = queue_message_encoding()
        await asyncio.gather(
            self.messages.create_table(),
            self.keys.create_table(),
            self.jobs.create_queue(),
            self._inbound_store.create_tables(),
            self._opt_out_store.create_table(),
            self._idempotency_store.create_table(),
            create_queue(queue_client(self._queues, f"{SEND_QUEUE}-poison", encoding)),
        )
        # Before this process sends anything: a STOP recorded in the layout before must keep blocking.
        await self.move_legacy_opt_outs()

    async def move_legacy_opt_outs(self) -> None:
        """Copy opt-outs still in the layout before into the per-number one (TableOptOutStore.migrate_legacy).
        Run at start, and by the sweeper: a process of the version before, still running during an
        upgrade (a slot swap), may write one there after this process started. One query once it is empty."""
        await self._opt_outs.migrate()

    async def health(self) -> dict:
        """Whether storage and the provider can be reached: for GET /api/health. No secrets in it."""

        async def storage() -> str | None:
            try:
                await asyncio.gather(self.keys.get("0" * 16), self.jobs.check())
            except StorageUnavailable as exc:
                return f"unavailable ({type(exc.__cause__).__name__})"
            return None

        storage_problem, provider_problem = await asyncio.gather(storage(), self.provider.check())
        return {
            "status": "ok" if not (storage_problem or provider_problem) else "unhealthy",
            "storage": {"status": "ok" if not storage_problem else storage_problem},
            "provider": {"name": self.provider.name, "status": "ok" if not provider_problem else provider_problem},
        }

    async def close(self) -> None:
        await self.provider.close()
        await self._tables.close()
        await self._queues.close()
        if self._credential is not None:
            await self._credential.close()


# azure-core waits up to 300 s to connect or read and retries up to 10 times, and the queue SDK's
# own retry policy backs off from 15 s: a request would hang for minutes on a stalled storage
# endpoint. These bounds answer 503 while the caller is still waiting, and a few quick retries
# still ride out a blip.
STORAGE_TIMEOUTS = {"connection_timeout": 5, "read_timeout": 20}
# The queue SDK's documented retry keywords: retry n waits initial_backoff + increment_base**n, so
# about 2 and 2.75 s (±0.5 s) here, instead of its default 18, 24 and 42 s (±3 s).
QUEUE_RETRY = {"retry_total": 2, "initial_backoff": 0.5, "increment_base": 1.5, "random_jitter_range": 0.5}


def build(settings: Settings, on_response: Callable[[Any], None] | None = None,
          credential: AsyncTokenCredential | None = None) -> Gateway:
    """`on_response` sees every storage HTTP response: benchmarks count round trips with it.
    Without a connection string, storage is signed in to with `credential`, by default the app's
    identity through DefaultAzureCredential (managed identity on Azure, az login on a laptop)."""
    # azure-core's HttpLoggingPolicy logs every request's URL at INFO, and some of ours carry phone
    # numbers in their keys (reply routes, opt-outs); its warnings and errors still come through.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    common = {**STORAGE_TIMEOUTS, **proxy_lookup_options(), **({"raw_response_hook": on_response} if on_response else {})}
    table_options = {"retry_total": 3, **common}
    queue_options = {**QUEUE_RETRY, **common}
    owned_credential = None
    if settings.storage_connection:
        tables = TableServiceClient.from_connection_string(settings.storage_connection, **table_options)
        queues = QueueServiceClient.from_connection_string(settings.storage_connection, **queue_options)
    else:
        if credential is None:
            credential = owned_credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        tables = TableServiceClient(settings.table_endpoint, credential=credential, **table_options)
        queues = QueueServiceClient(settings.queue_endpoint, credential=credential, **queue_options)
    # The two requests on every send (its transaction, its job put) are written by the gateway itself
    # unless SMS_STORAGE_REQUESTS=sdk; every other storage call goes through the SDK either way.
    through_sdk = settings.storage_requests == "sdk"
    messages = TableMessageStore.from_service(tables, through_sdk=through_sdk)
    keys = TableApiKeyStore.from_service(tables)
    jobs = StorageJobQueue(queues, SEND_QUEUE, queue_message_encoding(), through_sdk=through_sdk)
    provider = create_provider(settings)
    limits = Limits(settings.default_region, settings.max_recipients, settings.max_body_chars, settings.max_segments)
    retry = RetryPolicy(max_attempts=settings.max_send_attempts, base_delay_seconds=settings.retry_base_seconds)
    inbound_store = TableInboundStore.from_service(tables)
    opt_out_store = TableOptOutStore.from_service(tables)
    opt_outs = OptOuts(opt_out_store)
    idempotency_store = TableIdempotencyStore.from_service(tables)
    return Gateway(
        settings=settings,
        sms=SmsService(messages, jobs, provider, limits, settings.send_concurrency, retry,
                       SenderRateLimiter(settings.rate_limit_per_second), opt_outs, inbound_store,
                       sending_lease=timedelta(seconds=settings.sending_lease_seconds), idempotency=idempotency_store,
                       idempotency_window=timedelta(hours=settings.idempotency_hours)),
        auth=Authenticator(keys, settings.api_key_cache_seconds),
        keys=keys, messages=messages, jobs=jobs, provider=provider,
        inbound=InboundService(messages, inbound_store, opt_outs),
        requests=RequestRateLimiter(settings.requests_per_minute),
        _inbound_store=inbound_store, _opt_out_store=opt_out_store, _opt_outs=opt_outs, _idempotency_store=idempotency_store,
        _tables=tables, _queues=queues, _credential=owned_credential,
    )


_gateway: Gateway | None = None
_building: asyncio.Lock | None = None


async def gateway() -> Gateway:
    """The process's one Gateway, built and its storage ensured on first use."""
    global _gateway, _building
    if _gateway is None:
        _building = _building or asyncio.Lock()
        async with _building:
            if _gateway is None:
                telemetry.configure()
                candidate = build(Settings.from_env())
                await candidate.ensure_storage()
                _gateway = candidate
    return _gateway


async def close_gateway() -> None:
    global _gateway
    if _gateway is not None:
        await _gateway.close()
        _gateway = None
