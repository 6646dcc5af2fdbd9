"""The one place the use cases are wired to their ports: `assemble` builds them over whatever adapters
it is given (the real ones in sms.bootstrap, in-memory fakes in tests), and `Gateway` is what an entry
point holds: the use cases, the key check, the request rate limit and the settings it reads."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from .auth import Authenticator
from .config import Settings
from .optouts import OptOuts
from .pacing import RequestRateLimiter, RetryPolicy, SenderRateLimiter
from .providers import SmsProvider
from .model import utcnow
from .storage import (DeliveryLogStore, DeliveryQueue, EventStore, IdempotencyStore, InboundStore, JobQueue, LedgerStore,
                      LicenseeSettingsStore, MessageStore, OptOutStore, WebhookEndpointStore)
from .usecases.accept import Accept
from .usecases.announce import Announcer
from .usecases.cancel import Cancel
from .usecases.delivery import DISABLE_AFTER, DISABLE_AFTER_FAILURES, Transport, WebhookDelivery
from .usecases.dispatch import Dispatch
from .usecases.held import HeldMessages
from .usecases.idempotency import OncePerKey
from .usecases.inbound import Inbound
from .usecases.ledger import Ledger
from .usecases.licensees import Licensees
from .usecases.retention import Retention
from .usecases.status import MessageStatus
from .usecases.sweep import Sweep
from .usecases.webhooks import DEFAULT_GRACE, WebhookEndpoints
from .validation import Limits


@dataclass(frozen=True)
class UseCases:
    accept: Accept
    dispatch: Dispatch
    sweep: Sweep
    status: MessageStatus
    inbound: Inbound | None  # needs the inbound and opt-out stores
    ledger: Ledger | None  # needs the ledger store
    retention: Retention | None  # needs the ledger store
    webhooks: WebhookEndpoints | None = None  # needs the webhook endpoint store
    delivery: WebhookDelivery | None = None  # needs the webhook ports (WebhookPorts)
    cancel: Cancel | None = None
    licensees: Licensees | None = None  # needs the licensee settings store


@dataclass(frozen=True)
class WebhookPorts:
    """What sending events to a licensee's endpoints needs, besides the endpoints themselves."""

    events: EventStore
    queue: DeliveryQueue
    log: DeliveryLogStore
    transport: Transport | None = None  # None: events are kept and queued, but this process sends none
    disable_after_failures: int = DISABLE_AFTER_FAILURES
    disable_after: timedelta = DISABLE_AFTER


def assemble(
    messages: MessageStore,
    jobs: JobQueue,
    provider: SmsProvider,
    *,
    limits: Limits = Limits(),
    send_concurrency: int = 16,
    retry: RetryPolicy = RetryPolicy(),
    rate_limiter: SenderRateLimiter | None = None,
    opt_outs: OptOuts | OptOutStore | None = None,
    inbound: InboundStore | None = None,
    idempotency: IdempotencyStore | None = None,
    idempotency_window: timedelta = timedelta(hours=24),
    missing_message_wait: float = 0.5,
    sending_lease: timedelta = timedelta(minutes=5),
    ledger: LedgerStore | None = None,
    retention_days: int = 90,
    webhooks: WebhookEndpointStore | None = None,
    webhooks_allow_private: bool = False,
    webhook_secret_grace: timedelta = DEFAULT_GRACE,
    webhook_ports: WebhookPorts | None = None,
    licensees: LicenseeSettingsStore | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> UseCases:
    """The use cases over these ports. Without `opt_outs` nobody is opted out; without `inbound`
    replies are neither linked nor reported (the use cases that need them say so); without `ledger`
    messages are not listed; without `webhooks` no endpoints are managed, and without `webhook_ports`
    too no events are sent."""
    if isinstance(opt_outs, OptOutStore):
        opt_outs = OptOuts(opt_outs)
    hooks = webhook_ports if webhooks is not None else None
    announcer = Announcer(webhooks, hooks.queue) if hooks is not None and webhooks is not None else None
    listed = Ledger(ledger, announcer) if ledger is not None else None
    held = HeldMessages(listed, messages, jobs) if listed is not None else None
    settings = Licensees(licensees, held=held) if licensees is not None else None
    dispatch = Dispatch(messages, jobs, provider, send_concurrency=send_concurrency, retry=retry, rate_limiter=rate_limiter,
                        opt_outs=opt_outs, reply_routes=inbound, missing_message_wait=missing_message_wait,
                        sending_lease=sending_lease, ledger=listed, licensees=settings, clock=clock)
    return UseCases(
        accept=Accept(messages, jobs, dispatch, OncePerKey(idempotency, messages, idempotency_window), limits, provider.name, clock),
        dispatch=dispatch,
        sweep=Sweep(messages, jobs, sending_lease, opt_outs),
        status=MessageStatus(messages, inbound),
        inbound=Inbound(messages, inbound, opt_outs, listed, hooks.events if hooks else None, announcer)
        if inbound is not None and opt_outs is not None else None,  # type: ignore[arg-type]
        ledger=listed,
        retention=Retention(messages, ledger, retention_days, webhooks=webhooks, events=hooks.events if hooks else None,
                            delivery_log=hooks.log if hooks else None) if ledger is not None else None,
        webhooks=WebhookEndpoints(webhooks, allow_private=webhooks_allow_private, grace=webhook_secret_grace, announcer=announcer)
        if webhooks is not None else None,
        delivery=WebhookDelivery(webhooks, hooks.events, hooks.log, hooks.queue, hooks.transport,
                                 disable_after_failures=hooks.disable_after_failures, disable_after=hooks.disable_after)
        if hooks is not None and webhooks is not None else None,
        cancel=Cancel(messages, listed, sending_lease),
        licensees=settings,
    )


@dataclass(frozen=True)
class Gateway:
    """What the entry points (HTTP, queue, timer) work with."""

    settings: Settings
    auth: Authenticator
    requests: RequestRateLimiter
    use: UseCases
    health: Callable[[], Awaitable[dict[str, Any]]]
