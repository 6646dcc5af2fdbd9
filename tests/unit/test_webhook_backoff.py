"""The retry schedule: about a day over 8 attempts, jittered, a receiver's Retry-After honoured within a cap."""
import pytest

from sms.domain.webhook_backoff import ATTEMPTS, RETRY_AFTER_CAP, SCHEDULE, delay_before

HOUR = 3600


def total(rand: float) -> float:
    return sum(delay_before(n, rand=lambda: rand) for n in range(1, ATTEMPTS + 1))


def test_the_schedule_spans_about_a_day_whatever_the_jitter():
    assert SCHEDULE[0] == 0 and ATTEMPTS == 8
    assert 22 * HOUR < total(0.0) < total(0.5) < total(0.999) < 31 * HOUR
    assert total(0.5) == sum(SCHEDULE)


def test_the_first_attempt_goes_at_once_and_the_schedule_ends():
    assert delay_before(1) == 0
    assert delay_before(ATTEMPTS + 1) is None
    with pytest.raises(ValueError):
        delay_before(0)


def test_jitter_stays_within_a_tenth_of_each_delay():
    for n in range(2, ATTEMPTS + 1):
        assert 0.9 * SCHEDULE[n - 1] <= delay_before(n, rand=lambda: 0.0) < delay_before(n, rand=lambda: 0.999) <= 1.1 * SCHEDULE[n - 1]


def test_a_longer_retry_after_is_honoured():
    assert delay_before(2, retry_after=120, rand=lambda: 0.5) == 120  # the schedule says 5 s


def test_a_shorter_retry_after_does_not_shorten_the_schedule():
    assert delay_before(5, retry_after=60, rand=lambda: 0.5) == 2 * HOUR


def test_retry_after_is_capped():
    assert delay_before(3, retry_after=86400, rand=lambda: 0.5) == RETRY_AFTER_CAP == HOUR
    assert delay_before(3, retry_after=86400, retry_after_cap=600, rand=lambda: 0.5) == 600
    assert delay_before(7, retry_after=86400, rand=lambda: 0.5) == 10 * HOUR  # the schedule is already longer
