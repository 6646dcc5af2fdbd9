"""Every recipient state transition, as a table: (status, event) -> the status it becomes, or None when
the event does not apply and nothing is written. Status only moves forward; the one step back is a
claim released after a transient failure (sending -> queued), because nothing was sent."""
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain import transitions
from sms.domain.model import MAX_ERROR_CHARS, MAX_EVENT_ERROR_CHARS, MAX_EVENTS, Recipient, Status, derived_events, utcnow

W, Q, SE, S, F, D, U, O, X, C = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.SENT, Status.FAILED,
                                 Status.DELIVERED, Status.UNDELIVERED, Status.OPTED_OUT, Status.EXPIRED, Status.CANCELLED)
ALL = [W, Q, SE, S, F, D, U, O, X, C]
RANK = {W: 0, Q: 1, SE: 2, S: 3, F: 4, D: 4, U: 4, O: 4, X: 4, C: 4}
LONG_AGO = utcnow() - timedelta(hours=1)
LEASE_START = utcnow() - timedelta(minutes=5)  # claims older than this are past their lease


def row(status: Status, claim_id: str = "theirs", **changes) -> Recipient:
    """A stored row, last changed long ago; one the provider has taken carries its message id."""
    provider_id = "p-1" if status in (S, F, D, U) else None
    return Recipient("c" * 32, 0, "r" * 32, "+61412000001", status=status, updated_at=LONG_AGO, claim_id=claim_id,
                     provider_message_id=provider_id, **changes)


def outcome(status: Status) -> Recipient:
    return row(SE).moved_to(status, provider_message_id="p-1", last_error="why" if status is F else None, at=utcnow())


EVENTS = {
    "claim": lambda r: transitions.claimed(r, "mine", at=utcnow()),
    "provider took it": lambda r: transitions.sent(r, "p-1", at=utcnow()),
    "provider: later": lambda r: transitions.released(r, "busy", at=utcnow()),
    "provider: never": lambda r: transitions.failed(r, "blocked", at=utcnow()),
    "outcome sent recorded": lambda r: transitions.recorded(r, outcome(S), at=utcnow()),
    "outcome failed recorded": lambda r: transitions.recorded(r, outcome(F), at=utcnow()),
    "receipt sent": lambda r: transitions.receipt(r, S, "p-1", None, at=utcnow()),
    "receipt delivered": lambda r: transitions.receipt(r, D, "p-1", None, at=utcnow()),
    "receipt undelivered": lambda r: transitions.receipt(r, U, "p-1", "absent subscriber", at=utcnow()),
    "receipt queued": lambda r: transitions.receipt(r, Q, "p-1", None, at=utcnow()),
    "opted out": lambda r: transitions.opted_out(r, at=utcnow()),
    "validUntil passed": lambda r: transitions.expired(r, at=utcnow()),
    "message cancelled": lambda r: transitions.cancelled(r, at=utcnow()),
    "left behind past lease": lambda r: transitions.left_behind(r, LEASE_START, "mine", at=utcnow()),
    "job given up": lambda r: transitions.given_up(r, "parked", LEASE_START, "mine", at=utcnow()),
    "left behind, provider has it": lambda r: transitions.found_sent(r, "theirs", "p-9", at=utcnow()),
    "left behind, provider never had it": lambda r: transitions.found_not_sent(r, "theirs", at=utcnow()),
    "left behind, provider refuses it": lambda r: transitions.found_not_sent(r, "theirs", "number is blocked", at=utcnow()),
    "left behind, asked of another claim": lambda r: transitions.found_sent(r, "other", "p-9", at=utcnow()),
}

