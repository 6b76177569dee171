"""Reading market data: symbols, history pages, latest-N from the window, gaps; resampling;
sharing a symbol you own. Which owner's series a request reads or writes is decided by
`market_data_service.owners`."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import Path, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from algotrade import epoch
from algotrade.bars import TIMEFRAME_SECONDS, Timeframe, normalize_symbol
from algotrade.bounds import PAGE_MAX as MAX_PAGE
from algotrade.columnar import ARROW_STREAM, accepts_arrow, encode_bars
from algotrade.errors import BadRequest, NotFound, ValidationFailed
from algotrade.problems import PROBLEM_JSON
from algotrade.strict_json import api_router
from market_data_service import history, models
from market_data_service.api.deps import (
    OwnerDep,
    ReaderDep,
    ServicesDep,
    SymbolDep,
    WriterDep,
    dependency_errors,
    get_services,
    market_reader,
    path_symbol,
)
from market_data_service.calendars import CalendarError, canonical_calendar, expected_open_times
from market_data_service.models import PLATFORM
from market_data_service.owners import (
    OWNER_MAX_LENGTH,
    OWNER_PATTERN,
    PLATFORM_NAME,
    access_of,
    parse_owner,
    public_owner,
)
from market_data_service.resample import check_derivable
from market_data_service.schemas import (
    BarsPage,
    GapReport,
    LatestBarsPublic,
    ResampleReport,
    ResampleRequest,
    SharePublic,
    SharesPublic,
    SymbolsPublic,
)

router = api_router(prefix="/api/market/symbols", tags=["symbols"])

JSON = "application/json"
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
MAX_GAP_RANGES = 1000


def _dt(ts: int) -> str:
    return epoch.iso_from_seconds(ts)


def _seconds(value: datetime | None) -> int | None:
    """A query/body datetime as epoch seconds; one without an offset is taken as UTC."""
    return None if value is None else epoch.seconds_from_datetime(value)


@router.get(
    "",
    response_model=SymbolsPublic,
    summary="Symbols you may read (yours, shared with you, the platform's) with their timeframes",
)
async def list_symbols(
    principal: ReaderDep,
    market: ServicesDep,
    symbol: Annotated[str | None, Query(description="only this symbol", max_length=64)] = None,
) -> Response:
    """One entry per owner and symbol: a symbol you and the platform both hold is listed
    twice, with ``owner`` and ``access`` telling them apart."""
    only = None
    if symbol is not None:
        try:
            only = normalize_symbol(symbol)
        except ValueError as exc:
            raise ValidationFailed(f"invalid symbol: {exc}") from None
    me = principal.user_id
    with dependency_errors():
        async with market.sessions() as session:
            shared = await market.directory.shared_with(session, principal, only)
            owners = {me, PLATFORM, *(owner for owner, _ in shared)}
            rows = await history.list_series(session, sorted(owners), only)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row.owner not in (me, PLATFORM) and (row.owner, row.symbol) not in shared:
            continue
        grouped.setdefault((row.owner, row.symbol), []).append(
            {
                "timeframe": row.timeframe,
                "first": _dt(row.first_ts),
                "last": _dt(row.last_ts),
                "count": row.bar_count,
            }
        )
    order = {tf: i for i, tf in enumerate(TIMEFRAME_SECONDS)}
    body = {
        "symbols": [
            {
                "symbol": s,
                "owner": public_owner(owner),
                "access": access_of(owner, me),
                "calendar": market.settings.calendar_of(s),
                "timeframes": sorted(tfs, key=lambda t: order[t["timeframe"]]),
            }
            for (owner, s), tfs in grouped.items()
        ]
    }
    return Response(orjson.dumps(body), media_type=JSON)


_LATEST_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "symbol",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "e.g. BTC-USD, btc_usd or SPY",
    },
    {
        "name": "timeframe",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(TIMEFRAME_SECONDS), "default": "1m"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000,
            "default": 100,
            "description": "at most the window capacity (10,000 by default)",
        },
    },
    {
        "name": "owner",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": OWNER_MAX_LENGTH, "pattern": OWNER_PATTERN},
        "description": "whose series: a user id or 'platform'; default: yours, else one "
        "shared with you, else the platform's",
    },
]


@router.get(
    "/{symbol}/latest",
    response_model=LatestBarsPublic,
    summary="Latest N bars (Redis window; history when the window is cold)",
    openapi_extra={"parameters": _LATEST_PARAMETERS},
    # The principal is read in the body (a lane past FastAPI's dependencies), so the
    # platform's problems cannot see that this route needs one: declared here.
    responses={
        401: {"description": "no valid credential"},
        403: {"description": "the credential lacks market:read, or the series is not yours"},
    },
)
async def latest_bars(request: Request) -> Response:
    """The newest ``limit`` bars, oldest first, straight from the Redis window (the stored
    JSON is spliced into the answer, never decoded). A cold window is filled from history
    first and the answer says ``"source": "history"``.

    The hot path of the service: it reads its three parameters itself instead of through
    FastAPI's per-parameter dependency machinery, which costs more than the Redis read.
    ``Server-Timing: app;dur=<ms>`` reports the time spent in this function."""
    started = time.perf_counter()
    market = await get_services(request)
    principal = await market_reader(request)
    symbol = await path_symbol(request.path_params["symbol"])
    query = request.query_params
    asked = query.get("owner")
    if asked is not None and len(asked) > OWNER_MAX_LENGTH:
        raise _query_error("owner", f"at most {OWNER_MAX_LENGTH} characters")
    timeframe = query.get("timeframe", "1m")
    if timeframe not in TIMEFRAME_SECONDS:
        raise _query_error("timeframe", f"use one of {', '.join(TIMEFRAME_SECONDS)}")
    raw_limit = query.get("limit", "100")
    limit = int(raw_limit) if raw_limit.isdigit() and len(raw_limit) < 9 else 0
    capacity = market.settings.window_capacity
    if not 1 <= limit <= capacity:
        raise _query_error("limit", f"must be an integer from 1 to {capacity}")
    with dependency_errors():
        owner = await market.directory.resolve_read(principal, symbol, parse_owner(asked))
        latest = await market.cache.latest(owner, symbol, timeframe, limit)
    body = b'{"symbol":"%s","owner":%s,"timeframe":"%s","source":"%s","bars":[%s]}' % (
        symbol.encode(),
        orjson.dumps(public_owner(owner)),
        timeframe.encode(),
        latest.source.encode(),
        b",".join(latest.payloads),
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Response(body, media_type=JSON, headers={"Server-Timing": f"app;dur={elapsed_ms:.3f}"})


def _query_error(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{name}: {message}",
        errors=[{"loc": ["query", name], "code": f"invalid_{name}", "message": message}],
    )


def _epoch_or(value: datetime | None, default: int) -> int:
    seconds = _seconds(value)
    return default if seconds is None else seconds


def _encode_cursor(owner: str, symbol: str, timeframe: str, after: int) -> str:
    raw = orjson.dumps({"o": owner, "s": symbol, "tf": timeframe, "after": after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str, symbol: str, timeframe: str) -> int:
    """A cursor made for this very series (one of another owner's series is refused)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        after = data["after"]
        ok = (
            data.get("o", PLATFORM) == owner
            and data["s"] == symbol
            and data["tf"] == timeframe
            and type(after) is int
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        ok = False
    if not ok:
        raise BadRequest(
            "invalid cursor for this symbol and timeframe",
            errors=[
                {"loc": ["query", "cursor"], "code": "invalid_cursor", "message": "bad cursor"}
            ],
        )
    return int(after)


@router.get(
    "/{symbol}/bars",
    response_model=BarsPage,
    summary="History, oldest first: JSON pages with an opaque cursor, or a whole range as Arrow",
    responses={
        200: {
            "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            "description": "a page of bars (JSON), or the whole range as an Arrow IPC stream "
            "when ``Accept`` asks for it (see docs/market-data.md)",
        },
        422: {"description": "bad parameters, or a range over the Arrow limit", **_PROBLEM},
    },
)
async def history_bars(
    request: Request,
    symbol: SymbolDep,
    principal: ReaderDep,
    market: ServicesDep,
    owner: OwnerDep,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """JSON pages of at most ``limit`` bars (default). With ``Accept:
    application/vnd.apache.arrow.stream`` the answer is the whole range in one Arrow stream
    (``ts`` epoch ms, float64 prices), or its first ``limit`` bars when ``limit`` is given."""
    with dependency_errors():
        owner = await market.directory.resolve_read(principal, symbol, owner)
    lo = _epoch_or(start, -(2**62))
    hi = _epoch_or(end, 2**62)
    if cursor is not None:
        lo = max(lo, _decode_cursor(cursor, owner, symbol, timeframe) + 1)
    lo = max(lo, -2_208_988_800)
    hi = min(hi, 7_258_118_400)
    if accepts_arrow(request.headers.get("accept")):
        explicit = limit if "limit" in request.query_params else None
        return await _history_arrow(market, owner, symbol, timeframe, lo, hi, explicit)
    if limit > market.settings.history_page_max:
        raise ValidationFailed(f"limit must be at most {market.settings.history_page_max}")
    with dependency_errors():
        async with market.sessions() as session:
            page = await history.read_range(
                session, owner, symbol, timeframe, lo, hi, limit=limit + 1
            )
    more = len(page) > limit
    n = min(len(page), limit)
    seconds = page.seconds()
    stamps = epoch.iso_array_from_seconds(seconds[:n])
    bars = [
        {"ts": s, "open": o, "high": h, "low": lo_, "close": c, "volume": v}
        for s, o, h, lo_, c, v in zip(
            stamps,
            page.open[:n].tolist(),
            page.high[:n].tolist(),
            page.low[:n].tolist(),
            page.close[:n].tolist(),
            page.volume[:n].tolist(),
            strict=True,
        )
    ]
    body = {
        "symbol": symbol,
        "owner": public_owner(owner),
        "timeframe": timeframe,
        "bars": bars,
        "next_cursor": (
            _encode_cursor(owner, symbol, timeframe, int(seconds[n - 1])) if more else None
        ),
    }
    return Response(orjson.dumps(body), media_type=JSON)


async def _history_arrow(
    market: ServicesDep,
    owner: str,
    symbol: str,
    timeframe: str,
    lo: int,
    hi: int,
    limit: int | None,
) -> Response:
    """The range (or its first ``limit`` bars) as one Arrow record batch; a range of more than
    ``history_range_max_bars`` bars is a 422 problem, never a truncated answer."""
    most = market.settings.history_range_max_bars
    if limit is not None and limit > most:
        raise _query_error("limit", f"must be at most {most:,} for an Arrow answer")
    wanted = most if limit is None else limit
    started = time.perf_counter()
    with dependency_errors():
        async with market.sessions() as session:
            page = await history.read_range_packed(
                session, owner, symbol, timeframe, lo, hi, limit=wanted + 1
            )
    read = time.perf_counter()
    headers = {}
    if len(page) > wanted:
        if limit is None:
            raise ValidationFailed(
                f"the range holds more than {most:,} {timeframe} bars; narrow it or read it "
                "in JSON pages",
                errors=[
                    {"loc": ["query", "start"], "code": "range_too_large", "message": str(most)}
                ],
            )
        page = page.take(slice(0, wanted))
        headers["X-Next-Cursor"] = _encode_cursor(
            owner, symbol, timeframe, epoch.seconds_from_ms(int(page.ts[-1]))
        )
    body = encode_bars(page, symbol=symbol, timeframe=timeframe)
    # Where the time goes (history read vs Arrow encoding), for clients and the benchmark.
    encode_ms = (time.perf_counter() - read) * 1000
    headers["Server-Timing"] = f"db;dur={(read - started) * 1000:.1f}, encode;dur={encode_ms:.1f}"
    return Response(body, media_type=ARROW_STREAM, headers=headers)


async def _series_range(
    market: ServicesDep, owner: str, symbol: str, timeframe: str
) -> tuple[int, int]:
    async with market.sessions() as session:
        rows = await history.list_series(session, [owner], symbol)
    for row in rows:
        if row.timeframe == timeframe:
            return row.first_ts, row.last_ts + TIMEFRAME_SECONDS[timeframe]
    raise NotFound(f"no stored {timeframe} bars of {symbol}")


@router.get(
    "/{symbol}/gaps",
    response_model=GapReport,
    summary="Expected bars missing from history, by calendar",
)
async def gap_report(
    symbol: SymbolDep,
    principal: ReaderDep,
    market: ServicesDep,
    owner: OwnerDep,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    calendar: Annotated[
        str | None,
        Query(
            max_length=64,
            description="24x7 (crypto) or an exchange calendar (xnys, xlon, cmes, 24/5, ...); "
            "default: the symbol's configured calendar",
        ),
    ] = None,
) -> Response:
    """Missing = expected by the calendar but not stored. ``24x7`` expects every aligned open
    time (crypto); an exchange calendar (``exchange_calendars`` names, e.g. ``xnys``) expects
    bars in its sessions. Without ``calendar`` the symbol's configured one is used
    (``SYMBOL_CALENDARS``). Without start/end the stored range of the series is checked.
    Provider gaps recorded as unfillable are listed under ``recorded``."""
    try:
        calendar = canonical_calendar(calendar or market.settings.calendar_of(symbol))
    except CalendarError as exc:
        raise ValidationFailed(str(exc)) from None
    with dependency_errors():
        owner = await market.directory.resolve_read(principal, symbol, owner)
        lo, hi = _seconds(start), _seconds(end)
        if lo is None or hi is None:
            first, last = await _series_range(market, owner, symbol, timeframe)
            lo = first if lo is None else lo
            hi = last if hi is None else hi
        if hi <= lo:
            raise ValidationFailed("end must be after start")
        step = TIMEFRAME_SECONDS[timeframe]
        if (hi - lo) // step > market.settings.gap_report_max_bars:
            raise ValidationFailed(
                f"the range spans more than {market.settings.gap_report_max_bars} {timeframe} bars"
            )
        try:
            expected = expected_open_times(calendar, timeframe, lo, hi)
        except CalendarError as exc:
            raise ValidationFailed(str(exc)) from None
        async with market.sessions() as session:
            present = await history.read_timestamps(session, owner, symbol, timeframe, lo, hi)
            recorded_rows = (
                await session.execute(
                    select(models.gaps)
                    .where(
                        models.gaps.c.owner == owner,
                        models.gaps.c.symbol == symbol,
                        models.gaps.c.timeframe == timeframe,
                        models.gaps.c.end_ts > epoch.datetime_from_seconds(lo),
                        models.gaps.c.start_ts < epoch.datetime_from_seconds(hi),
                    )
                    .order_by(models.gaps.c.start_ts)
                    .limit(MAX_GAP_RANGES)
                )
            ).all()
    missing = np.setdiff1d(expected, present, assume_unique=True)
    unexpected = int(np.setdiff1d(present, expected, assume_unique=True).size)
    ranges = _ranges(expected, missing, step)
    body = {
        "symbol": symbol,
        "owner": public_owner(owner),
        "timeframe": timeframe,
        "calendar": calendar,
        "start": _dt(lo),
        "end": _dt(hi),
        "expected": int(expected.size),
        "present": int(present.size) - unexpected,
        "missing": int(missing.size),
        "unexpected": unexpected,
        "gaps": ranges[:MAX_GAP_RANGES],
        "truncated": len(ranges) > MAX_GAP_RANGES,
        "recorded": [
            {
                "start": r.start_ts,
                "end": r.end_ts,
                "reason": r.reason,
                "source": r.source,
                "detail": r.detail,
                "recorded_at": r.recorded_at,
            }
            for r in recorded_rows
        ],
    }
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type=JSON)


def _ranges(
    expected: npt.NDArray[np.int64], missing: npt.NDArray[np.int64], step: int
) -> list[dict[str, Any]]:
    """Runs of consecutive expected bars that are missing (a session break splits a run)."""
    if missing.size == 0:
        return []
    positions = np.searchsorted(expected, missing)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    out = []
    for run in np.split(np.arange(missing.size), breaks):
        first, last = int(missing[run[0]]), int(missing[run[-1]])
        out.append({"start": _dt(first), "end": _dt(last + step), "missing": int(run.size)})
    return out


@router.post(
    "/{symbol}/resample",
    response_model=ResampleReport,
    summary="Derive higher timeframes from a stored lower one (your own series)",
    responses={
        403: {"description": "``owner`` names data you may read but not write", **_PROBLEM},
        404: {"description": "no such series of yours, or ``owner`` invisible", **_PROBLEM},
    },
)
async def resample_symbol(
    symbol: SymbolDep,
    body: ResampleRequest,
    principal: WriterDep,
    market: ServicesDep,
    owner: OwnerDep,
) -> ResampleReport:
    """Builds ``target_timeframes`` from ``source_timeframe`` bars in [start, end) (default:
    everything stored), widened to whole buckets, and stores them like pushed bars:
    idempotent, with corrections published when a derived bar changes. Source and targets
    are series of one owner: yours, or with ``owner=platform`` the platform's (the
    ``market-admin`` role only)."""
    for target in body.target_timeframes:
        check_derivable(body.source_timeframe, target, body.day_timezone)
    with dependency_errors():
        owner = await market.directory.resolve_write(principal, [symbol], owner)
        lo, hi = _seconds(body.start), _seconds(body.end)
        if lo is None or hi is None:
            first, last = await _series_range(market, owner, symbol, body.source_timeframe)
            lo = first if lo is None else lo
            hi = last if hi is None else hi
        results = []
        for target in body.target_timeframes:
            report = await market.resampler.derive(
                owner,
                symbol,
                body.source_timeframe,
                target,
                lo,
                hi,
                day_timezone=body.day_timezone,
                user_id=principal.user_id,
            )
            results.append({"timeframe": target, **vars(report)})
    return ResampleReport.model_validate(
        {"symbol": symbol, "owner": public_owner(owner), "results": results}
    )


UserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=OWNER_MAX_LENGTH,
        pattern=OWNER_PATTERN,
        description="the user to share with",
    ),
]


