"""Every recipient state transition, as a table: (status, event) -> the status it becomes, or None when
the event does not apply and nothing is written. Status only moves forward; the one step back is a
claim released after a transient failure (sending -> queued), because nothing was sent."""
from datetime import timedelta

import pytest

from sms import transitions
from sms.model import Recipient, Status, utcnow

Q, SE, S, F, D, U, O = (Status.QUEUED, Status.SENDING, Status.SENT, Status.FAILED, Status.DELIVERED,
                        Status.UNDELIVERED, Status.OPTED_OUT)
ALL = [Q, SE, S, F, D, U, O]
RANK = {Q: 0, SE: 1, S: 2, F: 3, D: 3, U: 3, O: 3}
LONG_AGO = utcnow() - timedelta(hours=1)
LEASE_START = utcnow() - timedelta(minutes=5)  # claims older than this are past their lease


def row(status: Status, claim_id: str = "theirs", **changes) -> Recipient:
    """A stored row, last changed long ago; one the provider has taken carries its message id."""
    provider_id = "p-1" if status in (S, F, D, U) else None
    return Recipient("c" * 32, 0, "r" * 32, "+61412000001", status=status, updated_at=LONG_AGO, claim_id=claim_id,
                     provider_message_id=provider_id, **changes)


def outcome(status: Status) -> Recipient:
    return row(SE).moved_to(status, provider_message_id="p-1", last_error="why" if status is F else None)


EVENTS = {
    "claim": lambda r: transitions.claimed(r, "mine"),
    "provider took it": lambda r: transitions.sent(r, "p-1"),
    "provider: later": lambda r: transitions.released(r, "busy"),
    "provider: never": lambda r: transitions.failed(r, "blocked"),
    "outcome sent recorded": lambda r: transitions.recorded(r, outcome(S)),
    "outcome failed recorded": lambda r: transitions.recorded(r, outcome(F)),
    "receipt sent": lambda r: transitions.receipt(r, S, "p-1", None),
    "receipt delivered": lambda r: transitions.receipt(r, D, "p-1", None),
    "receipt undelivered": lambda r: transitions.receipt(r, U, "p-1", "absent subscriber"),
    "receipt queued": lambda r: transitions.receipt(r, Q, "p-1", None),
    "opted out": transitions.opted_out,
    "left behind past lease": lambda r: transitions.left_behind(r, LEASE_START, "mine"),
    "job given up": lambda r: transitions.given_up(r, "parked", LEASE_START, "mine"),
}

# The expected status after each event, from each status (None: not applicable, nothing written).
TABLE = {
    #                          queued  sending  sent  failed  delivered  undelivered  opted_out
    "claim":                   [SE,    None,    None, None,   None,      None,        None],
    "provider took it":        [None,  S,       None, None,   None,      None,        None],
    "provider: later":         [None,  Q,       None, None,   None,      None,        None],
    "provider: never":         [None,  F,       None, None,   None,      None,        None],
    "outcome sent recorded":   [S,     S,       None, None,   None,      None,        O],
    "outcome failed recorded": [F,     F,       F,    F,      None,      None,        O],
    "receipt sent":            [S,     S,       None, None,   None,      None,        None],
    "receipt delivered":       [D,     D,       D,    None,   None,      None,        None],
    "receipt undelivered":     [U,     U,       U,    None,   None,      None,        None],
    "receipt queued":          [None,  None,    None, None,   None,      None,        None],
    "opted out":               [O,     None,    None, None,   None,      None,        None],
    "left behind past lease":  [None,  F,       None, None,   None,      None,        None],
    "job given up":            [F,     F,       None, None,   None,      None,        None],
}
# "outcome sent recorded" on `sent`: the row already says it (its write had landed), so None. A status
# that stays but is written (failed, opted_out) keeps the status and fills in what the row lacked: the
# provider's id, or the provider's latest reason for a failure.


@pytest.mark.parametrize("event", list(TABLE))
@pytest.mark.parametrize("before", ALL, ids=[s.value for s in ALL])
def test_each_event_from_each_status(event, before):
    after = EVENTS[event](row(before))
    expected = TABLE[event][ALL.index(before)]
    assert (after.status if after is not None else None) == expected


@pytest.mark.parametrize("event", list(TABLE))
@pytest.mark.parametrize("before", ALL, ids=[s.value for s in ALL])
def test_never_backwards_except_a_released_claim(event, before):
    after = EVENTS[event](row(before))
    if after is None:
        return
    assert before.can_become(after.status) or after.status is before
    if RANK[after.status] < RANK[before]:  # the one step back, and only a released claim takes it
        assert (before, after.status, event) == (SE, Q, "provider: later")


def test_final_statuses_stay_final():
    for final in (F, D, U, O):
        assert all(after is None or after.status is final for after in (EVENTS[e](row(final)) for e in TABLE)), final


def test_a_claim_counts_the_attempt_and_carries_the_claim_id():
    claimed = transitions.claimed(row(Q, attempts=1), "mine")
    assert (claimed.attempts, claimed.claim_id) == (2, "mine") and claimed.first_attempt_at is not None


def test_a_claim_inside_its_lease_or_our_own_is_not_left_behind():
    recent = row(SE).moved_to(SE)  # updated now: its worker is alive
    assert transitions.left_behind(recent, LEASE_START, "mine") is None
    assert transitions.left_behind(row(SE, claim_id="mine"), LEASE_START, "mine") is None
    assert transitions.left_behind(row(SE), LEASE_START, "mine").last_error == transitions.OUTCOME_UNKNOWN


def test_recording_keeps_a_receipts_later_status_and_the_first_provider_id():
    assert transitions.recorded(row(D), outcome(S)) is None
    taken = transitions.recorded(row(SE).moved_to(D, provider_message_id="from-receipt"), outcome(S))
    assert taken is None  # delivered stays, and so does the receipt's id
    failed_first = transitions.recorded(row(SE), outcome(F))
    assert (failed_first.status, failed_first.last_error) == (F, "why")


def test_a_receipts_failure_keeps_the_carriers_reason():
    assert transitions.receipt(row(S), U, None, "absent subscriber").last_error == "absent subscriber"
    assert transitions.receipt(row(S), F, None, None).last_error == "failed"
