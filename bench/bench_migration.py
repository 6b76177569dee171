"""Beta1 migration: a realistic Beta1 database moved into a running embedded stack.

Starts the stack as `make run` does, builds a Beta1 `strategies.db` (300 users by default:
~2,100 strategies, 1,500 sessions, 12,000 trades, 900 backtests), then times the command as an
operator runs it: the first run (everything written), a second run (nothing to do), and a
second run with ``--verify`` (every figure recomputed from the target). The baseline, measured
in the same process, is reading and cleaning the source alone: the migration's cost is printed
as a multiple of it, with rows per second per Beta1 table.

    python bench/bench_migration.py [--users 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from algotrade_devstack.beta1.source import read_beta1
from algotrade_testkit.beta1_db import build_beta1_db
from algotrade_testkit.stack import start_stack

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "algotrade_devstack.cli", "migrate", "beta1"]


def timed_run(source: Path, state_dir: Path, *args: str) -> tuple[float, dict[str, object]]:
    report = source.with_name("report.json")
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_BOOTSTRAP"))}
    started = time.perf_counter()
    done = subprocess.run(
        [
            *CLI,
            *("--source", str(source), "--state-dir", str(state_dir), "--report", str(report)),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"migrate failed ({done.returncode}): {done.stderr[-2000:]}")
    return took, orjson.loads(report.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="repeats of the no-op runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "strategies.db"
        truth = build_beta1_db(source, seed=5, users=args.users)
        print(f"Beta1 database: {truth.counts}")
        reads = []
        for _ in range(5):
            started = time.perf_counter()
            read_beta1(source)
            reads.append(time.perf_counter() - started)
        baseline = statistics.median(reads)
        print(f"baseline, read and clean the source: median {baseline * 1000:,.0f} ms (5 runs)")

        stack = start_stack(root / "stack", cwd=REPO)
        try:
            print(f"embedded stack ready after {stack.ready_after:.1f}s")
            first, report = timed_run(source, stack.state_dir)
            rows = sum(int(t["read"]) for t in report["tables"].values())  # type: ignore[attr-defined]
            print(
                f"first run: {first:,.1f} s for {rows:,} rows ({rows / first:,.0f} rows/s, "
                f"{first / baseline:,.0f}x the source read)"
            )
            for name, table in report["tables"].items():  # type: ignore[attr-defined]
                print(
                    f"  {name:<22} read {table['read']:>6,}  migrated {table['migrated']:>6,}  "
                    f"skipped {table['skipped']:>4,}  unaccounted {table['unaccounted']}"
                )
            for label, extra in (("second run (nothing to do)", ()), ("--verify", ("--verify",))):
                times = [timed_run(source, stack.state_dir, *extra)[0] for _ in range(args.runs)]
                ordered = sorted(times)
                print(
                    f"{label}: median {statistics.median(times):,.1f} s, max {ordered[-1]:,.1f} s "
                    f"({args.runs} runs; {statistics.median(times) / first:.2f}x the first run)"
                )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
