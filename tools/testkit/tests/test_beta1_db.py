"""The Beta1 database generator: reproducible, as messy as `Beta1Truth` says, and honest about
what is valid (graphs are checked against the table in docs/beta1-migration.md and Beta2's own
validator, hashes against Werkzeug)."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import check_password_hash

from algotrade.engine import validate_graph
from algotrade.epoch import ms_from_iso
from algotrade_testkit.beta1_db import TABLES, Beta1Truth, build_beta1_db

DOC = Path(__file__).resolve().parents[3] / "docs" / "beta1-migration.md"
SMALL = {"users": 30}


@dataclass(frozen=True)
class NodeDoc:
    data: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    beta2_type: str
    beta2_inputs: tuple[str, ...]
    beta2_outputs: tuple[str, ...]


def node_table() -> dict[str, NodeDoc]:
    """The doc's node/port table, read from the doc itself."""
    table = {}
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Beta1 type |"))
    for line in lines[start + 2 :]:
        if not line.startswith("| `"):
            break
        cells = [re.findall(r"`([^`]+)`", cell) for cell in line.strip("|").split("|")]
        beta2_in, _, beta2_out = line.strip("|").split("|")[5].partition("→")
        table[cells[0][0]] = NodeDoc(
            data=tuple(cells[1]),
            inputs=tuple(cells[2]),
            outputs=tuple(cells[3]),
            beta2_type=cells[4][0],
            beta2_inputs=tuple(re.findall(r"`([^`]+)`", beta2_in)),
            beta2_outputs=tuple(re.findall(r"`([^`]+)`", beta2_out)),
        )
    return table


NODES = node_table()
NODES_BY_BETA2 = {doc.beta2_type: doc for doc in NODES.values()}
# Beta1 data key -> Beta2 params, as the doc's "Beta2 node (params)" column spells them.
PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "price": {"field": ("field",)},
    "constant": {"value": ("value",)},
    "sma": {"period": ("period",)},
    "ema": {"period": ("period",)},
    "rsi": {"period": ("period",)},
    "atr": {"period": ("period",)},
    "macd": {"fast_period": ("fast",), "slow_period": ("slow",), "signal_period": ("signal",)},
    "bollinger": {"period": ("period",), "std_dev": ("dev_up", "dev_down")},
    "stochastic": {
        "k_period": ("fastk_period",),
        "smooth": ("slowk_period",),
        "d_period": ("slowd_period",),
    },
    "stop_loss": {"percent": ("percent",)},
    "take_profit": {"percent": ("percent",)},
}


def beta2_graph(graph: dict[str, Any]) -> dict[str, Any]:
    """A plain reading of the doc's mapping (not the migration's code): types, params and ports
    by the table, numeric strings as numbers, unconnected price inputs wired to price nodes."""
    ids = {node["id"]: f"n{index}" for index, node in enumerate(graph["nodes"])}
    nodes, edges, fed = [], [], set()
    for node in graph["nodes"]:
        doc = NODES[node["type"]]
        risk = node["type"] in ("stop_loss", "take_profit")
        params: dict[str, Any] = {"mode": "percent"} if risk else {}
        for key, value in node["data"].items():
            if isinstance(value, str) and key != "field":
                value = float(value) if "." in value else int(value)
            for name in PARAMS[node["type"]][key]:
                params[name] = value
        nodes.append({"id": ids[node["id"]], "type": doc.beta2_type, "params": params})
    for connection in graph["connections"]:
        source = graph_node(graph, connection["source"])
        target = graph_node(graph, connection["target"])
        source_doc, target_doc = NODES[source["type"]], NODES[target["type"]]
        out = source_doc.beta2_outputs[source_doc.outputs.index(connection["sourceHandle"])]
        port = target_doc.beta2_inputs[target_doc.inputs.index(connection["targetHandle"])]
        edges.append({"from": f"{ids[source['id']]}.{out}", "to": f"{ids[target['id']]}.{port}"})
        fed.add((ids[target["id"]], port))
    for node in list(nodes):
        for port in NODES_BY_BETA2[node["type"]].beta2_inputs:
            if port in ("high", "low", "close", "volume") and (node["id"], port) not in fed:
                price_id = f"beta1_{port}"
                if all(n["id"] != price_id for n in nodes):
                    nodes.append({"id": price_id, "type": "price", "params": {"field": port}})
                edges.append({"from": f"{price_id}.out", "to": f"{node['id']}.{port}"})
    return {"nodes": nodes, "edges": edges}


