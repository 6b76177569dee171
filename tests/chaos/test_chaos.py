"""Under steady load, every service, the worker, Redis, PostgreSQL and Kafka are killed in turn
(`conftest.chaos_run`). Nothing accepted is lost or done twice, a fault is only ever a 502, 503
or 504 problem, and nothing outlives the stack."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import PROBLEM_JSON, ChaosRun

# One run takes about three minutes on two cores: the stack's start (~50 s), eleven faults and
# the catch-up. pytest-timeout counts the module fixture's setup against the first test.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]

# What a request may meet while a process is down: the gateway's upstream failures and a
# service's dependency failures (or the gateway itself gone: no answer at all).
FAULT_STATUSES = {502, 503, 504}
EXPECTED_STATUSES = {200, 201, 202, 207, 429} | FAULT_STATUSES
GATEWAY_DOWN = "kill -9 api-gateway"  # the one fault where no answer at all is expected


def _sample(lines: list[str], limit: int = 20) -> str:
    counted = Counter(lines)
    shown = [f"{n} x {line}" for line, n in counted.most_common(limit)]
    return "\n".join(shown) + (f"\n... {len(counted) - limit} more" if len(counted) > limit else "")


def test_the_load_kept_running_through_every_fault(chaos_run: ChaosRun) -> None:
    """The run itself: every fault healed, and the load got work accepted meanwhile."""
    faults = [fault for fault, _ in chaos_run.faults]
    assert len(faults) == 7 + 1 + 3, chaos_run.faults
    assert {"kill -9 redis", "kill -9 postgres", "kill -9 kafka"} <= set(faults)
    assert len(chaos_run.accepted_bars) > 100, "the load barely ran"
    assert len(chaos_run.accepted_jobs) > 10, "the load barely ran"
    phases = {e.phase for e in chaos_run.exchanges if e.status == 200}
    assert "recovered" in phases, "nothing succeeded after the last fault"


def test_every_accepted_bar_is_in_history_and_on_kafka(chaos_run: ChaosRun) -> None:
    lost = sorted(chaos_run.accepted_bars - chaos_run.history)
    assert not lost, f"{len(lost)} accepted bars missing from history: {lost[:20]}"
    unpublished = sorted(chaos_run.accepted_bars - chaos_run.kafka_bars)
    assert not unpublished, (
        f"{len(unpublished)} accepted bars never published on market.bars.v1: {unpublished[:20]}"
    )


def test_every_accepted_backtest_completed_exactly_once(chaos_run: ChaosRun) -> None:
    not_completed = {
        job: f"{status}: {chaos_run.failures.get(job, '')}"
        for job, status in chaos_run.job_statuses.items()
        if status != "completed"
    }
    assert not not_completed, f"accepted jobs that did not complete: {not_completed}"
    assert chaos_run.job_statuses.keys() == chaos_run.accepted_jobs
    missing = sorted(chaos_run.accepted_jobs - chaos_run.completions.keys())
    assert not missing, f"completed jobs without a backtest.completed event: {missing}"
    # Delivery is at least once, so the same event (one id) may be read twice; two different
    # completion events of one job would mean it completed twice.
    twice = {job: ids for job, ids in chaos_run.completions.items() if len(ids) > 1}
    assert not twice, f"jobs completed more than once: {twice}"
    redelivered = {job: n for job, n in chaos_run.completion_records.items() if n > 1}
    if redelivered:
        print(f"completion events published more than once (same id): {redelivered}")


def test_faults_are_answered_with_502_503_504_problems_never_a_500(chaos_run: ChaosRun) -> None:
    answered = [e for e in chaos_run.exchanges if e.status is not None]
    unexpected = [
        f"[{e.phase}] {e.route} -> {e.status} {e.content_type}: {e.detail}"
        for e in answered
        if e.status not in EXPECTED_STATUSES
    ]
    assert not unexpected, f"unexpected answers:\n{_sample(unexpected)}"
    not_problems = [
        f"[{e.phase}] {e.route} -> {e.status} {e.content_type}: {e.detail}"
        for e in answered
        if e.status >= 400 and not e.content_type.startswith(PROBLEM_JSON)  # type: ignore[operator]
    ]
    assert not not_problems, f"errors that are not problem+json:\n{_sample(not_problems)}"
    unanswered = [e for e in chaos_run.exchanges if e.status is None]
    # A request sent before the gateway died may still be in flight when it does.
    stray = [
        f"[{e.phase} .. {e.answered_in}] {e.route}: {e.detail}"
        for e in unanswered
        if GATEWAY_DOWN not in (e.phase, e.answered_in)
    ]
    print(f"requests without an answer: {len(unanswered)}, {len(stray)} not for the gateway's kill")
    assert not stray, f"requests left unanswered while the gateway was up:\n{_sample(stray)}"


def test_no_process_outlives_the_stack(chaos_run: ChaosRun) -> None:
    assert chaos_run.exit_code == 0, chaos_run.output_tail
    assert "all stopped" in chaos_run.output_tail
    assert not chaos_run.leftovers, f"left running: {chaos_run.leftovers}"


@pytest.mark.skip(reason="forward-test-service is a stub: there are no forward sessions yet")
def test_forward_sessions_resume_with_identical_state(chaos_run: ChaosRun) -> None:
    """To come with forward sessions: sessions started before the faults (see FORWARD SESSIONS
    in `conftest.Load.run`) hold, after every kill and restart, the same positions, cash and
    last applied bar as a run without faults over the same bars, and no bar applied twice."""