# The expected status after each event, from each status (None: not applicable, nothing written).
TABLE = {
    #                          sched.  queued  sending  sent  failed  delivered  undeliv.  opted_out expired cancelled
    "claim":                   [SE,    SE,     None,    None, None,   None,      None,     None,     None,   None],
    "provider took it":        [None,  None,   S,       None, None,   None,      None,     None,     None,   None],
    "provider: later":         [None,  None,   Q,       None, None,   None,      None,     None,     None,   None],
    "provider: never":         [None,  None,   F,       None, None,   None,      None,     None,     None,   None],
    "outcome sent recorded":   [S,     S,      S,       None, None,   None,      None,     O,        X,      C],
    "outcome failed recorded": [F,     F,      F,       F,    F,      None,      None,     O,        X,      C],
    "receipt sent":            [S,     S,      S,       None, None,   None,      None,     None,     None,   None],
    "receipt delivered":       [D,     D,      D,       D,    None,   None,      None,     None,     None,   None],
    "receipt undelivered":     [U,     U,      U,       U,    None,   None,      None,     None,     None,   None],
    "receipt queued":          [None,  None,   None,    None, None,   None,      None,     None,     None,   None],
    "opted out":               [O,     O,      None,    None, None,   None,      None,     None,     None,   None],
    "validUntil passed":       [X,     X,      None,    None, None,   None,      None,     None,     None,   None],
    "message cancelled":       [C,     C,      SE,      None, None,   None,      None,     None,     None,   None],
    "left behind past lease":  [None,  None,   F,       None, None,   None,      None,     None,     None,   None],
    "job given up":            [F,     F,      F,       None, None,   None,      None,     None,     None,   None],
    "left behind, provider has it":        [None, None, S, None, None, None, None, None, None, None],
    "left behind, provider never had it":  [None, None, Q, None, None, None, None, None, None, None],
    "left behind, provider refuses it":    [None, None, F, None, None, None, None, None, None, None],
    "left behind, asked of another claim": [None, None, None, None, None, None, None, None, None, None],
}
# "message cancelled" on `sending`: the claim stays, marked cancel_requested (test below).
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
    if RANK[after.status] < RANK[before]:  # the one step back, taken only by a claim under which nothing was sent
        assert (before, after.status) == (SE, Q) and event in ("provider: later", "left behind, provider never had it")


def test_final_statuses_stay_final():
    for final in (F, D, U, O):
        assert all(after is None or after.status is final for after in (EVENTS[e](row(final)) for e in TABLE)), final


def test_a_claim_counts_the_attempt_and_carries_the_claim_id():
    claimed = transitions.claimed(row(Q, attempts=1), "mine", at=utcnow())
    assert (claimed.attempts, claimed.claim_id) == (2, "mine") and claimed.first_attempt_at is not None


def test_a_claim_inside_its_lease_or_our_own_is_not_left_behind():
    recent = row(SE).moved_to(SE, at=utcnow())  # updated now: its worker is alive
    assert transitions.left_behind(recent, LEASE_START, "mine", at=utcnow()) is None
    assert transitions.left_behind(row(SE, claim_id="mine"), LEASE_START, "mine", at=utcnow()) is None
    assert transitions.left_behind(row(SE), LEASE_START, "mine", at=utcnow()).last_error == transitions.OUTCOME_UNKNOWN


def test_recording_keeps_a_receipts_later_status_and_the_first_provider_id():
    assert transitions.recorded(row(D), outcome(S), at=utcnow()) is None
    taken = transitions.recorded(row(SE).moved_to(D, provider_message_id="from-receipt", at=utcnow()), outcome(S), at=utcnow())
    assert taken is None  # delivered stays, and so does the receipt's id
    failed_first = transitions.recorded(row(SE), outcome(F), at=utcnow())
    assert (failed_first.status, failed_first.last_error) == (F, "why")


def test_a_receipts_failure_keeps_the_carriers_reason():
    assert transitions.receipt(row(S), U, None, "absent subscriber", at=utcnow()).last_error == "absent subscriber"
    assert transitions.receipt(row(S), F, None, None, at=utcnow()).last_error == "failed"


# -- the timeline: every change appends its step, timed at the row's new updated_at ------------------

OUTCOME_EVENTS = {"outcome sent recorded": S, "outcome failed recorded": F}


@pytest.mark.parametrize("event", list(TABLE))
@pytest.mark.parametrize("before", ALL, ids=[s.value for s in ALL])
def test_each_change_appends_its_step_at_the_new_updated_at(event, before):
    start = row(before)
    after = EVENTS[event](start)
    if after is None:
        return
    if OUTCOME_EVENTS.get(event, after.status) is not after.status:
        # An outcome the row does not take (it is already further on): only the provider's id is filled in.
        assert after.events == start.events
        return
    if (event, before) == ("message cancelled", SE):
        # A claim is only marked (cancel_requested): no step, and no new time, so its lease and its
        # repeatability stamp stay the claim's.
        assert (after.cancel_requested, after.events, after.updated_at) == (True, start.events, start.updated_at)
        return
    assert len(after.events) == len(start.events) + 1
    step = after.events[-1]
    assert (step.status, step.at) == (after.status, after.updated_at)
    assert step.attempt == (after.attempts if event == "claim" else None)


def steps(r: Recipient) -> list[tuple]:
    return [(e.status, e.provider_message_id, e.error, e.attempt) for e in r.timeline]


def fresh() -> Recipient:
    return Recipient("c" * 32, 0, "r" * 32, "+61412000001", created_at=LONG_AGO, updated_at=LONG_AGO)


