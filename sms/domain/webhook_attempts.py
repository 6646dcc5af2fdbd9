"""What became of one attempt to send a webhook: the sender's answer, the delivery log's row, the
retry rule's input. No I/O here, so the use cases can read it without the HTTP client."""
from __future__ import annotations

import enum
from dataclasses import dataclass

RESPONSE_BODY_CHARS = 1000  # of a receiver's answer, kept for the delivery log


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # could not deliver for now: timeout, no connection, 408, 429, 5xx
    REFUSED = "refused"  # the receiver answered no: 3xx (not followed) or a 4xx other than 408/429/410
    GONE = "gone"  # 410: the receiver wants no more; disable the endpoint
    BLOCKED = "blocked"  # never sent: not https, or a private/loopback/link-local destination


@dataclass(frozen=True)
class DeliveryAttempt:
    outcome: Outcome
    status: int | None = None  # the HTTP status, None when no response came
    latency_ms: int = 0
    error: str | None = None  # why it was not delivered, for the delivery log; never a secret
    retry_after_seconds: float | None = None  # the response's Retry-After (delta-seconds or HTTP date)
    response_body: str = ""  # the first 1,000 characters, for the delivery log

    @property
    def should_retry(self) -> bool:
        """Retried on the schedule: every failure but a 410 and a blocked destination. The Standard
        Webhooks spec counts every non-2xx as a failure, and a receiver answering 404 or 401 after a
        bad deploy or mid secret rotation is usually fixed within the day the schedule spans."""
        return self.outcome in (Outcome.RETRY, Outcome.REFUSED)
