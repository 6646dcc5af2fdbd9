"""The SMS provider port: one small interface every vendor adapter implements."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from ..config import ConfigError


@dataclass(frozen=True)
class OutgoingSms:
    recipient_id: str  # stable per recipient: adapters use it to make retries idempotent
    to: str  # E.164
    body: str
    sender: str | None = None  # E.164 or alphanumeric sender id; None lets the provider choose
    reference: str = ""  # "<commId>:<seq>": comes back with delivery receipts to find the recipient
    first_attempt_at: datetime | None = None  # stable across retries, for vendors' repeatability headers


@dataclass(frozen=True)
class SendOutcome:
    provider_message_id: str | None = None
    error: str | None = None
    transient: bool = False  # a failure worth retrying later (throttled, provider down)
    retry_after_seconds: float | None = None  # the provider's own Retry-After, when it gave one

    @property
    def accepted(self) -> bool:
        return self.error is None


class SmsProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def send(self, sms: OutgoingSms) -> SendOutcome:
        """Hand one SMS to the provider. Never raises for a refused send: it returns the error."""

    async def close(self) -> None:  # noqa: B027 - most adapters hold nothing to close
        """Release the adapter's connections at shutdown."""


def create_provider(name: str, settings) -> SmsProvider:
    if name == "console":
        from .console import ConsoleProvider

        return ConsoleProvider(outbox_path=settings.console_outbox)
    raise ConfigError(f"SMS_PROVIDER={name!r} is not a provider this gateway knows (known: console)")
