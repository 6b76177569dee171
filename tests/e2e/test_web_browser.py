"""The web app in a real browser, as a new user meets it: Chromium (the machine's own, driven by
Playwright) against the embedded stack's gateway, which serves the built app.

One journey: sign up → build an SMA cross by dragging nodes from the palette and connecting
their ports → the dangling node shows its problem, connecting it clears it → save → backtest →
the equity chart is drawn (its canvas is not blank) and every metric shown is the API's →
start a live session on a replayed series and watch its trades arrive while the replay runs.
A screenshot of each page is left in ``.algotrade/artifacts/browser`` (``ALGOTRADE_ARTIFACTS``
elsewhere). Only the market data goes in through the API (the app's data page is not part of
this journey).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from algotrade.engine import Bars, compile_graph
from algotrade_devstack.journey import Account, Journey
from algotrade_testkit.bars import push_rows
from algotrade_testkit.browser import artifacts_dir, chromium
from algotrade_testkit.graphs import sma_cross

from .conftest import REPO, RunningStack

SOURCE, TARGET = "BTC-USD", "BTC-USD.RWEB"
BARS = 300
FAST, SLOW = 5, 20
ROWS_ARE = "(n) => document.querySelectorAll('[data-testid=trades-table] tbody tr').length === n"
WAIT_MS = 90_000  # the longest any step may take on a loaded machine (not a speed check)


@pytest.fixture(scope="module")
def browser_path() -> str:
    found = chromium()
    if found is None:
        reason = "no Chromium on this machine (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: .ci/run installs it, so CI must have one")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def web_build() -> None:
    """The app built from the sources (`make web`: nothing to do when they did not change);
    the gateway looks the build up on each request."""
    subprocess.run(
        [sys.executable, str(REPO / "web" / "scripts" / "webtool.py"), "build"],
        cwd=REPO,
        check=True,
        timeout=600,
    )


@pytest.fixture
def page(browser_path: str, web_build: None, stack: RunningStack) -> Iterator[Any]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 800}, base_url=stack.url()
            )
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            yield page
            assert problems == [], problems  # no uncaught error in the app
        finally:
            browser.close()


class Shots:
    """Numbered screenshots of the journey's pages, left as artefacts."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.dir = artifacts_dir(REPO) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def __call__(self, what: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.dir / f"{self.n:02d}-{what}.png"), full_page=True)

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[None]:
        """What the page showed when a step failed, as the last shot."""
        try:
            yield
        except BaseException:
            self("failed")
            raise


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def node(page: Any, node_id: str) -> Any:
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def drag_from_palette(page: Any, node_type: str, x: float, y: float) -> None:
    """Drag ``node_type`` from the palette and drop it at (x, y) of the canvas."""
    palette = page.locator(".palette-item", has_text=re.compile(f"^{node_type}$"))
    palette.drag_to(page.locator(".canvas"), target_position={"x": x, "y": y})


def connect(page: Any, source: str, target: str) -> None:
    """Draw an edge ``node.port`` → ``node.port`` with the mouse, from handle to handle."""
    (src_node, src_port), (dst_node, dst_port) = source.split("."), target.split(".")
    start = node(page, src_node).locator(f'.react-flow__handle.source[data-handleid="{src_port}"]')
    end = node(page, dst_node).locator(f'.react-flow__handle.target[data-handleid="{dst_port}"]')
    a, b = start.bounding_box(), end.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def set_param(page: Any, node_id: str, name: str, value: str) -> None:
    node(page, node_id).locator(".node-header").click()
    field = page.locator(".params-panel .param-field", has_text=name).locator("input")
    field.fill(value)
    field.press("Tab")


def canvas_is_drawn(page: Any, test_id: str) -> bool:
    """Whether the chart's canvases hold a drawing: many pixels that are not the background."""
    return bool(
        page.evaluate(
            """(testId) => {
                const frame = document.querySelector(`[data-testid="${testId}"]`);
                if (!frame) return false;
                let inked = 0;
                for (const canvas of frame.querySelectorAll("canvas")) {
                    if (canvas.width === 0 || canvas.height === 0) continue;
                    const data = canvas.getContext("2d")
                        .getImageData(0, 0, canvas.width, canvas.height).data;
                    const [r0, g0, b0, a0] = data;
                    for (let i = 0; i < data.length; i += 4) {
                        if (data[i] !== r0 || data[i + 1] !== g0 || data[i + 2] !== b0
                            || data[i + 3] !== a0) inked++;
                    }
                }
                return inked > 500;
            }""",
            test_id,
        )
    )


def shown_number(text: str) -> float | None:
    """A metric as the table prints it ("12.34 %", "10,123.5", "—") as a number."""
    text = text.strip()
    if text == "—":
        return None
    return float(text.removesuffix(" %").replace(",", ""))


def agrees(key: str, shown: str, value: Any) -> bool:
    """Whether a metric cell shows ``value`` (the API's) at the table's precision."""
    number = shown_number(shown)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return number is None
    if number is None:
        return False
    if shown.strip().endswith("%"):
        return abs(number - value * 100) <= 0.0051
    return math.isclose(number, value, rel_tol=6e-4, abs_tol=0.0051)


