"""The SDK runs on a trader's machine: it needs the standard library and httpx, nothing of the
platform's own packages, and declares exactly that."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import algotrade_sdk

SDK = Path(__file__).resolve().parents[1]


def test_the_sdk_imports_only_the_standard_library_and_httpx() -> None:
    roots: set[str] = set()
    for path in Path(algotrade_sdk.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) - {"algotrade_sdk"} == {"httpx"}
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert declared == {"httpx"}
