"""The command line's start-up: ``algotrade --help`` as a new process, median and p90, next to
a bare ``python -c pass`` (the interpreter alone) and ``import typer`` measured the same way."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np

RUNS = 15


def timed(argv: list[str]) -> list[float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return samples


def line(name: str, samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"{name}: median {np.median(ms):.0f} ms, p90 {np.percentile(ms, 90):.0f} ms (n={RUNS})"


def main() -> None:
    python = timed([sys.executable, "-c", "pass"])
    typer_only = timed([sys.executable, "-c", "import typer"])
    help_ = timed([sys.executable, "-m", "algotrade_devstack.cli", "--help"])
    lint_help = timed([sys.executable, "-m", "algotrade_devstack.cli", "strategy", "--help"])
    print(line("python -c pass (baseline)", python))
    print(line("python -c 'import typer'", typer_only))
    print(line("algotrade --help", help_))
    print(line("algotrade strategy --help", lint_help))
    print(
        f"algotrade --help over the bare interpreter: "
        f"+{(statistics.median(help_) - statistics.median(python)) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
