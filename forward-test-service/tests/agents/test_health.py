"""The health score's components and the overdue-sync rule (pure functions)."""

from __future__ import annotations

from forward_test_service.agents.health import WEIGHTS, health, sync_overdue


def test_a_quiet_healthy_agent_scores_100_and_each_component_pulls_it_down() -> None:
    connection = {"jitter": "0", "latency": "20", "count": "10"}
    perfect = health("healthy", connection, 5, {"executed": 10}, 0)
    assert (perfect.score, set(perfect.components.values())) == (100, {100})
    assert sum(WEIGHTS.values()) == 1.0
    worse = health(
        "degraded",
        {"jitter": "2500", "latency": "1000"},
        5,
        {"executed": 1, "rejected": 2, "failed": 1},
        2,
        overdue=True,
    )
    assert worse.components == {
        "connection": 60,
        "regularity": 50,
        "latency": 0,
        "commands": 50,
        "sync": 50,
    }
    assert worse.score == round(0.3 * 60 + 0.2 * 50 + 0.15 * 0 + 0.2 * 50 + 0.15 * 50)
    assert health("offline", {}, 5, {}, 0).components["regularity"] == 0


def test_syncs_are_overdue_only_for_a_connected_agent_silent_for_90_seconds() -> None:
    now = 1_000_000
    assert sync_overdue("healthy", {}, 5, {"synced_at_ms": now - 91_000}, now)
    assert not sync_overdue("healthy", {}, 5, {"synced_at_ms": now - 30_000}, now)
    assert not sync_overdue("stale", {}, 5, {"synced_at_ms": now - 900_000}, now)
    assert not sync_overdue("healthy", {"count": "3"}, 5, {}, now)  # just connected
    assert sync_overdue("degraded", {"count": "19"}, 5, {}, now)  # 95 s of heartbeats, no sync
