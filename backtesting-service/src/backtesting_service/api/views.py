"""How jobs look in API answers, and the problem answers routes document."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from algotrade.problems import PROBLEM_JSON

PROBLEMS = {
    status: {"description": text, "content": {PROBLEM_JSON: {}}}
    for status, text in {
        404: "no such job for this user",
        409: "the job is not in a state that allows this",
        422: "invalid request: the problem is named in detail and errors",
        503: "a dependency (strategy or market data service) is unavailable",
    }.items()
}


def job_public(row: Row[Any]) -> dict[str, Any]:
    base = f"/api/backtests/{'sweeps/' if row.kind == 'sweep' else ''}{row.id}"
    links = {"self": base}
    if row.kind == "sweep":
        links["results"] = f"{base}/results"
    else:
        links |= {"trades": f"{base}/trades", "equity": f"{base}/equity"}
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "progress": row.progress,
        "strategy_id": row.strategy_id,
        "version": row.strategy_version,
        "symbol": row.symbol,
        "timeframe": row.timeframe,
        "start": row.start_at,
        "end": row.end_at,
        "plan_id": row.plan_id,
        "config": row.config,
        "config_id": row.config_id,
        "combinations": row.combinations,
        "chunks_total": row.chunks_total,
        "chunks_done": row.chunks_done,
        "bars": row.bars,
        "summary": row.summary,
        "error": row.error,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "links": links,
    }
