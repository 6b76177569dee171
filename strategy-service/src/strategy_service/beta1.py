"""The Beta1 import entry point: Beta1 graphs mapped to Beta2 graphs, saved as strategies.

`map_graph` applies the node-type and port table of ``docs/beta1-migration.md`` (kept here as
`BETA1_NODES`). `StrategyImporter.import_batch` saves each Beta1 strategy as a strategy with
version 1, and records the Beta1 id in ``legacy_ids`` in the same transaction, so a second run
changes nothing. A graph that cannot be mapped or does not validate is saved as a *draft*
version (no plan, every problem kept), never dropped.

Imported strategies announce nothing on ``strategy.events``: they are history, and thousands of
"created" notifications would reach no one who asked for them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from anyio import to_thread
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.beta1 import Claim, Outcome, StrategyRecord, claim_many, imported
from algotrade.engine import GraphInvalid, compile_graph
from algotrade.events import new_event_id
from strategy_service.models import Strategy, StrategyVersion, legacy_ids

KIND: Final = "strategy"
RAW_KEEP_CHARS: Final = 32 * 1024
"""How much of an unreadable ``graph_json`` a draft keeps in ``meta.beta1.raw`` (a draft must
still fit the editor's graph size limit when it is saved again)."""

PRICE_FIELDS: Final = ("high", "low", "close", "volume")


@dataclass(frozen=True)
class Beta1Node:
    """How one Beta1 node type becomes a Beta2 node."""

    beta2_type: str
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # data key → params
    inputs: Mapping[str, str] = field(default_factory=dict)  # Beta1 port → Beta2 port
    outputs: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # Beta2 params always set


def _unary(beta2: str, **params: tuple[str, ...]) -> Beta1Node:
    return Beta1Node(beta2, params, {"input": "in"}, {"value": "out"})


def _binary(beta2: str) -> Beta1Node:
    return Beta1Node(beta2, {}, {"a": "a", "b": "b"}, {"result": "out"})


HLC: Final = {"high": "high", "low": "low", "close": "close"}

BETA1_NODES: Final[Mapping[str, Beta1Node]] = {
    "price": Beta1Node("price", {"field": ("field",)}, {}, {"value": "out"}),
    "constant": Beta1Node("constant", {"value": ("value",)}, {}, {"value": "out"}),
    "sma": _unary("sma", period=("period",)),
    "ema": _unary("ema", period=("period",)),
    "rsi": _unary("rsi", period=("period",)),
    "macd": Beta1Node(
        "macd",
        {"fast_period": ("fast",), "slow_period": ("slow",), "signal_period": ("signal",)},
        {"input": "in"},
        {"macd": "macd", "signal": "signal", "histogram": "hist"},
    ),
    "bollinger": Beta1Node(
        "bbands",
        {"period": ("period",), "std_dev": ("dev_up", "dev_down")},
        {"input": "in"},
        {"upper": "upper", "middle": "middle", "lower": "lower"},
    ),
    "atr": Beta1Node("atr", {"period": ("period",)}, HLC, {"value": "out"}),
    "stochastic": Beta1Node(
        "stoch",
        {
            "k_period": ("fastk_period",),
            "smooth": ("slowk_period",),
            "d_period": ("slowd_period",),
        },
        HLC,
        {"k": "k", "d": "d"},
    ),
    "crossover": _binary("cross_above"),
    "crossunder": _binary("cross_below"),
    "greater_than": _binary("gt"),
    "less_than": _binary("lt"),
    "and": _binary("and"),
    "or": _binary("or"),
    "not": Beta1Node("not", {}, {"input": "in"}, {"result": "out"}),
    "add": _binary("add"),
    "subtract": _binary("sub"),
    "multiply": _binary("mul"),
    "divide": _binary("div"),
    "buy_signal": Beta1Node("enter_long", {}, {"trigger": "in"}, {}),
    "sell_signal": Beta1Node("exit_long", {}, {"trigger": "in"}, {}),
    "stop_loss": Beta1Node("stop_loss", {"percent": ("percent",)}, {}, {}, {"mode": "percent"}),
    "take_profit": Beta1Node("take_profit", {"percent": ("percent",)}, {}, {}, {"mode": "percent"}),
}

# Beta2 inputs Beta1 fed from the bar itself when nothing was connected.
_IMPLICIT_INPUTS: Final = {
    "atr": ("high", "low", "close"),
    "stoch": ("high", "low", "close"),
    "stop_loss": ("high", "low", "close"),
    "take_profit": ("high", "low", "close"),
}

_NAME_OK = re.compile(r"[^A-Za-z0-9_]")
_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


@dataclass(frozen=True)
class MappedGraph:
    graph: dict[str, Any]
    problems: list[dict[str, Any]]  # mapping and validation problems; empty when it compiles
    plan_id: str | None  # None: a draft

    @property
    def checksum(self) -> str:
        return graph_checksum(self.graph)


def graph_checksum(graph: Mapping[str, Any]) -> str:
    """SHA-256 of the graph's canonical JSON (sorted keys): equal graphs, equal checksums."""
    return hashlib.sha256(orjson.dumps(graph, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _problem(
    code: str, message: str, node: str | None = None, port: str | None = None
) -> dict[str, Any]:
    return {"node_id": node, "port": port, "code": code, "message": message}


def _node_id(raw: object, taken: set[str]) -> str:
    base = _NAME_OK.sub("_", str(raw))[:56] or "node"
    if not (base[0].isalpha() or base[0] == "_"):
        base = f"n_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _param_value(value: Any) -> Any:
    """A Beta1 data value as a Beta2 param literal: numeric strings become numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _NUMBER.match(value):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def map_graph(graph_json: str | None, *, legacy_id: int | None = None) -> MappedGraph:
    """Beta1's stored graph as a Beta2 graph, with every problem found on the way."""
    problems: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"beta1": {"strategy_id": legacy_id, "node_ids": {}}}
    empty: dict[str, Any] = {"nodes": [], "edges": [], "meta": meta}
    if graph_json is None:
        problems.append(_problem("beta1_graph_missing", "Beta1 stored no graph for it"))
        return MappedGraph(empty, problems, None)
    try:
        source = orjson.loads(graph_json)
    except orjson.JSONDecodeError as exc:
        meta["beta1"]["raw"] = graph_json[:RAW_KEEP_CHARS]
        problems.append(_problem("beta1_graph_not_json", f"Beta1's graph is not JSON: {exc}"))
        return MappedGraph(empty, problems, None)
    if not isinstance(source, dict) or not isinstance(source.get("nodes"), list):
        meta["beta1"]["raw"] = graph_json[:RAW_KEEP_CHARS]
        problems.append(_problem("beta1_graph_malformed", "Beta1's graph has no node list"))
        return MappedGraph(empty, problems, None)

    nodes: list[dict[str, Any]] = []
    positions: dict[str, Any] = {}
    by_beta1_id: dict[str, tuple[str, Beta1Node | None]] = {}
    taken: set[str] = set()
    for index, raw in enumerate(source["nodes"]):
        if not isinstance(raw, dict) or raw.get("id") is None or not raw.get("type"):
            problems.append(
                _problem("beta1_node_malformed", f"node #{index} has no id or type; left out")
            )
            continue
        beta1_id, beta1_type = str(raw["id"]), str(raw["type"])
        node_id = _node_id(beta1_id, taken)
        meta["beta1"]["node_ids"][node_id] = beta1_id
        spec = BETA1_NODES.get(beta1_type)
        by_beta1_id[beta1_id] = (node_id, spec)
        data: dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
        if spec is None:
            problems.append(
                _problem(
                    "beta1_unknown_node_type",
                    f"Beta1 node type {beta1_type!r} has no Beta2 equivalent; replace the node",
                    node_id,
                )
            )
            params = {k: _param_value(v) for k, v in data.items() if _is_literal(v)}
            nodes.append({"id": node_id, "type": beta1_type[:64], "params": params})
        else:
            params = dict(spec.fixed)
            for key, value in data.items():
                for name in spec.params.get(key, ()):
                    params[name] = _param_value(value)
            nodes.append({"id": node_id, "type": spec.beta2_type, "params": params})
        position = raw.get("position")
        if isinstance(position, dict):
            positions[node_id] = {
                axis: position[axis]
                for axis in ("x", "y")
                if isinstance(position.get(axis), int | float)
                and not isinstance(position.get(axis), bool)
            }

    edges: list[dict[str, str]] = []
    connected: set[tuple[str, str]] = set()
    connections = source.get("connections")
    for index, raw in enumerate(connections if isinstance(connections, list) else []):
        edge = _map_connection(index, raw, by_beta1_id, problems)
        if edge is not None:
            edges.append({"from": edge[0], "to": edge[1]})
            target, port = edge[1].split(".", 1)
            connected.add((target, port))

    _wire_implicit_prices(nodes, edges, connected, taken, meta)
    if positions:
        meta["positions"] = positions
    graph = {"nodes": nodes, "edges": edges, "meta": meta}
    try:
        plan = compile_graph(graph, purpose="strategy")
    except GraphInvalid as exc:
        return MappedGraph(graph, problems + [p.as_dict() for p in exc.problems], None)
    # A graph that compiles only because something was left out is still a draft: its author
    # must see what changed before it trades.
    return MappedGraph(graph, problems, None if problems else plan.plan_id)


def _is_literal(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _map_connection(
    index: int,
    raw: object,
    by_beta1_id: Mapping[str, tuple[str, Beta1Node | None]],
    problems: list[dict[str, Any]],
) -> tuple[str, str] | None:
    if not isinstance(raw, dict):
        problems.append(
            _problem(
                "beta1_connection_malformed", f"connection #{index} is not an object; left out"
            )
        )
        return None
    ends: list[str] = []
    for end, handle, side in (
        ("source", "sourceHandle", "outputs"),
        ("target", "targetHandle", "inputs"),
    ):
        beta1_id = str(raw.get(end))
        if beta1_id not in by_beta1_id:
            problems.append(
                _problem(
                    "beta1_dangling_connection",
                    f"connection #{index} names {end} node {beta1_id!r}, which does not exist; "
                    "left out",
                )
            )
            return None
        node_id, spec = by_beta1_id[beta1_id]
        port = raw.get(handle)
        if spec is None:  # an unknown type: its ports are whatever Beta1 called them
            ends.append(f"{node_id}.{_NAME_OK.sub('_', str(port or 'out'))[:64] or 'out'}")
            continue
        ports: Mapping[str, str] = getattr(spec, side)
        if port is None and len(ports) == 1:
            port = next(iter(ports))
        if port not in ports:
            problems.append(
                _problem(
                    "beta1_unknown_port",
                    f"connection #{index}: Beta1 {spec.beta2_type} node has no {end} port "
                    f"{port!r}; left out",
                    node_id,
                    str(port),
                )
            )
            return None
        ends.append(f"{node_id}.{ports[str(port)]}")
    return ends[0], ends[1]


def _wire_implicit_prices(
    nodes: list[dict[str, Any]],
    edges: list[dict[str, str]],
    connected: set[tuple[str, str]],
    taken: set[str],
    meta: dict[str, Any],
) -> None:
    """Connect each unconnected bar input (``high``, ``low``, ``close``) of the node types
    Beta1 fed from the bar to one added ``price`` node per field."""
    added: dict[str, str] = {}
    for node in list(nodes):
        for port in _IMPLICIT_INPUTS.get(node["type"], ()):
            if (node["id"], port) in connected:
                continue
            if port not in added:
                price_id = _node_id(f"beta1_{port}", taken)
                added[port] = price_id
                nodes.append({"id": price_id, "type": "price", "params": {"field": port}})
            edges.append({"from": f"{added[port]}.out", "to": f"{node['id']}.{port}"})
    if added:
        meta["beta1"]["added_price_nodes"] = sorted(added.values())


class StrategyImporter:
    """Saves Beta1 strategies, a batch per transaction, each mapped once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def import_batch(self, records: Sequence[StrategyRecord]) -> list[Outcome]:
        async with self._sessions.begin() as session:
            present = await _present(session, [str(r.legacy_id) for r in records])
            unique = {str(r.legacy_id): r for r in reversed(records)}  # the first of each id
            todo = [r for legacy, r in reversed(unique.items()) if legacy not in present]
            mapped = await to_thread.run_sync(_map_all, todo) if todo else []
            outcomes: dict[str, Outcome] = dict(present)
            outcomes.update(await _save_all(session, list(zip(todo, mapped, strict=True))))
        return [outcomes[str(r.legacy_id)] for r in records]

    async def inventory(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the target holds for each Beta1 strategy, recomputed from the stored rows."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    legacy_ids.c.legacy_id,
                    Strategy.id,
                    Strategy.owner_id,
                    Strategy.deleted_at,
                    StrategyVersion.graph,
                    StrategyVersion.plan_id,
                )
                .join(Strategy, Strategy.id == legacy_ids.c.new_id)
                .join(
                    StrategyVersion,
                    (StrategyVersion.strategy_id == Strategy.id) & (StrategyVersion.n == 1),
                )
                .where(imported(legacy_ids, KIND, ids))
            )
            return {
                legacy: {
                    "new_id": new_id,
                    "owner_id": owner,
                    "deleted": deleted_at is not None,
                    "draft": plan_id is None,
                    "plan_id": plan_id,
                    "checksum": graph_checksum(graph),
                }
                for legacy, new_id, owner, deleted_at, graph, plan_id in rows
            }


def _map_all(records: Sequence[StrategyRecord]) -> list[MappedGraph]:
    return [map_graph(r.graph_json, legacy_id=r.legacy_id) for r in records]


async def _present(session: AsyncSession, ids: Sequence[str]) -> dict[str, Outcome]:
    """Outcomes of the strategies an earlier run imported (with their version 1's plan id)."""
    rows = await session.execute(
        select(
            legacy_ids.c.legacy_id,
            legacy_ids.c.new_id,
            legacy_ids.c.checksum,
            legacy_ids.c.flags,
            StrategyVersion.plan_id,
        )
        .join(
            StrategyVersion,
            (StrategyVersion.strategy_id == legacy_ids.c.new_id) & (StrategyVersion.n == 1),
        )
        .where(imported(legacy_ids, KIND, ids))
    )
    return {
        legacy: Outcome(
            kind=KIND,
            legacy_id=legacy,
            state="present",
            new_id=new_id,
            flags=tuple(flags),
            checksum=checksum,
            detail={"version": 1, "plan_id": plan_id},
        )
        for legacy, new_id, checksum, flags, plan_id in rows
    }


async def _save_all(
    session: AsyncSession, todo: Sequence[tuple[StrategyRecord, MappedGraph]]
) -> dict[str, Outcome]:
    """Claim every Beta1 id, then write the strategies this run holds, each table in one
    statement (a batch costs a few round trips, not a few per strategy)."""
    now = datetime.now(UTC)
    outcomes: dict[str, Outcome] = {}
    for record, mapped in todo:
        flags = list(record.flags)
        if mapped.plan_id is None:
            first = mapped.problems[0]["message"]
            flags.append(f"draft: {len(mapped.problems)} problem(s), first: {first}")
        outcomes[str(record.legacy_id)] = Outcome(
            kind=KIND,
            legacy_id=str(record.legacy_id),
            state="migrated",
            new_id=new_event_id(),
            flags=tuple(flags),
            checksum=mapped.checksum,
            detail={"version": 1, "plan_id": mapped.plan_id},
        )
    claimed = await claim_many(
        session,
        legacy_ids,
        KIND,
        [Claim(o.legacy_id, o.new_id or "", o.flags, o.checksum) for o in outcomes.values()],
    )
    mine = [(r, m, outcomes[str(r.legacy_id)]) for r, m in todo if str(r.legacy_id) in claimed]
    if mine:
        strategies = []
        versions = []
        for record, mapped, outcome in mine:
            created = record.created_at or now
            strategies.append(
                {
                    "id": outcome.new_id,
                    "owner_id": record.owner_id,
                    "name": record.name,
                    "description": record.description,
                    "current_version": 1,
                    "created_at": created,
                    "updated_at": record.updated_at or created,
                    "deleted_at": (record.updated_at or now) if record.deleted else None,
                }
            )
            versions.append(
                {
                    "strategy_id": outcome.new_id,
                    "n": 1,
                    "graph": mapped.graph,
                    "plan_id": mapped.plan_id,
                    "problems": mapped.problems or None,
                    "created_by": record.owner_id,
                    "created_at": created,
                }
            )
        await session.execute(insert(Strategy), strategies)
        await session.execute(insert(StrategyVersion), versions)
    taken = [o.legacy_id for o in outcomes.values() if o.legacy_id not in claimed]
    if taken:  # a concurrent run got there first
        outcomes.update(await _present(session, taken))
    return outcomes
