"""The one place the use cases are wired to their ports: `assemble` builds them over whatever adapters
it is given (the real ones in sms.bootstrap, in-memory fakes in tests), and `Gateway` is what an entry
point holds: the use cases, the key check, the request rate limit and the settings it reads."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from .config import Settings
from .domain.breaker import COOL_OFF, FAILURES_TO_OPEN, Breakers
from .domain.comm_ids import CommIdKeys
from .domain.guard import Guard, default_guard
from .domain.model import utcnow
from .domain.pacing import RequestRateLimiter, RetryPolicy, SenderRateLimiter
from .domain.prices import NO_PRICES, PriceTable
from .domain.pumping import Rules
from .domain.routing import RoutingTable
from .domain.simulated import SIMULATOR
from .domain.validation import Limits
from .providers import ProviderSet
from .storage import (
    DeliveryLogStore,
    DeliveryQueue,
    EventStore,
    GuardBlockStore,
    IdempotencyStore,
    InboundStore,
    JobQueue,
    LedgerStore,
    LicenseeSettingsStore,
    MessageStore,
    OptOutIndex,
    OptOutStore,
    PendingIndex,
    SpendStore,
    WebhookEndpointStore,
    WholeJobQueue,
)
from .usecases.accept import Accept
from .usecases.announce import Announcer
from .usecases.auth import Authenticator
from .usecases.cancel import Cancel
from .usecases.delivery import DISABLE_AFTER, DISABLE_AFTER_FAILURES, Transport, WebhookDelivery
from .usecases.dispatch import PROGRESS_EVERY, Dispatch
from .usecases.guard import Routing, Screening
from .usecases.held import HeldMessages
from .usecases.idempotency import OncePerKey
from .usecases.inbound import Inbound
from .usecases.ledger import Ledger
from .usecases.licensees import Licensees
from .usecases.materialize import Materialize
from .usecases.optout_list import OptOutList
from .usecases.optouts import OptOuts
from .usecases.pumping import PumpingProtection
from .usecases.retention import Retention
from .usecases.send_now import SendNow
from .usecases.spend import SpendCaps
from .usecases.status import MessageStatus
from .usecases.sweep import PendingMessages, Sweep
from .usecases.usage import Usage
from .usecases.webhook_endpoints import DEFAULT_GRACE, WebhookEndpoints


@dataclass(frozen=True)
class Ports:
    """Everything the use cases talk to: the stores and queues, the SMS provider, the webhook transport.
    The real adapters (sms.bootstrap) or the in-memory fakes (tests/fakes.py): every one is given."""

    messages: MessageStore
    jobs: JobQueue
    accept_jobs: WholeJobQueue  # the one-call accept's whole jobs (sms-accept, issue 30)
    pending: PendingIndex  # the messages the sweeper is to look at
    providers: ProviderSet  # every provider instance; routes name them
    opt_outs: OptOutStore
    opt_out_index: OptOutIndex  # each licensee's opt-outs, listed, with their history (OptOutStore is what dispatch reads)
    inbound: InboundStore
    idempotency: IdempotencyStore
    ledger: LedgerStore
    licensees: LicenseeSettingsStore
    webhooks: WebhookEndpointStore
    events: EventStore
    deliveries: DeliveryQueue
    delivery_log: DeliveryLogStore
    spend: SpendStore  # the licensees' spend counters (their caps)
    transport: Transport  # sends webhook requests
    guard_blocks: GuardBlockStore  # the prefixes pumping protection blocked


@dataclass(frozen=True)
class Tuning:
    """How the use cases behave: the settings they take (sms.config.Settings reads them), with defaults."""

    limits: Limits = Limits()
    send_concurrency: int = 16
    retry: RetryPolicy = RetryPolicy()
    send_rate_per_second: float = 0.0  # per sender, per process; 0: no limit
    provider_rates: tuple[tuple[str, float], ...] = ()  # (provider name, sends a second per process): each instance's own limit
    idempotency_window: timedelta = timedelta(hours=24)
    missing_message_wait: float = 0.5
    sending_lease: timedelta = timedelta(minutes=5)
    progress_every: timedelta = PROGRESS_EVERY  # a long job records its progress in the ledger this often
    breaker_failures: int = FAILURES_TO_OPEN  # a provider's breaker opens after this many failed calls in a row ...
    breaker_cool_off: timedelta = COOL_OFF  # ... and lets one probe call through this long after
    retention_days: int = 90
    webhooks_allow_private: bool = False
    webhook_secret_grace: timedelta = DEFAULT_GRACE
    webhook_disable_after_failures: int = DISABLE_AFTER_FAILURES
    webhook_disable_after: timedelta = DISABLE_AFTER
    default_routes: RoutingTable | None = None  # SMS_ROUTES (config.default_routes); None: everything through the provider
    # The guard of a licensee without its own (SMS_GUARD_HOME_COUNTRIES); None: the default region's country alone.
    default_guard: Guard | None = None
    prices: PriceTable = NO_PRICES  # SMS_PRICES: the operator's price per segment, per country and provider
    pumping: Rules = Rules()  # SMS_PUMPING_*: when a prefix's collapsing deliveries block it
    # SMS_COMMID_KEY (and _PREVIOUS): mints and recognises tagged commIds (issue 30); None: the deployment has no key.
    comm_id_keys: CommIdKeys | None = None
    accept_one_call: bool = False  # SMS_ACCEPT_ONE_CALL: the one-call accept's writer (sms/config.py: on wherever a key is set)
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class UseCases:
    accept: Accept
    send_now: SendNow
    dispatch: Dispatch
    sweep: Sweep
    status: MessageStatus
    inbound: Inbound
    ledger: Ledger
    usage: Usage
    retention: Retention
    webhooks: WebhookEndpoints
    delivery: WebhookDelivery
    cancel: Cancel
    licensees: Licensees
    opt_outs: OptOuts  # this process's view of them (cached): what dispatch checks and inbound changes
    opt_out_list: OptOutList  # a licensee's opt-outs and their history, as GET /api/optouts reads them
    breakers: Breakers  # this process's view of each provider's health (GET /api/providers)
    screening: Screening  # the licensees' guards applied to recipients, and what they cost
    pumping: PumpingProtection  # prefix blocks: the operator's view (blocks, lift)
    spend: SpendCaps  # the licensees' spend caps: room reserved at accept, and what is used (spent)


def assemble(ports: Ports, tuning: Tuning = Tuning()) -> UseCases:
    """Every use case, over these ports, as `tuning` says."""
    p, t = ports, tuning
    opt_outs = OptOuts(p.opt_outs, index=p.opt_out_index)
    announcer = Announcer(p.webhooks, p.deliveries)
    ledger = Ledger(p.ledger, announcer)
    licensees = Licensees(p.licensees, HeldMessages(ledger, p.messages, p.jobs),
                          default_routes=t.default_routes or RoutingTable.through(*(n for n in p.providers.names if n != SIMULATOR)),
                          provider_names=tuple(p.providers.names),
                          default_guard=t.default_guard or default_guard((t.limits.default_region,)))
    # This process's view of each provider's health: its calls and the receipts it handles feed it.
    breakers = Breakers(t.clock, t.breaker_failures, t.breaker_cool_off)
    pumping = PumpingProtection(p.guard_blocks, licensees, announcer, p.events, t.pumping, t.clock)
    screening = Screening(licensees, Routing(licensees, p.providers), t.prices, pumping)
    pending = PendingMessages(p.pending, t.sending_lease)
    dispatch = Dispatch(p.messages, p.jobs, p.providers, provider_rates=dict(t.provider_rates), breakers=breakers,
                        send_concurrency=t.send_concurrency, retry=t.retry,
                        rate_limiter=SenderRateLimiter(t.send_rate_per_second), opt_outs=opt_outs, reply_routes=p.inbound,
                        missing_message_wait=t.missing_message_wait, sending_lease=t.sending_lease, ledger=ledger,
                        progress_every=t.progress_every,
                        licensees=licensees, screening=screening, materialize=Materialize(p.messages, pending, t.clock),
                        clock=t.clock)
    once = OncePerKey(p.idempotency, p.messages, t.idempotency_window)
    spend = SpendCaps(p.spend, licensees, announcer, p.events, t.prices.currency, t.clock)
    accept = Accept(p.messages, p.jobs, ledger, once, pending, screening, spend, t.limits, p.providers.first.name, t.clock,
                    whole_jobs=p.accept_jobs if t.accept_one_call else None, comm_ids=t.comm_id_keys)
    return UseCases(
        accept=accept,
        send_now=SendNow(accept, dispatch, once, t.clock),
        dispatch=dispatch,
        sweep=Sweep(p.messages, p.jobs, pending, opt_outs, t.sending_lease, t.clock),
        status=MessageStatus(p.messages, p.inbound, p.events, t.comm_id_keys, t.clock),
        inbound=Inbound(p.messages, p.inbound, opt_outs, ledger, p.events, announcer, breakers, t.clock, pumping),
        breakers=breakers,
        ledger=ledger,
        usage=Usage(p.ledger, p.licensees, t.clock, retention_days=t.retention_days),
        retention=Retention(p.messages, p.ledger, t.retention_days, webhooks=p.webhooks, events=p.events,
                            delivery_log=p.delivery_log, inbound=p.inbound, idempotency=p.idempotency,
                            guard_blocks=p.guard_blocks),
        webhooks=WebhookEndpoints(p.webhooks, allow_private=t.webhooks_allow_private, grace=t.webhook_secret_grace,
                                  announcer=announcer),
        delivery=WebhookDelivery(p.webhooks, p.events, p.delivery_log, p.deliveries, p.transport,
                                 disable_after_failures=t.webhook_disable_after_failures, disable_after=t.webhook_disable_after),
        cancel=Cancel(p.messages, ledger, t.sending_lease, t.clock, t.comm_id_keys),
        licensees=licensees,
        opt_outs=opt_outs,
        opt_out_list=OptOutList(p.opt_outs, p.opt_out_index),
        screening=screening,
        pumping=pumping,
        spend=spend,
    )


@dataclass(frozen=True)
class Gateway:
    """What the entry points (HTTP, queue, timer) work with."""

    settings: Settings
    auth: Authenticator
    requests: RequestRateLimiter
    use: UseCases
    health: Callable[[], Awaitable[dict[str, Any]]]
