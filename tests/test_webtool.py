"""`make run` rebuilds the web app when one of its sources changed (web/scripts/webtool.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _webtool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webtool", ROOT / "web/scripts/webtool.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webtool = _webtool()


def test_the_build_inputs_are_the_sources_not_the_outputs() -> None:
    files = {p.relative_to(ROOT / "web").as_posix() for p in webtool.source_files()}
    assert {"index.html", "package-lock.json", "vite.config.ts", "src/main.tsx"} <= files
    assert any(f.startswith("src/editor/") for f in files)
    assert not any(f.startswith(("node_modules/", "dist/")) for f in files)


def test_any_change_to_a_source_changes_the_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webtool, "WEB", tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("export const a = 1;\n")
    (tmp_path / "index.html").write_text("<!doctype html>")
    first = webtool._digest(webtool.source_files())
    assert webtool._digest(webtool.source_files()) == first
    (tmp_path / "src" / "a.ts").write_text("export const a = 2;\n")
    assert webtool._digest(webtool.source_files()) != first
    (tmp_path / "src" / "a.ts").write_text("export const a = 1;\n")
    (tmp_path / "src" / "b.ts").write_text("")
    assert webtool._digest(webtool.source_files()) != first  # a new, even empty, file counts


def test_without_any_nodejs_make_run_warns_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(webtool, "DEPS_STAMP", tmp_path / "never-installed")
    monkeypatch.setattr(webtool, "BUILD_STAMP", tmp_path / "never-built")
    monkeypatch.setattr(webtool.shutil, "which", lambda _name: None)
    monkeypatch.setattr(webtool, "_wheel_bin", lambda: None)
    monkeypatch.setattr("sys.argv", ["webtool.py", "build", "--if-possible"])
    assert webtool.main() == 0
    assert "no Node.js" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["webtool.py", "build"])
    assert webtool.main() == 1