def _shares_public(owner: str, symbol: str, shares: list[Any]) -> SharesPublic:
    return SharesPublic(
        symbol=symbol,
        owner=owner,
        shares=[SharePublic(user_id=s.user_id, created_at=s.created_at) for s in shares],
    )


@router.get(
    "/{symbol}/shares",
    response_model=SharesPublic,
    summary="Who you shared one of your symbols with",
    responses={404: {"description": "you own no such symbol", **_PROBLEM}},
)
async def list_shares(symbol: SymbolDep, principal: ReaderDep, market: ServicesDep) -> SharesPublic:
    with dependency_errors():
        shares = await market.directory.shares(principal.user_id, symbol)
    return _shares_public(principal.user_id, symbol, shares)


@router.put(
    "/{symbol}/shares/{user_id}",
    response_model=SharePublic,
    summary="Let a user read one of your symbols (read-only; idempotent)",
    responses={
        404: {"description": "you own no such symbol", **_PROBLEM},
        409: {"description": "shared with too many users", **_PROBLEM},
        422: {"description": "a malformed user id, or yourself", **_PROBLEM},
    },
)
async def share_symbol(
    symbol: SymbolDep, user_id: UserId, principal: WriterDep, market: ServicesDep
) -> SharePublic:
    """The user then reads your series of ``symbol`` (with ``owner=<your id>``, or by default
    when they hold no series of that name themselves), never writes it."""
    if user_id == PLATFORM_NAME:
        raise ValidationFailed(
            "the platform reads nothing through shares",
            errors=[{"loc": ["path", "user_id"], "code": "invalid_user", "message": user_id}],
        )
    with dependency_errors():
        share = await market.directory.share(principal.user_id, symbol, user_id)
    return SharePublic(user_id=share.user_id, created_at=share.created_at)


@router.delete(
    "/{symbol}/shares/{user_id}",
    status_code=204,
    summary="Stop sharing one of your symbols with a user",
    responses={404: {"description": "you own no such symbol, or it is not shared", **_PROBLEM}},
)
async def unshare_symbol(
    symbol: SymbolDep, user_id: UserId, principal: WriterDep, market: ServicesDep
) -> Response:
    with dependency_errors():
        await market.directory.unshare(principal.user_id, symbol, user_id)
    return Response(status_code=204)
