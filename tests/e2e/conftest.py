"""Start the embedded stack exactly as `make run` does, for end-to-end tests.

Starting it costs half a minute or more (infrastructure, seven services and two workers
importing and migrating at once), so the modules share one: `shared_stack` starts it on first
use and every module takes it through the module-scoped `stack` fixture. Tests stay independent
of each other and of their order:

- each test works as its own users (`Journey.new_account`), and each module talks to the
  gateway from its own loopback address (`client_address`), so that one module's sign-ins
  do not count against another's per-address limits (sign-in and registration: 10 a minute;
  failed sign-ins); the test that hammers the login until it is refused does so from an
  address of its own (`own_client_address`);
- a test that disturbs the stack (kills a service or a worker) waits until it is back, and
  every module's teardown checks that the stack is healthy again; when it is not, that
  module's teardown fails and the stack is stopped, so the next module gets a fresh one
  instead of inheriting the damage;
- the smoke test stops the shared stack to check the clean stop; it runs after the other
  end-to-end tests (`pytest_collection_modifyitems`), and should anything use the stack after
  it anyway, that gets a fresh one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _pytest.nodeid import NodeId

from algotrade_devstack.infra import port_bindable
from algotrade_devstack.journey import Journey
from algotrade_testkit.stack import RunningStack
from algotrade_testkit.stack import start_stack as start_stack_from

REPO = Path(__file__).resolve().parents[2]
SMOKE_TEST = "test_stack_smoke.py"
GROUP = "e2e-stack"  # the pytest-xdist group of every end-to-end test
HEALTHY_WITHIN = 60.0  # a teardown's wait for a child that the module's test had killed

__all__ = ["REPO", "RunningStack", "SharedStack", "start_stack"]


def start_stack(tmp_path: Path) -> RunningStack:
    """The stack as `make run` starts it, from the repository, on free ports."""
    return start_stack_from(tmp_path, cwd=REPO)


def unhealthy(stack: RunningStack) -> str | None:
    """Why ``stack`` is not fit for the next test, or None when it is: its supervisor runs,
    says it is ready, and every child is up (ready, for a service)."""
    if stack.proc.poll() is not None:
        return f"its supervisor exited with {stack.proc.returncode}"
    status = stack.status()
    if status["phase"] != "ready":
        return f"it is {status['phase']}"
    down = [
        f"{c['name']} ({c['state']})"
        for c in status["children"]
        if c["state"] != ("ready" if c["url"].startswith("http") else "running")
    ]
    return f"not up: {', '.join(down)}" if down else None


class SharedStack:
    """The one stack the end-to-end modules share, started on first use and again after
    something stopped it."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.current: RunningStack | None = None
        self.starts = 0

    def get(self) -> RunningStack:
        if self.current is None or self.current.proc.poll() is not None:
            self.current = start_stack(self._tmp.mktemp("stack"))
            self.starts += 1
            print(f"\nembedded stack {self.starts} ready after {self.current.ready_after:.1f}s")
        return self.current

    def stop(self) -> int:
        """Stop the stack (Ctrl-C); the next `get` starts a new one. The supervisor's code."""
        if self.current is None:
            raise RuntimeError("no shared stack runs")
        running, self.current = self.current, None
        code: int = running.stop()
        return code

    def check_healthy(self, within: float = HEALTHY_WITHIN) -> None:
        """Fail when the stack has not become healthy within ``within`` seconds, after
        stopping it so that whoever comes next starts from a fresh one."""
        if self.current is None:
            return
        deadline = time.monotonic() + within
        while (why := unhealthy(self.current)) is not None and time.monotonic() < deadline:
            time.sleep(0.25)
        if why is None:
            why = _services_not_ready(self.current)
        if why is not None:
            output = self.current.output
            self.stop()
            pytest.fail(f"the shared stack was left unhealthy: {why}\n{output.read_text()[-3000:]}")


def _services_not_ready(stack: RunningStack) -> str | None:
    """Asked directly, which services do not answer /readyz with 200."""
    failing = []
    for child in stack.status()["children"]:
        if child["url"].startswith("http"):
            code: int | str
            try:
                code = httpx.get(f"{child['url']}/readyz", timeout=5).status_code
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            if code != 200:
                failing.append(f"{child['name']} ({code})")
    return f"/readyz fails: {', '.join(failing)}" if failing else None


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedStack]:
    shared = SharedStack(tmp_path_factory)
    try:
        yield shared
    finally:
        if shared.current is not None:
            shared.stop()


@pytest.fixture(scope="module")
def stack(shared_stack: SharedStack) -> Iterator[RunningStack]:
    """The shared stack, checked healthy again once the module is done with it."""
    yield shared_stack.get()
    shared_stack.check_healthy()


_LOOPBACK = itertools.count(2)


def fresh_client_address() -> str | None:
    """A loopback address nothing in this run connected from yet (127.0.0.2, .3, ...), for
    connections to the gateway, which counts sign-ins per client address; None where only
    127.0.0.1 can be bound (then 127.0.0.1 is shared)."""
    for _ in range(20):
        address = f"127.0.0.{next(_LOOPBACK)}"
        if port_bindable(0, address):
            return address
    return None


@pytest.fixture(scope="module")
def client_address() -> str | None:
    """The module's own address to connect to the gateway from (`fresh_client_address`)."""
    return fresh_client_address()


@pytest.fixture(scope="module")
def walk(
    stack: RunningStack, client_address: str | None, request: pytest.FixtureRequest
) -> Iterator[Journey]:
    """The module's client of the gateway (`Journey`), from the module's own address; it
    narrates each step under the module's name."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    journey = Journey(
        stack.url(), say=lambda line: print(f"  {name}: {line}"), local_address=client_address
    )
    try:
        yield journey
    finally:
        journey.close()


@pytest.fixture
def own_client_address() -> str | None:
    """A test's own address (`fresh_client_address`), for one that exhausts a per-address
    limit on purpose: what it used up is then nobody else's, whatever runs after it."""
    return fresh_client_address()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The end-to-end tests share one stack, so they run in one process (one pytest-xdist
    group), and the smoke test, which stops the shared stack, after the others."""
    e2e = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(e2e):
            item.add_marker(pytest.mark.xdist_group(GROUP))
            if config.getoption("loadgroup", default=False) and "@" not in item.nodeid:
                # pytest-xdist 3.8 groups by an "@group" suffix it writes to `item._nodeid`,
                # which pytest 9.2 no longer reads (pytest-xdist#1386): without this, every
                # worker ran end-to-end tests on a stack of its own, and a module's tests
                # could land on two workers (its module fixtures twice, on two stacks).
                item._id = NodeId.parse(f"{item.nodeid}@{GROUP}")  # type: ignore[attr-defined]
    smoke = [i for i in items if i.path.name == SMOKE_TEST and i.path.parent == e2e]
    if not smoke:
        return
    rest = [i for i in items if i not in smoke]
    last = max((n for n, i in enumerate(rest) if i.path.is_relative_to(e2e)), default=-1)
    items[:] = rest[: last + 1] + smoke + rest[last + 1 :]
