"""The real adapters (Azure Storage, the configured SMS provider), built once per worker process.

Nothing here runs at import: the Functions host indexes zero functions when importing
the app raises, so settings are read and clients built on first use instead.
"""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential
from azure.storage.queue.aio import QueueServiceClient

from . import telemetry
from .config import (
    ACCEPT_QUEUE,
    SEND_QUEUE,
    WEBHOOK_QUEUE,
    ConfigError,
    ProviderSettings,
    Settings,
    default_routes,
    proxy_lookup_options,
    queue_message_encoding,
)
from .domain.comm_ids import CommIdKeys
from .domain.errors import StorageUnavailable
from .domain.guard import default_guard
from .domain.pacing import RequestRateLimiter, RetryPolicy
from .domain.simulated import SIMULATOR
from .domain.validation import Limits
from .gateway import Gateway, Ports, Tuning, assemble
from .providers import ProviderSet, SmsProvider
from .providers.simulator import SimulatorProvider
from .storage.events import TableEventStore
from .storage.guard_blocks import TableGuardBlockStore
from .storage.handwritten.retries import QueueRetry, TableRetry
from .storage.handwritten.sending import DirectRequests, LeanRequests
from .storage.handwritten.transport import HotPathTransport
from .storage.idempotency import TableIdempotencyStore
from .storage.inbound import TableInboundStore, TableOptOutStore
from .storage.ledger import TableLedgerStore
from .storage.licensees import TableLicenseeSettingsStore
from .storage.optout_index import TableOptOutIndex
from .storage.pending import TablePendingIndex
from .storage.queues import StorageDeliveryQueue, StorageJobQueue, StorageWholeJobQueue, create_queue, queue_client
from .storage.requests import StorageRequests
from .storage.sdk_requests import SdkRequests
from .storage.spend import TableSpendStore
from .storage.tables import TableApiKeyStore, TableMessageStore
from .storage.webhook_tables import TableDeliveryLogStore, TableWebhookEndpointStore
from .usecases.auth import Authenticator
from .usecases.optouts import OptOuts
from .webhooks.sender import WebhookSender


