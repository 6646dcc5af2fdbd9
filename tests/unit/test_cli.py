"""What the operator's command line prints, where no storage is needed to see it."""
from sms.entrypoints import cli
from sms.usecases.cancel import CancelResult

COMM_ID = "5d41402abc4b2a76b9719d911017c592"


def test_a_cancel_tells_what_it_cancelled_what_was_cancelled_before_and_what_had_gone():
    said = cli.cancel_summary
    assert said(CancelResult(COMM_ID, 2, {})) == f"Cancelled 2 recipient(s) of message {COMM_ID}."
    assert said(CancelResult(COMM_ID, 0, {"cancelled": 2})) == f"Cancelled 0 recipient(s) of message {COMM_ID}; 2 already cancelled."
    assert said(CancelResult(COMM_ID, 1, {"sent": 1, "cancelled": 1, "delivered": 2})) == (
        f"Cancelled 1 recipient(s) of message {COMM_ID}; 1 already cancelled; "
        "not cancelled (already past waiting): 2 delivered, 1 sent.")
