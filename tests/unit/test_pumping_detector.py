"""The pumping detector (sms/domain/pumping.py): a burst to one prefix whose deliveries collapse trips it;
one whose receipts confirm, or one under min_sends, does not; a trip quiets the prefix for its block."""
from datetime import datetime, timedelta, timezone

from sms.domain.pumping import Detector, Rules, prefix_of

T0 = datetime(2026, 12, 6, 21, 0, tzinfo=timezone.utc)
RULES = Rules(window=timedelta(minutes=10), min_sends=10, delivered_floor=0.2, confirm_wait=timedelta(minutes=2),
              block=timedelta(minutes=30), prefix_digits=4)
L = "a" * 32


def burst(detector: Detector, count: int, *, delivered: int, prefix: str = "+44794612", at: datetime = T0):
    """`count` sends a second apart, each answered by its receipt 5 s after (the first `delivered` delivered)."""
    trips = []
    for i in range(count):
        sent_at = at + timedelta(seconds=i)
        trips.append(detector.sent(L, f"{prefix}{i:04d}", sent_at))
        trips.append(detector.receipt(L, f"{prefix}{i:04d}", sent_at, i < delivered, sent_at + timedelta(seconds=5)))
    return [t for t in trips if t is not None]


def test_a_prefix_is_the_number_without_its_last_digits():
    assert prefix_of("+447946123456") == "+44794612"
    assert prefix_of("+447946123456", 5) == "+4479461"
    assert prefix_of("+12025550101", 1) == "+1202555010"
    assert prefix_of("+1202", 8) == "+12"  # never less than a country code's first digits


def test_a_burst_whose_deliveries_collapse_trips_once_with_its_counts():
    detector = Detector(RULES)
    [trip] = burst(detector, 40, delivered=2)
    assert (trip.licensee_id, trip.prefix) == (L, "+44794612")
    # Tripped by the receipts as they came: 2 of 10 is the floor itself (20%), 2 of 11 under it.
    assert (trip.sends, trip.confirmed) == (11, 2)
    assert trip.until == trip.at + RULES.block
    assert trip.why == "its deliveries collapsed: 2 of 11 confirmed"


def test_a_burst_whose_receipts_confirm_does_not_trip():
    assert burst(Detector(RULES), 200, delivered=200) == []
    assert burst(Detector(RULES), 200, delivered=200 // 4) == []  # 25%: over the floor


def test_fewer_sends_than_the_minimum_never_trip_even_unconfirmed():
    detector = Detector(RULES)
    assert burst(detector, 9, delivered=0) == []
    # Long after, every one of them unanswered and due: still under min_sends.
    assert detector.sent(L, "+447946129999", T0 + timedelta(minutes=5)) is None


def test_sends_never_answered_count_as_unconfirmed_once_their_receipts_are_due():
    detector = Detector(RULES)
    for i in range(12):
        assert detector.sent(L, f"+44794612{i:04d}", T0 + timedelta(seconds=i)) is None  # none due yet
    trip = detector.sent(L, "+447946129999", T0 + RULES.confirm_wait + timedelta(seconds=20))
    assert trip is not None and (trip.sends, trip.confirmed) == (12, 0)


def test_other_prefixes_and_other_licensees_are_counted_apart():
    detector = Detector(RULES)
    for i in range(30):
        detector.sent(L, f"+44794612{i:04d}", T0)
        detector.sent("b" * 32, f"+44794613{i:04d}", T0)
    for i in range(30):
        detector.receipt(L, f"+44794613{i:04d}", T0, False, T0 + timedelta(seconds=30))  # L sent nothing there
        detector.receipt("b" * 32, f"+44794612{i:04d}", T0, False, T0 + timedelta(seconds=30))
    for i in range(30):
        assert detector.receipt(L, f"+44794612{i:04d}", T0, True, T0 + timedelta(seconds=40)) is None
        assert detector.receipt("b" * 32, f"+44794613{i:04d}", T0, True, T0 + timedelta(seconds=40)) is None


def test_a_tripped_prefix_is_quiet_until_its_block_ends_then_counted_afresh():
    detector = Detector(RULES)
    [trip] = burst(detector, 20, delivered=0)
    assert burst(detector, 20, delivered=0, at=T0 + timedelta(minutes=2)) == []  # during the block
    [again] = burst(detector, 20, delivered=0, at=trip.until + timedelta(seconds=1))
    assert again.at > trip.until


def test_a_trip_not_acted_on_is_judged_again_on_the_next_event():
    detector = Detector(RULES)
    [trip] = burst(detector, 10, delivered=0)
    detector.rearm(trip)
    [again] = burst(detector, 10, delivered=0, at=T0 + timedelta(seconds=30))
    assert again.prefix == trip.prefix


def test_what_slid_out_of_the_window_is_forgotten():
    detector = Detector(RULES)
    assert burst(detector, 9, delivered=0) == []
    later = T0 + RULES.window + timedelta(minutes=1)
    assert burst(detector, 9, delivered=0, at=later) == []  # 18 unconfirmed, but never 10 in one window
