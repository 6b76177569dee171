"""The integrity report: what was read, migrated, flagged and skipped, and why.

Per table: rows read, migrated by this run, already present from an earlier run, flagged
(migrated with a repair or a problem worth a look), skipped with the reason. Per user: the
counts on both sides. Per session: the sum of trade P&L on both sides. Per strategy: the
checksum of the migrated graph. With ``--verify`` the target side is recomputed from the
target itself (`algotrade_devstack.beta1.verify`); without, it is what the importers reported.

``lost`` lists every row that is neither in the target nor skipped with a reason, and every
figure that differs: a non-empty ``lost`` makes the command exit non-zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, get_args

from rich.console import Console
from rich.table import Table

from algotrade.beta1 import Kind
from algotrade_devstack.beta1.migration import Result
from algotrade_devstack.beta1.source import TABLES, Beta1Data
from algotrade_devstack.beta1.verify import Verification


def build_report(
    source: str, data: Beta1Data, result: Result, verification: Verification | None = None
) -> dict[str, Any]:
    skipped = [
        {"kind": s.kind, "legacy_id": s.legacy_id, "code": s.code, "reason": s.reason}
        for s in data.skipped
    ] + [
        {"kind": o.kind, "legacy_id": o.legacy_id, "code": "refused", "reason": o.reason or ""}
        for kind in result.outcomes.values()
        for o in kind.values()
        if o.state == "skipped"
    ]
    skipped_by_kind: Counter[str] = Counter(s["kind"] for s in skipped)
    tables: dict[str, dict[str, int]] = {}
    lost: list[dict[str, Any]] = []
    for kind in get_args(Kind):
        outcomes = result.outcomes[kind].values()
        states = Counter(o.state for o in outcomes)
        row = {
            "read": data.read[kind],
            "migrated": states["migrated"],
            "present": states["present"],
            "flagged": sum(1 for o in outcomes if o.flags),
            "skipped": skipped_by_kind[kind],
        }
        row["unaccounted"] = row["read"] - row["migrated"] - row["present"] - row["skipped"]
        tables[TABLES[kind]] = row
        if row["unaccounted"]:
            lost.append(
                {
                    "kind": kind,
                    "problem": f"{row['unaccounted']} row(s) neither migrated nor skipped",
                }
            )
    if verification is not None:
        lost.extend(verification.problems)

    # Per user, both sides (rows an importer refused, with their reason, on neither).
    refused = {(s["kind"], s["legacy_id"]) for s in skipped}
    source_counts: dict[int, Counter[str]] = defaultdict(Counter)
    for strategy in data.strategies:
        source_counts[strategy.user_id]["strategies"] += 1
    for session in data.sessions:
        if ("session", session.legacy_id) not in refused:
            source_counts[session.user_id]["sessions"] += 1
            source_counts[session.user_id]["trades"] += len(session.trades)
    for backtest in data.backtests:
        if ("backtest", str(backtest.legacy_id)) not in refused:
            source_counts[backtest.user_id]["backtests"] += 1
    target_counts = _target_counts(data, result, verification)
    users = []
    for user in data.users:
        outcome = result.outcomes["user"].get(str(user.legacy_id))
        theirs = dict(source_counts[user.legacy_id])
        ours = dict(target_counts[user.legacy_id])
        users.append(
            {
                "legacy_id": user.legacy_id,
                "username": user.username,
                "login": outcome.detail.get("email", user.email) if outcome else user.email,
                "new_id": outcome.new_id if outcome else None,
                "source": theirs,
                "target": ours,
            }
        )
        if verification is not None and theirs != ours:
            lost.append(
                {
                    "kind": "user",
                    "legacy_id": str(user.legacy_id),
                    "problem": f"counts differ: Beta1 {theirs}, target {ours}",
                }
            )

    sessions = []
    for session in data.sessions:
        outcome = result.outcomes["session"].get(session.legacy_id)
        target = verification.sessions.get(session.legacy_id) if verification else None
        sessions.append(
            {
                "legacy_id": session.legacy_id,
                "new_id": outcome.new_id if outcome else None,
                "source_pnl": sum(t.pnl or 0.0 for t in session.trades),
                "target_pnl": target["pnl"] if target else None,
                "source_trades": len(session.trades),
                "target_trades": target["trades"] + target["open_trades"] if target else None,
            }
        )

    graphs = [
        {
            "legacy_id": o.legacy_id,
            "new_id": o.new_id,
            "checksum": o.checksum,
            "draft": o.detail.get("plan_id") is None,
            "verified": (
                verification.strategies.get(o.legacy_id, {}).get("checksum")
                == verification.source_checksums.get(o.legacy_id)
                if verification
                else None
            ),
        }
        for o in result.outcomes["strategy"].values()
    ]
    flagged = [
        {"kind": o.kind, "legacy_id": o.legacy_id, "new_id": o.new_id, "flags": list(o.flags)}
        for kind in get_args(Kind)
        for o in result.outcomes[kind].values()
        if o.flags
    ]
    return {
        "source": source,
        "dry_run": result.dry_run,
        "verified": verification is not None,
        "changed": any(o.state == "migrated" for k in result.outcomes.values() for o in k.values()),
        "tables": tables,
        "skipped": skipped,
        "flagged": flagged,
        "users": users,
        "sessions": sessions,
        "graphs": graphs,
        "lost": lost,
    }


def _target_counts(
    data: Beta1Data, result: Result, verification: Verification | None
) -> dict[int, Counter[str]]:
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    if verification is None:  # what the importers reported
        held = {
            k: {legacy for legacy, o in v.items() if o.state != "skipped"}
            for k, v in result.outcomes.items()
        }
        for strategy in data.strategies:
            if str(strategy.legacy_id) in held["strategy"]:
                counts[strategy.user_id]["strategies"] += 1
        for session in data.sessions:
            if session.legacy_id in held["session"]:
                counts[session.user_id]["sessions"] += 1
                counts[session.user_id]["trades"] += len(session.trades)
        for backtest in data.backtests:
            if str(backtest.legacy_id) in held["backtest"]:
                counts[backtest.user_id]["backtests"] += 1
        return counts
    legacy_of = {v["new_id"]: int(k) for k, v in verification.users.items()}
    for found in verification.strategies.values():
        if found["owner_id"] in legacy_of:
            counts[legacy_of[found["owner_id"]]]["strategies"] += 1
    for found in verification.sessions.values():
        if found["owner_id"] in legacy_of:
            user = legacy_of[found["owner_id"]]
            counts[user]["sessions"] += 1
            counts[user]["trades"] += found["trades"] + found["open_trades"]
    for found in verification.backtests.values():
        if found["owner_id"] in legacy_of:
            counts[legacy_of[found["owner_id"]]]["backtests"] += 1
    return counts


def print_report(report: dict[str, Any], console: Console) -> None:
    title = "Beta1 → Beta2" + (" (dry run: nothing written)" if report["dry_run"] else "")
    table = Table(title=title)
    for column in ("table", "read", "migrated", "present", "flagged", "skipped", "unaccounted"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, row in report["tables"].items():
        table.add_row(name, *(str(row[c]) for c in list(row)))
    console.print(table)
    reasons = Counter(f"{s['kind']} ({s['code']})" for s in report["skipped"])
    for reason, count in reasons.most_common():
        console.print(f"  skipped {count:>5}: {reason}")
    drafts = sum(1 for g in report["graphs"] if g["draft"])
    console.print(
        f"  {len(report['graphs'])} graphs, {drafts} saved as drafts with their problems; "
        f"{len(report['flagged'])} rows flagged (see the JSON report)"
    )
    if report["verified"]:
        console.print(
            "  verified against the target: "
            + ("[green]everything matches[/]" if not report["lost"] else "[red]differences[/]")
        )
    if not report["changed"] and not report["dry_run"]:
        console.print("  [green]nothing to do[/]: every row was already migrated")
    for problem in report["lost"][:20]:
        console.print(f"  [red]lost[/] {problem}")
