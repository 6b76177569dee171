"""Start the embedded stack exactly as `make run` does, for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from algotrade_testkit.stack import RunningStack
from algotrade_testkit.stack import start_stack as start_stack_from

REPO = Path(__file__).resolve().parents[2]

__all__ = ["REPO", "RunningStack", "start_stack"]


def start_stack(tmp_path: Path) -> RunningStack:
    """The stack as `make run` starts it, from the repository, on free ports."""
    return start_stack_from(tmp_path, cwd=REPO)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        running.stop()
