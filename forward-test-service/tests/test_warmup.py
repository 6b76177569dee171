"""The live engine's warm-up: the kernels a first session needs are loaded by it."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.simulation import fills
from forward_test_service.warmup import warm_up


def test_warm_up_loads_the_streaming_executor_and_the_live_fill_step() -> None:
    warm_up()
    # Compiled (or loaded from numba's cache) for the types a session calls them with.
    assert kernels.run_bar.signatures, "the streaming executor's run_bar is not loaded"
    assert fills.live_step.signatures, "the fill model's live_step is not loaded"
