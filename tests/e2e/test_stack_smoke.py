"""`make run`'s stack: every service ready, then Ctrl-C leaves no process behind.

The stack is the one the other end-to-end modules shared (started by whichever used it first,
or here when this runs alone): this test checks it is all up, then stops it, after the others
are done with it (`conftest.pytest_collection_modifyitems`)."""

from __future__ import annotations

import httpx
import pytest

from algotrade.config import SERVICE_PORTS

from .conftest import SharedStack


@pytest.mark.timeout(180)
def test_embedded_stack_starts_all_seven_services_and_stops_cleanly(
    shared_stack: SharedStack,
) -> None:
    stack = shared_stack.get()
    print(f"embedded stack ready after {stack.ready_after:.1f}s")
    try:
        children = stack.children()
        assert len(children) >= 7 + 1 + 3  # seven services, the worker, redis, kafka mock, moto
        for name in SERVICE_PORTS:
            response = httpx.get(f"{stack.url(name)}/readyz", timeout=5)
            assert response.status_code == 200, f"{name}: {response.text}"
            assert response.json()["service"] == name
    finally:
        code = shared_stack.stop()
    assert code == 0, stack.output.read_text()
    assert "all stopped" in stack.output.read_text()
    left = stack.leftovers(children)
    assert not left, f"left running: {left}"
