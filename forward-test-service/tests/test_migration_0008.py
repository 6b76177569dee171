"""Migration 0008: the terminal's closes recorded by 0006 (one per entry, on the entry) become
deals that close what was left, keep whether they were reported, and come back on downgrade."""

from __future__ import annotations

from sqlalchemy import text

from algotrade.db import build_engine
from algotrade.migrations import downgrade, upgrade

SESSION = (
    "INSERT INTO forward.sessions (id, user_id, status, params, symbol, timeframe, owner, "
    "series_key, config, config_id, capital, warmup, revision, agent_id, mode) VALUES "
    "(:id, 'alice', 'stopped', '{}', 'EURUSD', '1h', 'alice', 'alice:EURUSD:1h', '{}', 'c', "
    "10000, 0, 1, :agent, 'agent')"
)
ORDER = (
    "INSERT INTO forward.session_orders (session_id, seq, ts, side, quantity, price, fee, "
    "reason, agent_state, agent_ticket, terminal_close_price, terminal_closed_ts, "
    "terminal_close_reported) VALUES (:sid, :seq, :ts, 'buy', 1, 100, 0, :reason, "
    "'executed', :ticket, :price, :closed, :reported)"
)


async def test_the_closes_of_0006_become_deals_and_come_back(database_url: str) -> None:
    await upgrade(database_url, "forward_test_service", "forward", "0007")
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as db:
            await db.execute(text(SESSION), {"id": "S" * 26, "agent": "A" * 26})
            rows = [
                # closed by the terminal at 95, reported; then by the session's own exit
                ("entry", 0, "T1", 95.0, 5_000, True),
                ("signal", 1, None, None, None, False),
                ("entry", 2, "T2", 97.5, None, False),  # closed, its time unknown, not reported
                ("entry", 3, "T3", None, None, False),  # still open
            ]
            for reason, seq, ticket, price, closed, reported in rows:
                await db.execute(
                    text(ORDER),
                    {
                        "sid": "S" * 26,
                        "seq": seq,
                        "ts": 1_000 * seq,
                        "reason": reason,
                        "ticket": ticket,
                        "price": price,
                        "closed": closed,
                        "reported": reported,
                    },
                )
        await upgrade(database_url, "forward_test_service", "forward")
        async with engine.connect() as db:
            deals = (
                await db.execute(
                    text(
                        "SELECT agent_id, ticket, deal, entry_seq, volume, price, ts, "
                        "commission, swap, reported FROM forward.terminal_deals ORDER BY entry_seq"
                    )
                )
            ).all()
        assert [tuple(d) for d in deals] == [
            ("A" * 26, "T1", "close", 0, None, 95.0, 5_000, 0.0, 0.0, True),
            ("A" * 26, "T2", "close", 2, None, 97.5, 2_000, 0.0, 0.0, False),
        ]
        await downgrade(database_url, "forward_test_service", "forward", "0007")
        async with engine.connect() as db:
            back = (
                await db.execute(
                    text(
                        "SELECT seq, terminal_close_price, terminal_closed_ts, "
                        "terminal_close_reported FROM forward.session_orders ORDER BY seq"
                    )
                )
            ).all()
        assert [tuple(r) for r in back] == [
            (0, 95.0, 5_000, True),
            (1, None, None, False),
            (2, 97.5, 2_000, False),
            (3, None, None, False),
        ]
    finally:
        await engine.dispose()
