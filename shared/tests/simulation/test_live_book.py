"""Sessions of a `LiveBook`, advanced together by `apply_many`, do exactly what sessions on their
own do with `LiveSession.apply`: the same outcomes (fills, closed trades, figures) on every bar
and the same snapshot bytes, whatever the plans, configs, start bars and crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algotrade.engine import Bars, compile_graph
from algotrade.simulation import BacktestConfig
from algotrade.simulation.live import BarOutcome, LiveBar, LiveSession, LiveTemplate, StaleBar
from algotrade.simulation.live_book import PAGE_ROWS, LiveBook, apply_many, snapshots
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.random_graphs import random_bars, random_graphs

DATA_DIR = Path(__file__).resolve().parents[3] / "data"


@pytest.fixture(scope="module")
def btc() -> Bars:
    return Bars.from_csv(DATA_DIR / "btc-usd-4h.csv").slice(0, 600)


def live_bars(bars: Bars) -> list[LiveBar]:
    return [
        LiveBar(int(t), float(o), float(h), float(lo), float(c), float(v))
        for t, o, h, lo, c, v in zip(
            bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True
        )
    ]


def traded(graph: dict[str, object]) -> dict[str, object]:
    """``graph`` with a percent stop and target, so that sessions fill and close inside bars."""
    nodes = [
        *graph["nodes"],  # type: ignore[misc]
        {"id": "stop_b", "type": "stop_loss", "params": {"mode": "percent", "percent": 3.0}},
        {"id": "target_b", "type": "take_profit", "params": {"mode": "percent", "percent": 4.0}},
    ]
    return {**graph, "nodes": nodes}


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_book_applies_each_bar_exactly_as_each_session_alone(
    data: st.DataObject, btc: Bars
) -> None:
    graphs = [data.draw(random_graphs()) for _ in range(2)]
    graphs.append(traded(sma_cross(3, 8)))
    configs = [
        BacktestConfig(
            initial_capital=data.draw(st.sampled_from([1_000.0, 100_000.0])),
            fee_bps=data.draw(st.sampled_from([0.0, 5.0])),
            slippage_bps=data.draw(st.sampled_from([0.0, 3.0])),
            allow_short=data.draw(st.booleans()),
        ).resolve_market(timeframe="4h", calendar="24x7")
        for _ in graphs
    ]
    bars = live_bars(data.draw(random_bars(btc)))
    templates = [LiveTemplate(compile_graph(g), c) for g, c in zip(graphs, configs, strict=True)]
    books = [LiveBook(t) for t in templates]
    # Each pair: a session in a book and its twin on its own, started on the same bar.
    starts = data.draw(st.lists(st.integers(0, len(bars) - 1), min_size=1, max_size=12))
    crash_at = set(data.draw(st.lists(st.integers(0, len(bars) - 1), max_size=3)))
    pairs: list[tuple[LiveSession, LiveSession, int]] = []
    for n, start in enumerate(starts):
        kind = n % len(templates)
        pairs.append((books[kind].start(), templates[kind].start(), start))
    for i, bar in enumerate(bars):
        live = [(booked, alone) for booked, alone, start in pairs if start <= i]
        if not live:
            continue
        loose = templates[0].start()  # not in a book
        applied = apply_many([b for b, _ in live] + [loose], bar)
        assert applied.outcome(len(live)) is not None
        for index, (_, alone) in enumerate(live):
            assert applied.outcome(index) == alone.apply(bar), (i, index)
        assert snapshots([b for b, _ in live]) == [a.snapshot() for _, a in live]
        again = apply_many([b for b, _ in live], bar)  # a redelivered bar changes nothing
        assert not any(again.applied)
        assert again.outcome(0) is None
        if i in crash_at:  # every booked session restored from its snapshot, in new books
            books = [LiveBook(t) for t in templates]
            restored = []
            for booked, alone, start in pairs:
                if start <= i:
                    book = books[templates.index(booked.template)]
                    booked = book.restore(booked.snapshot())
                restored.append((booked, alone, start))
            pairs = restored


def test_the_sma_cross_pairs_trade_and_stay_identical(btc: Bars) -> None:
    """A fixed case that does trade (the property above may draw graphs that never do)."""
    template = LiveTemplate(
        compile_graph(traded(sma_cross(3, 8))),
        BacktestConfig(fee_bps=5.0, slippage_bps=3.0).resolve_market(
            timeframe="4h", calendar="24x7"
        ),
    )
    book = LiveBook(template)
    booked = [book.start() for _ in range(3)]
    alone = [template.start() for _ in range(3)]
    events = 0
    for bar in live_bars(btc):
        applied = apply_many(booked, bar)
        for index, session in enumerate(alone):
            assert applied.outcome(index) == session.apply(bar)
        events += len(applied.events)
    assert events > 20
    assert snapshots(booked) == [s.snapshot() for s in alone]
    assert [repr(b.metrics()) for b in booked] == [repr(a.metrics()) for a in alone]
    # A booked session also works alone, and refuses a stale bar as a session alone does.
    with pytest.raises(StaleBar):
        booked[0].apply(live_bars(btc)[-1])


def test_rows_of_sessions_that_are_gone_are_used_again(btc: Bars) -> None:
    template = LiveTemplate(
        compile_graph(sma_cross(3, 8)),
        BacktestConfig().resolve_market(timeframe="4h", calendar="24x7"),
    )
    book = LiveBook(template)
    sessions = [book.start() for _ in range(3 * PAGE_ROWS)]  # pages of 8, 16, ... 1,024 rows
    bar = live_bars(btc)[0]
    assert all(apply_many(sessions, bar).applied)
    pages = {id(s.home[0]) for s in sessions if s.home is not None}
    assert len(pages) == 10  # 8 + 16 + ... + 1,024 = 2,040 rows, then two of 1,024
    kept = sessions[3]
    expected = kept.snapshot()
    del sessions[:PAGE_ROWS]
    again = [book.start() for _ in range(PAGE_ROWS - 1)]  # the freed rows, no new page
    assert {id(s.home[0]) for s in again if s.home is not None} <= pages
    assert all(s.bars_applied == 0 and s.last_ts is None for s in again)
    assert kept.snapshot() == expected
    assert all(apply_many(again, bar).applied)


def test_a_session_that_fails_is_reported_and_the_others_go_on(btc: Bars) -> None:
    template = LiveTemplate(
        compile_graph(sma_cross(3, 8)),
        BacktestConfig().resolve_market(timeframe="4h", calendar="24x7"),
    )

    class Broken(LiveSession):
        def apply(self, bar: LiveBar) -> BarOutcome:
            raise RuntimeError("the terminal is on fire")

    book = LiveBook(template)
    broken = Broken(
        template, template.initial_nodes.copy(), template.initial_account.copy(), 0, None
    )
    sessions = [book.start(), broken, book.start()]
    bar = live_bars(btc)[0]
    applied = apply_many(sessions, bar)
    assert applied.failed == {1: f"bar {bar.ts}: RuntimeError: the terminal is on fire"}
    assert applied.applied == [True, False, True]
    assert applied.outcome(1) is None
    assert [s.bars_applied for s in sessions] == [1, 0, 1]
