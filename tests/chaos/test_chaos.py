"""Under steady load, every service, every worker, Redis, PostgreSQL and Kafka are killed in
turn (`conftest.chaos_run`). Nothing accepted is lost or done twice, a forward-test session
trades on as if nothing happened, a fault is only ever a 502, 503 or 504 problem, and nothing
outlives the stack."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from algotrade_devstack.stack import SERVICES

from .conftest import PROBLEM_JSON, ChaosRun, moment

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
    faults = {fault for fault, _ in chaos_run.faults}
    expected = {f"kill -9 {name}" for name in [*SERVICES, "redis", "postgres", "kafka"]}
    assert expected <= faults, chaos_run.faults
    assert any(fault.startswith("kill -9 backtest-worker") for fault in faults)
    assert any(fault.startswith("kill -9 forward-test-worker") for fault in faults)
    assert len(chaos_run.accepted_bars) > 100, "the load barely ran"
    assert len(chaos_run.accepted_jobs) > 10, "the load barely ran"
    phases = {e.phase for e in chaos_run.exchanges if e.status == 200}
    assert "recovered" in phases, "nothing succeeded after the last fault"


def test_every_accepted_bar_is_in_history_and_on_kafka(chaos_run: ChaosRun) -> None:
    lost = sorted(chaos_run.accepted_bars.keys() - chaos_run.history)
    assert not lost, f"{len(lost)} accepted bars missing from history: {lost[:20]}"
    unpublished = sorted(chaos_run.accepted_bars.keys() - chaos_run.kafka_bars)
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


def test_the_forward_session_resumed_with_the_state_of_a_run_without_faults(
    chaos_run: ChaosRun,
) -> None:
    """Its worker, Redis, PostgreSQL and Kafka killed under it, the session still applied every
    stored bar once, in order, and holds what a backtest of those bars holds."""
    session, replayed = chaos_run.session, chaos_run.replayed
    fields = ("side", "quantity", "entry_price", "exit_price", "fees", "pnl", "exit_reason")

    def closed(trades: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (moment(t["entry_time"]), moment(t["exit_time"]), *(t[f] for f in fields))
            for t in trades
            if not t.get("is_open")
        ]

    stored = {ts for ts in chaos_run.history if ts >= min(chaos_run.session_bars)}
    unplotted = {
        ts: chaos_run.accepted_bars.get(ts, "answer lost")
        for ts in sorted(stored - chaos_run.session_bars)
    }
    problems = []
    if session["status"] != "running" or session["error"] is not None:
        problems.append(f"status {session['status']}: {session['error']}")
    if session["bars_applied"] != chaos_run.session_expected_bars:
        problems.append(
            f"{session['bars_applied']} bars applied of {chaos_run.session_expected_bars} stored"
        )
    if unplotted:
        problems.append(f"stored bars missing from its equity curve (push phase): {unplotted}")
    if replayed["status"] != "completed":
        problems.append(f"the backtest of its bars did not complete: {replayed}")
    elif session["equity"] != replayed["summary"]["metrics"]["final_equity"]:
        problems.append(
            f"equity {session['equity']}, the backtest's "
            f"{replayed['summary']['metrics']['final_equity']}"
        )
    if closed(chaos_run.session_trades) != closed(chaos_run.replayed_trades):
        problems.append(
            f"closed trades differ: {len(closed(chaos_run.session_trades))} in the session, "
            f"{len(closed(chaos_run.replayed_trades))} in the backtest"
        )
    assert not problems, (
        f"session {session['id']} ({session['gaps']} gaps, {session['corrections']} "
        "corrections):\n" + "\n".join(problems)
    )
