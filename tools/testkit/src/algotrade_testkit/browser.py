"""The browser the web app's tests drive: the machine's own Chromium, through Playwright.

Playwright's own browser download is never used (a fresh machine may reach only the package
registries): Debian's ``chromium`` from ``PATH``, or ``CHROMIUM_PATH``. `.ci/run` installs it
where it is missing, so CI always has one; elsewhere the tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """The Chromium executable to drive, or None when this machine has none."""
    given = os.environ.get("CHROMIUM_PATH")
    if given:
        return given if Path(given).is_file() else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def artifacts_dir(root: Path) -> Path:
    """Where the browser tests leave their screenshots (``ALGOTRADE_ARTIFACTS`` or
    ``<root>/.algotrade/artifacts/browser``), created."""
    base = os.environ.get("ALGOTRADE_ARTIFACTS")
    path = Path(base) / "browser" if base else root / ".algotrade" / "artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path
