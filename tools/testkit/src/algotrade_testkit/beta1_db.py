"""A deterministic, realistically messy Beta1 database (``strategies.db``) for the migration.

`build_beta1_db` writes the five Beta1 tables the way years of a Flask app left them: several time
formats mixed in every time column, NULLs where a value belongs, strategies whose graph is not
JSON or names a node type or port that does not exist, sessions and trades pointing at rows that
were deleted, equity curves in two shapes. Everything is drawn from one ``random.Random(seed)``,
so a seed always gives the same rows; `Beta1Truth` says which rows carry which defect, so a test
can aim at them without parsing the database again.

Conventions the generator keeps (a migration test may rely on them):

- times are UTC instants written as ``2023-04-05T12:34:56Z``, ``2023-04-05T12:34:56`` (sometimes
  with microseconds), ``2023-04-05 12:34:56`` or epoch seconds as text (``"1680698096"``), and
  now and then with an offset (``2023-04-05T14:34:56+02:00``) or in epoch milliseconds
  (``"1680698096123"``); ``start_date``/``end_date`` of a backtest are sometimes a bare date
  (``2023-04-05``, midnight UTC); inside trades_json and equity_json an epoch is sometimes a
  JSON number;
- a trade's side is BUY/long (any case) for long, SELL/short for short, and its pnl is
  ``(exit - entry) * quantity`` for long, negated for short, rounded to 8 decimals;
- ``total_return`` and ``max_drawdown`` of a backtest are fractions (0.12, not 12 %),
  ``final_capital`` equals the last equity point and ``initial_capital`` + the trades' pnl.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from werkzeug.security import SALT_CHARS, _hash_internal

from algotrade.epoch import Int64Array, datetime_from_ms, iso_array_from_seconds

SCHEMA: Final = """
CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT, password_hash TEXT,
    created_at TEXT, is_active INTEGER);
CREATE TABLE strategies(id INTEGER PRIMARY KEY, user_id INTEGER, name TEXT, description TEXT,
    graph_json TEXT, created_at TEXT, updated_at TEXT, is_deleted INTEGER DEFAULT 0);
CREATE TABLE forward_test_sessions(id TEXT PRIMARY KEY, user_id INTEGER, strategy_id INTEGER,
    symbol TEXT, timeframe TEXT, status TEXT, initial_capital REAL, current_capital REAL,
    started_at TEXT, stopped_at TEXT, settings_json TEXT);
CREATE TABLE session_trades(id INTEGER PRIMARY KEY, session_id TEXT, symbol TEXT, side TEXT,
    quantity REAL, entry_price REAL, exit_price REAL, entry_time TEXT, exit_time TEXT, pnl REAL);
CREATE TABLE backtest_results(id INTEGER PRIMARY KEY, user_id INTEGER, strategy_id INTEGER,
    symbol TEXT, timeframe TEXT, start_date TEXT, end_date TEXT, initial_capital REAL,
    final_capital REAL, total_return REAL, sharpe_ratio REAL, max_drawdown REAL,
    num_trades INTEGER, trades_json TEXT, equity_json TEXT, created_at TEXT);
