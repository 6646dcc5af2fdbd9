"""Every way a recipient's status changes, as pure functions: a row in, the row it becomes out.

Each function answers None when the event does not apply to the row as it stands (nothing to write).
Together they keep the rule `Status.can_become` states: status only moves forward
(scheduled -> queued -> sending -> sent -> delivered | undelivered | failed; scheduled or queued ->
opted_out | expired | cancelled | blocked, never attempted), except one step back, when nothing was sent:
`released`, a claim given up after a transient failure, and `found_not_sent`, a claim a crashed worker
left that the provider never had, return to queued.
Who may apply them, and how the write is made safe against other writers, is the use cases' business
(sms/usecases/job_rows.py, sms/usecases/inbound.py); tests/unit/test_transitions.py checks every
(status, event) pair.

Each change also appends its step to the row's timeline (`Recipient.with_event`), timed at the row's
new updated_at, so the timeline is written in the same write as the status it tells of.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from .model import WAITING, Event, Recipient, Status
from .routing import NO_ROUTE

# What a recipient left in `sending` past its lease becomes. It was claimed in the write just before
# its provider call, so its worker stopped between handing it to the provider and recording what the
# provider answered: nobody knows whether the SMS went out. It is not sent again: the gateway
# promises at most one SMS per recipient.
OUTCOME_UNKNOWN = "The worker stopped while sending; the outcome is unknown, so it was not sent again"

OPTED_OUT = "The recipient opted out (STOP)"
EXPIRED = "Not sent before the message's validUntil"
CANCELLED = "The message was cancelled before this recipient was sent"


def _step(before: Recipient, after: Recipient, error: str | None = None, attempt: int | None = None,
          provider: str | None = None, outcome: str | None = None, code: str | None = None, guard: str | None = None) -> Recipient:
    """`after` with its step on the timeline. The provider's message id goes on the step that brought it
    (it is set once and kept), so the timeline carries it once."""
    brought = after.provider_message_id if after.provider_message_id != before.provider_message_id else None
    return after.with_event(Event(after.status, after.updated_at, brought, error, attempt, provider, outcome, code, guard))


def scheduled(row: Recipient) -> Recipient:
    """A new recipient of a message with a sendAt: scheduled, the first step of its timeline."""
    return row.with_event(Event(Status.SCHEDULED, row.created_at)) if not row.events else row


def claimed(row: Recipient, claim_id: str, *, at: datetime, provider: str | None = None,
            sent_from: str | None = None, flagged: str | None = None) -> Recipient | None:
    """queued (or scheduled, once its time has come) -> sending, for one provider call (to `provider`,
    from `sent_from`): attempts + 1, and the claim id of the dispatch making it. The dispatch decides
    when a scheduled one is due. `flagged`: why the licensee's guard monitors the number, kept on the claim's step."""
    if row.status not in WAITING:
        return None
    after = row.moved_to(Status.SENDING, at=at, attempts=row.attempts + 1, first_attempt_at=row.first_attempt_at or at,
                         claim_id=claim_id, provider=provider, sent_from=sent_from)
    return _step(row, after, attempt=after.attempts, provider=provider, guard=flagged)


def passed_on(row: Recipient, claim_id: str, provider: str, why: str, *, at: datetime, code: str | None = None) -> Recipient | None:
    """sending -> sending through the next provider of its route, in the claim `claim_id` holds: the one
    it was handed to refused it before accepting it (sms.providers Failure.NOT_TAKEN), so nothing was
    sent. Written before the next call, so a crash's trace asks the provider that may have it. The same
    attempt (a retry's count is of rounds, not of providers tried); the claim's time restarts its lease.
    None when the row has moved on (a cancel is honoured: nothing went out, so it ends cancelled)."""
    if row.status is not Status.SENDING or row.claim_id != claim_id:
        return None
    if row.provider == provider:
        return row  # this pass landed already; only its answer was lost
    if row.cancel_requested:
        return _with_reason(row, Status.CANCELLED, CANCELLED, at)
    after = row.moved_to(Status.SENDING, at=at, provider=provider)
    return _step(row, after, error=why, attempt=after.attempts, provider=provider, outcome="not_taken", code=code)


def sent(row: Recipient, provider_message_id: str | None, *, at: datetime) -> Recipient | None:
    """sending -> sent: the provider took the SMS."""
    if row.status is not Status.SENDING:
        return None
    return _step(row, row.moved_to(Status.SENT, at=at, provider_message_id=provider_message_id, last_error=None))


def released(row: Recipient, error: str | None, *, at: datetime, outcome: str | None = None, code: str | None = None) -> Recipient | None:
    """sending -> queued, the one step back: the provider refused for now and sent nothing, so the
    recipient waits for its retry. `outcome` and `code`: the failed call's class and the provider's code."""
    return _with_reason(row, Status.QUEUED, error, at, outcome, code) if row.status is Status.SENDING else None


def failed(row: Recipient, error: str | None, *, at: datetime, outcome: str | None = None, code: str | None = None) -> Recipient | None:
    """sending -> failed: the provider refused for good, or the retries ran out."""
    return _with_reason(row, Status.FAILED, error, at, outcome, code) if row.status is Status.SENDING else None


def recorded(row: Recipient, outcome: Recipient, *, at: datetime) -> Recipient | None:
    """A provider call's outcome (`sent`, `released` or `failed` of the claimed row) applied to the row
    as stored now: status only moves forward, so a receipt that came first keeps its later status; the
    provider's message id is kept. None when the row already says all of it (the write had landed).
    The step goes on the timeline when the row takes the outcome's status; a row that keeps a later one
    (a receipt came first) only gains the provider's id, and its timeline stays in order."""
    if row.cancel_requested and row.status is Status.SENDING and outcome.status is Status.QUEUED:
        return _with_reason(row, Status.CANCELLED, CANCELLED, at)  # released for a retry after a cancel: nothing went out
    status = outcome.status if row.status.can_become(outcome.status) else row.status
    merged = row.moved_to(
        status, at=at,
        provider_message_id=row.provider_message_id or outcome.provider_message_id,
        last_error=outcome.last_error if status is outcome.status else row.last_error,
    )
    unchanged = (merged.status, merged.provider_message_id, merged.last_error) == (row.status, row.provider_message_id, row.last_error)
    if unchanged:
        return None
    if status is not outcome.status:
        return merged
    call = outcome.events[-1] if outcome.events and outcome.events[-1].status is status else None  # the call's own step
    return _step(row, merged, error=merged.last_error, outcome=call.outcome if call else None, code=call.code if call else None)


def receipt(row: Recipient, status: Status, provider_message_id: str | None, detail: str | None, *,
            at: datetime) -> Recipient | None:
    """A delivery receipt: forward only, so a late "sent" never overwrites "delivered". A failure keeps
    the carrier's reason."""
    if status is Status.QUEUED or not row.status.can_become(status):
        return None
    failure = status in (Status.FAILED, Status.UNDELIVERED)
    after = row.moved_to(status, at=at, provider_message_id=row.provider_message_id or provider_message_id,
                         last_error=(detail or status.value) if failure else row.last_error)
    return _step(row, after, error=after.last_error if failure else None)


def opted_out(row: Recipient, *, at: datetime) -> Recipient | None:
    """scheduled or queued -> opted_out: not attempted, the number asked not to be texted."""
    return _with_reason(row, Status.OPTED_OUT, OPTED_OUT, at) if row.status in WAITING else None


def blocked(row: Recipient, reason: str, *, at: datetime) -> Recipient | None:
    """scheduled or queued -> blocked: not attempted, the licensee's guard refused the destination (`reason` says why)."""
    return _with_reason(row, Status.BLOCKED, reason, at) if row.status in WAITING else None


def expired(row: Recipient, *, at: datetime) -> Recipient | None:
    """scheduled or queued -> expired: not attempted, its message's validUntil passed first."""
    return _with_reason(row, Status.EXPIRED, EXPIRED, at) if row.status in WAITING else None


def held(row: Recipient, reason: str, *, at: datetime) -> Recipient | None:
    """scheduled or queued, and waiting (the licensee's quiet hours): the status stays, the reason is
    kept (what the status answer shows, and what tells the sweeper a job is due for it). None when the
    row says so already."""
    if row.status not in WAITING or row.last_error == reason:
        return None
    return _with_reason(row, row.status, reason, at)


def unroutable(row: Recipient, *, at: datetime) -> Recipient | None:
    """scheduled or queued -> failed: not attempted, no rule of its routing table matches its number."""
    return _with_reason(row, Status.FAILED, NO_ROUTE, at) if row.status in WAITING else None


def cancelled(row: Recipient, *, at: datetime) -> Recipient | None:
    """scheduled or queued -> cancelled: not attempted, its message was cancelled first. A recipient
    already claimed is with the provider (or past it) and keeps its status, marked `cancel_requested`:
    should its claim turn out to have sent nothing (released for a retry, or a crash's claim the provider
    never had), it is cancelled then, not sent. The mark changes no time, so the claim's lease and its
    repeatability stamp stay the claim's."""
    if row.status in WAITING:
        return _with_reason(row, Status.CANCELLED, CANCELLED, at)
    if row.status is Status.SENDING and not row.cancel_requested:
        return replace(row, cancel_requested=True)
    return None


def left_behind(row: Recipient, lease_start: datetime, claim_id: str | None = None, *, at: datetime) -> Recipient | None:
    """sending -> failed as outcome unknown, for a claim older than `lease_start` that is not `claim_id`'s
    own: its worker stopped between the provider call and recording the answer. A claim inside its
    lease is left to its worker, which is alive."""
    if row.status is Status.SENDING and row.claim_id != claim_id and row.updated_at <= lease_start:
        return _with_reason(row, Status.FAILED, OUTCOME_UNKNOWN, at)
    return None


# A claim left behind that the provider says it never had (its worker stopped before the call went out).
NOT_HANDED_OVER = "Its worker stopped before handing it to the provider, which has no record of it: it is sent again"


def retry_pending(row: Recipient) -> bool:
    """Whether a queued recipient has a job of its own coming: one released after a transient failure
    (its retry) or held by quiet hours carries the reason, and its job was put back for then. One put back
    after a crash (NOT_HANDED_OVER) has only the dispatch that put it back, which may have stepped aside:
    the sweeper's to find."""
    return bool(row.last_error) and row.last_error != NOT_HANDED_OVER


def stranded(row: Recipient, send_at: datetime | None, *, queued_before: datetime, sending_before: datetime) -> bool:
    """Whether a recipient has no job coming for it, so the sweeper must queue one: queued since before
    `queued_before` with no retry pending; scheduled for before `queued_before` (its job should have run
    by then) with none pending either; or sending since before `sending_before` (its worker stopped past
    the lease: the job traces it)."""
    if row.status is Status.SENDING:
        return row.updated_at < sending_before
    if row.status is Status.QUEUED:
        return row.updated_at < queued_before and not retry_pending(row)
    if row.status is Status.SCHEDULED:
        return send_at is not None and send_at < queued_before and not retry_pending(row)
    return False


def found_sent(row: Recipient, claim_id: str, provider_message_id: str | None, *, at: datetime) -> Recipient | None:
    """A claim left behind (`claim_id`, past its lease) that the provider says it has: sending -> sent,
    with the provider's id. None when the row has moved on since it was asked about."""
    return sent(row, provider_message_id, at=at) if row.status is Status.SENDING and row.claim_id == claim_id else None


def found_not_sent(row: Recipient, claim_id: str, refusal: str | None = None, *, at: datetime) -> Recipient | None:
    """A claim left behind (`claim_id`, past its lease) that the provider never had: sending -> queued,
    to be sent now (the one step back, as nothing was sent), or -> failed with `refusal` when the
    provider refuses it for good. None when the row has moved on since it was asked about."""
    if row.status is not Status.SENDING or row.claim_id != claim_id:
        return None
    if refusal:
        return failed(row, refusal, at=at)
    return _with_reason(row, Status.CANCELLED, CANCELLED, at) if row.cancel_requested else released(row, NOT_HANDED_OVER, at=at)


def found_unknown(row: Recipient, claim_id: str | None, *, at: datetime) -> Recipient | None:
    """A claim left behind (`claim_id`, past its lease) that the provider cannot tell about: sending ->
    failed as outcome unknown, never sent again. None when the row has moved on since it was asked about."""
    return _with_reason(row, Status.FAILED, OUTCOME_UNKNOWN, at) if row.status is Status.SENDING and row.claim_id == claim_id else None


def given_up(row: Recipient, reason: str, lease_start: datetime, claim_id: str | None = None, *,
             at: datetime) -> Recipient | None:
    """A parked job's recipient: scheduled or queued -> failed with `reason` (never attempted); a claim
    left past its lease as `left_behind`."""
    if row.status in WAITING:
        return _with_reason(row, Status.FAILED, reason, at)
    return left_behind(row, lease_start, claim_id, at=at)


def _with_reason(row: Recipient, status: Status, error: str | None, at: datetime, outcome: str | None = None,
                 code: str | None = None) -> Recipient:
    after = row.moved_to(status, at=at, last_error=error)
    return _step(row, after, error=after.last_error, outcome=outcome, code=code)
