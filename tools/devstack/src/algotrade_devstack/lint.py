"""``algotrade strategy lint``: graph files checked offline by the platform's own validator.

A strategy author keeps graphs as files in their own repository (JSON, or YAML for comments);
the lint reads each one and reports every problem the strategy service would (the same
`algotrade.engine.validation.validate_graph`), with the node and port at fault, so their CI
fails before a push does. A file may hold the graph itself or a strategy document with the
graph under ``graph`` (as ``GET /api/strategies/{id}`` returns it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

YAML_SUFFIXES = frozenset({".yaml", ".yml"})


@dataclass(frozen=True)
class FileProblem:
    path: str
    node: str | None
    port: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "node": self.node,
            "port": self.port,
            "code": self.code,
            "message": self.message,
        }


def read_graph(path: Path) -> Any:
    """The graph in ``path`` (JSON, or YAML by suffix); a strategy document's ``graph``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in YAML_SUFFIXES:
        import yaml  # only for YAML files

        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    if isinstance(document, dict) and "graph" in document and "nodes" not in document:
        return document["graph"]
    return document


def lint(paths: list[Path]) -> list[FileProblem]:
    """Every problem of every file (an unreadable file is one problem of its own)."""
    from algotrade.engine.validation import validate_graph  # the engine: only when linting

    found: list[FileProblem] = []
    for path in paths:
        try:
            graph = read_graph(path)
        except Exception as exc:  # missing, not UTF-8, or not JSON/YAML: say which file
            found.append(FileProblem(str(path), None, None, "unreadable", str(exc)))
            continue
        found.extend(
            FileProblem(str(path), p.node_id, p.port, p.code.value, p.message)
            for p in validate_graph(graph)
        )
    return found
