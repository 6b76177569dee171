"""Beta1's messy values are read the documented way, or the row is skipped with a reason."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from algotrade_devstack.beta1.source import parse_ms, parse_time, read_beta1, read_trade

MOMENT = datetime(2023, 4, 5, 6, 7, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2023-04-05T06:07:08Z",
        "2023-04-05T06:07:08",
        "2023-04-05 06:07:08",
        "2023-04-05T08:07:08+02:00",
        str(int(MOMENT.timestamp())),
        f"{MOMENT.timestamp():.1f}",
        str(int(MOMENT.timestamp() * 1000)),  # milliseconds
        MOMENT.timestamp(),
    ],
)
def test_every_beta1_time_spelling_reads_as_the_same_utc_moment(text: object) -> None:
    assert parse_time(text) == MOMENT
    assert parse_ms(text) == parse_ms(int(MOMENT.timestamp())) == 1_680_674_828_000


@pytest.mark.parametrize("text", [None, "", "yesterday", "nan", "2023-13-45 00:00:00", True])
def test_an_unreadable_time_is_none_not_a_guess(text: object) -> None:
    assert parse_time(text) is None


def trade(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "side": "BUY",
        "quantity": 2.0,
        "entry_price": 100.0,
        "exit_price": 110.0,
        "entry_time": "2023-01-01 00:00:00",
        "exit_time": "2023-01-02T00:00:00Z",
        "pnl": 20.0,
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("side", "expected"), [("BUY", "long"), ("long", "long"), ("Sell", "short"), ("SHORT", "short")]
)
def test_sides_map_to_long_and_short(side: str, expected: str) -> None:
    read = read_trade(trade(side=side), 1)
    assert not isinstance(read, str) and read.side == expected


def test_a_missing_pnl_is_computed_from_prices_and_flagged() -> None:
    long = read_trade(trade(pnl=None), 1)
    short = read_trade(trade(pnl=None, side="SELL"), 2)
    assert not isinstance(long, str) and not isinstance(short, str)
    assert (long.pnl, short.pnl) == (20.0, -20.0)
    assert "computed" in long.flags[0]


def test_an_open_trade_keeps_no_exit_and_no_pnl() -> None:
    read = read_trade(trade(exit_price=None, exit_time=None, pnl=None), 1)
    assert not isinstance(read, str)
    assert (read.exit_price, read.exit_ms, read.pnl) == (None, None, None)


def test_a_trade_without_side_or_entry_is_refused_with_the_reason() -> None:
    assert "side" in str(read_trade(trade(side="hold"), 1))
    assert "entry" in str(read_trade(trade(entry_time="?"), 1))


def test_orphans_and_duplicate_emails_are_reported_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "strategies.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT,
            password_hash TEXT, created_at TEXT, is_active INTEGER);
        CREATE TABLE strategies(id INTEGER PRIMARY KEY, user_id INTEGER, name TEXT,
            description TEXT, graph_json TEXT, created_at TEXT, updated_at TEXT,
            is_deleted INTEGER DEFAULT 0);
        CREATE TABLE forward_test_sessions(id TEXT PRIMARY KEY, user_id INTEGER,
            strategy_id INTEGER, symbol TEXT, timeframe TEXT, status TEXT, initial_capital REAL,
            current_capital REAL, started_at TEXT, stopped_at TEXT, settings_json TEXT);
        CREATE TABLE session_trades(id INTEGER PRIMARY KEY, session_id TEXT, symbol TEXT,
            side TEXT, quantity REAL, entry_price REAL, exit_price REAL, entry_time TEXT,
            exit_time TEXT, pnl REAL);
        CREATE TABLE backtest_results(id INTEGER PRIMARY KEY, user_id INTEGER,
            strategy_id INTEGER, symbol TEXT, timeframe TEXT, start_date TEXT, end_date TEXT,
            initial_capital REAL, final_capital REAL, total_return REAL, sharpe_ratio REAL,
            max_drawdown REAL, num_trades INTEGER, trades_json TEXT, equity_json TEXT,
            created_at TEXT);
        INSERT INTO users VALUES (1, 'ann', 'Ann@Example.com', NULL, NULL, 1),
                                 (2, 'bob', 'ann@example.COM', NULL, NULL, 1),
                                 (3, 'cy', NULL, NULL, NULL, 0);
        INSERT INTO strategies VALUES (10, 1, 'A', '', '{}', NULL, NULL, 0),
                                      (11, 1, 'a', '', '{}', NULL, NULL, 0),
                                      (12, 99, 'orphan', '', '{}', NULL, NULL, 0);
        INSERT INTO forward_test_sessions VALUES
            ('s1', 1, 77, 'BTCUSDT', 'H1', 'running', NULL, 900, NULL, NULL, 'not json');
        INSERT INTO session_trades VALUES
            (1, 's1', 'BTCUSDT', 'BUY', 1, 10, 11, '1672531200', '1672534800', 1),
            (2, 'gone', 'BTCUSDT', 'BUY', 1, 10, 11, '1672531200', '1672534800', 1);
        """
    )
    db.commit()
    db.close()
    data = read_beta1(path)
    assert data.read == {"user": 3, "strategy": 3, "session": 1, "trade": 2, "backtest": 0}
    emails = [u.email for u in data.users]
    assert emails == [
        "ann@example.com",
        "beta1-user-2@migrated.invalid",
        "beta1-user-3@migrated.invalid",
    ]
    assert "another Beta1 user's" in data.users[1].flags[0]
    assert "another strategy named" in data.strategies[1].flags[0]
    assert [(s.kind, s.legacy_id, s.code) for s in data.skipped] == [
        ("strategy", "12", "user_missing"),
        ("trade", "2", "session_missing"),
    ]
    (session,) = data.sessions
    assert session.strategy_id is None and session.timeframe == "1h"
    assert session.initial_capital == 900 and len(session.trades) == 1
    assert any("defaults used" in f for f in session.flags)


def test_an_unreachable_platform_is_a_clear_exit_3_and_a_bad_source_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from algotrade_devstack.commands.migrate import beta1
    from algotrade_testkit.beta1_db import build_beta1_db

    for name in list(os.environ):
        if name.startswith(("INTERNAL_JWT_", "DATABASE_URL", "S3_", "KAFKA_", "REDIS_")):
            monkeypatch.delenv(name)
    source = tmp_path / "strategies.db"
    build_beta1_db(source, seed=3, users=2)
    options = {"dry_run": True, "verify": False, "report_path": None, "state_dir": tmp_path}
    assert beta1(source, **options) == 3
    assert "run the command again to resume" in capsys.readouterr().err
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    assert beta1(tmp_path / "junk.db", **options) == 2
    assert beta1(tmp_path / "missing.db", **options) == 2