"""

TABLES: Final = (
    "users",
    "strategies",
    "forward_test_sessions",
    "session_trades",
    "backtest_results",
)

# Each Beta1 node type's (input ports, output ports), as docs/beta1-migration.md lists them.
BETA1_PORTS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "price": ((), ("value",)),
    "constant": ((), ("value",)),
    "sma": (("input",), ("value",)),
    "ema": (("input",), ("value",)),
    "rsi": (("input",), ("value",)),
    "macd": (("input",), ("macd", "signal", "histogram")),
    "bollinger": (("input",), ("upper", "middle", "lower")),
    "atr": (("high", "low", "close"), ("value",)),
    "stochastic": (("high", "low", "close"), ("k", "d")),
    **{
        kind: (("a", "b"), ("result",))
        for kind in (
            "crossover",
            "crossunder",
            "greater_than",
            "less_than",
            "and",
            "or",
            "add",
            "subtract",
            "multiply",
            "divide",
        )
    },
    "not": (("input",), ("result",)),
    "buy_signal": (("trigger",), ()),
    "sell_signal": (("trigger",), ()),
    "stop_loss": ((), ()),
    "take_profit": ((), ()),
}

PBKDF2_METHOD: Final = "pbkdf2:sha256:1000"  # production used more rounds; same format
SCRYPT_METHOD: Final = "scrypt:1024:8:1"
SCRYPT_USERS: Final = 5

BEGIN_MS: Final = 1_609_459_200_000  # 2021-01-01T00:00:00Z, Beta1's first user
NOW_MS: Final = 1_719_705_600_000  # 2024-06-30T00:00:00Z, the snapshot
DAY_MS: Final = 86_400_000

# (symbol, typical price, decimals of a price, decimals of a quantity)
SYMBOLS: Final = (
    ("BTCUSDT", 40_000.0, 2, 6),
    ("ETHUSDT", 2_500.0, 2, 5),
    ("SOLUSDT", 90.0, 3, 3),
    ("AAPL", 170.0, 2, 0),
    ("EURUSD", 1.09, 5, -3),  # thousands of units
)
TIMEFRAME_MS: Final = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": DAY_MS,
    "60": 3_600_000,  # minutes, from the first releases
    "H1": 3_600_000,  # the MetaTrader spelling an importer let through
    "1H": 3_600_000,
}
TIMEFRAMES: Final = ("1m", "5m", "15m", "1h", "1h", "4h", "1d")
ODD_TIMEFRAMES: Final = ("60", "H1", "1H")
ODD_STATUSES: Final = ("crashed", "completed", "Stopped")
LONG_SIDES: Final = ("BUY", "BUY", "buy", "long", "Long", "LONG")
SHORT_SIDES: Final = ("SELL", "SELL", "sell", "short", "Short")
COLUMN_TIME_STYLES: Final = (
    *("sql", "iso_naive", "iso_z", "epoch") * 5,
    "iso_offset",
    "epoch_ms",
)
JSON_TIME_STYLES: Final = ("sql", "iso_naive", "iso_z", "epoch", "epoch_number")
# Node types some Beta1 builds had and Beta2 never will, with the data they stored.
UNKNOWN_TYPES: Final[Mapping[str, dict[str, Any]]] = {
    "ichimoku": {"tenkan_period": 9, "kijun_period": 26, "senkou_period": 52},
    "custom_python": {"code": "def signal(df):\n    return df.close > df.close.shift(1)\n"},
    "vwap": {},
    "supertrend": {"period": 10, "multiplier": 3},
}

UNREADABLE: Final = ("side", "quantity", "entry_price")  # with entry_time, a trade's must-haves

T = TypeVar("T")
Graph = dict[str, Any]
Cell = tuple[str, str, str]  # (table, row id, column)


@dataclass(frozen=True)
class Beta1Truth:
    """What `build_beta1_db` wrote: the plaintext passwords, the row counts and, per kind of
    defect, the ids of the rows that carry it (user, strategy, trade and backtest ids are ints,
    session ids text)."""

    passwords: dict[str, str]  # username -> plaintext, for every user whose hash verifies
    counts: dict[str, int]  # rows per table

    # users
    scrypt_user_ids: frozenset[int]
    null_hash_user_ids: frozenset[int]
    malformed_hash_user_ids: frozenset[int]  # too costly (doc's limits), bcrypt or plain sha1
    inactive_user_ids: frozenset[int]
    null_email_user_ids: frozenset[int]
    empty_email_user_ids: frozenset[int]
    invalid_email_user_ids: frozenset[int]
    duplicate_email_user_ids: frozenset[int]  # every user whose email another has (any case)
    case_colliding_username_user_ids: frozenset[int]  # "JohnDoe" and "johndoe"
    missing_user_ids: frozenset[int]  # referenced by other rows, absent from users

    # strategies
    valid_graph_strategy_ids: frozenset[int]  # maps to a Beta2 graph that validates
    graph_templates: dict[int, str]  # valid strategy id -> its kind ("sma_cross", ...)
    string_param_strategy_ids: frozenset[int]  # valid, with a period stored as "14"
    default_param_strategy_ids: frozenset[int]  # valid, with a param left to the default
    null_graph_strategy_ids: frozenset[int]
    invalid_json_strategy_ids: frozenset[int]
    empty_graph_strategy_ids: frozenset[int]  # JSON, but "{}", "[]" or an empty canvas
    unknown_type_strategy_ids: frozenset[int]
    dangling_node_strategy_ids: frozenset[int]  # a connection to or from a missing node id
    dangling_port_strategy_ids: frozenset[int]  # a connection naming a port the node lacks
    rejected_graph_strategy_ids: frozenset[int]  # maps, but Beta2's validator refuses it
    deleted_strategy_ids: frozenset[int]
    orphan_strategy_ids: frozenset[int]  # user_id names no user
    duplicate_name_strategy_ids: frozenset[int]  # same user, same name
    blank_name_strategy_ids: frozenset[int]  # NULL, "" or whitespace
    missing_strategy_ids: frozenset[int]  # referenced by sessions or backtests, absent

    # forward-test sessions
    odd_status_session_ids: frozenset[str]
    odd_timeframe_session_ids: frozenset[str]
    null_initial_capital_session_ids: frozenset[str]
    null_current_capital_session_ids: frozenset[str]
    invalid_settings_session_ids: frozenset[str]
    null_settings_session_ids: frozenset[str]
    missing_user_session_ids: frozenset[str]
    missing_strategy_session_ids: frozenset[str]
    deleted_strategy_session_ids: frozenset[str]
    draft_strategy_session_ids: frozenset[str]  # its strategy's graph is not valid

    # session trades
    open_trade_ids: frozenset[int]  # exit_price, exit_time and pnl NULL, session running
    null_pnl_trade_ids: frozenset[int]  # closed, pnl NULL
    short_trade_ids: frozenset[int]
    orphan_trade_ids: frozenset[int]  # session_id names no session
    unreadable_trade_ids: frozenset[int]  # side, quantity, entry price or entry time NULL

    # backtest results
    object_equity_backtest_ids: frozenset[int]  # [{"time": ..., "equity": ...}, ...]
    pair_equity_backtest_ids: frozenset[int]  # [[epoch_seconds, equity], ...]
    invalid_equity_backtest_ids: frozenset[int]
    null_equity_backtest_ids: frozenset[int]
    invalid_trades_backtest_ids: frozenset[int]
    null_trades_backtest_ids: frozenset[int]
    num_trades_mismatch_backtest_ids: frozenset[int]
    null_metrics_backtest_ids: frozenset[int]  # total_return, sharpe and drawdown NULL
    missing_user_backtest_ids: frozenset[int]
    missing_strategy_backtest_ids: frozenset[int]

    # time columns
    null_times: frozenset[Cell]  # NULL where the row needs a time
    instants_ms: dict[Cell, int] = field(repr=False)  # every non-NULL time cell, as epoch ms


def build_beta1_db(
    path: Path,
    *,
    seed: int = 1,
    users: int = 300,
    strategies_per_user: float = 7,
    sessions_per_user: float = 5,
    trades_per_session: float = 8,
    backtests_per_user: float = 3,
) -> Beta1Truth:
    """Write a Beta1 database at ``path`` (replacing any file there) and say what is in it.

    The sizes are means: ``users * strategies_per_user`` strategies in all, spread unevenly
    over the users, and so on. The file appears whole or not at all.
    """
    rows = _Generator(random.Random(seed))  # noqa: S311 - reproducible fixtures, not secrets
    rows.users(users)
    rows.strategies(round(users * strategies_per_user))
    rows.sessions(round(users * sessions_per_user), trades_per_session)
    rows.backtests(round(users * backtests_per_user))

    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    connection = sqlite3.connect(partial)
    try:
        connection.executescript(SCHEMA)
        with connection:
            for table in TABLES:
                table_rows = rows.tables[table]
                if table_rows:
                    marks = ", ".join("?" * len(table_rows[0]))
                    connection.executemany(f"INSERT INTO {table} VALUES ({marks})", table_rows)  # noqa: S608
    finally:
        connection.close()
    os.replace(partial, path)
    return rows.truth()


# -- helpers ----------------------------------------------------------------------------------


def _split(
    rng: random.Random, items: Iterable[T], shares: Mapping[str, float]
) -> dict[str, list[T]]:
    """Disjoint random picks: ``shares[label]`` of ``items`` (at least one while any are left)
    per label, in order; ``"rest"`` holds what no label took."""
    pool = list(items)
    rng.shuffle(pool)
    picked: dict[str, list[T]] = {}
    start = 0
    for label, share in shares.items():
        take = min(len(pool) - start, max(1, round(share * len(pool))))
        picked[label] = pool[start : start + take]
        start += take
    picked["rest"] = pool[start:]
    return picked


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _werkzeug_hash(rng: random.Random, method: str, password: str) -> str:
    """``generate_password_hash(password, method)`` with the salt drawn from ``rng``.

    Werkzeug's own function takes its salt from `secrets`, so no two databases would be equal;
    this is the same computation (`_hash_internal`, then ``method$salt$hash``) with a seeded
    salt.
    """
    salt = "".join(rng.choice(SALT_CHARS) for _ in range(16))
    digest, actual_method = _hash_internal(method, salt, password)
    return f"{actual_method}${salt}${digest}"


def _time_text(ms: int, style: str) -> str:
    """``ms`` (UTC) in one of Beta1's spellings; all but ``iso_naive`` and ``epoch_ms`` drop
    the milliseconds."""
    moment: datetime = datetime_from_ms(ms)
    if style == "iso_offset":  # a user's local time, with its offset
        hours = (0, 1, 2, -5, 5.5)[ms // 1000 % 5]
        return moment.astimezone(timezone(timedelta(hours=hours))).isoformat(timespec="seconds")
    if style == "epoch_ms":
        return str(ms)
    if style == "iso_z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "iso_naive":
        return moment.replace(tzinfo=None).isoformat()
    if style == "sql":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == "date":
        return moment.strftime("%Y-%m-%d")
    return str(ms // 1000)


def _json_times(seconds: Int64Array, style: str) -> list[str] | list[int]:
    """`_Generator.json_time` for a whole column at once (equity curves are long)."""
    if style == "epoch_number":
        return list(seconds.tolist())
    if style == "epoch":
        return [str(s) for s in seconds.tolist()]
    stamps: list[str] = iso_array_from_seconds(seconds)  # 2023-04-05T12:34:56Z
    if style == "iso_z":
        return stamps
    if style == "iso_naive":
        return [s[:-1] for s in stamps]
    return [s[:-1].replace("T", " ") for s in stamps]


def _encoded_ms(ms: int, style: str) -> int:
    """The instant ``_time_text(ms, style)`` spells."""
    if style in ("iso_naive", "epoch_ms"):
        return ms
    if style == "date":
        return ms - ms % DAY_MS
    return ms - ms % 1000


def _round_to(value: float, decimals: int) -> float:
    """``value`` rounded to ``decimals`` (negative: to tens, hundreds...), never below one unit."""
    return max(round(value, decimals), 10.0**-decimals)


def _bad_json(rng: random.Random, document: Any) -> str:
    """Text that was meant to hold ``document`` but is not JSON."""
    text = json.dumps(document)
    kind = rng.choice(("truncated", "truncated", "python", "js"))
    if kind == "truncated" and len(text) > 12:
        return text[: rng.randint(5, len(text) - 3)]
    if kind == "python":
        return repr(document)
    return rng.choice(("[object Object]", "undefined", "", "{nodes: []}"))


# -- graphs -----------------------------------------------------------------------------------


class _Canvas:
    """One Beta1 graph being drawn: nodes laid out left to right, ids in one of the styles the
    editor used over the years."""

    def __init__(self, rng: random.Random, allow_strings: bool, allow_defaults: bool) -> None:
        self.rng = rng
        self.style = rng.choice(("numeric", "node", "typed", "typed", "uuid", "dndnode"))
        self.nodes: list[dict[str, Any]] = []
        self.connections: list[dict[str, str]] = []
        self.allow_strings = allow_strings
        self.allow_defaults = allow_defaults
        self.used_string = False
        self.used_default = False
        self._counts: dict[str, int] = {}
        self._rows: dict[int, int] = {}
        self._serial = rng.choice((0, 1, 1, 1, 100))
        self.price = ""
        self.buy = ""

    def new_id(self, kind: str) -> str:
        self._serial += 1
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if self.style == "numeric":
            return str(self._serial)
        if self.style == "node":
            return f"node-{self._serial}"
        if self.style == "typed":
            return f"{kind}_{self._counts[kind]}"
        if self.style == "dndnode":
            return f"dndnode_{self._serial}"
        return _uuid(self.rng)

    def add(self, kind: str, column: int, data: dict[str, Any] | None = None) -> str:
        node_id = self.new_id(kind)
        row = self._rows.get(column, 0)
        self._rows[column] = row + 1
        x: float = 80 + column * 240 + self.rng.randint(-30, 30)
        y: float = 60 + row * 130 + self.rng.randint(-20, 20)
        if self.rng.random() < 0.3:  # dragged by hand
            x, y = x + round(self.rng.random(), 2), y + round(self.rng.random(), 2)
        data = dict(data or {})
        defaultable = {"rsi": "period", "atr": "period", "bollinger": "std_dev"}
        defaultable |= {"stop_loss": "percent", "take_profit": "percent"}
        if self.allow_defaults and kind in defaultable and self.rng.random() < 0.25:
            del data[defaultable[kind]]
            self.used_default = True
        if any(isinstance(value, str) for key, value in data.items() if key != "field"):
            self.used_string = True
        self.nodes.append({"id": node_id, "type": kind, "data": data, "position": {"x": x, "y": y}})
        return node_id

    def wire(self, source: str, source_port: str, target: str, target_port: str) -> None:
        self.connections.append(
            {
                "source": source,
                "sourceHandle": source_port,
                "target": target,
                "targetHandle": target_port,
            }
        )

    def period(self, low: int, high: int) -> int | str:
        value = self.rng.randint(low, high)
        if self.allow_strings and self.rng.random() < 0.15:
            return str(value)
        return value

    def kind_of(self, node_id: str) -> str:
        return str(next(n["type"] for n in self.nodes if n["id"] == node_id))

    def feeding(self, target: str, port: str) -> dict[str, str] | None:
        return next(
            (c for c in self.connections if c["target"] == target and c["targetHandle"] == port),
            None,
        )

    def graph(self) -> Graph:
        nodes = list(self.nodes)
        if self.rng.random() < 0.2:  # reordered by a save from the canvas
            self.rng.shuffle(nodes)
        return {"nodes": nodes, "connections": list(self.connections)}


def _signals(c: _Canvas, buy: tuple[str, str], sell: tuple[str, str] | None) -> None:
    c.buy = c.add("buy_signal", 4)
    c.wire(*buy, c.buy, "trigger")
    if sell is not None:
        exit_node = c.add("sell_signal", 4)
        c.wire(*sell, exit_node, "trigger")


def _binary(c: _Canvas, kind: str, a: tuple[str, str], b: tuple[str, str], column: int = 2) -> str:
    node = c.add(kind, column)
    c.wire(*a, node, "a")
    c.wire(*b, node, "b")
    return node


def _constant(c: _Canvas, value: float) -> tuple[str, str]:
    return c.add("constant", 1, {"value": value}), "value"


def _sma_cross(c: _Canvas) -> None:
    rng = c.rng
    fast_period = rng.randint(3, 30)
    slow_period = rng.randint(fast_period + 5, min(200, fast_period + 150))
    fast_kind, slow_kind = rng.choice((("sma", "sma"), ("ema", "ema"), ("ema", "sma")))
    fast = c.add(fast_kind, 1, {"period": c.period(fast_period, fast_period)})
    slow = c.add(slow_kind, 1, {"period": c.period(slow_period, slow_period)})
    c.wire(c.price, "value", fast, "input")
    c.wire(c.price, "value", slow, "input")
    up = _binary(c, "crossover", (fast, "value"), (slow, "value"))
    down = _binary(c, "crossunder", (fast, "value"), (slow, "value"))
    _signals(c, (up, "result"), (down, "result") if rng.random() < 0.85 else None)


def _rsi_thresholds(c: _Canvas) -> None:
    rng = c.rng
    rsi = c.add("rsi", 1, {"period": c.period(5, 28)})
    c.wire(c.price, "value", rsi, "input")
    oversold = _constant(c, rng.choice((20, 25, 30, 30, 35)))
    overbought = _constant(c, rng.choice((65, 70, 70, 75, 80.0)))
    enter = rng.choice(("less_than", "crossover"))
    low = _binary(c, enter, (rsi, "value"), oversold)
    high = _binary(c, "greater_than", (rsi, "value"), overbought)
    _signals(c, (low, "result"), (high, "result"))


def _macd_cross(c: _Canvas) -> None:
    rng = c.rng
    fast = rng.randint(5, 15)
    data = {
        "fast_period": c.period(fast, fast),
        "slow_period": c.period(fast + rng.randint(6, 30), fast + 30),
        "signal_period": c.period(5, 12),
    }
    macd = c.add("macd", 1, data)
    c.wire(c.price, "value", macd, "input")
    if rng.random() < 0.7:
        up = _binary(c, "crossover", (macd, "macd"), (macd, "signal"))
        down = _binary(c, "crossunder", (macd, "macd"), (macd, "signal"))
    else:
        zero = _constant(c, 0)
        up = _binary(c, "greater_than", (macd, "histogram"), zero)
        down = _binary(c, "less_than", (macd, "histogram"), zero)
    _signals(c, (up, "result"), (down, "result"))


def _bollinger(c: _Canvas) -> None:
    rng = c.rng
    data = {"period": c.period(10, 40), "std_dev": rng.choice((1.5, 2, 2, 2.0, 2.5, 3))}
    bands = c.add("bollinger", 1, data)
    c.wire(c.price, "value", bands, "input")
    enter = _binary(
        c, rng.choice(("less_than", "crossunder")), (c.price, "value"), (bands, "lower")
    )
    exit_band = rng.choice(("upper", "middle"))
    leave = _binary(c, "greater_than", (c.price, "value"), (bands, exit_band))
    _signals(c, (enter, "result"), (leave, "result"))


def _stochastic(c: _Canvas) -> None:
    rng = c.rng
    data = {"k_period": c.period(5, 21), "d_period": c.period(3, 5), "smooth": c.period(1, 5)}
    stoch = c.add("stochastic", 1, data)
    if rng.random() < 0.5:  # else Beta1 fed it from the bar itself
        for port in rng.sample(("high", "low", "close"), rng.randint(1, 3)):
            source = c.price if port == "close" else c.add("price", 0, {"field": port})
            c.wire(source, "value", stoch, port)
    oversold = _binary(c, "less_than", (stoch, "k"), _constant(c, rng.choice((20, 25))))
    turning = _binary(c, "crossover", (stoch, "k"), (stoch, "d"))
    both = _binary(c, "and", (oversold, "result"), (turning, "result"), column=3)
    leave = _binary(c, "greater_than", (stoch, "k"), _constant(c, rng.choice((75, 80))))
    _signals(c, (both, "result"), (leave, "result"))


def _arithmetic(c: _Canvas) -> None:
    rng = c.rng
    fast = c.add("sma", 1, {"period": c.period(5, 20)})
    slow = c.add("ema", 1, {"period": c.period(30, 120)})
    c.wire(c.price, "value", fast, "input")
    c.wire(c.price, "value", slow, "input")
    if rng.random() < 0.5:
        total = _binary(c, "add", (fast, "value"), (slow, "value"))
        middle = _binary(c, "divide", (total, "result"), _constant(c, 2))
        floor = _binary(c, "multiply", (middle, "result"), _constant(c, 0.98), column=3)
        up = _binary(c, "crossover", (c.price, "value"), (middle, "result"), column=3)
        down = _binary(c, "less_than", (c.price, "value"), (floor, "result"), column=3)
    else:
        spread = _binary(c, "subtract", (fast, "value"), (slow, "value"))
        up = _binary(c, "greater_than", (spread, "result"), _constant(c, 0), column=3)
        down = _binary(c, "less_than", (spread, "result"), _constant(c, 0), column=3)
    _signals(c, (up, "result"), (down, "result"))


def _atr_breakout(c: _Canvas) -> None:
    rng = c.rng
    atr = c.add("atr", 1, {"period": c.period(7, 21)})
    if rng.random() < 0.3:
        for port in ("high", "low", "close"):
            source = c.price if port == "close" else c.add("price", 0, {"field": port})
            c.wire(source, "value", atr, port)
    trend = c.add("sma", 1, {"period": c.period(10, 50)})
    c.wire(c.price, "value", trend, "input")
    width = _binary(c, "multiply", (atr, "value"), _constant(c, rng.choice((1.5, 2, 3))))
    band = _binary(c, "add", (trend, "value"), (width, "result"), column=3)
    up = _binary(c, "crossover", (c.price, "value"), (band, "result"), column=3)
    down = _binary(c, "crossunder", (c.price, "value"), (trend, "value"), column=3)
    _signals(c, (up, "result"), (down, "result"))


def _trend_filter(c: _Canvas) -> None:
    rng = c.rng
    rsi = c.add("rsi", 1, {"period": c.period(7, 21)})
    trend = c.add(rng.choice(("sma", "ema")), 1, {"period": c.period(50, 200)})
    c.wire(c.price, "value", rsi, "input")
    c.wire(c.price, "value", trend, "input")
    cheap = _binary(c, "less_than", (rsi, "value"), _constant(c, 30))
    above = _binary(c, "greater_than", (c.price, "value"), (trend, "value"))
    enter = _binary(c, "and", (cheap, "result"), (above, "result"), column=3)
    rich = _binary(c, "greater_than", (rsi, "value"), _constant(c, 70))
    below = c.add("not", 3)
    c.wire(above, "result", below, "input")
    leave = _binary(c, "or", (rich, "result"), (below, "result"), column=3)
    _signals(c, (enter, "result"), (leave, "result"))


TEMPLATES: Final = {
    "sma_cross": _sma_cross,
    "rsi_thresholds": _rsi_thresholds,
    "macd_cross": _macd_cross,
    "bollinger": _bollinger,
    "stochastic": _stochastic,
    "arithmetic": _arithmetic,
    "atr_breakout": _atr_breakout,
    "trend_filter": _trend_filter,
}
TEMPLATE_NAMES: Final = {
    "sma_cross": ("SMA Cross", "Golden cross", "MA crossover", "EMA 9/21"),
    "rsi_thresholds": ("RSI Reversal", "RSI 30/70", "rsi oversold", "RSI mean reversion"),
    "macd_cross": ("MACD Signal Cross", "MACD momentum", "macd"),
    "bollinger": ("Bollinger Bounce", "BB squeeze", "Bandas de Bollinger"),
    "stochastic": ("Stoch Oversold", "Stochastic cross", "Stoch RSI-ish"),
    "arithmetic": ("Mean reversion v2", "MA spread", "Midline strategy"),
    "atr_breakout": ("ATR Breakout", "Volatility breakout", "Keltner-ish"),
    "trend_filter": ("Trend + RSI filter", "Buy the dip 🚀", "Trend follower"),
}
GENERIC_NAMES: Final = ("test", "Untitled Strategy", "My first strategy", "asdf", "BTC scalper")


def _draw(c: _Canvas, template: str) -> None:
    c.price = c.add("price", 0, {"field": "close"})
    TEMPLATES[template](c)
    rng = c.rng
    if rng.random() < 0.4:
        c.add("stop_loss", 4, {"percent": rng.choice((1, 1.5, 2, 3, 5, 10))})
    if rng.random() < 0.35:
        c.add("take_profit", 4, {"percent": rng.choice((2, 3, 4.5, 6, 10, 20))})


def _missing_id(c: _Canvas) -> str:
    existing = {n["id"] for n in c.nodes}
    while (candidate := c.new_id(c.rng.choice(("sma", "rsi", "crossover")))) in existing:
        pass
    return candidate


def _spoil(c: _Canvas, defect: str) -> None:
    """Give a drawn graph one ``defect`` of the kinds `Beta1Truth` lists."""
    rng = c.rng
    if defect == "unknown_type":
        kind = rng.choice(list(UNKNOWN_TYPES))
        odd = c.add(kind, 1, UNKNOWN_TYPES[kind])
        c.wire(c.price, "value", odd, "input")
        confirm = _binary(c, "greater_than", (c.price, "value"), (odd, "value"))
        trigger = c.feeding(c.buy, "trigger")
        assert trigger is not None
        c.connections.remove(trigger)
        both = _binary(c, "and", (trigger["source"], trigger["sourceHandle"]), (confirm, "result"))
        c.wire(both, "result", c.buy, "trigger")
    elif defect == "dangling_node":
        if rng.random() < 0.5:
            rng.choice(c.connections)["source"] = _missing_id(c)
        else:
            source = rng.choice([n["id"] for n in c.nodes if BETA1_PORTS[n["type"]][1]])
            c.wire(source, BETA1_PORTS[c.kind_of(source)][1][0], _missing_id(c), "a")
    elif defect == "dangling_port":
        connection = rng.choice(c.connections)
        if rng.random() < 0.5:
            outputs = BETA1_PORTS[c.kind_of(connection["source"])][1]
            wrong = [p for p in ("output", "out", "result", "value", "macd") if p not in outputs]
            connection["sourceHandle"] = rng.choice(wrong)
        else:
            inputs = BETA1_PORTS[c.kind_of(connection["target"])][0]
            wrong = [p for p in ("in", "input", "a", "b", "source", "trigger") if p not in inputs]
            connection["targetHandle"] = rng.choice(wrong)
    elif defect == "out_of_range":
        keys = ("period", "k_period", "fast_period")
        node = rng.choice([n for n in c.nodes if any(k in n["data"] for k in keys)])
        key = next(k for k in keys if k in node["data"])
        node["data"][key] = rng.choice((0, -14, 10_000))
    elif defect == "missing_trigger":
        trigger = c.feeding(c.buy, "trigger")
        assert trigger is not None
        c.connections.remove(trigger)
    elif defect == "no_entry":
        c.nodes = [n for n in c.nodes if n["id"] != c.buy]
        c.connections = [x for x in c.connections if c.buy not in (x["source"], x["target"])]
    elif defect == "cycle":
        loop = c.add("add", 3)
        c.wire(c.price, "value", loop, "a")
        c.wire(loop, "result", loop, "b")
    else:  # fed_twice: the editor let a second edge onto a connected input
        extra = _binary(c, "greater_than", (c.price, "value"), _constant(c, 1))
        c.wire(extra, "result", c.buy, "trigger")


# -- rows -------------------------------------------------------------------------------------

FIRST: Final = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "nina", "oscar", "peggy", "quentin", "rupert", "sybil", "trent", "ursula", "victor", "wendy",
    "xavier", "yusuf", "zoe", "li", "mei", "raj", "sofia", "joao", "lukas",
)  # fmt: skip
LAST: Final = ("smith", "chen", "garcia", "kim", "mueller", "rossi", "silva", "nguyen", "patel")
HANDLES: Final = ("trader", "crypto", "fx", "quant", "hodl", "scalper", "whale", "algo")
DOMAINS: Final = ("gmail.com", "yahoo.com", "outlook.com", "proton.me", "example.org", "web.de")
DESCRIPTIONS: Final = (
    "Backtested on BTC 1h, works best in trends.",
    "copied from youtube",
    "TODO: add stop loss",
    "Long only. Exits on the opposite cross.",
    "v2 with tighter thresholds",
)


@dataclass
class _StrategyRow:
    id: int
    user_id: int
    created_ms: int
    deleted: bool
    valid: bool


class _Generator:
    """Draws every row from one random stream; `truth` collects the defects as they are made."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tables: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        self.ids: dict[str, set[Any]] = {}
        self.passwords: dict[str, str] = {}
        self.templates: dict[int, str] = {}
        self.null_times: set[Cell] = set()
        self.instants: dict[Cell, int] = {}
        self.user_created: dict[int, int] = {}
        self.strategy_rows: list[_StrategyRow] = []
        self.strategy_by_id: dict[int, _StrategyRow] = {}
        self._pools: dict[str, list[_StrategyRow]] = {}
        self.missing_users: list[int] = []
        self.missing_strategies: list[int] = []
        self.forced_null: dict[str, set[int]] = {}

    def mark(self, kind: str, row_id: Any) -> None:
        self.ids.setdefault(kind, set()).add(row_id)

    def stamp(
        self, table: str, row_id: Any, column: str, ms: int, styles: Sequence[str] = ()
    ) -> str:
        style = self.rng.choice(styles or COLUMN_TIME_STYLES)
        if style in ("iso_naive", "epoch_ms") and self.rng.random() < 0.3:
            ms += self.rng.randint(1, 999)
        self.instants[(table, str(row_id), column)] = _encoded_ms(ms, style)
        return _time_text(ms, style)

    def required_time(
        self, table: str, index: int, row_id: Any, column: str, ms: int, styles: Sequence[str] = ()
    ) -> str | None:
        """A time the row needs, except in the few rows picked to have lost it."""
        if index in self.forced_null.get(f"{table}.{column}", set()):
            self.null_times.add((table, str(row_id), column))
            return None
        return self.stamp(table, row_id, column, ms, styles)

    def lose_times(self, table: str, column: str, count: int, share: float = 0.01) -> None:
        self.forced_null[f"{table}.{column}"] = set(
            _split(self.rng, range(count), {"null": share})["null"]
        )

    def gapped_ids(self, count: int, missing: list[int]) -> list[int]:
        """``count`` ascending ids with a few holes (rows deleted for good) noted in
        ``missing``, which also gets two ids past the end."""
        ids: list[int] = []
        next_id = 1
        while len(ids) < count:
            if self.rng.random() < 0.02:
                missing.append(next_id)
                next_id += 1
                continue
            ids.append(next_id)
            next_id += 1
        missing += [next_id + 3, next_id + 40]
        return ids

    # -- users --------------------------------------------------------------------------------

    def users(self, count: int) -> None:
        rng = self.rng
        ids = self.gapped_ids(count, self.missing_users)
        created = sorted(rng.randint(BEGIN_MS, NOW_MS - 30 * DAY_MS) for _ in ids)
        usernames = self.usernames(count)
        emails: list[str | None] = [f"{name.lower()}@{rng.choice(DOMAINS)}" for name in usernames]
        hashes = _split(rng, range(count), {"null": 0.02, "malformed": 0.005})
        hashed = list(hashes["rest"])
        scrypt = set(rng.sample(hashed, min(SCRYPT_USERS, len(hashed))))
        mail = _split(
            rng, range(count), {"null": 0.03, "empty": 0.02, "invalid": 0.01, "dup": 0.02}
        )
        inactive = set(_split(rng, range(count), {"inactive": 0.07})["inactive"])
        self.lose_times("users", "created_at", count)
        for index, user_id in enumerate(ids):
            if index in mail["null"]:
                emails[index] = None
                self.mark("null_email_user_ids", user_id)
            elif index in mail["empty"]:
                emails[index] = rng.choice(("", " "))
                self.mark("empty_email_user_ids", user_id)
            elif index in mail["invalid"]:
                emails[index] = rng.choice(("not-an-email", f"{usernames[index]}@", "bob at gmail"))
                self.mark("invalid_email_user_ids", user_id)
        for index in mail["dup"]:
            if mail["rest"]:  # the same person signed up twice
                local, _, domain = str(emails[rng.choice(mail["rest"])]).partition("@")
                emails[index] = f"{local.capitalize()}@{domain.capitalize()}"
        holders: dict[str, list[int]] = {}
        for index, email in enumerate(emails):
            if email and email.strip():
                holders.setdefault(email.strip().lower(), []).append(ids[index])
        for same in holders.values():
            for user_id in same if len(same) > 1 else ():
                self.mark("duplicate_email_user_ids", user_id)
        for index, user_id in enumerate(ids):
            self.user_created[user_id] = created[index]
            password_hash = None
            if index in hashes["null"]:
                self.mark("null_hash_user_ids", user_id)
            elif index in hashes["malformed"]:
                password_hash = self.malformed_hash()
                self.mark("malformed_hash_user_ids", user_id)
            else:
                password = "".join(
                    rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%&*-_")
                    for _ in range(rng.randint(12, 20))
                )
                self.passwords[usernames[index]] = password
                method = SCRYPT_METHOD if index in scrypt else PBKDF2_METHOD
                if index in scrypt:
                    self.mark("scrypt_user_ids", user_id)
                password_hash = _werkzeug_hash(rng, method, password)
            if index in inactive:
                self.mark("inactive_user_ids", user_id)
            self.tables["users"].append(
                (
                    user_id,
                    usernames[index],
                    emails[index],
                    password_hash,
                    self.required_time("users", index, user_id, "created_at", created[index]),
                    0 if index in inactive else 1,
                )
            )
        position = {name: index for index, name in enumerate(usernames)}
        for index, name in enumerate(usernames):
            if name != name.lower() and name.lower() in position:
                self.mark("case_colliding_username_user_ids", ids[index])
                self.mark("case_colliding_username_user_ids", ids[position[name.lower()]])

    def malformed_hash(self) -> str:
        """A hash no password verifies against: too costly for the doc's limits, or from
        another scheme (bcrypt from an import, plain ``sha1`` from Werkzeug before 2.3)."""
        rng = self.rng
        salt = "".join(rng.choice(SALT_CHARS) for _ in range(16))
        kind = rng.choice(("pbkdf2", "scrypt", "bcrypt", "sha1"))
        if kind == "pbkdf2":
            return f"pbkdf2:sha256:5000000${salt}${rng.getrandbits(256):064x}"
        if kind == "scrypt":
            return f"scrypt:1048576:8:2${salt}${rng.getrandbits(512):0128x}"
        if kind == "bcrypt":
            return "$2b$12$" + "".join(rng.choice(SALT_CHARS) for _ in range(53))
        return f"sha1${salt[:8]}${rng.getrandbits(160):040x}"

    def usernames(self, count: int) -> list[str]:
        rng = self.rng
        names: list[str] = []
        taken: set[str] = set()
        while len(names) < count:
            shape = rng.randrange(4)
            if shape == 0:
                name = f"{rng.choice(FIRST)}{rng.randint(1, 9999)}"
            elif shape == 1:
                name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}"
            elif shape == 2:
                name = f"{rng.choice(HANDLES)}_{rng.choice(FIRST)}{rng.randint(0, 99)}"
            else:
                name = f"{rng.choice(FIRST).capitalize()}{rng.choice(LAST).capitalize()}"
            if name not in taken:
                names.append(name)
                taken.add(name)
        # Beta1 compared usernames case-sensitively, so "JohnDoe" and "johndoe" could both sign up.
        capitalised = [i for i, n in enumerate(names) if n != n.lower()]
        lowercase = [i for i, n in enumerate(names) if n == n.lower()]
        for index in rng.sample(capitalised, min(2, len(capitalised), len(lowercase))):
            twin = lowercase.pop(rng.randrange(len(lowercase)))
            if names[index].lower() not in taken:
                taken.discard(names[twin])
                names[twin] = names[index].lower()
                taken.add(names[twin])
        return names

    # -- strategies ---------------------------------------------------------------------------

    def strategies(self, count: int) -> None:
        rng = self.rng
        user_ids = [row[0] for row in self.tables["users"]]
        if not user_ids:
            return
        weights = [rng.expovariate(1.0) for _ in user_ids]
        owners = rng.choices(user_ids, weights, k=count)
        plans = []
        for owner in owners:
            created = rng.randint(self.user_created[owner], NOW_MS - DAY_MS)
            plans.append((created, owner))
        plans.sort()
        ids = self.gapped_ids(count, self.missing_strategies)
        graph_defects = {
            "null": 0.015,
            "invalid_json": 0.015,
            "empty": 0.01,
            "unknown_type": 0.02,
            "dangling_node": 0.015,
            "dangling_port": 0.015,
            "rejected": 0.02,
        }
        graphs = _split(rng, range(count), graph_defects)
        defect_of = {i: label for label, picked in graphs.items() for i in picked}
        deleted = set(_split(rng, range(count), {"deleted": 0.08})["deleted"])
        orphans = set(_split(rng, range(count), {"orphan": 0.01})["orphan"])
        blank = set(_split(rng, range(count), {"blank": 0.005})["blank"])
        self.lose_times("strategies", "created_at", count)
        names_by_user: dict[int, list[str]] = {}
        for index, (strategy_id, (created, owner)) in enumerate(zip(ids, plans, strict=True)):
            template = rng.choice(list(TEMPLATES))
            defect = defect_of[index]
            graph_json = self.graph_json(strategy_id, template, defect)
            user_id = rng.choice(self.missing_users) if index in orphans else owner
            if index in orphans:
                self.mark("orphan_strategy_ids", strategy_id)
            name = self.strategy_name(template, strategy_id, index in blank)
            earlier = names_by_user.setdefault(user_id, [])
            if earlier and index not in blank and rng.random() < 0.03:  # saved twice, one name
                name = rng.choice(earlier)
            if name is not None and name.strip():
                earlier.append(name)
            if index in deleted:
                self.mark("deleted_strategy_ids", strategy_id)
            updated = None
            if rng.random() < 0.85:
                updated = self.stamp(
                    "strategies", strategy_id, "updated_at", rng.randint(created, NOW_MS)
                )
            description = rng.choice((None, "", *DESCRIPTIONS))
            self.tables["strategies"].append(
                (
                    strategy_id,
                    user_id,
                    name,
                    description,
                    graph_json,
                    self.required_time("strategies", index, strategy_id, "created_at", created),
                    updated,
                    1 if index in deleted else 0,
                )
            )
            row = _StrategyRow(strategy_id, user_id, created, index in deleted, defect == "rest")
            self.strategy_rows.append(row)
            self.strategy_by_id[strategy_id] = row
        self.mark_duplicate_names()

    def mark_duplicate_names(self) -> None:
        """Mark every strategy sharing its exact name with another of its user's (drawn from
        few names, many repeat by chance); a small database with none gets one copied."""
        rows = self.tables["strategies"]
        groups: dict[tuple[int, str], list[int]] = {}
        for index, row in enumerate(rows):
            if row[2] and str(row[2]).strip():
                groups.setdefault((row[1], row[2]), []).append(index)
        repeated = [found for found in groups.values() if len(found) > 1]
        if not repeated:
            by_user: dict[int, list[int]] = {}
            for (user_id, _), found in groups.items():
                by_user.setdefault(user_id, []).extend(found)
            pair = next((sorted(found)[:2] for found in by_user.values() if len(found) > 1), None)
            if pair is None:
                return
            first, second = rows[pair[0]], rows[pair[1]]
            rows[pair[1]] = (second[0], second[1], first[2], *second[3:])
            repeated = [pair]
        for found in repeated:
            for index in found:
                self.mark("duplicate_name_strategy_ids", rows[index][0])

    def strategy_name(self, template: str, strategy_id: int, blank: bool) -> str | None:
        rng = self.rng
        if blank:
            self.mark("blank_name_strategy_ids", strategy_id)
            return rng.choice((None, "", "   "))
        roll = rng.random()
        if roll < 0.1:
            return rng.choice(GENERIC_NAMES)
        name = rng.choice(TEMPLATE_NAMES[template])
        if roll < 0.25:
            return f"Copy of {name}"
        if roll < 0.45:
            return f"{name} v{rng.randint(2, 5)}"
        if roll < 0.5:
            return f" {name} "
        return name

    def graph_json(self, strategy_id: int, template: str, defect: str) -> str | None:
        rng = self.rng
        if defect == "null":
            self.mark("null_graph_strategy_ids", strategy_id)
            return None
        if defect == "empty":
            self.mark("empty_graph_strategy_ids", strategy_id)
            return rng.choice(("{}", "[]", '{"nodes": [], "connections": []}'))
        valid = defect == "rest"
        canvas = _Canvas(rng, allow_strings=valid, allow_defaults=valid)
        _draw(canvas, template)
        if defect == "invalid_json":
            self.mark("invalid_json_strategy_ids", strategy_id)
            return _bad_json(rng, canvas.graph())
        if defect == "rejected":
            _spoil(
                canvas,
                rng.choice(("out_of_range", "missing_trigger", "no_entry", "cycle", "fed_twice")),
            )
            self.mark("rejected_graph_strategy_ids", strategy_id)
        elif not valid:
            _spoil(canvas, defect)
            self.mark(f"{defect}_strategy_ids", strategy_id)
        else:
            self.mark("valid_graph_strategy_ids", strategy_id)
            self.templates[strategy_id] = template
            if canvas.used_string:
                self.mark("string_param_strategy_ids", strategy_id)
            if canvas.used_default:
                self.mark("default_param_strategy_ids", strategy_id)
        graph = canvas.graph()
        if rng.random() < 0.8:  # JSON.stringify from the editor
            return json.dumps(graph, separators=(",", ":"), ensure_ascii=False)
        return json.dumps(graph)

    # -- sessions and trades ------------------------------------------------------------------

    def strategy_for(self, kind: str) -> tuple[int | None, int, int]:
        """(user_id, the earliest a run may start, strategy_id) for a session or backtest:
        ``kind`` says which sort of reference to prefer (one it cannot find falls back)."""
        rng = self.rng
        pools = self.pools
        if kind == "missing_user":
            if pools["orphan"]:  # the user went, the strategy stayed
                orphan = rng.choice(pools["orphan"])
                return orphan.user_id, orphan.created_ms, orphan.id
            return rng.choice(self.missing_users), BEGIN_MS, rng.choice(self.missing_strategies)
        if kind == "missing_strategy" or not pools["any"]:
            users = sorted(self.user_created)
            user_id = rng.choice(users) if users else None
            start = BEGIN_MS if user_id is None else self.user_created[user_id]
            return user_id, start, rng.choice(self.missing_strategies)
        strategy = rng.choice(pools.get(kind) or pools["runnable"] or pools["any"])
        return strategy.user_id, strategy.created_ms, strategy.id

    @property
    def pools(self) -> dict[str, list[_StrategyRow]]:
        """Strategies by what a session or backtest may find when it refers to one."""
        if not self._pools:
            owned = [r for r in self.strategy_rows if r.user_id in self.user_created]
            self._pools = {
                "any": owned,
                "orphan": [r for r in self.strategy_rows if r.user_id not in self.user_created],
                "deleted_strategy": [r for r in owned if r.deleted],
                "draft_strategy": [r for r in owned if not r.valid and not r.deleted],
                "runnable": [r for r in owned if r.valid and not r.deleted],
            }
        return self._pools

    def mark_references(
        self, kind: str, row_id: Any, user_id: int | None, strategy_id: int
    ) -> None:
        """Mark what a session's or backtest's references turned out to be."""
        if user_id not in self.user_created:
            self.mark(f"missing_user_{kind}_ids", row_id)
        strategy = self.strategy_by_id.get(strategy_id)
        if strategy is None:
            self.mark(f"missing_strategy_{kind}_ids", row_id)
        elif kind == "session" and strategy.deleted:
            self.mark("deleted_strategy_session_ids", row_id)
        elif kind == "session" and not strategy.valid:
            self.mark("draft_strategy_session_ids", row_id)

    def sessions(self, count: int, trades_per_session: float) -> None:
        rng = self.rng
        refs = _split(
            rng,
            range(count),
            {
                "missing_user": 0.01,
                "missing_strategy": 0.02,
                "deleted_strategy": 0.03,
                "draft_strategy": 0.03,
            },
        )
        ref_of = {i: label for label, picked in refs.items() for i in picked}
        statuses = _split(
            rng, range(count), {"running": 0.15, "paused": 0.08, "error": 0.07, "odd": 0.02}
        )
        status_of = {i: label for label, picked in statuses.items() for i in picked}
        odd_timeframes = set(_split(rng, range(count), {"odd": 0.02})["odd"])
        settings = _split(rng, range(count), {"invalid": 0.03, "null": 0.05})
        settings_of = {i: label for label, picked in settings.items() for i in picked}
        null_capital = set(_split(rng, range(count), {"null": 0.03})["null"])
        never_started = set(_split(rng, statuses["error"], {"never": 0.3})["never"])
        open_sessions = set(rng.sample(statuses["running"], (len(statuses["running"]) + 1) // 2))
        trade_counts = [0] * count
        for _ in range(round(count * trades_per_session)):
            trade_counts[rng.randrange(count)] += 1
        self.lose_times("forward_test_sessions", "started_at", count)
        stopped_lost = set(_split(rng, statuses["rest"], {"null": 0.02})["null"])
        taken: set[str] = set()
        for index in range(count):
            session_id = self.session_id(taken)
            user_id, earliest, strategy_id = self.strategy_for(ref_of[index])
            self.mark_references("session", session_id, user_id, strategy_id)
            status = {
                "rest": "stopped",
                "running": "running",
                "paused": "paused",
                "error": "error",
                "odd": rng.choice(ODD_STATUSES),
            }[status_of[index]]
            if status_of[index] == "odd":
                self.mark("odd_status_session_ids", session_id)
            symbol, base, price_digits, qty_digits = rng.choice(SYMBOLS)
            timeframe = rng.choice(TIMEFRAMES)
            if index in odd_timeframes:
                timeframe = rng.choice(ODD_TIMEFRAMES)
                self.mark("odd_timeframe_session_ids", session_id)
            live = status in ("running", "paused")
            started = rng.randint(max(earliest, NOW_MS - 90 * DAY_MS) if live else earliest, NOW_MS)
            stopped = None if live else rng.randint(started, NOW_MS)
            capital = float(rng.choice((1000, 5000, 10_000, 10_000, 25_000, 100_000)))
            position_size = rng.choice((0.1, 0.1, 0.05, 0.25, 1.0))
            trades = trade_counts[index] or (1 if index in open_sessions else 0)
            if index in never_started:
                trades = 0
            pnl_total = self.session_trades(
                session_id,
                (symbol, base, price_digits, qty_digits),
                started,
                stopped or NOW_MS,
                trades,
                capital * position_size,
                index in open_sessions,
            )
            current: float | None = round(capital + pnl_total, 2)
            if index in never_started:
                current = None
                self.mark("null_current_capital_session_ids", session_id)
            initial: float | None = capital
            if index in null_capital:
                initial = None
                self.mark("null_initial_capital_session_ids", session_id)
            stopped_text = None
            if stopped is not None:
                if index in stopped_lost:
                    self.null_times.add(("forward_test_sessions", session_id, "stopped_at"))
                else:
                    stopped_text = self.stamp(
                        "forward_test_sessions", session_id, "stopped_at", stopped
                    )
            self.tables["forward_test_sessions"].append(
                (
                    session_id,
                    user_id,
                    strategy_id,
                    symbol,
                    timeframe,
                    status,
                    initial,
                    current,
                    self.required_time(
                        "forward_test_sessions", index, session_id, "started_at", started
                    ),
                    stopped_text,
                    self.settings_json(session_id, settings_of[index], position_size),
                )
            )
        trades = len(self.tables["session_trades"])
        self.orphan_trades(max(1, round(trades * 0.01)) if trades else 0)
        self.number_trades()

    def session_id(self, taken: set[str]) -> str:
        rng = self.rng
        while True:
            text = _uuid(rng)
            roll = rng.random()
            if roll < 0.05:
                text = text.upper()
            elif roll < 0.1:
                text = text.replace("-", "")
            elif roll < 0.13:
                text = f"ft_{text.replace('-', '')[:12]}"
            if text not in taken:
                taken.add(text)
                return text

    def settings_json(self, session_id: str, kind: str, position_size: float) -> str | None:
        rng = self.rng
        settings: dict[str, Any] = {
            "commission": rng.choice((0.001, 0.001, 0.0005, 0.00075, 0)),
            "slippage": rng.choice((0.0005, 0.0005, 0.001, 0)),
            "position_size": position_size,
        }
        if rng.random() < 0.1:
            del settings["slippage"]
        if rng.random() < 0.1:
            settings["max_open_trades"] = rng.randint(1, 3)
        if kind == "null":
            self.mark("null_settings_session_ids", session_id)
            return None
        if kind == "invalid":
            self.mark("invalid_settings_session_ids", session_id)
            if rng.random() < 0.3:
                return "{commission: 0.001, slippage: 0.0005}"
            return _bad_json(rng, settings)
        return json.dumps(settings)

    def trade(
        self,
        market: tuple[str, float, int, int],
        entry_ms: int,
        exit_ms: int | None,
        notional: float,
    ) -> dict[str, Any]:
        """One trade's values (prices, quantity, side, pnl), before it is written anywhere."""
        rng = self.rng
        _, base, price_digits, qty_digits = market
        spread = {"AAPL": 0.1, "EURUSD": 0.03}.get(market[0], 0.25)  # over Beta1's years
        entry = _round_to(base * math.exp(rng.gauss(0, spread)), price_digits)
        quantity = _round_to(notional / entry, qty_digits)
        short = rng.random() < 0.25
        result: dict[str, Any] = {
            "side": rng.choice(SHORT_SIDES if short else LONG_SIDES),
            "short": short,
            "quantity": quantity,
            "entry_price": entry,
            "entry_ms": entry_ms,
            "exit_ms": exit_ms,
            "exit_price": None,
            "pnl": None,
        }
        if exit_ms is not None:
            exit_price = _round_to(entry * (1 + rng.gauss(0.001, 0.02)), price_digits)
            pnl = (exit_price - entry) * quantity
            result["exit_price"] = exit_price
            result["pnl"] = round(-pnl if short else pnl, 8)
        return result

    def trade_times(self, start: int, end: int, count: int) -> list[int]:
        return sorted(self.rng.randint(start, max(start, end)) for _ in range(2 * count))

    def session_trades(
        self,
        session_id: str,
        market: tuple[str, float, int, int],
        start: int,
        end: int,
        count: int,
        notional: float,
        last_open: bool,
    ) -> float:
        """Add a session's trades (ids come later); their summed pnl."""
        rng = self.rng
        times = self.trade_times(start, end, count)
        total = 0.0
        for number in range(count):
            still_open = last_open and number == count - 1
            exit_ms = None if still_open else times[2 * number + 1]
            values = self.trade(market, times[2 * number], exit_ms, notional)
            values["open"] = still_open
            if values["pnl"] is not None:
                total += values["pnl"]
                if rng.random() < 0.03:
                    values["pnl"] = None
            self.tables["session_trades"].append((session_id, market[0], values))
        return total

    def orphan_trades(self, count: int) -> None:
        """Trades of sessions deleted without their trades, spliced in among the others."""
        rng = self.rng
        for _ in range(count):
            market = rng.choice(SYMBOLS)
            start = rng.randint(BEGIN_MS, NOW_MS - 10 * DAY_MS)
            entry, exit_ms = self.trade_times(start, start + 5 * DAY_MS, 1)
            values = self.trade(market, entry, exit_ms, 1000.0)
            values["open"] = False
            values["orphan"] = True
            at = rng.randint(0, len(self.tables["session_trades"]))
            self.tables["session_trades"].insert(at, (_uuid(rng), market[0], values))

    def number_trades(self) -> None:
        drafts = self.tables["session_trades"]
        self.lose_times("session_trades", "entry_time", len(drafts), 0.002)
        lost = _split(self.rng, range(len(drafts)), dict.fromkeys(UNREADABLE, 0.002))
        lost_of = {i: label for label, picked in lost.items() for i in picked}
        rows: list[tuple[Any, ...]] = []
        for index, (session_id, symbol, values) in enumerate(drafts):
            trade_id = index + 1
            if lost_of[index] != "rest":
                values[lost_of[index]] = None
            if index in self.forced_null["session_trades.entry_time"] or lost_of[index] != "rest":
                self.mark("unreadable_trade_ids", trade_id)
            if values.get("orphan"):
                self.mark("orphan_trade_ids", trade_id)
            if values["open"]:
                self.mark("open_trade_ids", trade_id)
            elif values["pnl"] is None:
                self.mark("null_pnl_trade_ids", trade_id)
            if values["short"]:
                self.mark("short_trade_ids", trade_id)
            exit_time = None
            if values["exit_ms"] is not None:
                exit_time = self.stamp("session_trades", trade_id, "exit_time", values["exit_ms"])
            entry_ms = values["entry_ms"]
            rows.append(
                (
                    trade_id,
                    session_id,
                    symbol,
                    values["side"],
                    values["quantity"],
                    values["entry_price"],
                    values["exit_price"],
                    self.required_time("session_trades", index, trade_id, "entry_time", entry_ms),
                    exit_time,
                    values["pnl"],
                )
            )
        self.tables["session_trades"] = rows

    # -- backtests ----------------------------------------------------------------------------

    def backtests(self, count: int) -> None:
        rng = self.rng
        refs = _split(rng, range(count), {"missing_user": 0.015, "missing_strategy": 0.03})
        ref_of = {i: label for label, picked in refs.items() for i in picked}
        equity = _split(rng, range(count), {"pairs": 0.35, "invalid": 0.04, "null": 0.04})
        equity_of = {i: label for label, picked in equity.items() for i in picked}
        trades_form = _split(rng, range(count), {"invalid": 0.03, "null": 0.02})
        mismatch = set(_split(rng, range(count), {"mismatch": 0.05})["mismatch"])
        null_metrics = set(_split(rng, range(count), {"null": 0.05})["null"])
        plans = []
        for index in range(count):
            kind = "any" if ref_of[index] == "rest" else ref_of[index]
            user_id, earliest, strategy_id = self.strategy_for(kind)
            plans.append((rng.randint(earliest, NOW_MS), index, user_id, strategy_id))
        plans.sort()
        self.lose_times("backtest_results", "created_at", count)
        self.lose_times("backtest_results", "start_date", count, 0.005)
        for backtest_id, (created, index, user_id, strategy_id) in enumerate(plans, start=1):
            self.mark_references("backtest", backtest_id, user_id, strategy_id)
            market = rng.choice(SYMBOLS)
            timeframe = rng.choice(TIMEFRAMES)
            end = rng.randint(created - 60 * DAY_MS, created)
            start = end - rng.randint(30, 720) * DAY_MS
            initial = float(rng.choice((1000, 10_000, 10_000, 50_000, 100_000)))
            notional = initial * rng.choice((0.1, 0.25, 1.0))
            times = self.trade_times(start, end, rng.randint(0, 30))
            trades = [
                self.trade(market, times[i], times[i + 1], notional)
                for i in range(0, len(times), 2)
            ]
            curve = self.equity_curve(start, end, initial, trades)
            final = float(curve[1][-1])
            num_trades: int = len(trades)
            if index in mismatch:
                num_trades = rng.choice((2 * len(trades) + 1, len(trades) + rng.randint(1, 5)))
                self.mark("num_trades_mismatch_backtest_ids", backtest_id)
            metrics: tuple[float | None, ...] = self.metrics(initial, curve[1])
            if index in null_metrics:
                metrics = (None, None, None)
                self.mark("null_metrics_backtest_ids", backtest_id)
            range_styles = ("sql", "iso_naive", "iso_z", "epoch", "date", "date")
            self.tables["backtest_results"].append(
                (
                    backtest_id,
                    user_id,
                    strategy_id,
                    market[0],
                    timeframe,
                    self.required_time(
                        "backtest_results", index, backtest_id, "start_date", start, range_styles
                    ),
                    self.stamp("backtest_results", backtest_id, "end_date", end, range_styles),
                    initial,
                    final,
                    *metrics,
                    num_trades,
                    self.trades_json(backtest_id, trades, trades_form, index),
                    self.equity_json(backtest_id, curve, equity_of[index]),
                    self.required_time(
                        "backtest_results", index, backtest_id, "created_at", created
                    ),
                )
            )

    def equity_curve(
        self, start: int, end: int, initial: float, trades: list[dict[str, Any]]
    ) -> tuple[Int64Array, npt.NDArray[np.float64]]:
        """(epoch seconds, equity) at a few hundred points: realised pnl as trades close plus
        noise that is zero at both ends, so the last point is the initial capital plus every
        trade's pnl. NumPy draws the noise, seeded from the one stream."""
        points = self.rng.randint(200, 400)
        noise_source = np.random.default_rng(self.rng.getrandbits(64))
        ms = start + np.arange(points, dtype=np.int64) * ((end - start) // (points - 1))
        ms[-1] = end
        exits = sorted((t["exit_ms"], t["pnl"]) for t in trades)
        exit_ms = np.array([e for e, _ in exits], dtype=np.int64)
        realised = np.concatenate(([0.0], np.cumsum([p for _, p in exits])))
        closed = np.searchsorted(exit_ms, ms, side="right")
        walk = np.concatenate(
            ([0.0], np.cumsum(noise_source.normal(0, initial * 0.002, points - 1)))
        )
        noise = walk - walk[-1] * np.arange(points) / (points - 1)
        equity = np.round(initial + realised[closed] + noise, 2)
        return ms // 1000, equity

    @staticmethod
    def metrics(
        initial: float, equity: npt.NDArray[np.float64]
    ) -> tuple[float, float | None, float]:
        """(total_return, sharpe_ratio, max_drawdown) as Beta1 computed them, roughly."""
        returns = equity[1:] / equity[:-1] - 1
        spread = float(returns.std())
        peak = np.maximum.accumulate(np.maximum(equity, initial))
        drawdown = float((1 - equity / peak).max())
        sharpe = round(float(returns.mean()) / spread * math.sqrt(252), 4) if spread else None
        return round(float(equity[-1]) / initial - 1, 6), sharpe, round(drawdown, 6)

    def trades_json(
        self, backtest_id: int, trades: list[dict[str, Any]], form: dict[str, list[int]], index: int
    ) -> str | None:
        rng = self.rng
        style = rng.choice(JSON_TIME_STYLES)
        listed = [
            {
                "side": t["side"],
                "entry_time": self.json_time(t["entry_ms"], style),
                "exit_time": self.json_time(t["exit_ms"], style),
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "quantity": t["quantity"],
                "pnl": t["pnl"] if rng.random() > 0.02 else None,
            }
            for t in trades
        ]
        if index in form["null"]:
            self.mark("null_trades_backtest_ids", backtest_id)
            return None
        if index in form["invalid"]:
            self.mark("invalid_trades_backtest_ids", backtest_id)
            return _bad_json(rng, listed or [{"side": "BUY"}])
        return json.dumps(listed)

    @staticmethod
    def json_time(ms: int, style: str) -> str | int:
        """A time inside trades_json or equity_json: text as in the columns, or a number."""
        if style == "epoch_number":
            return ms // 1000
        return _time_text(ms - ms % 1000, style)

    def equity_json(
        self,
        backtest_id: int,
        curve: tuple[Int64Array, npt.NDArray[np.float64]],
        form: str,
    ) -> str | None:
        rng = self.rng
        seconds, values = curve[0].tolist(), curve[1].tolist()
        if form == "null":
            self.mark("null_equity_backtest_ids", backtest_id)
            return None
        if form == "pairs":
            self.mark("pair_equity_backtest_ids", backtest_id)
            return json.dumps([list(pair) for pair in zip(seconds, values, strict=True)])
        times = _json_times(curve[0], rng.choice(JSON_TIME_STYLES))
        points = [
            {"time": time, "equity": equity} for time, equity in zip(times, values, strict=True)
        ]
        if form == "invalid":
            self.mark("invalid_equity_backtest_ids", backtest_id)
            return _bad_json(rng, points)
        self.mark("object_equity_backtest_ids", backtest_id)
        return json.dumps(points)

    # -- result -------------------------------------------------------------------------------

    def truth(self) -> Beta1Truth:
        def ids(kind: str) -> frozenset[Any]:
            return frozenset(self.ids.get(kind, ()))

        runs = [*self.tables["forward_test_sessions"], *self.tables["backtest_results"]]
        referenced = {row[1] for row in [*self.tables["strategies"], *runs]}
        strategy_refs = {row[2] for row in runs}
        kinds: dict[str, Any] = {
            name: ids(name)
            for name in Beta1Truth.__dataclass_fields__
            if name.endswith("_ids") and name not in ("missing_user_ids", "missing_strategy_ids")
        }
        return Beta1Truth(
            passwords=dict(self.passwords),
            counts={table: len(self.tables[table]) for table in TABLES},
            missing_user_ids=frozenset(set(self.missing_users) & referenced),
            missing_strategy_ids=frozenset(set(self.missing_strategies) & strategy_refs),
            graph_templates=dict(self.templates),
            null_times=frozenset(self.null_times),
            instants_ms=dict(self.instants),
            **kinds,
        )
