"""How sessions look in API answers, and the problem answers routes document."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from algotrade.bars import TIMEFRAME_SECONDS
from algotrade.problems import PROBLEM_JSON
from forward_test_service.models import RUNNING

PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {}}}
    for status, text in {
        404: "no such session for this user",
        409: "the session's status does not allow this, or the running-session limit is reached",
        422: "invalid request: the problem is named in detail and errors",
        503: "a dependency (strategy or market data service, Redis) is unavailable",
    }.items()
}


def ms_time(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts / 1000, UTC)


def session_public(
    row: Row[Any],
    meta: dict[str, Any] | None = None,
    metrics: dict[str, float | int | None] | None = None,
) -> dict[str, Any]:
    """A session row with its live figures: ``meta`` is the latest checkpoint's (Redis),
    newer than the copy in the row whenever the worker applied bars since."""
    live = meta if meta is not None else (row.summary or {})
    last_ts = live.get("last_ts", row.last_bar_ts)
    lag = None
    if last_ts is not None and row.status == RUNNING:
        closed = last_ts / 1000 + TIMEFRAME_SECONDS[row.timeframe]
        lag = max(0.0, time.time() - closed)
    base = f"/api/sessions/{row.id}"
    config = row.config.get("config", row.config)
    return {
        "id": row.id,
        "status": row.status,
        "strategy_id": row.strategy_id,
        "version": row.strategy_version,
        "plan_id": row.plan_id,
        "params": row.params,
        "symbol": row.symbol,
        "timeframe": row.timeframe,
        "owner": row.owner or None,
        "capital": row.capital,
        "mode": row.mode,
        "agent_id": row.agent_id,
        "agent_symbol": row.agent_symbol,
        "config": {**config, **{k: v for k, v in row.config.items() if k != "config"}},
        "config_id": row.config_id,
        "warmup": row.warmup,
        "warmed_up": bool(live.get("warmed_up", False)),
        "bars_applied": int(live.get("bars_applied", row.bars_applied)),
        "last_bar_time": ms_time(last_ts),
        "lag_seconds": lag,
        "position": float(live.get("position", 0.0)),
        "cash": float(live.get("cash", row.capital)),
        "equity": float(live.get("equity", row.capital)),
        "metrics": metrics,
        "gaps": int(live.get("gaps", 0)),
        "corrections": int(live.get("corrections", 0)),
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "stopped_at": row.stopped_at,
        "links": {
            "self": base,
            "trades": f"{base}/trades",
            "orders": f"{base}/orders",
            "equity": f"{base}/equity",
        },
    }
