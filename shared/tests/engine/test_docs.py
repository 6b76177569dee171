"""The published documentation and JSON Schema stay true to the code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from algotrade.engine import Bars, ProblemCode, compile_graph, node_types_catalog
from algotrade.engine.schema import schema_text, strategy_graph_json_schema

DOCS = Path(__file__).resolve().parents[3] / "docs"
GUIDE = DOCS / "strategy-graphs.md"
SCHEMA = DOCS / "strategy-graph.schema.json"


def _json_blocks() -> list[Any]:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def _examples() -> list[dict[str, Any]]:
    return [b for b in _json_blocks() if isinstance(b, dict) and isinstance(b.get("nodes"), list)]


def test_published_schema_is_the_generated_one() -> None:
    published = json.loads(SCHEMA.read_text())
    assert published == strategy_graph_json_schema(), (
        "docs/strategy-graph.schema.json is stale; regenerate it (see docs/strategy-graphs.md)"
    )
    assert SCHEMA.read_text() == schema_text()


def test_guide_has_complete_examples_that_validate_and_compile(
    spy_daily: Bars,
) -> None:
    examples = _examples()
    assert len(examples) >= 3
    validator = jsonschema.Draft202012Validator(strategy_graph_json_schema())
    warmups = []
    for example in examples:
        validator.validate(example)
        plan = compile_graph(example)
        out = plan.evaluate(spy_daily)
        assert any(out[key].any() for key in plan.signals["enter_long"])
        warmups.append(plan.warmup)
    assert warmups[0] == 26  # stated in the guide
    assert compile_graph(examples[1]).step_for("below_trend").warmup == 199


def test_schema_rejects_what_validation_rejects_per_node(
    make_graph: Callable[..., dict[str, Any]],
) -> None:
    validator = jsonschema.Draft202012Validator(strategy_graph_json_schema())
    good = make_graph([{"id": "s", "type": "sma", "params": {"period": 5}}], [])
    assert not list(validator.iter_errors(good))
    for params in ({"period": 1}, {"period": "5"}, {"length": 5}, {"period": {"$x": 1}}):
        bad = make_graph([{"id": "s", "type": "sma", "params": params}], [])
        assert list(validator.iter_errors(bad)), params
    unknown = make_graph([{"id": "s", "type": "smaa"}], [])
    assert list(validator.iter_errors(unknown))


def test_every_node_type_and_problem_code_is_documented() -> None:
    text = GUIDE.read_text()
    for entry in node_types_catalog():
        assert f"| `{entry['type']}` |" in text, entry["type"]
    for code in ProblemCode:
        assert f"| `{code.value}` |" in text, code.value


def test_doc_examples_run_identically_in_both_executors(
    spy_daily: Bars, parity: Callable[..., None], stream_bars: Callable[..., Any]
) -> None:
    bars = spy_daily.slice(0, 600)
    for example in _examples():
        plan = compile_graph(example)
        parity(plan.evaluate(bars), stream_bars(plan.stream(), bars))
        assert np.isfinite(plan.evaluate(bars)["close.out"]).all()


def _python_block_after(heading: str) -> str:
    section = GUIDE.read_text().split(f"\n{heading}\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert found is not None, heading
    return found.group(1)


def test_research_example_runs_and_charts_indicators_by_utc_time(
    monkeypatch: pytest.MonkeyPatch, spy_daily: Bars
) -> None:
    monkeypatch.chdir(DOCS.parent)  # the example reads data/spy-1d.csv
    scope: dict[str, Any] = {}
    exec(_python_block_after("## Indicators for research and charts"), scope)
    chart = scope["chart"]
    assert list(chart.columns) == ["open", "high", "low", "close", "volume", "sma50.out", "rsi.out"]
    assert len(chart) == len(spy_daily) and str(chart.index.tz) == "UTC"
    expected = chart["close"].rolling(50).mean()
    np.testing.assert_allclose(chart["sma50.out"], expected, rtol=1e-12, equal_nan=True)
