"""`make run`'s stack: every service ready, then Ctrl-C leaves no process behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from algotrade.config import SERVICE_PORTS

from .conftest import start_stack


@pytest.mark.timeout(180)
def test_embedded_stack_starts_all_seven_services_and_stops_cleanly(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    print(f"embedded stack ready after {stack.ready_after:.1f}s")
    try:
        children = stack.children()
        assert len(children) >= 7 + 1 + 3  # seven services, the worker, redis, kafka mock, moto
        for name in SERVICE_PORTS:
            response = httpx.get(f"{stack.url(name)}/readyz", timeout=5)
            assert response.status_code == 200, f"{name}: {response.text}"
            assert response.json()["service"] == name
    finally:
        code = stack.stop()
    assert code == 0, stack.output.read_text()
    assert "all stopped" in stack.output.read_text()
    left = stack.leftovers(children)
    assert not left, f"left running: {left}"
