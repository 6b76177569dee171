"""``POST /api/market/bars`` (platform push) and ``GET /api/market/health`` (pre-send ping)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from starlette.responses import Response

from algotrade.bars import SYMBOL_PATTERN, TIMEFRAMES
from algotrade.problems import PROBLEM_JSON, problem_response
from algotrade.service import ResourcesDep
from algotrade.strict_json import api_router, body_schema
from market_data_service.api.deps import OwnerDep, ServicesDep, WriterDep, dependency_errors
from market_data_service.batch import parse_push_body
from market_data_service.history import OUTCOME_ACCEPTED, OUTCOME_CORRECTED, OUTCOME_DUPLICATE
from market_data_service.schemas import BarsPush, HealthPublic, PushResult

router = api_router(prefix="/api/market", tags=["bars"])

_STATUS_NAMES = np.empty(3, dtype=object)
_STATUS_NAMES[OUTCOME_DUPLICATE] = "duplicate"
_STATUS_NAMES[OUTCOME_ACCEPTED] = "accepted"
_STATUS_NAMES[OUTCOME_CORRECTED] = "corrected"
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


@router.post(
    "/bars",
    summary="Push a batch of bars (idempotent; per-bar outcome)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body_schema(BarsPush)}},
        }
    },
    responses={
        200: {"model": PushResult, "description": "every bar stored or already stored"},
        207: {"model": PushResult, "description": "some bars rejected; the rest stored"},
        400: {"description": "malformed JSON", **_PROBLEM},
        403: {"description": "``owner`` names data you may read but not write", **_PROBLEM},
        404: {"description": "``owner`` names data invisible to you", **_PROBLEM},
        413: {"description": "body or batch too large", **_PROBLEM},
        422: {"description": "bad envelope", **_PROBLEM},
    },
)
async def push_bars(
    request: Request, principal: WriterDep, market: ServicesDep, owner: OwnerDep
) -> Response:
    """Store up to ``batch_max_bars`` bars as your own series (a symbol new to you becomes
    yours, private). Each bar comes back ``accepted`` (new), ``duplicate`` (already stored,
    nothing republished), ``corrected`` (replaced a stored bar, published as a correction) or
    ``rejected`` (with a reason). Retrying a batch is safe. ``owner=platform`` writes the
    public reference data (the ``market-admin`` role only)."""
    body = await request.body()
    parsed = parse_push_body(body, max_bars=market.settings.batch_max_bars)
    with dependency_errors():
        target = await market.directory.resolve_write(principal, parsed.bars.symbol, owner)
    statuses = np.full(parsed.size, "rejected", dtype=object)
    counts = {"accepted": 0, "duplicate": 0, "corrected": 0}
    if len(parsed.bars):
        with dependency_errors():
            written = await market.ingestor.ingest(
                parsed.bars, owner=target, source="http", user_id=principal.user_id
            )
        statuses[parsed.bars.index] = _STATUS_NAMES[written.outcome]
        counts = written.counts()
    result: dict[str, Any] = {
        "received": parsed.size,
        "counts": {**counts, "rejected": len(parsed.rejections)},
        "statuses": statuses.tolist(),
        "rejections": [r.as_dict() for r in parsed.rejections],
    }
    return Response(
        orjson.dumps(result),
        status_code=207 if parsed.rejections else 200,
        media_type="application/json",
    )


@router.get(
    "/health",
    response_model=HealthPublic,
    summary="Is the service accepting bars? (no credentials needed)",
    responses={503: {"description": "not accepting bars", **_PROBLEM}},
)
async def health(resources: ResourcesDep, market: ServicesDep) -> Response:
    """What a trading platform pings before sending. ``accepting`` needs PostgreSQL (history
    is where a bar becomes durable); Redis or Kafka being down only degrades (windows refill
    and events wait in the outbox). Answers 503 when not accepting."""
    names = [n for n in ("postgres", "redis", "kafka") if n in resources.checks]
    results = await asyncio.gather(
        *(_check(resources.checks[n]) for n in names), return_exceptions=False
    )
    dependencies = dict(zip(names, results, strict=True))
    accepting = dependencies.get("postgres") == "ok"
    degraded = any(v != "ok" for v in dependencies.values())
    settings = market.settings
    body = {
        "status": "degraded" if degraded else "ok",
        "accepting": accepting,
        "dependencies": dependencies,
        "limits": {
            "max_batch_bars": settings.batch_max_bars,
            "max_body_bytes": settings.bars_max_body_bytes,
            "window_capacity": settings.window_capacity,
        },
        "timeframes": list(TIMEFRAMES),
        "symbol_pattern": SYMBOL_PATTERN,
    }
    if not accepting:
        return problem_response(
            503,
            "Not accepting bars",
            "the history store is unreachable; retry later",
            code="not_accepting",
            errors=[{"dependency": k, "message": v} for k, v in dependencies.items() if v != "ok"],
        )
    return Response(orjson.dumps(body), media_type="application/json")


async def _check(check: Any) -> str:
    try:
        await asyncio.wait_for(check(), timeout=1.0)
    except Exception as exc:
        return f"down ({type(exc).__name__})"
    return "ok"
