"""Stopping a service's background loops (monitors, subscriptions) reliably at shutdown.

Cancelling is not always enough: a client library that catches a ``CancelledError`` mid-call
leaves the loop running, and the app's shutdown then waits for it until its timeout. A loop
that also watches a stop flag ends at its next turn either way.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[None], stop: asyncio.Event, within: float = 5.0) -> None:
    """Stop a background loop that watches ``stop``: flag it, cancel it, and wait for it at
    most ``within`` seconds (logging, not raising, if it does not end)."""
    stop.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        logger.warning("%s did not stop within %.0f s", task.get_name(), within)
    elif not task.cancelled() and task.exception() is not None:
        logger.warning("%s ended with %r", task.get_name(), task.exception())
