"""`Backoff`: how long to wait before the next reconnect attempt.

Exponential (``initial``, doubling, capped at ``maximum``) so that a server that is down is not
hammered, with jitter so that the many terminals a restart disconnected at once do not all come
back in the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of ``initial * 2**n`` seconds, capped at ``maximum``, each shortened by a random
    fraction up to ``jitter`` (so a delay lies in ``[(1 - jitter) * d, d]``, never above the
    cap). `reset` after a success starts again from ``initial``."""

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 60.0,
        *,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        if not 0 <= jitter < 1:
            raise ValueError("need 0 <= jitter < 1")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - spreading retries, not a secret
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return ceiling * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.failures = 0
