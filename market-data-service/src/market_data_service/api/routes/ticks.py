"""``POST /api/market/ticks``: an agent's ticks, aggregated into 1m bars of the caller's series."""

from __future__ import annotations

from typing import Any

from algotrade import epoch
from algotrade.errors import ValidationFailed
from algotrade.problems import PROBLEM_JSON
from algotrade.strict_json import api_router
from market_data_service.api.deps import OwnerDep, ServicesDep, WriterDep, dependency_errors
from market_data_service.owners import public_owner
from market_data_service.schemas import TicksPush, TicksResult
from market_data_service.ticks import ticks_from_models

router = api_router(prefix="/api/market", tags=["ticks"])

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


@router.post(
    "/ticks",
    response_model=TicksResult,
    summary="Push ticks; they become 1m bars of your own series (idempotent by tick id)",
    responses={
        400: {"description": "malformed JSON", **_PROBLEM},
        403: {"description": "``owner`` names data you may read but not write", **_PROBLEM},
        404: {"description": "``owner`` names data invisible to you", **_PROBLEM},
        413: {"description": "body too large", **_PROBLEM},
        422: {"description": "a bad field (nothing was applied)", **_PROBLEM},
        503: {"description": "Redis is unreachable (nothing was applied)", **_PROBLEM},
    },
)
async def push_ticks(
    body: TicksPush, principal: WriterDep, market: ServicesDep, owner: OwnerDep
) -> TicksResult:
    """Aggregate ticks into 1m bars of your own series, by the rule exchange trades follow
    (open: first by time, close: last by time, volume: sum of sizes). A minute closes when a
    tick of a later minute arrives, or once the clock is ``TICK_CLOSE_GRACE_SECONDS`` past its
    end; it is then stored like a pushed 1m bar (history, window, ``market.bars`` event),
    once. Ticks of a closed minute are counted as ``late`` and not applied; a tick whose
    ``id`` the open minute has seen is a duplicate. See docs/market-data.md, Pushing ticks."""
    settings = market.settings
    horizon = int((market.ticks.now() + settings.tick_max_future_seconds) * epoch.MS_PER_SECOND)
    ahead = [i for i, tick in enumerate(body.ticks) if tick.ts_ms > horizon]
    if ahead:
        message = f"more than {settings.tick_max_future_seconds:g} s ahead of the server's clock"
        raise ValidationFailed(
            f"ticks[{ahead[0]}].ts: {message}",
            errors=[
                {"loc": ["body", "ticks", i, "ts"], "code": "ts_in_future", "message": message}
                for i in ahead[:100]
            ],
        )
    with dependency_errors():
        target = await market.directory.resolve_write(principal, [body.symbol], owner)
    with dependency_errors("the tick store"):
        outcome = await market.ticks.push(
            target, body.symbol, ticks_from_models(body.ticks), user_id=principal.user_id
        )
    return TicksResult(
        symbol=body.symbol,
        owner=public_owner(target),
        accepted=outcome.accepted,
        late=outcome.late,
        duplicates=outcome.duplicates,
        closed_bars=[epoch.datetime_from_seconds(m) for m in outcome.closed],
        open_minute=None
        if outcome.open_minute is None
        else epoch.datetime_from_seconds(outcome.open_minute),
    )
