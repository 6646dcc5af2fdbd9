"""The SMS provider port: one small interface every vendor adapter implements."""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutgoingSms:
    recipient_id: str  # stable per recipient: adapters use it to make retries idempotent
    to: str  # E.164
    body: str
    sender: str | None = None  # E.164 or alphanumeric sender id; None lets the provider choose
    reference: str = ""  # "<commId>:<seq>": comes back with delivery receipts to find the recipient
    attempt: int = 1
    first_attempt_at: datetime | None = None  # when the first attempt claimed this recipient
    attempt_at: datetime | None = None  # when this attempt claimed it; with the above, idempotency keys
    valid_until: datetime | None = None  # not worth delivering after then: providers that can, drop it then


@dataclass(frozen=True)
class SendOutcome:
    provider_message_id: str | None = None
    error: str | None = None
    transient: bool = False  # a failure worth retrying later (throttled, provider down)
    retry_after_seconds: float | None = None  # the provider's own Retry-After, when it gave one

    @property
    def accepted(self) -> bool:
        return self.error is None


class Found(enum.Enum):
    """What a provider can tell of an SMS whose worker stopped between claiming it for the provider
    call and recording the answer (a crash, a kill -9): did the provider get it?"""

    SENT = "sent"  # the provider has it: sent once (or, for a repeatable request, sent now)
    NOT_SENT = "not_sent"  # the provider never had it: safe to send now
    UNKNOWN = "unknown"  # the provider cannot tell (no record to read, or past what it keeps)
    ASK_AGAIN = "ask_again"  # the provider did not answer the question: ask later


@dataclass(frozen=True)
class Trace:
    found: Found
    provider_message_id: str | None = None  # for SENT
    error: str | None = None  # for NOT_SENT when the provider refused it for good; for ASK_AGAIN, why


class SmsProvider(abc.ABC):
    name: str
    # The number an SMS goes out from when its message names none; None when the provider picks one
    # (a Twilio Messaging Service) or has none (console). A STOP sent to it applies to those SMS.
    default_sender: str | None = None
    # The longest one `send` can take, retries and waits included, in seconds: a claim is only called on
    # while the call can end within the first half of its lease (Dispatch), so no call is in flight when
    # the lease runs out and `find` is asked. Adapters bound their calls to it.
    longest_call: float = 0.0
    # Whether `find` asks by repeating the send (ACS): it may send what the provider never had, so it is
    # not asked about an SMS that must not go now (its message cancelled or expired, the number opted out).
    find_sends: bool = False

    @abc.abstractmethod
    async def send(self, sms: OutgoingSms) -> SendOutcome:
        """Hand one SMS to the provider. Never raises for a refused send: it returns the error."""

    async def find(self, sms: OutgoingSms) -> Trace:
        """After a crash: whether the provider has `sms`, exactly as it was claimed (same recipient id,
        attempt and claim time). Asked only once the claim's lease has run out, so no call of ours
        for it is still in flight. Never sends it a second time: an adapter either reads the provider's
        record of what it sent, or repeats the very request under the provider's own idempotency
        promise. The default: the provider cannot tell."""
        return Trace(Found.UNKNOWN)

    async def check(self) -> str | None:
        """None when the provider can be reached (and, where it can tell, accepts our credentials);
        otherwise why not. For GET /api/health: never sends anything."""
        return None

    async def close(self) -> None:  # noqa: B027 - most adapters hold nothing to close
        """Release the adapter's connections at shutdown."""