def graph_node(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(node for node in graph["nodes"] if node["id"] == node_id)


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def by_id(path: Path, table: str) -> dict[Any, tuple[Any, ...]]:
    return {row[0]: row for row in rows(path, table)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Beta1Truth]:
    path = tmp_path_factory.mktemp("beta1") / "strategies.db"
    return path, build_beta1_db(path, **SMALL)


def test_one_seed_writes_the_same_rows_and_another_seed_others(
    built: tuple[Path, Beta1Truth], tmp_path: Path
) -> None:
    path, truth = built
    again = build_beta1_db(tmp_path / "again.db", **SMALL)
    other = build_beta1_db(tmp_path / "other.db", seed=2, **SMALL)
    for table in TABLES:
        assert rows(tmp_path / "again.db", table) == rows(path, table), table
    assert again == truth
    assert rows(tmp_path / "other.db", "strategies") != rows(path, "strategies")
    assert other.passwords != truth.passwords


def test_the_schema_is_the_contract(built: tuple[Path, Beta1Truth]) -> None:
    path, truth = built
    with closing(sqlite3.connect(path)) as connection:
        columns = {
            table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            for table in TABLES
        }
        counts = {
            table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in TABLES
        }
    assert columns["users"] == [
        "id", "username", "email", "password_hash", "created_at", "is_active"
    ]  # fmt: skip
    assert columns["forward_test_sessions"][:3] == ["id", "user_id", "strategy_id"]
    assert len(columns["backtest_results"]) == 16
    assert counts == truth.counts
    assert counts["strategies"] == 30 * 7 and counts["backtest_results"] == 30 * 3


def test_every_kind_of_mess_is_there_at_a_small_size(built: tuple[Path, Beta1Truth]) -> None:
    _, truth = built
    empty = [f.name for f in fields(truth) if not getattr(truth, f.name)]
    assert empty == []


def test_the_truth_names_rows_that_carry_the_defect(built: tuple[Path, Beta1Truth]) -> None:
    path, truth = built
    users, strategies = by_id(path, "users"), by_id(path, "strategies")
    sessions = by_id(path, "forward_test_sessions")
    trades, backtests = by_id(path, "session_trades"), by_id(path, "backtest_results")

    assert all(users[i][3] is None for i in truth.null_hash_user_ids)
    for user_id in truth.malformed_hash_user_ids:
        assert users[user_id][3] and users[user_id][1] not in truth.passwords
    assert all(users[i][3].startswith("scrypt:1024:8:1$") for i in truth.scrypt_user_ids)
    assert all(users[i][2] is None for i in truth.null_email_user_ids)
    assert all(users[i][2].strip() == "" for i in truth.empty_email_user_ids)
    emails = [str(users[i][2]).lower() for i in truth.duplicate_email_user_ids]
    assert all(emails.count(email) > 1 for email in emails)
    assert any(users[i][2] != users[i][2].lower() for i in truth.duplicate_email_user_ids)
    names = [users[i][1].lower() for i in truth.case_colliding_username_user_ids]
    assert len(set(names)) == len(names) // 2
    assert not truth.missing_user_ids & users.keys()

    assert all(strategies[i][4] is None for i in truth.null_graph_strategy_ids)
    for strategy_id in truth.invalid_json_strategy_ids:
        with pytest.raises(ValueError):
            json.loads(strategies[strategy_id][4])
    assert all(strategies[i][7] == 1 for i in truth.deleted_strategy_ids)
    assert all(strategies[i][1] not in users for i in truth.orphan_strategy_ids)
    for strategy_id in truth.unknown_type_strategy_ids:
        graph = json.loads(strategies[strategy_id][4])
        assert {n["type"] for n in graph["nodes"]} - NODES.keys()
    for strategy_id in truth.dangling_node_strategy_ids:
        graph = json.loads(strategies[strategy_id][4])
        ids = {n["id"] for n in graph["nodes"]}
        assert any({c["source"], c["target"]} - ids for c in graph["connections"])
    for strategy_id in truth.dangling_port_strategy_ids:
        graph = json.loads(strategies[strategy_id][4])
        kinds = {n["id"]: NODES[n["type"]] for n in graph["nodes"]}
        assert any(
            c["sourceHandle"] not in kinds[c["source"]].outputs
            or c["targetHandle"] not in kinds[c["target"]].inputs
            for c in graph["connections"]
        )
    assert not truth.missing_strategy_ids & strategies.keys()
    named: dict[tuple[int, str], set[int]] = {}
    for strategy_id, row in strategies.items():
        if row[2] and row[2].strip():
            named.setdefault((row[1], row[2]), set()).add(strategy_id)
    assert truth.duplicate_name_strategy_ids == {
        strategy_id for same in named.values() if len(same) > 1 for strategy_id in same
    }

    assert all(sessions[i][1] not in users for i in truth.missing_user_session_ids)
    assert all(sessions[i][2] not in strategies for i in truth.missing_strategy_session_ids)
    assert all(strategies[sessions[i][2]][7] for i in truth.deleted_strategy_session_ids)
    drafts = {sessions[i][2] for i in truth.draft_strategy_session_ids}
    assert not drafts & truth.valid_graph_strategy_ids
    assert all(sessions[i][6] is None for i in truth.null_initial_capital_session_ids)
    assert all(sessions[i][10] is None for i in truth.null_settings_session_ids)

    for trade_id in truth.open_trade_ids:
        _, session_id, _, _, _, _, exit_price, _, exit_time, pnl = trades[trade_id]
        assert exit_price is None and exit_time is None and pnl is None
        assert sessions[session_id][5] == "running"
    assert all(trades[i][1] not in sessions for i in truth.orphan_trade_ids)
    assert all(trades[i][9] is None for i in truth.null_pnl_trade_ids)
    assert all(None in trades[i][3:6] + trades[i][7:8] for i in truth.unreadable_trade_ids)

    assert all(backtests[i][14] is None for i in truth.null_equity_backtest_ids)
    for backtest_id in truth.invalid_equity_backtest_ids | truth.invalid_trades_backtest_ids:
        row = backtests[backtest_id]
        with pytest.raises(ValueError):
            json.loads(row[14] if backtest_id in truth.invalid_equity_backtest_ids else row[13])
    for backtest_id in truth.num_trades_mismatch_backtest_ids - truth.invalid_trades_backtest_ids:
        listed = json.loads(backtests[backtest_id][13] or "null")
        assert listed is None or len(listed) != backtests[backtest_id][12]


def test_stored_hashes_verify_with_werkzeug(built: tuple[Path, Beta1Truth]) -> None:
    path, truth = built
    users = by_id(path, "users")
    checked = sorted(truth.scrypt_user_ids) + sorted(users.keys() - truth.scrypt_user_ids)[:5]
    for user_id in checked:
        username, password_hash = users[user_id][1], users[user_id][3]
        if password_hash is None:
            continue
        password = truth.passwords[username]
        assert len(password) >= 12
        assert check_password_hash(password_hash, password)
        assert not check_password_hash(password_hash, password + "x")
    assert {users[i][1] for i in truth.null_hash_user_ids}.isdisjoint(truth.passwords)


def test_valid_graphs_use_only_documented_nodes_ports_and_data(
    built: tuple[Path, Beta1Truth],
) -> None:
    path, truth = built
    strategies = by_id(path, "strategies")
    for strategy_id in truth.valid_graph_strategy_ids:
        graph = json.loads(strategies[strategy_id][4])
        assert set(graph) == {"nodes", "connections"}
        nodes = {node["id"]: node for node in graph["nodes"]}
        assert len(nodes) == len(graph["nodes"]), strategy_id
        for node in graph["nodes"]:
            assert set(node) == {"id", "type", "data", "position"}
            assert set(node["data"]) <= set(NODES[node["type"]].data), node
            assert set(node["position"]) == {"x", "y"}
        fed = set()
        for connection in graph["connections"]:
            assert set(connection) == {"source", "sourceHandle", "target", "targetHandle"}
            source, target = nodes[connection["source"]], nodes[connection["target"]]
            assert connection["sourceHandle"] in NODES[source["type"]].outputs, connection
            assert connection["targetHandle"] in NODES[target["type"]].inputs, connection
            port = (connection["target"], connection["targetHandle"])
            assert port not in fed, connection
            fed.add(port)


def test_valid_graphs_validate_in_beta2_and_rejected_ones_do_not(
    built: tuple[Path, Beta1Truth],
) -> None:
    path, truth = built
    strategies = by_id(path, "strategies")
    for strategy_id in truth.valid_graph_strategy_ids:
        problems = validate_graph(beta2_graph(json.loads(strategies[strategy_id][4])))
        assert problems == [], (strategy_id, problems)
    for strategy_id in truth.rejected_graph_strategy_ids:
        assert validate_graph(beta2_graph(json.loads(strategies[strategy_id][4]))), strategy_id
    assert set(truth.graph_templates) == truth.valid_graph_strategy_ids
    for strategy_id in truth.string_param_strategy_ids:
        assert re.search(r'": ?"\d+"', strategies[strategy_id][4]), strategy_id


def parse_time(text: str) -> int:
    """Epoch ms of a Beta1 time cell, in any of its spellings."""
    if text.isdigit():
        return int(text) if len(text) > 11 else int(text) * 1000
    return ms_from_iso(text)


def spelling(text: str) -> str:
    if text.isdigit():
        return "epoch_ms" if len(text) > 11 else "epoch"
    if text.endswith("Z"):
        return "iso_z"
    if re.search(r"[+-]\d\d:\d\d$", text):
        return "iso_offset"
    if len(text) == 10:
        return "date"
    return "sql" if " " in text else "iso_naive"


def test_time_cells_spell_the_recorded_instants_in_every_format(
    built: tuple[Path, Beta1Truth],
) -> None:
    path, truth = built
    tables = {table: by_id(path, table) for table in TABLES}
    columns = {}
    with closing(sqlite3.connect(path)) as connection:
        for table in TABLES:
            names = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            columns[table] = {name: index for index, name in enumerate(names)}
    spellings = set()
    for (table, row_id, column), ms in truth.instants_ms.items():
        key = int(row_id) if table != "forward_test_sessions" else row_id
        text = tables[table][key][columns[table][column]]
        assert parse_time(text) == ms, (table, row_id, column, text)
        spellings.add(spelling(text))
    assert spellings == {"epoch", "epoch_ms", "iso_z", "iso_offset", "sql", "iso_naive", "date"}
    for table, row_id, column in truth.null_times:
        key = int(row_id) if table != "forward_test_sessions" else row_id
        assert tables[table][key][columns[table][column]] is None


def test_trade_pnl_follows_prices_and_backtests_end_on_their_equity(
    built: tuple[Path, Beta1Truth],
) -> None:
    path, truth = built
    for _, _, _, side, quantity, entry, exit_price, _, _, pnl in rows(path, "session_trades"):
        if None in (side, quantity, entry, exit_price, pnl):
            continue
        sign = -1 if side.lower() in ("sell", "short") else 1
        assert pnl == pytest.approx(sign * (exit_price - entry) * quantity, abs=1e-6)
    for row in rows(path, "backtest_results"):
        if row[0] in truth.pair_equity_backtest_ids:
            assert json.loads(row[14])[-1][1] == row[8]
            assert 200 <= len(json.loads(row[14])) <= 400
        elif row[0] in truth.object_equity_backtest_ids:
            assert json.loads(row[14])[-1]["equity"] == row[8]