def test_a_retry_then_a_receipt_tell_the_whole_story_in_order():
    first = transitions.claimed(fresh(), "d1", at=utcnow())
    released = transitions.released(first, "429: slow down", at=utcnow())
    second = transitions.claimed(released, "d2", at=utcnow())
    sent = transitions.sent(second, "p-9", at=utcnow())
    delivered = transitions.receipt(sent, D, "p-9", None, at=utcnow())
    assert steps(delivered) == [(Q, None, None, None), (SE, None, None, 1), (Q, None, "429: slow down", None),
                                (SE, None, None, 2), (S, "p-9", None, None), (D, None, None, None)]
    times = [e.at for e in delivered.timeline]
    assert times == sorted(times) and times[0] == LONG_AGO and times[-1] == delivered.updated_at
    assert [e.at for e in delivered.timeline[1:]] == [r.updated_at for r in (first, released, second, sent, delivered)]
    assert delivered.events_omitted == 0


def test_the_dispatch_path_records_the_outcome_once_on_the_row_as_stored():
    claimed = transitions.claimed(fresh(), "d1", at=utcnow())
    outcome = transitions.sent(claimed, "p-9", at=utcnow())
    recorded = transitions.recorded(claimed, outcome, at=utcnow())
    assert steps(recorded) == [(Q, None, None, None), (SE, None, None, 1), (S, "p-9", None, None)]
    assert recorded.events[-1].at == recorded.updated_at


def test_a_receipt_before_the_outcome_keeps_the_timeline_in_order():
    claimed = transitions.claimed(fresh(), "d1", at=utcnow())
    delivered = transitions.receipt(claimed, D, "p-9", None, at=utcnow())
    late = transitions.recorded(delivered, transitions.sent(claimed, "p-9", at=utcnow()), at=utcnow())
    assert late is None  # the receipt said it all already
    assert steps(delivered) == [(Q, None, None, None), (SE, None, None, 1), (D, "p-9", None, None)]


def test_an_undelivered_receipt_keeps_the_carriers_reason():
    sent = transitions.sent(transitions.claimed(fresh(), "d1", at=utcnow()), "p-9", at=utcnow())
    assert steps(transitions.receipt(sent, U, "p-9", "absent subscriber", at=utcnow()))[-1] == (U, None, "absent subscriber", None)


def test_an_opt_out_is_a_step_with_its_reason():
    assert steps(transitions.opted_out(fresh(), at=utcnow())) == [(Q, None, None, None), (O, None, transitions.OPTED_OUT, None)]


def test_a_claim_left_past_its_lease_ends_as_outcome_unknown():
    claimed = replace(transitions.claimed(fresh(), "theirs", at=utcnow()), updated_at=LONG_AGO)
    left = transitions.left_behind(claimed, LEASE_START, "mine", at=utcnow())
    assert steps(left) == [(Q, None, None, None), (SE, None, None, 1), (F, None, transitions.OUTCOME_UNKNOWN, None)]
    assert left.events[-1].at == left.updated_at > LEASE_START


def test_a_failure_after_the_retries_ran_out_and_a_parked_job_say_why():
    failed = transitions.failed(transitions.claimed(fresh(), "d1", at=utcnow()), "blocked (gave up after 5 attempts)", at=utcnow())
    assert steps(failed)[-1] == (F, None, "blocked (gave up after 5 attempts)", None)
    assert steps(transitions.given_up(fresh(), "parked", LEASE_START, at=utcnow())) == [(Q, None, None, None), (F, None, "parked", None)]


def test_endless_retries_keep_the_first_claim_and_the_latest_steps_and_count_the_rest():
    r = fresh()
    for attempt in range(1, 31):
        r = transitions.released(transitions.claimed(r, f"d{attempt}", at=utcnow()), "x" * 5000, at=utcnow())
    assert len(r.last_error) == MAX_ERROR_CHARS  # the row's own reason keeps more than its steps
    r = transitions.sent(transitions.claimed(r, "d31", at=utcnow()), "p-9", at=utcnow())
    assert len(r.events) == MAX_EVENTS and r.events_omitted == 2 * 30 + 2 - MAX_EVENTS  # 30 claims and releases, a claim, sent
    assert steps(r)[:2] == [(Q, None, None, None), (SE, None, None, 1)]
    assert steps(r)[-3:] == [(Q, None, "x" * (MAX_EVENT_ERROR_CHARS - 1) + "…", None), (SE, None, None, 31), (S, "p-9", None, None)]
    times = [e.at for e in r.timeline]
    assert times == sorted(times)


# -- rows stored before timelines: what their columns prove ------------------------------------------

CREATED, CLAIMED, CHANGED = LONG_AGO, LONG_AGO + timedelta(seconds=1), LONG_AGO + timedelta(seconds=9)