@dataclass
class Adapters:
    """The real storage and provider clients, created once per process and reused."""

    settings: Settings
    messages: TableMessageStore
    keys: TableApiKeyStore
    jobs: StorageJobQueue
    accept_jobs: StorageWholeJobQueue  # the one-call accept's whole jobs (sms-accept, issue 30): read, not yet written
    pending: TablePendingIndex
    inbound: TableInboundStore
    opt_outs: TableOptOutStore
    opt_out_index: TableOptOutIndex
    idempotency: TableIdempotencyStore
    ledger: TableLedgerStore
    webhooks: TableWebhookEndpointStore
    events: TableEventStore
    deliveries: StorageDeliveryQueue
    delivery_log: TableDeliveryLogStore
    webhook_sender: WebhookSender  # one HTTP session for every webhook this process sends
    licensees: TableLicenseeSettingsStore
    guard_blocks: TableGuardBlockStore
    spend: TableSpendStore
    providers: ProviderSet
    tables: TableServiceClient
    queues: QueueServiceClient
    storage_requests: StorageRequests  # how the send path's two requests go (SMS_STORAGE_REQUESTS)
    credential: AsyncTokenCredential | None = None  # closed with the clients when this built it

    async def ensure_storage(self) -> None:
        """Create the tables and queues when missing (Azurite, a fresh account). Idempotent."""
        encoding = queue_message_encoding()
        await asyncio.gather(
            self.messages.create_table(),
            self.keys.create_table(),
            self.jobs.create_queue(),
            self.accept_jobs.create_queue(),
            self.pending.create_table(),
            self.inbound.create_tables(),
            self.opt_outs.create_table(),
            self.opt_out_index.create_table(),
            self.idempotency.create_table(),
            self.ledger.create_table(),
            self.webhooks.create_table(),
            self.delivery_log.create_table(),
            self.licensees.create_table(),
            self.guard_blocks.create_table(),
            self.spend.create_table(),
            self.deliveries.create_queue(),
            create_queue(queue_client(self.queues, f"{SEND_QUEUE}-poison", encoding)),
            create_queue(queue_client(self.queues, f"{ACCEPT_QUEUE}-poison", encoding)),
            create_queue(queue_client(self.queues, f"{WEBHOOK_QUEUE}-poison", encoding)),
        )
        # Before this process sends anything: a STOP recorded in the layout before must keep blocking
        # (TableOptOutStore.migrate_legacy; the sweeper runs it too, for rows an older version writes
        # during an upgrade).
        await self.opt_outs.migrate_legacy()
        # Then the opt-outs recorded before the licensees' index (SmsOptOutIndex) existed, into it: once, and marked
        # done (python -m sms optouts reindex runs it again, to repair). The old layout's rows first: they are in it.
        await OptOuts(self.opt_outs, index=self.opt_out_index).backfill()

    async def health(self) -> dict:
        """Whether storage and the provider can be reached: for GET /api/health. No secrets in it."""

        async def storage() -> str | None:
            try:
                await asyncio.gather(self.keys.get("0" * 16), self.jobs.check())
            except StorageUnavailable as exc:
                return f"unavailable ({type(exc.__cause__).__name__})"
            return None

        storage_problem, *provider_problems = await asyncio.gather(storage(), *(p.check() for p in self.providers))
        providers = [{"name": p.name, "status": problem or "ok"} for p, problem in zip(self.providers, provider_problems, strict=True)]
        # Degraded: a provider is down but another can send (routes fail over to it); unhealthy: nothing can.
        down = sum(1 for problem in provider_problems if problem)
        status = "unhealthy" if storage_problem or down == len(providers) else "degraded" if down else "ok"
        return {
            "status": status,
            "storage": {"status": "ok" if not storage_problem else storage_problem},
            "provider": providers[0],  # the first (the only one, before several): kept for monitors that read it
            "providers": providers,
        }

    def gateway(self) -> Gateway:
        """The use cases over these clients, as Settings tune them."""
        settings = self.settings
        slowest = max(self.providers, key=lambda p: p.longest_call)
        needed = shortest_lease(slowest)
        if settings.sending_lease_seconds < needed:
            raise ConfigError(
                f"SMS_SENDING_LEASE_SECONDS={settings.sending_lease_seconds} is too short for provider {slowest.name}: "
                f"one call can take {slowest.longest_call:g} s, and a claim must be written and its call ended "
                f"within half the lease (the other half covers clocks apart); at least {needed}")
        ports = Ports(
            messages=self.messages, jobs=self.jobs, accept_jobs=self.accept_jobs, pending=self.pending, providers=self.providers,
            opt_outs=self.opt_outs, opt_out_index=self.opt_out_index, inbound=self.inbound,
            idempotency=self.idempotency, ledger=self.ledger, licensees=self.licensees, webhooks=self.webhooks,
            events=self.events, deliveries=self.deliveries, delivery_log=self.delivery_log, spend=self.spend,
            transport=self.webhook_sender, guard_blocks=self.guard_blocks,
        )
        use = assemble(ports, tuning(settings, [n for n in self.providers.names if n != SIMULATOR]))
        if isinstance(simulator := self.providers.get(SIMULATOR), SimulatorProvider):
            simulator.send_receipts_to(use.inbound.apply_receipt)  # its receipts come in as a vendor's callbacks would
        return Gateway(settings, Authenticator(self.keys, settings.api_key_cache_seconds),
                       RequestRateLimiter(settings.requests_per_minute), use, self.health)

    async def close(self) -> None:
        await self.pending.flush()  # what this process noted for the sweeper, before its clients go
        await self.providers.close()
        await self.webhook_sender.close()
        await self.tables.close()
        await self.queues.close()
        await self.storage_requests.close()
        if self.credential is not None:
            await self.credential.close()


# azure-core waits up to 300 s to connect or read and retries up to 10 times, and the queue SDK's
# own retry policy backs off from 15 s: a request would hang for minutes on a stalled storage
# endpoint. These bounds answer 503 while the caller is still waiting, and a few quick retries
# still ride out a blip.
STORAGE_TIMEOUTS = {"connection_timeout": 5, "read_timeout": 20}
# The queue SDK's documented retry keywords: retry n waits initial_backoff + increment_base**n, so
# about 2 and 2.75 s (±0.5 s) here, instead of its default 18, 24 and 42 s (±3 s).
QUEUE_RETRY = {"retry_total": 2, "initial_backoff": 0.5, "increment_base": 1.5, "random_jitter_range": 0.5}
TABLE_RETRY = {"retry_total": 3}


