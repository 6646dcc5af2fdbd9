"""Every way a recipient's status changes, as pure functions: a row in, the row it becomes out.

Each function answers None when the event does not apply to the row as it stands (nothing to write).
Together they keep the rule `Status.can_become` states: status only moves forward
(queued -> sending -> sent -> delivered | undelivered | failed | opted_out), except one step back,
`released`: a claim given up after a transient failure returns to queued, because nothing was sent.
Who may apply them, and how the write is made safe against other writers, is the use cases' business
(sms/usecases/job_rows.py, sms/usecases/inbound.py); tests/unit/test_transitions.py checks every
(status, event) pair.
"""
from __future__ import annotations

from datetime import datetime

from .model import Recipient, Status, utcnow

# What a recipient left in `sending` past its lease becomes. It was claimed in the write just before
# its provider call, so its worker stopped between handing it to the provider and recording what the
# provider answered: nobody knows whether the SMS went out. It is not sent again: the gateway
# promises at most one SMS per recipient.
OUTCOME_UNKNOWN = "The worker stopped while sending; the outcome is unknown, so it was not sent again"

OPTED_OUT = "The recipient opted out (STOP)"


def claimed(row: Recipient, claim_id: str) -> Recipient | None:
    """queued -> sending, for one provider call: attempts + 1, and the claim id of the dispatch making it."""
    if row.status is not Status.QUEUED:
        return None
    return row.moved_to(Status.SENDING, attempts=row.attempts + 1, first_attempt_at=row.first_attempt_at or utcnow(),
                        claim_id=claim_id)


def sent(row: Recipient, provider_message_id: str | None) -> Recipient | None:
    """sending -> sent: the provider took the SMS."""
    return row.moved_to(Status.SENT, provider_message_id=provider_message_id, last_error=None) if row.status is Status.SENDING else None


def released(row: Recipient, error: str | None) -> Recipient | None:
    """sending -> queued, the one step back: the provider refused for now and sent nothing, so the
    recipient waits for its retry."""
    return row.moved_to(Status.QUEUED, last_error=error) if row.status is Status.SENDING else None


def failed(row: Recipient, error: str | None) -> Recipient | None:
    """sending -> failed: the provider refused for good, or the retries ran out."""
    return row.moved_to(Status.FAILED, last_error=error) if row.status is Status.SENDING else None


def recorded(row: Recipient, outcome: Recipient) -> Recipient | None:
    """A provider call's outcome (`sent`, `released` or `failed` of the claimed row) applied to the row
    as stored now: status only moves forward, so a receipt that came first keeps its later status; the
    provider's message id is kept. None when the row already says all of it (the write had landed)."""
    status = outcome.status if row.status.can_become(outcome.status) else row.status
    merged = row.moved_to(
        status,
        provider_message_id=row.provider_message_id or outcome.provider_message_id,
        last_error=outcome.last_error if status is outcome.status else row.last_error,
    )
    unchanged = (merged.status, merged.provider_message_id, merged.last_error) == (row.status, row.provider_message_id, row.last_error)
    return None if unchanged else merged


def receipt(row: Recipient, status: Status, provider_message_id: str | None, detail: str | None) -> Recipient | None:
    """A delivery receipt: forward only, so a late "sent" never overwrites "delivered". A failure keeps
    the carrier's reason."""
    if status is Status.QUEUED or not row.status.can_become(status):
        return None
    failure = status in (Status.FAILED, Status.UNDELIVERED)
    return row.moved_to(status, provider_message_id=row.provider_message_id or provider_message_id,
                        last_error=(detail or status.value) if failure else row.last_error)


def opted_out(row: Recipient) -> Recipient | None:
    """queued -> opted_out: not attempted, the number asked not to be texted."""
    return row.moved_to(Status.OPTED_OUT, last_error=OPTED_OUT) if row.status is Status.QUEUED else None


def left_behind(row: Recipient, lease_start: datetime, claim_id: str | None = None) -> Recipient | None:
    """sending -> failed as outcome unknown, for a claim older than `lease_start` that is not `claim_id`'s
    own: its worker stopped between the provider call and recording the answer. A claim inside its
    lease is left to its worker, which is alive."""
    if row.status is Status.SENDING and row.claim_id != claim_id and row.updated_at <= lease_start:
        return row.moved_to(Status.FAILED, last_error=OUTCOME_UNKNOWN)
    return None


def given_up(row: Recipient, reason: str, lease_start: datetime, claim_id: str | None = None) -> Recipient | None:
    """A parked job's recipient: queued -> failed with `reason` (never attempted); a claim left past its
    lease as `left_behind`."""
    if row.status is Status.QUEUED:
        return row.moved_to(Status.FAILED, last_error=reason)
    return left_behind(row, lease_start, claim_id)