def legacy(status: Status, attempts: int, **changes) -> Recipient:
    return Recipient("c" * 32, 0, "r" * 32, "+61412000001", status=status, attempts=attempts, created_at=CREATED,
                     updated_at=CHANGED, first_attempt_at=CLAIMED if attempts else None, **changes)


@pytest.mark.parametrize("stored, expected, omitted", [
    (legacy(Q, 0), [], 0),
    (legacy(SE, 1), [(SE, CLAIMED, None, None, 1)], 0),
    (legacy(SE, 3), [(SE, CLAIMED, None, None, 1), (SE, CHANGED, None, None, 3)], 3),  # 2 claims, 2 releases; 1 shown
    (legacy(Q, 1, last_error="busy"), [(SE, CLAIMED, None, None, 1), (Q, CHANGED, None, "busy", None)], 0),
    (legacy(S, 1, provider_message_id="p-1"), [(SE, CLAIMED, None, None, 1), (S, CHANGED, "p-1", None, None)], 0),
    (legacy(D, 2, provider_message_id="p-1", last_error="busy"),
     [(SE, CLAIMED, None, None, 1), (D, CHANGED, "p-1", None, None)], 2),  # a release and a claim between
    (legacy(U, 1, provider_message_id="p-1", last_error="absent"),
     [(SE, CLAIMED, None, None, 1), (U, CHANGED, "p-1", "absent", None)], 0),
    (legacy(F, 0, last_error="parked"), [(F, CHANGED, None, "parked", None)], 0),
    (legacy(O, 0, last_error=transitions.OPTED_OUT), [(O, CHANGED, None, transitions.OPTED_OUT, None)], 0),
])
def test_a_row_from_before_timelines_shows_what_its_columns_prove(stored, expected, omitted):
    events, left_out = derived_events(stored)
    assert [(e.status, e.at, e.provider_message_id, e.error, e.attempt) for e in events] == expected
    assert left_out == omitted
    claimed_again = transitions.claimed(replace(stored, events=events, events_omitted=left_out), "d",
                                        at=utcnow()) if stored.status is Q else None
    if claimed_again is not None:  # its next step is appended to what it proved
        assert claimed_again.events[:-1] == events and claimed_again.events[-1].attempt == stored.attempts + 1


def test_a_claim_left_behind_and_traced_with_the_provider_keeps_its_timeline():
    """Issue 23, item 2: a claim a crashed worker left is settled by what the provider says of it."""
    claimed = transitions.claimed(row(Q), "dead", at=utcnow())
    sent = transitions.found_sent(claimed, "dead", "SM123", at=utcnow())
    assert (sent.status, sent.provider_message_id) == (S, "SM123")
    assert steps(sent)[-1] == (S, "SM123", None, None)
    again = transitions.found_not_sent(claimed, "dead", at=utcnow())
    assert (again.status, again.attempts, again.last_error) == (Q, 1, transitions.NOT_HANDED_OVER)
    assert steps(again)[-1] == (Q, None, transitions.NOT_HANDED_OVER, None)
    refused = transitions.found_not_sent(claimed, "dead", "ACS 400: invalid number", at=utcnow())
    assert (refused.status, refused.last_error) == (F, "ACS 400: invalid number")
    # Asked of one claim, applied to a row another dispatch has claimed since: nothing.
    assert transitions.found_not_sent(transitions.claimed(again, "live", at=utcnow()), "dead", at=utcnow()) is None


def test_a_claim_marked_by_a_cancel_is_cancelled_if_it_turns_out_to_have_sent_nothing():
    """Issue 23 review: a cancel finding a recipient claimed leaves it (it may be with the provider) but
    marks it; a claim that then sent nothing is cancelled, never sent after the cancel."""
    marked = transitions.cancelled(transitions.claimed(row(Q), "dead", at=utcnow()), at=utcnow())
    assert (marked.status, marked.cancel_requested) == (SE, True)
    assert transitions.cancelled(marked, at=utcnow()) is None  # marked once
    assert transitions.found_not_sent(marked, "dead", at=utcnow()).status is C  # the provider never had it
    assert transitions.found_not_sent(marked, "dead", "refused", at=utcnow()).status is F
    assert transitions.found_sent(marked, "dead", "p-9", at=utcnow()).status is S  # it went before the cancel
    assert transitions.recorded(marked, marked.moved_to(Q, last_error="busy", at=utcnow()), at=utcnow()).status is C  # released for a retry
    assert transitions.recorded(marked, marked.moved_to(S, provider_message_id="p-9", at=utcnow()), at=utcnow()).status is S
