"""The route table and the scope and rate-limit class of each request."""

from __future__ import annotations

from api_gateway.routing import ROUTE_TABLE, RouteTable, gateway_owned, has_dot_segments

AGENT = "01J0000000000000000000000A"


def test_each_prefix_goes_to_its_service() -> None:
    table = RouteTable()
    expected = {
        "/api/strategies": "strategy-service",
        "/api/strategies/1/versions": "strategy-service",
        "/api/market/bars/EURUSD/H1": "market-data-service",
        "/api/backtests": "backtesting-service",
        "/api/sessions/abc": "forward-test-service",
        "/api/agents/a1/heartbeat": "forward-test-service",
        "/api/analytics/portfolio": "analytics-service",
        "/api/notifications/status": "notification-service",
    }
    for path, upstream in expected.items():
        rule = table.resolve(path)
        assert rule is not None and rule.upstream == upstream, path
    for path in ("/api/strategiesx", "/api/auth/login", "/api", "/healthz", "/apix/strategies"):
        assert table.resolve(path) is None, path
    assert len(ROUTE_TABLE) == 7


def test_scopes_and_classes_follow_the_method() -> None:
    table = RouteTable()
    backtests = table.resolve("/api/backtests")
    market = table.resolve("/api/market/bars")
    assert backtests is not None and market is not None
    assert backtests.required_scope("GET") == "backtests:read"
    assert backtests.required_scope("POST") == "backtests:write"
    assert backtests.route_class("POST") == "backtest_submit"
    assert backtests.route_class("DELETE") == "write"
    assert market.route_class("POST") == "write"
    assert market.route_class("HEAD") == "read"


def test_an_agents_command_list_is_forwarded_and_needs_agents_read() -> None:
    # The owner's read-only list; the agent's own long-poll (``.../commands``) leases.
    rule = RouteTable().resolve(f"/api/agents/{AGENT}/queue")
    assert rule is not None and rule.upstream == "forward-test-service"
    assert rule.required_scope("GET") == "agents:read"
    assert rule.route_class("GET") == "read"
    assert not gateway_owned("GET", f"/api/agents/{AGENT}/queue")
    assert gateway_owned("POST", f"/api/agents/{AGENT}/keys")


def test_dot_segments_are_detected() -> None:
    assert has_dot_segments("/api/strategies/../admin")
    assert has_dot_segments("/api/strategies/./x")
    assert not has_dot_segments("/api/strategies/v1.2/x..y")
