"""Replays: start, inspect, list and stop your playbacks of stored series."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from starlette.responses import Response

from algotrade.problems import PROBLEM_JSON
from algotrade.strict_json import api_router
from market_data_service.api.deps import ReaderDep, ServicesDep, WriterDep, dependency_errors
from market_data_service.owners import parse_owner, public_owner
from market_data_service.replay import parse_symbol
from market_data_service.schemas import ReplayCreate, ReplayPublic, ReplaysPublic

router = api_router(prefix="/api/market/replays", tags=["replays"])
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
ReplayId = Annotated[str, Path(min_length=1, max_length=26)]


def to_public(row: dict[str, Any]) -> ReplayPublic:
    return ReplayPublic(
        id=row["id"],
        state=row["state"],
        symbol=row["symbol"],
        source_owner=public_owner(row["source_owner"]),
        target_symbol=row["target_symbol"],
        timeframe=row["timeframe"],
        speed="max" if row["speed"] is None else row["speed"],
        start=row["start_ts"],
        end=row["end_ts"],
        bars_total=row["bars_total"],
        bars_emitted=row["bars_emitted"],
        last_ts=row["last_ts"],
        message=row["message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


@router.post(
    "",
    status_code=201,
    response_model=ReplayPublic,
    summary="Play a stored series as if live",
    responses={
        404: {
            "description": "no stored bars in that range, or a series invisible to you",
            **_PROBLEM,
        },
        409: {"description": "too many running replays", **_PROBLEM},
    },
)
async def start_replay(body: ReplayCreate, principal: WriterDep, market: ServicesDep) -> Response:
    """Bars of ``symbol``/``timeframe`` in [start, end) are written to ``target_symbol``
    (default ``<SYMBOL>.R<id>``) at ``speed`` simulated seconds per second, through the same
    path as live bars (history, window, ``market.bars``). The source is a series you may read
    (``owner`` as for reads: default yours, else one shared with you, else the platform's);
    the target is always your own."""
    symbol = parse_symbol(body.symbol, "symbol")
    asked = parse_owner(body.owner, loc=("body", "owner"))
    with dependency_errors():
        source_owner = await market.directory.resolve_read(principal, symbol, asked)
        replay_id = await market.replays.start(
            user_id=principal.user_id,
            source_owner=source_owner,
            symbol=symbol,
            timeframe=body.timeframe,
            start=body.start,
            end=body.end,
            speed=None if body.speed == "max" else float(body.speed),
            target_symbol=body.target_symbol,
        )
        row = await market.replays.get(principal.user_id, replay_id)
    return Response(
        to_public(row).model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/market/replays/{replay_id}"},
    )


@router.get("", response_model=ReplaysPublic, summary="Your replays, newest first")
async def list_replays(principal: ReaderDep, market: ServicesDep) -> ReplaysPublic:
    with dependency_errors():
        rows = await market.replays.list_for(principal.user_id)
    return ReplaysPublic(replays=[to_public(r) for r in rows])


@router.get(
    "/{replay_id}",
    response_model=ReplayPublic,
    summary="Status of one of your replays",
    responses={404: {"description": "no such replay of yours", **_PROBLEM}},
)
async def get_replay(
    replay_id: ReplayId, principal: ReaderDep, market: ServicesDep
) -> ReplayPublic:
    with dependency_errors():
        row = await market.replays.get(principal.user_id, replay_id)
    return to_public(row)


@router.post(
    "/{replay_id}/stop",
    response_model=ReplayPublic,
    summary="Stop one of your replays (bars already written stay)",
    responses={404: {"description": "no such replay of yours", **_PROBLEM}},
)
async def stop_replay(
    replay_id: ReplayId, principal: WriterDep, market: ServicesDep
) -> ReplayPublic:
    with dependency_errors():
        row = await market.replays.stop(principal.user_id, replay_id)
    return to_public(row)
