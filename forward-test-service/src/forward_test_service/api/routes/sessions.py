"""``/api/sessions``: start, list, read, pause, resume, stop, restart and delete forward-test
sessions; their trades, fills and equity curve."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import Query
from pydantic import ValidationError
from sqlalchemy import Row

from algotrade.bars import normalize_symbol
from algotrade.bounds import OFFSET_MAX as MAX_OFFSET
from algotrade.bounds import PAGE_MAX as MAX_PAGE
from algotrade.downsample import lttb_indices
from algotrade.engine import Plan
from algotrade.errors import Conflict, ValidationFailed
from algotrade.events import ULID_PATTERN as SESSION_ID_PATTERN
from algotrade.simulation import ResolvedConfig
from algotrade.strict_json import api_router
from forward_test_service import terminal
from forward_test_service.api.deps import ReaderDep, ServicesDep, WriterDep
from forward_test_service.api.views import PROBLEMS, ms_time, session_public
from forward_test_service.broker import Account
from forward_test_service.errors import SessionInvalid
from forward_test_service.market import PLATFORM
from forward_test_service.models import ACTIVE
from forward_test_service.schemas import (
    EquityPublic,
    OrdersPage,
    SessionCreate,
    SessionPublic,
    SessionsPublic,
    SessionStatus,
    TerminalPublic,
    TradesPage,
)
from forward_test_service.services import SessionServices

router = api_router(prefix="/api/sessions", tags=["sessions"])


@router.post(
    "",
    status_code=201,
    response_model=SessionPublic,
    summary="Start a forward-test session (warmed up from history, then live)",
    responses=PROBLEMS,
)
async def create_session(
    body: SessionCreate, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    """Validates the strategy version (its compiled plan), parameters, config and that the
    series has bars; applies the plan's warm-up length of the newest bars; then stores the
    session and announces it (``session.started``). Workers apply each new closed bar."""
    return await _start(services, principal.user_id, body)


async def _start(services: SessionServices, user_id: str, body: SessionCreate) -> dict[str, Any]:
    """The one way a session starts: submission checks, the per-user limit, the events."""
    if body.agent_id is not None:  # one of the user's agents, or a 422 naming it
        await services.agents.require_own_agent(user_id, body.agent_id)
    new = await services.submission.session(user_id, body)
    row = await services.sessions.create(new, limit=services.settings.max_running_sessions_per_user)
    return session_public(row)


@router.get("", response_model=SessionsPublic, summary="Your sessions, newest first")
async def list_sessions(
    principal: ReaderDep,
    services: ServicesDep,
    status: SessionStatus | None = None,
    strategy_id: Annotated[str | None, Query(max_length=100)] = None,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=SESSION_ID_PATTERN, description="next_cursor of the previous page"),
    ] = None,
) -> dict[str, Any]:
    if symbol is not None:
        try:
            symbol = normalize_symbol(symbol)
        except ValueError as exc:
            raise ValidationFailed(
                str(exc), errors=[{"loc": ["query", "symbol"], "code": "invalid_symbol"}]
            ) from None
    limit = min(limit, services.settings.sessions_page_max)
    rows = await services.sessions.page(
        principal.user_id,
        limit=limit + 1,
        before=cursor,
        status=status,
        strategy_id=strategy_id,
        symbol=symbol,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    stored = await services.checkpoints.load([r.id for r in rows])
    return {
        "items": [session_public(r, stored[r.id].meta if r.id in stored else None) for r in rows],
        "next_cursor": rows[-1].id if more else None,
    }


@router.get(
    "/{session_id}",
    response_model=SessionPublic,
    summary="Status, position, cash, equity, live metrics, last bar time and lag",
    responses={404: PROBLEMS[404]},
)
async def get_session(
    session_id: str,
    principal: ReaderDep,
    services: ServicesDep,
) -> dict[str, Any]:
    row = await services.sessions.get(principal.user_id, session_id)
    account, meta = await _restored(services, row)
    metrics = None if account is None else account.metrics().as_dict()
    public = session_public(row, meta, metrics)
    if row.mode == "agent":
        mark = None if account is None else account.mark
        public["terminal"] = (await _terminal(services, row)).summary(mark)
    return public


async def _restored(services: SessionServices, row: Row[Any]) -> tuple[Account | None, Any]:
    """The session's account at its latest checkpoint (Redis, else the PostgreSQL copy), and
    that checkpoint's meta (None: the copy in the row is the latest)."""
    stored = (await services.checkpoints.load([row.id])).get(row.id)
    snapshot = stored.snapshot if stored is not None else row.snapshot
    if snapshot is None:
        return None, None
    account = services.broker.restore(
        Plan.from_bytes(row.plan.encode()), ResolvedConfig.model_validate(row.config), snapshot
    )
    return account, stored.meta if stored is not None else None


