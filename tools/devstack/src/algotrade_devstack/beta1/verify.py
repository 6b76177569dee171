"""``--verify``: every figure of the report recomputed from what the target holds.

Each importer's ``inventory`` reads its own tables (and S3) back: accounts, graph checksums
recomputed from the stored graphs, each session's and backtest's trades and P&L. Anything that
does not match the source is a loss, and the command exits non-zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from algotrade_devstack.beta1.migration import Targets
from algotrade_devstack.beta1.source import Beta1Data

TOLERANCE = 1e-6


@dataclass
class Verification:
    users: dict[str, dict[str, Any]]
    strategies: dict[str, dict[str, Any]]
    sessions: dict[str, dict[str, Any]]
    backtests: dict[str, dict[str, Any]]
    source_checksums: dict[str, str]
    problems: list[dict[str, Any]] = field(default_factory=list)


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


async def verify(
    data: Beta1Data,
    targets: Targets,
    *,
    refused: frozenset[tuple[str, str]] = frozenset(),
    chunk: int = 500,
) -> Verification:
    """``refused``: (kind, Beta1 id) of rows an importer skipped with a reason."""
    from strategy_service.beta1 import map_graph

    async def held(importer: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), chunk):
            found.update(await importer.inventory(ids[start : start + chunk]))
        return found

    result = Verification(
        users=await held(targets.users, [str(u.legacy_id) for u in data.users]),
        strategies=await held(targets.strategies, [str(s.legacy_id) for s in data.strategies]),
        sessions=await held(targets.sessions, [s.legacy_id for s in data.sessions]),
        backtests=await held(targets.backtests, [str(b.legacy_id) for b in data.backtests]),
        source_checksums={
            str(s.legacy_id): map_graph(s.graph_json, legacy_id=s.legacy_id).checksum
            for s in data.strategies
        },
    )

    def lost(kind: str, legacy_id: str, what: str) -> None:
        result.problems.append({"kind": kind, "legacy_id": legacy_id, "problem": what})

    owner = {
        str(u.legacy_id): result.users.get(str(u.legacy_id), {}).get("new_id") for u in data.users
    }
    for user in data.users:
        if str(user.legacy_id) not in result.users:
            lost("user", str(user.legacy_id), "no account in the target")
    for strategy in data.strategies:
        key = str(strategy.legacy_id)
        target = result.strategies.get(key)
        if target is None:
            lost("strategy", key, "not in the target")
        elif target["checksum"] != result.source_checksums[key]:
            lost("strategy", key, "the stored graph differs from the mapping of Beta1's graph")
        elif target["owner_id"] != owner[str(strategy.user_id)]:
            lost("strategy", key, "owned by another account than its Beta1 user's")
    for session in data.sessions:
        if ("session", session.legacy_id) in refused:
            continue
        target = result.sessions.get(session.legacy_id)
        if target is None:
            lost("session", session.legacy_id, "not in the target")
            continue
        closed = [t for t in session.trades if t.exit_price is not None]
        pnl = sum(t.pnl or 0.0 for t in closed)
        if target["trades"] != len(closed) or target["open_trades"] != len(session.trades) - len(
            closed
        ):
            lost(
                "session",
                session.legacy_id,
                f"{len(closed)} closed and {len(session.trades) - len(closed)} open trades in "
                f"Beta1, {target['trades']} and {target['open_trades']} in the target",
            )
        elif not same(target["pnl"], pnl):
            lost("session", session.legacy_id, f"P&L {pnl} in Beta1, {target['pnl']} in target")
        if target["owner_id"] != owner[str(session.user_id)]:
            lost("session", session.legacy_id, "owned by another account than its Beta1 user's")
    for backtest in data.backtests:
        key = str(backtest.legacy_id)
        if ("backtest", key) in refused:
            continue
        target = result.backtests.get(key)
        if target is None:
            lost("backtest", key, "not in the target")
            continue
        pnl = sum(t.pnl or 0.0 for t in backtest.trades)
        if target["trades"] != len(backtest.trades) or not same(target["pnl"], pnl):
            lost(
                "backtest",
                key,
                f"{len(backtest.trades)} trades, P&L {pnl} in Beta1; {target['trades']}, "
                f"{target['pnl']} in the target",
            )
        if target["equity_points"] != len(backtest.equity):
            lost(
                "backtest",
                key,
                f"{len(backtest.equity)} equity points in Beta1, {target['equity_points']} in "
                "the target",
            )
        if target["owner_id"] != owner[str(backtest.user_id)]:
            lost("backtest", key, "owned by another account than its Beta1 user's")
    return result
