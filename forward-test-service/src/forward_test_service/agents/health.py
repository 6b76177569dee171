"""An agent's health score, 0-100, and the components it is made of.

Each component is 0-100 and shown beside the score, so that a low score says why:

- ``connection``: the connection state (healthy 100, degraded 60, stale 20, offline 0);
- ``regularity``: how steadily heartbeats arrive (100 at no jitter, 0 at a jitter of one
  promised interval);
- ``latency``: the round trip the agent reports (100 up to 50 ms, 0 at 1 s and beyond; 100 when
  the agent does not report it);
- ``commands``: the share of ended commands that were executed (a rejection counts half: the
  terminal answered, the broker refused; 100 before any command ended);
- ``sync``: 100 minus 20 per trade sync with conflicts among the last five (100 before any),
  and at most 50 while syncs are overdue (none for ``SYNC_OVERDUE_MS`` from a connected agent,
  three times the 30 s the protocol asks for).
"""

from __future__ import annotations

from collections.abc import Mapping

from forward_test_service.agents.schemas import HealthPublic

WEIGHTS: dict[str, float] = {
    "connection": 0.30,
    "regularity": 0.20,
    "latency": 0.15,
    "commands": 0.20,
    "sync": 0.15,
}
CONNECTION_POINTS = {"healthy": 100, "degraded": 60, "stale": 20, "offline": 0}
SYNC_OVERDUE_MS = 90_000


def sync_overdue(
    state: str,
    connection: Mapping[str, str],
    heartbeat_seconds: float,
    last_sync: Mapping[str, object],
    now_ms: float,
) -> bool:
    """A connected agent that has not synced its trades for `SYNC_OVERDUE_MS` (or, never
    having synced, has been heartbeating for that long)."""
    if state not in ("healthy", "degraded"):
        return False
    synced = last_sync.get("synced_at_ms")
    if isinstance(synced, int | float):
        return now_ms - synced > SYNC_OVERDUE_MS
    return int(connection.get("count", 0)) * heartbeat_seconds * 1000 > SYNC_OVERDUE_MS


def _clamp(value: float) -> int:
    return round(min(100.0, max(0.0, value)))


def health(
    state: str,
    connection: Mapping[str, str],
    heartbeat_seconds: float,
    command_stats: Mapping[str, int],
    recent_conflicts: int,
    overdue: bool = False,
) -> HealthPublic:
    expected_ms = heartbeat_seconds * 1000
    jitter = float(connection.get("jitter", 0) or 0)
    latency = connection.get("latency")
    executed = command_stats.get("executed", 0)
    rejected = command_stats.get("rejected", 0)
    ended = executed + rejected + command_stats.get("failed", 0) + command_stats.get("expired", 0)
    components = {
        "connection": CONNECTION_POINTS.get(state, 0),
        "regularity": _clamp(100 * (1 - jitter / expected_ms)) if connection else 0,
        "latency": 100 if latency is None else _clamp(100 * (1000 - float(latency)) / 950),
        "commands": 100 if ended == 0 else _clamp(100 * (executed + rejected / 2) / ended),
        "sync": min(_clamp(100 - 20 * recent_conflicts), 50 if overdue else 100),
    }
    score = _clamp(sum(WEIGHTS[name] * points for name, points in components.items()))
    return HealthPublic(score=score, components=components, weights=WEIGHTS)
