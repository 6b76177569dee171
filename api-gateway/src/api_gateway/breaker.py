"""A circuit breaker per upstream: stop sending requests to a service that keeps failing.

Closed: requests flow; ``failure_threshold`` consecutive failures, of requests from at least
``min_callers`` different callers, open it (so no single user, whatever they send, can cut a
service off from everyone else). Open: requests fail
fast with 503 until ``cooldown_seconds`` have passed. Half-open: one trial request goes through;
its success closes the breaker, its failure opens it again. A trial that never reports (the
client went away) is given up after another cool-down, so the breaker cannot stick half-open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]


class CircuitOpen(Exception):
    """The breaker refused the request; ``retry_after`` seconds until it will try again."""

    def __init__(self, upstream: str, retry_after: float) -> None:
        super().__init__(f"{upstream} is failing; not forwarding for {retry_after:.1f}s")
        self.upstream = upstream
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        min_callers: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._min_callers = min_callers
        self._callers: set[str] = set()
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._cooldown:
            return "open"
        return "half_open"

    def before_request(self) -> None:
        """Raise `CircuitOpen` unless a request may go to the upstream now."""
        if self._opened_at is None:
            return
        now = self._clock()
        reopen_at = self._opened_at + self._cooldown
        if now < reopen_at:
            raise CircuitOpen(self.name, reopen_at - now)
        trial = self._trial_started_at
        if trial is not None and now - trial < self._cooldown:
            raise CircuitOpen(self.name, trial + self._cooldown - now)
        self._trial_started_at = now

    def record_success(self) -> None:
        if self._opened_at is not None:
            logger.info("circuit to %s closed again", self.name)
        self._failures = 0
        self._callers.clear()
        self._opened_at = None
        self._trial_started_at = None

    def record_failure(self, caller: str = "") -> None:
        """A failed request (timeout, connection error, 5xx) made for ``caller``."""
        self._failures += 1
        self._callers.add(caller)
        enough = self._failures >= self._threshold and len(self._callers) >= self._min_callers
        if self._opened_at is not None or enough:
            if self._opened_at is None:
                logger.warning(
                    "circuit to %s opened after %d consecutive failures", self.name, self._failures
                )
            self._opened_at = self._clock()
            self._trial_started_at = None
