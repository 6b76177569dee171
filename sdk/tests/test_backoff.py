"""`Backoff`: the reconnect delays."""

from __future__ import annotations

import random

from algotrade_sdk.backoff import Backoff


def test_delays_double_up_to_the_cap_within_the_jitter_and_start_over_after_reset() -> None:
    plain = Backoff(0.5, 4.0, jitter=0.0)
    assert [plain.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    plain.reset()
    assert plain.next_delay() == 0.5

    jittered = Backoff(1.0, 8.0, jitter=0.5, rng=random.Random(7))
    delays = [jittered.next_delay() for _ in range(200)]
    ceilings = [1.0, 2.0, 4.0] + [8.0] * 197
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len({round(d, 6) for d in delays[3:]}) > 100  # spread, not one value
