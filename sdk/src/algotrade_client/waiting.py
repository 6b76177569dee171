"""Waiting for a job of the platform (an import, a backtest) to finish, by polling it."""

from __future__ import annotations

import time
from collections.abc import Callable

from algotrade_client.calls import JSON, Flow, Sleep

Progress = Callable[[JSON], None]
"""Called with each status read while waiting (the first one included)."""


def wait_for(
    read: Callable[[], Flow[JSON]],
    finished: Callable[[JSON], bool],
    *,
    what: str,
    first: JSON | None = None,
    progress: Progress | None = None,
    poll: float = 0.5,
    timeout: float = 600.0,
) -> Flow[JSON]:
    """Read the status until ``finished(status)``; that status. ``first`` is a status already
    in hand (a submission's answer). `TimeoutError` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status = first if first is not None else (yield from read())
    while True:
        if progress is not None:
            progress(status)
        if finished(status):
            return status
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{what} did not finish within {timeout:g} s (last: {_brief(status)})"
            )
        yield Sleep(poll)
        status = yield from read()


def _brief(status: JSON) -> str:
    state = status.get("status") or status.get("state")
    progress = status.get("progress")
    return f"{state}, progress {progress}" if progress is not None else str(state)
