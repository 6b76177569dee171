"""Prometheus metrics of the gateway (in the app's own registry, next to the request metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from algotrade.latency_metrics import CountedLatencies


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.upstream = CountedLatencies(
            registry,
            counter="gateway_upstream_requests_total",
            counter_help="Forwarded requests by upstream and outcome (HTTP status or failure kind)",
            histogram="gateway_upstream_response_seconds",
            histogram_help="Time until the upstream's response headers arrived",
            labels=("upstream",),
            outcome_label="outcome",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused by a rate limit, by route class",
            ["route_class"],
            registry=registry,
        )
        self.login_failures = Counter(
            "gateway_login_failures_total", "Failed sign-ins", registry=registry
        )
        self.websocket_sessions = Counter(
            "gateway_websocket_sessions_total",
            "WebSocket pass-through sessions by outcome",
            ["outcome"],
            registry=registry,
        )
