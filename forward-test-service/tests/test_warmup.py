"""The live engine's warm-up: the kernels a first session needs are loaded by it."""

from __future__ import annotations

from forward_test_service.warmup import warm_up


def test_warm_up_runs_a_session_through_entry_exit_snapshot_and_restore() -> None:
    seconds = warm_up()
    assert seconds >= 0.0
    # Loaded now (from the cache, or compiled): a second run costs no compilation.
    assert warm_up() < max(seconds, 1.0)
