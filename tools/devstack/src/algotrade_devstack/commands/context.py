"""Where the command line keeps its credentials, and the client each command uses.

``algotrade login`` stores the gateway URL and the tokens in ``credentials.json`` in the
user's config directory (typer's app dir, e.g. ``~/.config/algotrade``), readable by the user
only (0600). ``ALGOTRADE_API_KEY`` (with ``ALGOTRADE_URL``) replaces the stored login, for CI.
A refreshed token is written back, so a session outlives the 15-minute access token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from algotrade_client import Client

DEFAULT_URL = "http://127.0.0.1:8000"
CREDENTIALS = "credentials.json"


def config_dir() -> Path:
    return Path(os.environ.get("ALGOTRADE_CONFIG_DIR") or typer.get_app_dir("algotrade"))


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS


def load() -> dict[str, Any]:
    path = credentials_path()
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def save(values: dict[str, Any]) -> Path:
    """Write the credentials file with mode 0600 (created so, never widened after)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    os.chmod(path, 0o600)
    return path


def forget() -> bool:
    path = credentials_path()
    if path.exists():
        path.unlink()
        return True
    return False


def url() -> str:
    return os.environ.get("ALGOTRADE_URL") or load().get("url") or DEFAULT_URL


@contextmanager
def client() -> Iterator[Client]:
    """A client with the API key from the environment, else the stored login (whose
    refreshed tokens are saved back)."""
    from algotrade_client import Client

    api_key = os.environ.get("ALGOTRADE_API_KEY")
    stored = load()
    if api_key:
        with Client(url(), api_key=api_key) as c:
            yield c
        return
    if not stored.get("token"):
        raise typer.BadParameter("not logged in: run `algotrade login` or set ALGOTRADE_API_KEY")
    with Client(url(), token=stored["token"], refresh_token=stored.get("refresh_token")) as c:
        try:
            yield c
        finally:
            if c.token and c.token != stored["token"]:
                save({**stored, "token": c.token, "refresh_token": c.refresh_token})
