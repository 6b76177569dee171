"""The SDK runs on a user's machine: it needs the standard library and httpx, nothing of the
platform's own packages, and declares exactly that. The client's optional dependencies
(pandas and pyarrow for frames, websockets for live events) are imported only inside the
functions that use them, and declared as extras."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import algotrade_client
import algotrade_sdk

SDK = Path(__file__).resolve().parents[1]
EXTRAS = {"frames": {"pandas", "pyarrow"}, "live": {"websockets"}}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def _imports(package: Path, *, top_level_only: bool = False) -> set[str]:
    """Root names of the absolute imports in ``package``; with ``top_level_only``, only those
    a module runs when it is imported (not in functions, not under ``if TYPE_CHECKING``)."""
    roots: set[str] = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree)
        if top_level_only:
            nodes = (n for n in tree.body if not isinstance(n, ast.If))
        for node in nodes:
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    return roots - set(sys.stdlib_module_names)


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    return project


def test_the_sdk_imports_only_the_standard_library_and_httpx() -> None:
    assert _imports(Path(algotrade_sdk.__file__).parent) - {"algotrade_sdk"} == {"httpx"}
    declared = {_name(d) for d in _project()["dependencies"]}  # type: ignore[attr-defined]
    assert declared == {"httpx"}


def test_the_client_imports_httpx_and_its_extras_only_where_they_are_used() -> None:
    package = Path(algotrade_client.__file__).parent
    assert _imports(package) - {"algotrade_client"} == {"httpx"} | set().union(*EXTRAS.values())
    assert _imports(package, top_level_only=True) - {"algotrade_client"} == {"httpx"}
    optional = _project()["optional-dependencies"]
    assert {extra: {_name(r) for r in reqs} for extra, reqs in optional.items()} == EXTRAS  # type: ignore[attr-defined]


def test_the_wheel_ships_both_packages() -> None:
    build = tomllib.loads((SDK / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert build["targets"]["wheel"]["packages"] == ["src/algotrade_sdk", "src/algotrade_client"]
    assert (SDK / "src" / "algotrade_client" / "py.typed").exists()
