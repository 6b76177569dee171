"""Built-in templates: each is a real, working strategy; browse and instantiate them."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from strategy_testkit import DATA, PROBLEM, Service

from algotrade.engine import Bars, compile_graph
from strategy_service.templates import BUILT_IN_TEMPLATES, Template, TemplateCatalog

REQUIRED = {
    "sma_cross",
    "ema_cross",
    "rsi_mean_reversion",
    "bollinger_breakout",
    "macd_trend",
    "donchian_breakout",
    "stochastic_oversold",
    "atr_trailing_stop_trend",
}


@pytest.fixture
def service(module_service: Service) -> Service:
    """These tests share one service per module; each looks only at what it created."""
    return module_service


@cache
def spy_daily() -> Bars:
    return Bars.from_csv(DATA / "spy-1d.csv")


def test_the_required_templates_exist() -> None:
    assert {t.key for t in BUILT_IN_TEMPLATES} >= REQUIRED
    assert len(TemplateCatalog()) >= 8


@pytest.mark.parametrize("template", BUILT_IN_TEMPLATES, ids=lambda t: t.key)
def test_template_compiles_and_enters_on_spy_daily(template: Template) -> None:
    plan = compile_graph(template.graph)
    outputs = plan.evaluate(spy_daily())
    entries = [outputs[key] for key in plan.signals.get("enter_long", ())]
    entries += [outputs[key] for key in plan.signals.get("enter_short", ())]
    assert entries, "a template needs an entry signal"
    assert sum(int(np.count_nonzero(series)) for series in entries) >= 1
    # Its tunables are real: every declared parameter is documented and steers the plan.
    parameters = template.graph["parameters"]
    assert parameters and all(spec.get("doc") for spec in parameters.values())
    assert set(plan.parameters) == set(parameters)
    for name, spec in parameters.items():
        other = spec["max"] if spec["default"] != spec["max"] else spec["min"]
        assert plan.with_params({name: other}).plan_id != plan.plan_id, name


async def test_templates_are_listed_with_docs_and_an_etag(service: Service) -> None:
    response = await service.call("GET", "/api/strategies/templates")
    assert response.status_code == 200
    listed = response.json()
    assert listed["count"] == len(listed["data"]) >= 8
    by_key = {t["key"]: t for t in listed["data"]}
    assert set(by_key) >= REQUIRED
    rsi = by_key["rsi_mean_reversion"]
    assert rsi["doc"] and rsi["summary"] and rsi["name"] == "RSI mean reversion"
    assert rsi["parameters"]["period"] == {
        "default": 14,
        "min": 2,
        "max": 50,
        "step": 1,
        "doc": "RSI period",
    }
    assert rsi["plan"]["risk"]["stop_loss"]["mode"] == "percent"
    assert rsi["graph"]["nodes"]

    etag = response.headers["etag"]
    again = await service.call("GET", "/api/strategies/templates", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    one = await service.call("GET", "/api/strategies/templates/macd_trend")
    assert one.status_code == 200 and one.json() == by_key["macd_trend"]


async def test_instantiate_creates_a_strategy_with_the_chosen_parameters(
    service: Service,
) -> None:
    response = await service.call(
        "POST",
        "/api/strategies/templates/sma_cross/instantiate",
        json={"name": "My crossover", "parameters": {"fast": 5, "slow": 50.0}},
        user="tpl-user",
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "My crossover" and created["template"] == "sma_cross"
    assert created["current_version"] == 1 and created["owner_id"] == "tpl-user"
    parameters = created["graph"]["parameters"]
    assert (parameters["fast"]["default"], parameters["slow"]["default"]) == (5, 50)
    assert parameters["fast"]["min"] == 2  # the template's ranges stay, for sweeps
    assert created["graph"]["meta"]["template"] == "sma_cross"
    expected = TemplateCatalog().get("sma_cross")[1].with_params({"fast": 5, "slow": 50})
    assert created["plan_id"] == expected.plan_id
    assert response.headers["location"] == f"/api/strategies/{created['id']}"
    compiled = await service.call(
        "POST", f"/api/strategies/{created['id']}/compile", user="tpl-user"
    )
    fast = compiled.json()["parameters"]["fast"]
    assert fast == {"default": 5, "min": 2, "max": 100, "step": 1, "doc": "period of the fast SMA"}

    defaults = await service.call(
        "POST", "/api/strategies/templates/donchian_breakout/instantiate", json={}
    )
    assert defaults.status_code == 201
    assert defaults.json()["name"] == "Donchian channel breakout"


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"fast": 500}, "param_out_of_range"),
        ({"fast": 1}, "param_out_of_range"),
        ({"fast": 7.5}, "param_wrong_type"),
        ({"speed": 7}, "unknown_parameter_ref"),
    ],
)
async def test_instantiate_refuses_bad_parameters(
    service: Service, parameters: dict[str, float], code: str
) -> None:
    response = await service.call(
        "POST",
        "/api/strategies/templates/sma_cross/instantiate",
        json={"parameters": parameters},
        user="tpl-bad",
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert [e["code"] for e in response.json()["errors"]] == [code]
    listed = await service.call("GET", "/api/strategies", user="tpl-bad")
    assert listed.json()["count"] == 0


async def test_instantiate_validates_the_request(service: Service) -> None:
    url = "/api/strategies/templates/sma_cross/instantiate"
    wrong_type = await service.call("POST", url, json={"parameters": {"fast": "5"}})
    assert wrong_type.status_code == 422
    extra = await service.call("POST", url, json={"params": {}})
    assert extra.status_code == 422
    unknown = await service.call("POST", "/api/strategies/templates/nope/instantiate", json={})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
