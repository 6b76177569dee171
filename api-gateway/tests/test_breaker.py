"""The circuit breaker's state machine, on a controlled clock."""

from __future__ import annotations

import pytest

from api_gateway.breaker import CircuitBreaker, CircuitOpen


def _breaker(now: list[float], min_callers: int = 1) -> CircuitBreaker:
    return CircuitBreaker(
        "svc",
        failure_threshold=3,
        cooldown_seconds=10,
        min_callers=min_callers,
        clock=lambda: now[0],
    )


def test_no_single_caller_can_open_it_however_many_failures_they_cause() -> None:
    now = [0.0]
    breaker = _breaker(now, min_callers=2)
    for _ in range(50):
        breaker.record_failure("user:mallory")
    breaker.before_request()
    assert breaker.state == "closed"
    breaker.record_failure("user:alice")  # a second caller sees the service fail too
    assert breaker.state == "open"


def test_opens_after_threshold_consecutive_failures_only() -> None:
    now = [0.0]
    breaker = _breaker(now)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the run is broken: counting starts again
    breaker.record_failure()
    breaker.record_failure()
    breaker.before_request()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_request()
    assert refused.value.retry_after == pytest.approx(10)


def test_half_open_lets_one_trial_through_and_its_outcome_decides() -> None:
    now = [0.0]
    breaker = _breaker(now)
    for _ in range(3):
        breaker.record_failure()
    now[0] = 10.0
    assert breaker.state == "half_open"
    breaker.before_request()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_request()  # everyone else waits for it
    breaker.record_failure()
    assert breaker.state == "open"  # one failure re-opens

    now[0] = 20.0
    breaker.before_request()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_request()


def test_a_trial_that_never_reports_is_given_up_after_a_cooldown() -> None:
    now = [0.0]
    breaker = _breaker(now)
    for _ in range(3):
        breaker.record_failure()
    now[0] = 10.0
    breaker.before_request()  # trial whose client went away
    now[0] = 15.0
    with pytest.raises(CircuitOpen):
        breaker.before_request()
    now[0] = 20.0
    breaker.before_request()  # a new trial
