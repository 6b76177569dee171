"""Beta1 → Beta2 as an operator runs it, against the embedded stack: a realistic, messy Beta1
database (`algotrade_testkit.beta1_db`) migrated by `algotrade migrate beta1` as a process,
killed half-way and resumed, verified against the target, run again (nothing changes); then a
migrated user logs in with the old password, finds everything, and backtests a migrated
strategy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from algotrade.engine import Bars
from algotrade_devstack.journey import Account, Journey
from algotrade_devstack.stack import INFRA_ENV_NAMES
from algotrade_testkit.bars import push_rows
from algotrade_testkit.beta1_db import Beta1Truth, build_beta1_db

from .conftest import REPO, RunningStack

CLI = [sys.executable, "-m", "algotrade_devstack.cli", "migrate", "beta1"]
USERS = 40  # with ~7 strategies, 5 sessions (8 trades each) and 3 backtests per user;
# bench/bench_migration.py runs 300
BATCH = 30
# Everything the command must learn from the stack's state dir, not from this process.
INHERITED = (*sorted(INFRA_ENV_NAMES), "INTERNAL_JWT_")


def command_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(INHERITED) and not k.endswith("_SERVICE_URL")
    }


def migrate(
    stack: RunningStack, source: Path, *args: str, timeout: float = 600
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = source.with_name(f"report-{len(list(source.parent.iterdir()))}.json")
    done = subprocess.run(
        [
            *CLI,
            *("--source", str(source), "--state-dir", str(stack.state_dir)),
            *("--report", str(report), "--batch-size", str(BATCH), *args),
        ],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done, orjson.loads(report.read_bytes()) if report.exists() else {}


@pytest.fixture(scope="module")
def beta1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Beta1Truth]:
    path = tmp_path_factory.mktemp("beta1") / "strategies.db"
    return path, build_beta1_db(path, seed=11, users=USERS)


@pytest.fixture(scope="module")
def dry_run(stack: RunningStack, beta1: tuple[Path, Beta1Truth], walk: Journey) -> dict[str, Any]:
    """A dry run before anything is migrated; afterwards no Beta1 user can log in."""
    done, report = migrate(stack, beta1[0], "--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    user, password = login_of(report, beta1[1])
    answer = walk.http.post("/api/auth/login", json={"email": user["login"], "password": password})
    assert answer.status_code == 401, answer.text  # the dry run created no account
    return report


@pytest.fixture(scope="module")
def interrupted(
    stack: RunningStack, beta1: tuple[Path, Beta1Truth], dry_run: dict[str, Any]
) -> list[str]:
    """The first run, killed (SIGKILL) while it imports strategies: the progress it printed."""
    source, _ = beta1
    proc = subprocess.Popen(
        [
            *CLI,
            *("--source", str(source), "--state-dir", str(stack.state_dir)),
            *("--batch-size", str(BATCH)),
        ],
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.strip())
            if line.startswith("strategies ") and int(line.split()[1].split("/")[0]) >= 3 * BATCH:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, (seen, proc.stderr.read() if proc.stderr else "")
    return seen


@pytest.fixture(scope="module")
def resumed(
    stack: RunningStack, beta1: tuple[Path, Beta1Truth], interrupted: list[str]
) -> dict[str, Any]:
    done, report = migrate(stack, beta1[0])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return report


def test_an_interrupted_migration_resumes_and_accounts_for_every_row(
    resumed: dict[str, Any], interrupted: list[str], beta1: tuple[Path, Beta1Truth]
) -> None:
    _, truth = beta1
    tables = resumed["tables"]
    # The killed run committed its users and some strategy batches; the resumed run found them.
    assert tables["users"]["present"] == USERS and tables["users"]["migrated"] == 0
    assert tables["strategies"]["present"] >= 3 * BATCH and tables["strategies"]["migrated"] > 0
    for name, row in tables.items():
        assert row["read"] == truth.counts[name], name
        assert row["unaccounted"] == 0, (name, row)
    assert resumed["lost"] == []
    # Every skip has its reason; every mess kind the generator planted shows up.
    codes = {(s["kind"], s["code"]) for s in resumed["skipped"]}
    assert {("trade", "session_missing"), ("strategy", "user_missing")} <= codes
    assert all(s["reason"] for s in resumed["skipped"])
    drafts = {g["legacy_id"] for g in resumed["graphs"] if g["draft"]}
    assert {str(i) for i in truth.invalid_json_strategy_ids} & drafts
    assert (
        not {str(i) for i in truth.invalid_json_strategy_ids}
        - drafts
        - {s["legacy_id"] for s in resumed["skipped"]}
    )


def test_a_second_run_changes_nothing_and_verify_recomputes_every_figure(
    stack: RunningStack, beta1: tuple[Path, Beta1Truth], resumed: dict[str, Any]
) -> None:
    done, report = migrate(stack, beta1[0], "--verify")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "nothing to do" in done.stderr and "everything matches" in done.stderr
    assert report["verified"] and not report["changed"] and report["lost"] == []
    assert all(row["migrated"] == 0 for row in report["tables"].values())
    assert [(g["legacy_id"], g["checksum"]) for g in report["graphs"]] == [
        (g["legacy_id"], g["checksum"]) for g in resumed["graphs"]
    ]
    assert all(g["verified"] for g in report["graphs"])
    for session in report["sessions"]:
        assert session["target_trades"] == session["source_trades"], session
        assert session["target_pnl"] == pytest.approx(session["source_pnl"], abs=1e-6), session
    for user in report["users"]:
        assert user["target"] == user["source"], user


def test_a_dry_run_writes_nothing_and_predicts_the_run(
    dry_run: dict[str, Any], resumed: dict[str, Any]
) -> None:
    assert dry_run["dry_run"] and dry_run["tables"]["users"]["migrated"] == USERS
    # What it predicted is what the real runs then did (between them).
    for name, row in dry_run["tables"].items():
        real = resumed["tables"][name]
        assert row["migrated"] == real["migrated"] + real["present"], name
        assert row["skipped"] == real["skipped"], name


def login_of(resumed: dict[str, Any], truth: Beta1Truth) -> tuple[dict[str, Any], str]:
    """A migrated user with a known password and at least one runnable strategy."""
    for user in resumed["users"]:
        password = truth.passwords.get(user["username"])
        if password and user["source"].get("strategies", 0) >= 2:
            return user, password
    raise AssertionError("no migrated user with a password and strategies")


@pytest.mark.timeout(300)
def test_a_migrated_user_logs_in_with_the_old_password_and_backtests_a_migrated_strategy(
    walk: Journey, resumed: dict[str, Any], beta1: tuple[Path, Beta1Truth]
) -> None:
    user, password = login_of(resumed, beta1[1])
    account = Account(email=user["login"], password=password)
    walk.login(account)  # Beta1's Werkzeug hash, verified once and rehashed
    walk.login(account)  # ... and the argon2id hash that replaced it

    listed = walk.expect(
        walk.http.get("/api/strategies", params={"limit": 100}, headers=account.headers), 200
    )
    sessions = walk.expect(
        walk.http.get("/api/sessions", params={"limit": 100}, headers=account.headers), 200
    )
    assert len(sessions["items"]) == user["target"].get("sessions", 0)
    assert all(s["status"] == "stopped" for s in sessions["items"])
    runnable = [s for s in listed["data"] if not s["draft"]]
    drafts = [s for s in listed["data"] if s["draft"]]
    assert runnable, listed

    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(0, 600)
    walk.expect(
        walk.http.post(
            "/api/market/bars",
            headers=account.headers,
            json={"symbol": "BETA1-BTC", "timeframe": "4h", "bars": push_rows(bars)},
        ),
        200,
    )
    request = {
        "strategy_id": runnable[0]["id"],
        "version": 1,
        "symbol": "BETA1-BTC",
        "timeframe": "4h",
        "start": "2000-01-01T00:00:00Z",
        "end": "2100-01-01T00:00:00Z",
        "config": {"initial_capital": 10_000.0},
    }
    job = walk.expect(walk.http.post("/api/backtests", headers=account.headers, json=request), 202)
    done = walk.poll(f"/api/backtests/{job['id']}", account, lambda j: j["status"] == "completed")
    assert done["summary"]["metrics"]["final_equity"] > 0
    if drafts:  # a draft cannot run: the answer names the problem instead of a 5xx
        refused = walk.http.post(
            "/api/backtests",
            headers=account.headers,
            json={**request, "strategy_id": drafts[0]["id"]},
        )
        assert refused.status_code in (409, 422), refused.text
        assert "draft" in refused.text