def build(settings: Settings, on_response: Callable[[Any], None] | None = None,
          credential: AsyncTokenCredential | None = None) -> Adapters:
    """The real adapters for `settings`. `on_response` sees every storage HTTP response: benchmarks count round trips with it.
    Without a connection string, storage is signed in to with `credential`, by default the app's
    identity through DefaultAzureCredential (managed identity on Azure, az login on a laptop)."""
    # azure-core's HttpLoggingPolicy logs every request's URL at INFO, and some of ours carry phone
    # numbers in their keys (reply routes, opt-outs); its warnings and errors still come through.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    common = {**STORAGE_TIMEOUTS, **proxy_lookup_options(), **({"raw_response_hook": on_response} if on_response else {})}
    table_options = {**TABLE_RETRY, **common}
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
    requests = storage_requests(settings.storage_requests)
    return Adapters(
        settings=settings,
        messages=TableMessageStore.from_service(tables, requests),
        keys=TableApiKeyStore.from_service(tables),
        jobs=StorageJobQueue(queues, SEND_QUEUE, queue_message_encoding(), requests),
        accept_jobs=StorageWholeJobQueue(queues, ACCEPT_QUEUE, queue_message_encoding(), requests),
        pending=TablePendingIndex.from_service(tables, requests),
        inbound=TableInboundStore.from_service(tables),
        opt_outs=TableOptOutStore.from_service(tables),
        opt_out_index=TableOptOutIndex.from_service(tables),
        idempotency=TableIdempotencyStore.from_service(tables),
        ledger=TableLedgerStore.from_service(tables),
        webhooks=TableWebhookEndpointStore.from_service(tables),
        events=TableEventStore.from_service(tables),
        deliveries=StorageDeliveryQueue(queues, WEBHOOK_QUEUE, queue_message_encoding()),
        delivery_log=TableDeliveryLogStore.from_service(tables),
        webhook_sender=WebhookSender(allow_private=settings.webhooks_allow_private),
        licensees=TableLicenseeSettingsStore.from_service(tables),
        guard_blocks=TableGuardBlockStore.from_service(tables),
        spend=TableSpendStore.from_service(tables, requests),
        providers=create_providers(settings),
        tables=tables, queues=queues, storage_requests=requests, credential=owned_credential,
    )


def create_providers(settings: Settings) -> ProviderSet:
    """Every provider instance the settings name (checked by Settings.from_env), in their order, and the
    simulator last when SMS_SIMULATOR is on (never the first: it takes only the numbers reserved for fiction)."""
    if settings.simulator and any(p.name == SIMULATOR for p in settings.providers):
        raise ConfigError(f"SMS_PROVIDERS: {SIMULATOR!r} is the simulator's own name (SMS_SIMULATOR): give that provider another")
    providers = [create_provider(settings, instance) for instance in settings.providers]
    return ProviderSet(providers + [SimulatorProvider()] if settings.simulator else providers)


def create_provider(settings: Settings, instance: ProviderSettings | None = None) -> SmsProvider:
    """One provider instance (by default the first), built from its settings. Each adapter is imported
    only when chosen: the others' SDKs are not loaded."""
    p = instance or settings.providers[0]
    provider: SmsProvider
    if p.kind == "console":
        from .providers.console import ConsoleProvider

        provider = ConsoleProvider(outbox_path=p.outbox)
    elif p.kind == "acs":
        from .providers.acs import AcsProvider

        provider = AcsProvider(p.connection_string, p.from_number, **proxy_lookup_options())
    elif p.kind == "twilio":
        from .providers.twilio import TwilioProvider

        # Which instance a receipt is for rides in the URL Twilio signs (sms/entrypoints/callbacks.py).
        callback = f"{settings.public_base_url}/api/sms/receipts/twilio" if settings.public_base_url else None
        provider = TwilioProvider(
            p.account_sid, p.auth_token, from_number=p.from_number,
            messaging_service_sid=p.messaging_service_sid, status_callback_url=callback,
            **({"api_base_url": p.api_base_url.rstrip("/")} if p.api_base_url else {}),
        )
    else:
        raise ConfigError(f"provider {p.name}: {p.kind!r} is not a provider this gateway knows (console, acs, twilio)")
    provider.name = p.name
    return provider


