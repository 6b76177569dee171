"""``algotrade strategy lint`` as a strategy author's CI runs it: a process, its exit code and
its output; every problem the strategy service's validator finds, with node and port."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from algotrade_testkit.graphs import sma_cross


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "algotrade_devstack.cli", "strategy", "lint", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_valid_graphs_in_json_and_yaml_pass(tmp_path: Path) -> None:
    graph = sma_cross(5, 20)
    (tmp_path / "cross.json").write_text(json.dumps(graph))
    (tmp_path / "cross.yaml").write_text(yaml.safe_dump({"name": "x", "graph": graph}))
    done = lint(str(tmp_path / "cross.json"), str(tmp_path / "cross.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 file(s): no problems" in done.stdout


def test_every_problem_is_reported_with_its_node_and_the_exit_code_is_1(tmp_path: Path) -> None:
    graph = sma_cross(5, 20)
    graph["nodes"].append({"id": "mystery", "type": "no_such_node"})
    graph["edges"].append({"from": "close.out", "to": "ghost.in"})
    (tmp_path / "broken.json").write_text(json.dumps(graph))
    (tmp_path / "garbled.json").write_text("{not json")
    done = lint("--json", str(tmp_path / "broken.json"), str(tmp_path / "garbled.json"))
    assert done.returncode == 1, done.stdout + done.stderr
    problems = json.loads(done.stdout)
    codes = {(p["node"], p["code"]) for p in problems if p["file"].endswith("broken.json")}
    assert ("mystery", "unknown_node_type") in codes
    assert any(code == "dangling_edge" for _, code in codes), codes
    assert [p["code"] for p in problems if p["file"].endswith("garbled.json")] == ["unreadable"]
    table = lint(str(tmp_path / "broken.json"))
    assert table.returncode == 1 and "mystery" in table.stdout
