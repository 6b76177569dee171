"""Reading Beta1's SQLite database: every row, cleaned, or skipped with a reason.

Beta1's data is messy: times in four spellings, sides in four, NULLs where a value belongs,
JSON that does not parse, rows whose parent is gone. Each row read here becomes either a
cleaned row (with flags naming what was repaired) or a `Skip` naming why it cannot move. Owner
ids are still Beta1's: the runner swaps in Beta2's as the users are imported.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from algotrade.bars import TIMEFRAMES
from algotrade.beta1 import EquityPoint, Kind, TradeRecord
from algotrade.epoch import datetime_from_seconds, ms_from_datetime, ms_from_seconds
from api_gateway.beta1 import stand_in_email
from api_gateway.schemas import normalise_email

TABLES: Final[dict[Kind, str]] = {
    "user": "users",
    "strategy": "strategies",
    "session": "forward_test_sessions",
    "trade": "session_trades",
    "backtest": "backtest_results",
}

TIMEFRAME_SPELLINGS: Final = {
    **{tf: tf for tf in TIMEFRAMES},
    **{tf.upper(): tf for tf in TIMEFRAMES},
    "1": "1m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "240": "4h",
    "1440": "1d",
    "M1": "1m",
    "M5": "5m",
    "M15": "15m",
    "M30": "30m",
    "H1": "1h",
    "H4": "4h",
    "D1": "1d",
    "D": "1d",
}
SIDES: Final[dict[str, Literal["long", "short"]]] = {
    "buy": "long",
    "long": "long",
    "sell": "short",
    "short": "short",
}


@dataclass(frozen=True)
class Skip:
    kind: Kind
    legacy_id: str
    reason: str
    code: str  # the reason's category: user_missing, session_missing, trade_unreadable


@dataclass
class Beta1User:
    legacy_id: int
    username: str
    email: str
    password_hash: str | None
    created_at: datetime | None
    is_active: bool
    flags: list[str] = field(default_factory=list)


@dataclass
class Beta1Strategy:
    legacy_id: int
    user_id: int
    name: str
    description: str
    graph_json: str | None
    created_at: datetime | None
    updated_at: datetime | None
    deleted: bool
    flags: list[str] = field(default_factory=list)


@dataclass
class Beta1Session:
    legacy_id: str
    user_id: int
    strategy_id: int | None
    symbol: str
    timeframe: str
    status: str
    initial_capital: float
    current_capital: float | None
    started_at: datetime | None
    stopped_at: datetime | None
    settings: dict[str, Any]
    trades: list[TradeRecord] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Beta1Backtest:
    legacy_id: int
    user_id: int
    strategy_id: int | None
    symbol: str
    timeframe: str
    start_ms: int | None
    end_ms: int | None
    initial_capital: float
    final_capital: float | None
    total_return: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    num_trades: int | None
    trades: list[TradeRecord]
    equity: list[EquityPoint]
    created_at: datetime | None
    flags: list[str] = field(default_factory=list)


@dataclass
class Beta1Data:
    read: dict[Kind, int]
    users: list[Beta1User]
    strategies: list[Beta1Strategy]
    sessions: list[Beta1Session]
    backtests: list[Beta1Backtest]
    skipped: list[Skip]


def parse_time(value: object) -> datetime | None:
    """A Beta1 time (ISO-8601 with or without ``Z``, ``YYYY-MM-DD HH:MM:SS``, or epoch
    seconds, as text or a number) as an aware UTC datetime; None when it is none of these."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if not text:
        return None
    try:
        return _from_epoch(float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return datetime_from_seconds(seconds)
    except (OverflowError, OSError, ValueError):
        return None


def to_ms(moment: datetime | None) -> int | None:
    return None if moment is None else ms_from_datetime(moment)


def parse_ms(value: object) -> int | None:
    """`parse_time` as epoch milliseconds; whole epoch seconds (most of Beta1's equity curves)
    skip the datetime on the way."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**11:
        return ms_from_seconds(value)
    return to_ms(parse_time(value))


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json(text: object) -> tuple[Any, str | None]:
    """Parsed JSON, or None with the reason it could not be read."""
    if text is None:
        return None, "NULL"
    try:
        return orjson.loads(str(text)), None
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({exc})"


def read_trade(row: dict[str, Any], legacy_id: int) -> TradeRecord | str:
    """One Beta1 trade, cleaned; or the reason it cannot be kept."""
    side = SIDES.get(str(row.get("side") or "").strip().casefold())
    if side is None:
        return f"side {row.get('side')!r} is none of BUY, SELL, long, short"
    quantity, entry_price = _number(row.get("quantity")), _number(row.get("entry_price"))
    entry = parse_time(row.get("entry_time"))
    if quantity is None or entry_price is None or entry is None:
        return "no quantity, entry price or entry time"
    exit_price, exit_at = _number(row.get("exit_price")), parse_time(row.get("exit_time"))
    pnl = _number(row.get("pnl"))
    flags: list[str] = []
    if (exit_price is None) != (exit_at is None):
        flags.append("exit price or exit time missing: kept as an open position")
        exit_price = exit_at = None
    if exit_price is not None and pnl is None:
        sign = 1.0 if side == "long" else -1.0
        pnl = (exit_price - entry_price) * quantity * sign
        flags.append("P&L missing in Beta1: computed from prices and quantity")
    return TradeRecord(
        legacy_id=legacy_id,
        side=side,
        quantity=quantity,
        entry_price=entry_price,
        exit_price=exit_price,
        entry_ms=to_ms(entry) or 0,
        exit_ms=to_ms(exit_at),
        pnl=pnl if exit_price is not None else None,
        flags=tuple(flags),
    )


def _rows(db: sqlite3.Connection, table: str) -> Iterator[dict[str, Any]]:
    cursor = db.execute(f"SELECT * FROM {table} ORDER BY rowid")  # noqa: S608 (fixed names)
    names = [c[0] for c in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


def read_beta1(path: Path) -> Beta1Data:
    """Every row of the Beta1 database at ``path``, cleaned or skipped (opened read-only)."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return _read(db)
    finally:
        db.close()


def _read(db: sqlite3.Connection) -> Beta1Data:
    read: dict[Kind, int] = dict.fromkeys(TABLES, 0)  # type: ignore[arg-type]
    skipped: list[Skip] = []

    users: list[Beta1User] = []
    emails: set[str] = set()
    for row in _rows(db, TABLES["user"]):
        read["user"] += 1
        legacy_id = int(row["id"])
        flags: list[str] = []
        try:
            email = normalise_email(str(row["email"] or ""))
        except ValueError:
            email = stand_in_email(legacy_id)
            flags.append(f"email {row['email']!r} is not usable: log in as {email}")
        if email in emails:
            duplicate, email = email, stand_in_email(legacy_id)
            flags.append(f"email {duplicate} is another Beta1 user's: log in as {email}")
        emails.add(email)
        users.append(
            Beta1User(
                legacy_id=legacy_id,
                username=str(row["username"] or f"user{legacy_id}"),
                email=email,
                password_hash=row["password_hash"] or None,
                created_at=parse_time(row["created_at"]),
                is_active=bool(row["is_active"]) if row["is_active"] is not None else True,
                flags=flags,
            )
        )
    user_ids = {u.legacy_id for u in users}

    strategies: list[Beta1Strategy] = []
    names: set[tuple[int, str]] = set()
    for row in _rows(db, TABLES["strategy"]):
        read["strategy"] += 1
        legacy_id = int(row["id"])
        if row["user_id"] not in user_ids:
            skipped.append(
                Skip(
                    "strategy",
                    str(legacy_id),
                    f"its user {row['user_id']} is not in Beta1",
                    "user_missing",
                )
            )
            continue
        flags = []
        name = str(row["name"] or "").strip()
        if not name:
            name = f"Untitled (Beta1 #{legacy_id})"
            flags.append(f"no name in Beta1: named {name!r}")
        key = (int(row["user_id"]), name.casefold())
        if key in names and not row["is_deleted"]:
            flags.append(f"the user has another strategy named {name!r}")
        elif not row["is_deleted"]:
            names.add(key)
        strategies.append(
            Beta1Strategy(
                legacy_id=legacy_id,
                user_id=int(row["user_id"]),
                name=name,
                description=str(row["description"] or ""),
                graph_json=row["graph_json"],
                created_at=parse_time(row["created_at"]),
                updated_at=parse_time(row["updated_at"]),
                deleted=bool(row["is_deleted"]),
                flags=flags,
            )
        )
    strategy_ids = {s.legacy_id for s in strategies}

    sessions: dict[str, Beta1Session] = {}
    for row in _rows(db, TABLES["session"]):
        read["session"] += 1
        legacy = str(row["id"])
        if row["user_id"] not in user_ids:
            skipped.append(
                Skip(
                    "session", legacy, f"its user {row['user_id']} is not in Beta1", "user_missing"
                )
            )
            continue
        flags = []
        strategy_id = row["strategy_id"]
        if strategy_id not in strategy_ids:
            flags.append(f"its strategy {strategy_id} was not migrated: it cannot be restarted")
            strategy_id = None
        timeframe = TIMEFRAME_SPELLINGS.get(str(row["timeframe"] or "").strip())
        if timeframe is None:
            skipped.append(
                Skip(
                    "session",
                    legacy,
                    f"timeframe {row['timeframe']!r} is none of {', '.join(TIMEFRAMES)}",
                    "timeframe_unknown",
                )
            )
            continue
        capital = _number(row["initial_capital"])
        current = _number(row["current_capital"])
        if capital is None:
            capital = current if current is not None else 0.0
            flags.append(f"no initial capital in Beta1: recorded as {capital}")
        settings, problem = _json(row["settings_json"])
        if problem is not None or not isinstance(settings, dict):
            if row["settings_json"] is not None:
                flags.append(f"settings are {problem or 'not an object'}: defaults used")
            settings = {}
        sessions[legacy] = Beta1Session(
            legacy_id=legacy,
            user_id=int(row["user_id"]),
            strategy_id=strategy_id,
            symbol=str(row["symbol"] or "?")[:32],
            timeframe=timeframe,
            status=str(row["status"] or "unknown"),
            initial_capital=capital,
            current_capital=current,
            started_at=parse_time(row["started_at"]),
            stopped_at=parse_time(row["stopped_at"]),
            settings=settings,
            flags=flags,
        )

    for row in _rows(db, TABLES["trade"]):
        read["trade"] += 1
        legacy_trade = int(row["id"])
        parent = sessions.get(str(row["session_id"]))
        if parent is None:
            skipped.append(
                Skip(
                    "trade",
                    str(legacy_trade),
                    f"its session {row['session_id']} was not migrated (not in Beta1, or its "
                    "user is gone)",
                    "session_missing",
                )
            )
            continue
        trade = read_trade(row, legacy_trade)
        if isinstance(trade, str):
            skipped.append(Skip("trade", str(legacy_trade), trade, "trade_unreadable"))
            continue
        parent.trades.append(trade)

    backtests: list[Beta1Backtest] = []
    for row in _rows(db, TABLES["backtest"]):
        read["backtest"] += 1
        legacy_id = int(row["id"])
        if row["user_id"] not in user_ids:
            skipped.append(
                Skip(
                    "backtest",
                    str(legacy_id),
                    f"its user {row['user_id']} is not in Beta1",
                    "user_missing",
                )
            )
            continue
        backtests.append(_backtest(row, legacy_id, strategy_ids))

    return Beta1Data(read, users, strategies, list(sessions.values()), backtests, skipped)


def _backtest(row: dict[str, Any], legacy_id: int, strategy_ids: set[int]) -> Beta1Backtest:
    flags: list[str] = []
    strategy_id = row["strategy_id"]
    if strategy_id not in strategy_ids:
        flags.append(f"its strategy {strategy_id} was not migrated")
        strategy_id = None
    timeframe = TIMEFRAME_SPELLINGS.get(str(row["timeframe"] or "").strip())
    if timeframe is None:
        timeframe = str(row["timeframe"] or "?")[:8]
        flags.append(f"timeframe {row['timeframe']!r} is not one Beta2 knows")
    trades: list[TradeRecord] = []
    raw_trades, problem = _json(row["trades_json"])
    if problem is not None or not isinstance(raw_trades, list):
        flags.append(f"trades are {problem or 'not a list'}: none kept")
        raw_trades = []
    for index, raw in enumerate(raw_trades):
        trade = read_trade(raw, index + 1) if isinstance(raw, dict) else "not an object"
        if isinstance(trade, str):
            flags.append(f"trade #{index + 1} left out: {trade}")
        else:
            trades.append(trade)
    equity: list[EquityPoint] = []
    raw_equity, problem = _json(row["equity_json"])
    if problem is not None or not isinstance(raw_equity, list):
        flags.append(f"equity curve is {problem or 'not a list'}: none kept")
        raw_equity = []
    unreadable = 0
    for point in raw_equity:
        at, value = (
            (point.get("time"), point.get("equity"))
            if isinstance(point, dict)
            else (point[0], point[1])
            if isinstance(point, list) and len(point) == 2
            else (None, None)
        )
        ts_ms, number = parse_ms(at), _number(value)
        if ts_ms is None or number is None:
            unreadable += 1
        else:
            equity.append(EquityPoint(ts_ms, number))
    if unreadable:
        flags.append(f"{unreadable} equity point(s) unreadable: left out")
    num_trades = row["num_trades"]
    if num_trades is not None and num_trades != len(trades):
        flags.append(f"Beta1 counted {num_trades} trades; {len(trades)} are stored")
    capital = _number(row["initial_capital"])
    if capital is None:
        capital = equity[0].equity if equity else 0.0
        flags.append(f"no initial capital in Beta1: recorded as {capital}")
    return Beta1Backtest(
        legacy_id=legacy_id,
        user_id=int(row["user_id"]),
        strategy_id=strategy_id,
        symbol=str(row["symbol"] or "?")[:32],
        timeframe=timeframe,
        start_ms=to_ms(parse_time(row["start_date"])),
        end_ms=to_ms(parse_time(row["end_date"])),
        initial_capital=capital,
        final_capital=_number(row["final_capital"]),
        total_return=_number(row["total_return"]),
        sharpe_ratio=_number(row["sharpe_ratio"]),
        max_drawdown=_number(row["max_drawdown"]),
        num_trades=num_trades if isinstance(num_trades, int) else None,
        trades=trades,
        equity=sorted(equity, key=lambda p: p.ts_ms),
        created_at=parse_time(row["created_at"]),
        flags=flags,
    )