def tuning(settings: Settings, provider_names: list[str] | None = None) -> Tuning:
    """The use cases' tuning, as the settings say (the default routing table checked against `provider_names`,
    the deployment's providers: by default those the settings name)."""
    return Tuning(
        default_routes=default_routes(settings, provider_names or [p.name for p in settings.providers]),
        limits=Limits(settings.default_region, settings.max_recipients, settings.max_body_chars, settings.max_segments,
                      settings.max_schedule_days),
        send_concurrency=settings.send_concurrency,
        retry=RetryPolicy(max_attempts=settings.max_send_attempts, base_delay_seconds=settings.retry_base_seconds),
        send_rate_per_second=settings.rate_limit_per_second,
        breaker_failures=settings.breaker_failures,
        breaker_cool_off=timedelta(seconds=settings.breaker_cool_off_seconds),
        provider_rates=tuple((p.name, p.rate_limit_per_second) for p in settings.providers if p.rate_limit_per_second),
        idempotency_window=timedelta(hours=settings.idempotency_hours),
        sending_lease=timedelta(seconds=settings.sending_lease_seconds),
        retention_days=settings.retention_days,
        webhooks_allow_private=settings.webhooks_allow_private,
        webhook_secret_grace=timedelta(hours=settings.webhook_secret_grace_hours),
        webhook_disable_after_failures=settings.webhook_disable_after_failures,
        webhook_disable_after=timedelta(hours=settings.webhook_disable_after_hours),
        default_guard=default_guard(settings.guard_home_countries or (settings.default_region,)),
        prices=settings.prices,
        pumping=settings.pumping,
        comm_id_keys=CommIdKeys(settings.commid_key.encode(), (settings.commid_key_previous or "").encode() or None)
        if settings.commid_key else None,
        accept_one_call=settings.accept_one_call,
    )


def storage_requests(setting: str) -> StorageRequests:
    """The one way the send path's two requests (its transaction, its job put) are written and sent, for
    SMS_STORAGE_REQUESTS (config.STORAGE_REQUESTS): by the gateway itself over its own transport (lean), or
    through the SDK clients' pipelines (direct), or by the SDK itself (sdk). Every other storage call goes
    through the SDK whatever it is. The hot path keeps the pipelines' rules: the same timeouts, and the same
    retries as QUEUE_RETRY and TABLE_RETRY configure."""
    if setting == "sdk":
        return SdkRequests()
    if setting == "direct":
        return DirectRequests()
    return LeanRequests(HotPathTransport(**STORAGE_TIMEOUTS), QueueRetry(**QUEUE_RETRY), TableRetry(**TABLE_RETRY))


def shortest_lease(provider: SmsProvider) -> int:
    """The shortest SMS_SENDING_LEASE_SECONDS this provider allows: twice its longest call, and 10 s for
    writing the claim (Dispatch._too_late_to_call releases a claim that takes longer, unsent)."""
    return math.ceil(2 * provider.longest_call + 10)


class GatewayOnFirstUse:
    """The process's one Gateway, built from the environment and its storage ensured on first use.

    Entry points are given this (function_app.py passes it to each blueprint) and await it for the
    Gateway: nothing is built at import, because the Functions host indexes zero functions when
    importing the app raises."""

    def __init__(self, settings: Callable[[], Settings] = Settings.from_env):
        self._settings = settings
        self._adapters: Adapters | None = None
        self._gateway: Gateway | None = None
        self._building: asyncio.Lock | None = None

    async def __call__(self) -> Gateway:
        if self._gateway is None:
            self._building = self._building or asyncio.Lock()
            async with self._building:
                if self._gateway is None:
                    telemetry.configure()
                    adapters = build(self._settings())
                    await adapters.ensure_storage()
                    self._adapters, self._gateway = adapters, adapters.gateway()
        return self._gateway

    async def close(self) -> None:
        if self._adapters is not None:
            await self._adapters.close()
            self._adapters = self._gateway = None
