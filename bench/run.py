"""Run every benchmark in this folder (``make bench``), one process each, and print their figures.

A benchmark is a ``bench_*.py`` script that prints its own medians, percentiles and ratios
against a baseline measured in the same process. ``python bench/run.py engine gateway`` runs only
the named ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(selected: list[str]) -> int:
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    if selected:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in selected]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"--- {script.stem}: exit {code} in {time.perf_counter() - started:.1f}s", flush=True)
        if code != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
