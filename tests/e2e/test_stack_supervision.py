"""`make run` supervises its children: what dies comes back, and `algotrade dev status` says so.

The kills happen on the stack the end-to-end modules share: each test waits until what it
killed is back and doing its work again, so the next test finds the stack whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from algotrade.config import SERVICE_PORTS
from algotrade_devstack.infra import tail

from .conftest import REPO, RunningStack

RESTARTED_WITHIN = 60.0


def child_status(state_dir: Path, name: str) -> dict[str, Any]:
    status = json.loads((state_dir / "status.json").read_text())
    child: dict[str, Any] = next(c for c in status["children"] if c["name"] == name)
    return child


def wait_restarted(stack: RunningStack, before: dict[str, Any], state: str) -> dict[str, Any]:
    """The child's status once it was restarted since ``before``, runs under a new pid and has
    reached ``state``."""
    name = before["name"]
    deadline = time.monotonic() + RESTARTED_WITHIN
    while True:
        child = child_status(stack.state_dir, name)
        if (
            child["restarts"] > before["restarts"]
            and child["pid"] != before["pid"]
            and child["state"] == state
        ):
            return child
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not {state} again: {child}\n{tail(stack.output, 40)}")
        time.sleep(0.25)


def dev_status(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "algotrade_devstack.cli",
            "dev",
            "status",
            "--state-dir",
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )


@pytest.mark.timeout(240)
def test_service_killed_with_sigkill_is_restarted_and_ready_again(stack: RunningStack) -> None:
    before = child_status(stack.state_dir, "strategy-service")
    assert before["state"] == "ready", before
    os.kill(before["pid"], signal.SIGKILL)

    after = wait_restarted(stack, before, "ready")
    assert after["last_exit_code"] == -signal.SIGKILL
    response = httpx.get(f"{stack.url('strategy-service')}/readyz", timeout=5)
    assert response.status_code == 200, response.text
    output = stack.output.read_text()
    assert f"strategy-service (pid {before['pid']}) was killed by SIGKILL" in output
    assert "strategy-service is ready again" in output

    shown = dev_status(stack.state_dir)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in [*SERVICE_PORTS, "backtest-worker-1", "postgres", "redis", "kafka", "s3"]:
        assert name in shown.stdout, shown.stdout
    assert str(after["pid"]) in shown.stdout


@pytest.mark.timeout(240)
def test_worker_killed_with_sigkill_is_restarted(stack: RunningStack) -> None:
    before = child_status(stack.state_dir, "backtest-worker-1")
    log_path = stack.state_dir / "logs" / "backtest-worker-1.log"
    os.kill(before["pid"], signal.SIGKILL)

    after = wait_restarted(stack, before, "running")
    assert after["last_exit_code"] == -signal.SIGKILL
    mark = f"restart {after['restarts']} after exit code -9"
    assert mark in log_path.read_text()  # the log is kept across the restart
    # Back in the consumer group, as the next test's backtests need it.
    deadline = time.monotonic() + RESTARTED_WITHIN
    while "worker consuming" not in log_path.read_text().split(mark, 1)[1]:
        if time.monotonic() > deadline:
            pytest.fail(f"the restarted worker is not consuming:\n{tail(log_path, 40)}")
        time.sleep(0.25)


def test_dev_status_without_a_stack_exits_1(tmp_path: Path) -> None:
    shown = dev_status(tmp_path)
    assert shown.returncode == 1
    assert "no stack is running" in shown.stdout


def test_dev_status_of_a_stack_whose_supervisor_is_gone_exits_1(tmp_path: Path) -> None:
    status = {
        "supervisor_pid": 2**22 + 1,  # above Linux's largest pid_max: never a process
        "supervisor_started": 0.0,
        "phase": "ready",
        "state_dir": str(tmp_path),
        "gateway": "http://127.0.0.1:1",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "ready_after": 1.0,
        "children": [],
        "infrastructure": [],
    }
    (tmp_path / "status.json").write_text(json.dumps(status))
    shown = dev_status(tmp_path)
    assert shown.returncode == 1
    assert "no stack is running" in shown.stdout
