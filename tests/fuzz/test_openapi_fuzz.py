"""Property: no input makes an API answer 5xx, and every answer is documented: its status
(`status_code_conformance`) and its body's schema.

schemathesis generates requests, valid and invalid, from each service's own OpenAPI document
and from the gateway's merged one (which reaches the same services through the proxy), with
credentials that pass authentication, so that generated inputs reach validation and the
handlers. The run is bounded to stay in `make test`: a few examples per operation, from a fixed
seed so that a failure reproduces, and no coverage phase (it enumerates every boundary case of
every schema, unbounded by ``max-examples``).

The error statuses the platform's machinery answers are declared on every operation in one
place (`algotrade.openapi.platform_problems`, and the gateway's in `api_gateway.openapi`); a
status an operation answers for reasons of its own is declared on its route.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from fuzz_testkit import SERVICES, Platform, Target, documents, same_operations
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 10
SEED = 20_250_101
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"coverage": {"enabled": False}},
    }
)

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

DOCUMENTS = documents()
strategy_api = schemathesis.openapi.from_dict(DOCUMENTS["strategy-service"], config=CONFIG)
market_data_api = schemathesis.openapi.from_dict(DOCUMENTS["market-data-service"], config=CONFIG)
backtesting_api = schemathesis.openapi.from_dict(DOCUMENTS["backtesting-service"], config=CONFIG)
notification_api = schemathesis.openapi.from_dict(DOCUMENTS["notification-service"], config=CONFIG)
forward_test_api = schemathesis.openapi.from_dict(DOCUMENTS["forward-test-service"], config=CONFIG)
analytics_api = schemathesis.openapi.from_dict(DOCUMENTS["analytics-service"], config=CONFIG)
gateway_api = schemathesis.openapi.from_dict(DOCUMENTS["api-gateway"], config=CONFIG)


def call_and_validate(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(base_url=target.url, headers=dict(target.headers), checks=CHECKS)


@pytest.mark.parametrize("service", [*SERVICES, "api-gateway"])
def test_the_fuzzed_documents_are_the_served_ones(service: str, platform: Platform) -> None:
    target = platform.gateway if service == "api-gateway" else platform.services[service]
    served = httpx.get(f"{target.url}/openapi.json", timeout=30).json()
    assert same_operations(served, DOCUMENTS[service])


@strategy_api.parametrize()
def test_strategy_service_never_answers_5xx(case: schemathesis.Case, platform: Platform) -> None:
    call_and_validate(case, platform.services["strategy-service"])


@market_data_api.parametrize()
def test_market_data_service_never_answers_5xx(case: schemathesis.Case, platform: Platform) -> None:
    call_and_validate(case, platform.services["market-data-service"])


@backtesting_api.parametrize()
def test_backtesting_service_never_answers_5xx(case: schemathesis.Case, platform: Platform) -> None:
    call_and_validate(case, platform.services["backtesting-service"])


@forward_test_api.parametrize()
def test_forward_test_service_never_answers_5xx(
    case: schemathesis.Case, platform: Platform
) -> None:
    call_and_validate(case, platform.services["forward-test-service"])


@notification_api.parametrize()
def test_notification_service_never_answers_5xx(
    case: schemathesis.Case, platform: Platform
) -> None:
    call_and_validate(case, platform.services["notification-service"])


@analytics_api.parametrize()
def test_analytics_service_never_answers_5xx(case: schemathesis.Case, platform: Platform) -> None:
    call_and_validate(case, platform.services["analytics-service"])


@gateway_api.parametrize()
def test_gateway_never_answers_5xx(case: schemathesis.Case, platform: Platform) -> None:
    call_and_validate(case, platform.gateway)
