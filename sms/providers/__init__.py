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


class Failure(enum.Enum):
    """What a failed send means for trying again, here or elsewhere (docs/providers.md has each adapter's
    codes behind each class, with Microsoft's and Twilio's pages)."""

    # Refused before acceptance: nothing reached the provider (connection refused, DNS), or it answered
    # that it did not take the SMS (auth or config errors, throttling, an unsupported destination, a 5xx
    # documented as not accepted). Another provider may be tried at once.
    NOT_TAKEN = "not_taken"
    # The provider took the request and refused this SMS, or accepted it and failed it at once: not sent
    # elsewhere (another provider would most likely refuse it too, or it is the provider's to report).
    REFUSED = "refused"
    # It may have been sent: the request was written and no answer came back whole (a timeout after
    # writing, a connection reset mid-answer). Never sent elsewhere and never sent blind again: the
    # provider is asked (`find`, or a repeat under its own idempotency key) or it ends "outcome unknown".
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class SendOutcome:
    provider_message_id: str | None = None
    error: str | None = None
    transient: bool = False  # a failure worth retrying later (throttled, provider down)
    retry_after_seconds: float | None = None  # the provider's own Retry-After, when it gave one
    failure: Failure = Failure.REFUSED  # for a failed send: what it means for trying again (see Failure)
    code: str | None = None  # the provider's own error code or HTTP status, for the timeline

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


class ProviderSet:
    """The deployment's providers, each a named instance (`twilio-us`, `acs-au`, or the kind's own name
    when there is one of it: SMS_PROVIDER's settings), in the order the settings name them."""

    def __init__(self, providers: "list[SmsProvider]"):
        if not providers:
            raise ValueError("a deployment needs at least one provider")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must differ: {names}")
        self._by_name = {p.name: p for p in providers}

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    @property
    def first(self) -> SmsProvider:
        """The default route's provider when no routing table is set: the first one named."""
        return next(iter(self._by_name.values()))

    def get(self, name: str) -> SmsProvider | None:
        return self._by_name.get(name)

    def __iter__(self):
        return iter(self._by_name.values())

    async def close(self) -> None:
        for provider in self:
            await provider.close()