async def _terminal(services: SessionServices, row: Row[Any]) -> terminal.TerminalAccount:
    """An agent-mode session's account as its terminal executed it."""
    rows = await services.sessions.terminal_of(row.id)
    if await services.orders.settle(rows.orders):  # commands that ended without an ack
        rows = await services.sessions.terminal_of(row.id)
    return terminal.fold(row.capital, rows.orders, rows.deals)


@router.get(
    "/{session_id}/terminal",
    response_model=TerminalPublic,
    summary="Agent mode: the account as the terminal executed the orders, beside the model's",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def get_terminal(
    session_id: str, principal: ReaderDep, services: ServicesDep
) -> dict[str, Any]:
    """Open tickets and closed trades at the terminal's prices and volumes (a position the
    terminal closed by itself, as the trade sync reported it, is ``closed_by: terminal``),
    next to the fill model's position, cash and equity. 409 for a paper session."""
    row = await services.sessions.get(principal.user_id, session_id)
    if row.mode != "agent":
        raise Conflict(f"session {row.id} trades on paper: it has no terminal account")
    account, meta = await _restored(services, row)
    mark = None if account is None else account.mark
    folded = await _terminal(services, row)
    live = session_public(row, meta)
    return {
        "session_id": row.id,
        "account": folded.summary(mark),
        "model": {key: live[key] for key in ("position", "cash", "equity")},
        "open": [
            {
                "ticket": t.ticket,
                "side": "long" if t.side > 0 else "short",
                "volume": t.volume,
                "opened": t.opened,
                "price": t.price,
                "entry_seq": t.entry_seq,
                "entry_time": ms_time(t.entry_ts),
            }
            for t in folded.tickets.values()
        ],
        "trades": [
            {
                "ticket": t.ticket,
                "side": t.side,
                "volume": t.volume,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "pnl": t.pnl,
                "costs": t.costs,
                "entry_seq": t.entry_seq,
                "exit_seq": t.exit_seq,
                "deal": t.deal,
                "entry_time": ms_time(t.entry_ts),
                "exit_time": ms_time(t.exit_ts),
                "closed_by": t.closed_by,
            }
            for t in folded.trades
        ],
    }


async def _control(
    services: SessionServices, user_id: str, session_id: str, action: str
) -> dict[str, Any]:
    row = await services.sessions.get(user_id, session_id)
    snapshot = None
    if action in ("stop", "delete"):
        stored = (await services.checkpoints.load([row.id])).get(row.id)
        if stored is not None:
            snapshot = (stored.snapshot, stored.meta)
    changed = await services.sessions.control(user_id, row.id, action, snapshot=snapshot)
    if action in ("stop", "delete"):
        # Finished: pending points join the copy in PostgreSQL, and the Redis keys expire
        # (a worker that still held the session retires it the same way).
        pending = await services.checkpoints.pending_equity(row.series_key)
        await services.sessions.save_checkpoints([], pending.points)
        await services.checkpoints.drop_equity(row.series_key, pending)
        await services.checkpoints.retire(
            [row.id], services.settings.finished_checkpoint_ttl_seconds
        )
    return session_public(changed, snapshot[1] if snapshot is not None else None)


@router.post(
    "/{session_id}/pause",
    response_model=SessionPublic,
    summary="Pause a running session (bars are not applied while paused; gaps are recorded)",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def pause_session(
    session_id: str, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    return await _control(services, principal.user_id, session_id, "pause")


@router.post(
    "/{session_id}/resume",
    response_model=SessionPublic,
    summary="Resume a paused session",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def resume_session(
    session_id: str, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    return await _control(services, principal.user_id, session_id, "resume")


@router.post(
    "/{session_id}/stop",
    response_model=SessionPublic,
    summary="Stop a running or paused session for good (its results stay readable)",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def stop_session(
    session_id: str, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    return await _control(services, principal.user_id, session_id, "stop")


@router.post(
    "/{session_id}/restart",
    status_code=201,
    response_model=SessionPublic,
    summary="Start a new session with a stopped or failed session's settings",
    responses={
        **PROBLEMS,
        409: {
            **PROBLEMS[409],
            "description": "the session is still running or paused, or its strategy cannot "
            "run (a session migrated from Beta1 whose strategy was not migrated or is a draft), "
            "or the running-session limit is reached",
        },
    },
)
async def restart_session(
    session_id: str, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    """A new session (the old one stays as it is) with the same strategy version, symbol,
    series, timeframe, capital, execution config and parameters (and agent, in agent mode),
    submitted exactly as ``POST /api/sessions`` submits one: the strategy and the series must
    still be readable, it is warmed up from today's history, counts against the limit and
    announces itself."""
    row = await services.sessions.get(principal.user_id, session_id)
    return await _start(services, principal.user_id, _restart_request(row))


@router.delete(
    "/{session_id}",
    status_code=204,
    summary="Delete a session (stopped first if it runs); it then answers 404",
    responses={404: PROBLEMS[404]},
)
async def delete_session(session_id: str, principal: WriterDep, services: ServicesDep) -> None:
    await _control(services, principal.user_id, session_id, "delete")


@router.get(
    "/{session_id}/trades",
    response_model=TradesPage,
    summary="Closed trades, in order",
    responses={404: PROBLEMS[404]},
)
async def get_trades(
    session_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    limit = min(limit, services.settings.trades_page_max)
    total, rows = await services.sessions.trades(
        principal.user_id, session_id, offset=offset, limit=limit
    )
    return {
        "session_id": session_id.upper(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "trades": [_trade(r) for r in rows],
    }


@router.get(
    "/{session_id}/orders",
    response_model=OrdersPage,
    summary="Filled orders (entries, exits, stops), in order",
    responses={404: PROBLEMS[404]},
)
async def get_orders(
    session_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    limit = min(limit, services.settings.trades_page_max)
    total, rows = await services.sessions.orders(
        principal.user_id, session_id, offset=offset, limit=limit
    )
    if await services.orders.settle(rows):  # commands that ended without an ack
        total, rows = await services.sessions.orders(
            principal.user_id, session_id, offset=offset, limit=limit
        )
    return {
        "session_id": session_id.upper(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "orders": [
            {
                "seq": r.seq,
                "time": ms_time(r.ts),
                "side": r.side,
                "quantity": r.quantity,
                "price": r.price,
                "fee": r.fee,
                "reason": r.reason,
                "agent": None
                if r.agent_state is None and r.command_id is None
                else {
                    "command_id": r.command_id,
                    "state": r.agent_state,
                    "ticket": r.agent_ticket,
                    "price": r.agent_price,
                    "volume": r.agent_volume,
                    "error": r.agent_error,
                },
            }
            for r in rows
        ],
    }


@router.get(
    "/{session_id}/equity",
    response_model=EquityPublic,
    summary="The equity curve at each applied bar's close, down-sampled for charts (LTTB)",
    responses={404: PROBLEMS[404]},
)
async def get_equity(
    session_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    points: Annotated[int, Query(ge=10, le=MAX_PAGE)] = 1000,
) -> dict[str, Any]:
    """At most ``points`` points chosen by Largest-Triangle-Three-Buckets on the equity, so
    peaks and troughs survive."""
    row = await services.sessions.get(principal.user_id, session_id)
    stored = await services.sessions.equity(row.id)
    ts, equity, position = stored["ts"], stored["equity"], stored["position"]
    pending = (await services.checkpoints.pending_equity(row.series_key, [row.id])).points.get(
        row.id, []
    )
    if pending:  # points not yet copied: newer, or the same again (a copy in flight)
        extra = np.asarray(pending, dtype=np.float64).reshape(-1, 3)
        ts = np.concatenate((ts, extra[:, 0].astype(np.int64)))
        equity = np.concatenate((equity, extra[:, 1]))
        position = np.concatenate((position, extra[:, 2]))
        # The last copy of each bar time wins; the result is in bar-time order.
        last = len(ts) - 1 - np.unique(ts[::-1], return_index=True)[1]
        ts, equity, position = ts[last], equity[last], position[last]
    points = min(points, services.settings.equity_points_max)
    keep = lttb_indices(ts.astype(np.float64), equity, points)
    return {
        "session_id": row.id,
        "total_points": int(ts.shape[0]),
        "method": "all" if len(keep) == len(ts) else "lttb",
        "points": [
            {"ts": ms_time(t), "equity": e, "position": q}
            for t, e, q in zip(
                ts[keep].tolist(), equity[keep].tolist(), position[keep].tolist(), strict=True
            )
        ],
    }


def _restart_request(row: Row[Any]) -> SessionCreate:
    """The request that starts ``row`` again; 409 when it is active or cannot run."""
    if row.status in ACTIVE:
        raise Conflict(
            f"session {row.id} is {row.status}; stop it before starting it again",
            errors=[
                {
                    "loc": ["path", "session_id"],
                    "code": f"session_{row.status}",
                    "message": f"a {row.status} session cannot restart",
                }
            ],
        )
    if row.strategy_id is None or row.strategy_version is None or row.plan_id is None:
        why = (
            "its Beta1 strategy was not migrated"
            if row.strategy_id is None
            else f"strategy {row.strategy_id} version {row.strategy_version} is a draft "
            "migrated from Beta1 (fix it in the editor, then start a session of the new version)"
        )
        raise Conflict(
            f"session {row.id} cannot restart: {why}",
            errors=[
                {
                    "loc": ["path", "session_id"],
                    "code": "no_runnable_strategy",
                    "message": f"the session has no strategy that can run: {why}",
                }
            ],
        )
    beta1 = (row.summary or {}).get("beta1") or {}
    # The series it followed: its owner's, or the platform's ("" in the row); a Beta1 session
    # whose series was not found at import resolves as a new one would.
    owner = row.owner or (None if beta1 and not beta1.get("series_found") else PLATFORM)
    try:
        return SessionCreate.model_validate(
            {
                "strategy_id": row.strategy_id,
                "version": row.strategy_version,
                "symbol": row.symbol,
                "timeframe": row.timeframe,
                "owner": owner,
                "capital": float(row.capital),
                "config": row.config.get("config", row.config),
                "params": {name: float(value) for name, value in (row.params or {}).items()},
                "mode": row.mode,
                "agent_id": row.agent_id,
                "agent_symbol": row.agent_symbol if row.agent_id else None,
            }
        )
    except ValidationError as exc:  # a migrated session's Beta1 values today's rules refuse
        raise SessionInvalid(
            f"session {row.id} cannot restart: its settings are not valid for a new session",
            errors=[
                {
                    "loc": ["session", *map(str, e["loc"])],
                    "code": e["type"],
                    "message": e["msg"],
                }
                for e in exc.errors()
            ],
        ) from None


def _trade(r: Row[Any]) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "side": r.side,
        "entry_time": ms_time(r.entry_ts),
        "exit_time": ms_time(r.exit_ts),
        "entry_price": r.entry_price,
        "exit_price": r.exit_price,
        "quantity": r.quantity,
        "pnl": r.pnl,
        "fees": r.fees,
        "exit_reason": r.exit_reason,
    }