@pytest.mark.timeout(600)
def test_a_new_user_draws_backtests_and_goes_live_in_the_browser(
    page: Any, walk: Journey, stack: RunningStack
) -> None:
    shot = Shots(page, "journey")
    with shot.on_failure():
        journey(page, walk, shot)


def journey(page: Any, walk: Journey, shot: Shots) -> None:
    account = Account(
        email=f"web-{uuid.uuid4().hex[:8]}@example.com", password=f"Pw-{uuid.uuid4().hex}"
    )

    # Sign up, as a newcomer does.
    page.goto("/signup")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    shot("signup")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("button", name="New strategy").click()

    # Build the SMA cross by dragging nodes in and wiring their ports.
    page.locator(".react-flow").wait_for()
    page.get_by_label("Strategy name").fill("Browser SMA cross")
    # The first node dropped: the editor fits the view around it (zoomed in). Zoom out, and move
    # it to the left, so that the others fit beside it in columns.
    drag_from_palette(page, "price", 300, 300)
    node(page, "price").wait_for()
    for _ in range(2):
        page.locator(".react-flow__controls-zoomout").click()
    box = page.locator(".canvas").bounding_box()
    header = node(page, "price").locator(".node-header").bounding_box()
    page.mouse.move(header["x"] + 10, header["y"] + header["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 40, box["y"] + 300, steps=10)
    page.mouse.up()
    for node_type, x, y in (
        ("sma", 230, 120),
        ("sma", 230, 320),
        ("cross_above", 410, 120),
        ("cross_below", 410, 320),
        ("enter_long", 590, 120),
        ("exit_long", 590, 320),
    ):
        drag_from_palette(page, node_type, x, y)
    node(page, "exit_long").wait_for()
    set_param(page, "sma", "period", str(FAST))
    set_param(page, "sma_2", "period", str(SLOW))
    for source, target in (
        ("price.out", "sma.in"),
        ("price.out", "sma_2.in"),
        ("sma.out", "cross_above.a"),
        ("sma_2.out", "cross_above.b"),
        ("cross_above.out", "enter_long.in"),
        ("sma.out", "cross_below.a"),
        ("sma_2.out", "cross_below.b"),
        ("cross_below.out", "exit_long.in"),
    ):
        connect(page, source, target)
    assert page.locator(".react-flow__edge").count() == 8

    # A dangling node: its problem is shown on it, and saving is refused until it is fixed.
    drag_from_palette(page, "sma", 230, 500)
    badge = node(page, "sma_3").locator(".problem-badge")
    badge.wait_for()
    save = page.get_by_role("button", name="Save strategy")
    assert save.is_disabled()
    shot("editor-problem")
    connect(page, "price.out", "sma_3.in")
    badge.wait_for(state="detached")
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')]"
        ".some(b => b.textContent === 'Save strategy' && !b.disabled)"
    )
    shot("editor-valid")
    save.click()
    page.wait_for_url(re.compile(r"/strategies/[0-9A-Z]{26}$"))
    strategy_id = page.url.rsplit("/", 1)[1]

    # The same user, through the API: the saved graph is the one drawn, and market data.
    walk.login(account)
    stored = walk.expect(
        walk.http.get(f"/api/strategies/{strategy_id}", headers=account.headers), 200
    )
    graph = stored.get("graph") or stored["current"]["graph"]
    assert compile_graph(graph).plan_id is not None
    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(2_000, 2_000 + BARS)
    walk.expect(
        walk.http.post(
            "/api/market/bars",
            headers=account.headers,
            json={"symbol": SOURCE, "timeframe": "4h", "bars": push_rows(bars)},
        ),
        200,
    )

    # Backtest it from the editor.
    page.get_by_role("link", name="Backtest", exact=True).click()
    page.locator("select[name=symbol]").select_option(SOURCE)
    page.locator("select[name=timeframe]").select_option("4h")
    shot("backtest-form")
    page.get_by_test_id("run-submit").click()
    page.wait_for_url(re.compile(r"/backtests/[0-9A-Z]{26}$"))
    job_id = page.url.rsplit("/", 1)[1]
    page.get_by_test_id("run-status").filter(has_text="completed").wait_for()
    page.get_by_test_id("metrics-table").wait_for()
    page.get_by_test_id("equity-chart").locator("canvas").first.wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=equity-chart] canvas').length > 0"
    )
    assert canvas_is_drawn(page, "equity-chart")
    shot("backtest-results")
    job = walk.expect(walk.http.get(f"/api/backtests/{job_id}", headers=account.headers), 200)
    metrics = job["summary"]["metrics"]
    cells = page.locator("[data-testid=metrics-table] td[data-metric]")
    shown = {
        cells.nth(i).get_attribute("data-metric"): cells.nth(i).inner_text()
        for i in range(cells.count())
    }
    numeric = {k for k, v in metrics.items() if v is None or isinstance(v, int | float)}
    assert set(shown) == numeric
    wrong = {k: (shown[k], metrics[k]) for k in shown if not agrees(k, shown[k], metrics[k])}
    assert wrong == {}
    trades = walk.expect(
        walk.http.get(f"/api/backtests/{job_id}/trades", headers=account.headers), 200
    )
    assert trades["total"] > 0
    # Every trade listed (a few hundred bars make far fewer than the table's 10,000).
    page.wait_for_function(ROWS_ARE, arg=trades["total"])

    # Live: the warm-up part of the series replayed into a target symbol, a session on it
    # started from the app, then the rest replayed at a pace a person can watch.
    warmup = compile_graph(sma_cross(FAST, SLOW)).warmup
    ts = bars.ts.tolist()
    replay = {"symbol": SOURCE, "timeframe": "4h", "target_symbol": TARGET}
    first = walk.replay(
        account, {**replay, "speed": "max", "start": iso(ts[0]), "end": iso(ts[warmup])}
    )
    assert first["bars_emitted"] == warmup, first
    page.goto(f"/sessions/new?strategy={strategy_id}")
    page.locator("select[name=symbol]").select_option(TARGET)
    page.locator("select[name=timeframe]").select_option("4h")
    shot("session-form")
    page.get_by_test_id("run-submit").click()
    page.wait_for_url(re.compile(r"/sessions/[0-9A-Z]{26}$"))
    session_id = page.url.rsplit("/", 1)[1]
    page.get_by_test_id("session-equity").wait_for()
    rows = page.get_by_test_id("trades-table").locator("tbody tr")
    assert rows.count() == 0
    # 4h bars at 288,000x: one bar every 50 ms of wall time, the rest in about 14 s.
    rest = walk.expect(
        walk.http.post(
            "/api/market/replays",
            headers=account.headers,
            json={**replay, "speed": 288_000.0, "start": iso(ts[warmup])},
        ),
        201,
        202,
    )
    rows.first.wait_for()  # a trade arrived while the replay was still running...
    during = walk.expect(
        walk.http.get(f"/api/market/replays/{rest['id']}", headers=account.headers), 200
    )
    shot("session-live")
    done = walk.poll(
        f"/api/market/replays/{rest['id']}", account, lambda r: r["state"] == "completed"
    )
    assert done["bars_emitted"] == BARS - warmup
    final = walk.poll(f"/api/sessions/{session_id}", account, lambda s: s["bars_applied"] >= BARS)
    api_trades = walk.expect(
        walk.http.get(f"/api/sessions/{session_id}/trades", headers=account.headers), 200
    )
    page.wait_for_function(ROWS_ARE, arg=min(api_trades["total"], 500))
    assert final["bars_applied"] == BARS
    assert during["state"] in ("running", "completed")
    shot("session-done")

    # Stop it (the app asks first), start it again as a new session, then delete that one.
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("session-stop").click()
    page.get_by_test_id("run-status").filter(has_text="stopped").wait_for()
    page.get_by_test_id("session-restart").click()
    page.wait_for_url(re.compile(rf"/sessions/(?!{session_id})[0-9A-Z]{{26}}$"))
    again = page.url.rsplit("/", 1)[1]
    restarted = walk.expect(walk.http.get(f"/api/sessions/{again}", headers=account.headers), 200)
    assert (restarted["strategy_id"], restarted["symbol"]) == (strategy_id, TARGET)
    assert restarted["status"] in ("running", "paused")
    shot("session-restarted")
    page.get_by_test_id("session-delete").click()
    page.wait_for_url(re.compile(r"/sessions$"))
    gone = walk.http.get(f"/api/sessions/{again}", headers=account.headers)
    assert gone.status_code == 404

    # Agent mode: with an agent registered, the form sends the session's orders to it, and
    # the session's page shows the terminal's account beside the model's.
    agent = walk.expect(
        walk.http.post(
            "/api/agents",
            headers=account.headers,
            json={
                "name": "desk terminal",
                "platform": "mt5",
                "account_number": "5012345",
                "broker": "MetaQuotes-Demo",
                "currency": "USD",
            },
        ),
        201,
    )
    page.goto(f"/sessions/new?strategy={strategy_id}")
    page.get_by_test_id("mode-agent").check()
    page.locator("select[name=agent]").select_option(agent["id"])
    page.locator("input[name=agent_symbol]").fill(f"{TARGET}.m")
    page.locator("select[name=symbol]").select_option(TARGET)
    page.locator("select[name=timeframe]").select_option("4h")
    page.get_by_test_id("run-submit").click()
    page.wait_for_url(re.compile(rf"/sessions/(?!{session_id}|{again})[0-9A-Z]{{26}}$"))
    routed = page.url.rsplit("/", 1)[1]
    page.get_by_test_id("terminal-position").wait_for()
    # Its trades on the terminal: none yet (no agent executes them here).
    terminal_trades = page.get_by_test_id("terminal-trades")
    terminal_trades.wait_for()
    assert "No trades." in terminal_trades.inner_text()
    shot("session-agent-mode")
    created = walk.expect(walk.http.get(f"/api/sessions/{routed}", headers=account.headers), 200)
    assert (created["mode"], created["agent_id"], created["agent_symbol"]) == (
        "agent",
        agent["id"],
        f"{TARGET}.m",
    )
    assert created["terminal"]["position"] == 0.0
