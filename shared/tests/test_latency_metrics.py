"""`CountedLatencies` exposes exactly what prometheus-client's Counter and Histogram would.

The same events go to both, drawn at random (latencies on and between bucket bounds, events
only counted); the scraped text must be the same, but for the ``_created`` samples that
prometheus-client's own metrics add.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from algotrade.latency_metrics import CountedLatencies

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

seconds = st.one_of(
    st.sampled_from(BUCKETS),  # exactly on a bound: that bucket holds it
    st.floats(min_value=0, max_value=20, allow_nan=False),
)
events = st.lists(
    st.tuples(
        st.sampled_from([("svc", "/a", "GET"), ("svc", "/a", "POST"), ("svc", "/b/{id}", "GET")]),
        st.sampled_from(["200", "404", "500", "timeout"]),
        st.one_of(st.none(), seconds),  # None: counted, not observed
    ),
    max_size=60,
)


def _scraped(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def _samples(lines: list[str]) -> tuple[set[str], dict[str, float]]:
    """The comment lines, and each sample's value by its name and labels."""
    comments = {line for line in lines if line.startswith("#")}
    values = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    return comments, {name: float(value) for name, value in values.items()}


@settings(max_examples=60, deadline=None)
@given(events)
def test_the_exposition_is_prometheus_clients_own(
    drawn: list[tuple[tuple[str, str, str], str, float | None]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counted = CountedLatencies(
        ours,
        counter="http_requests_total",
        counter_help="HTTP requests by route, method and status",
        histogram="http_request_duration_seconds",
        histogram_help="HTTP request latency by route",
        labels=("service", "route", "method"),
        outcome_label="status",
        buckets=BUCKETS,
    )
    counter = Counter(
        "http_requests_total",
        "HTTP requests by route, method and status",
        ["service", "route", "method", "status"],
        registry=theirs,
    )
    histogram = Histogram(
        "http_request_duration_seconds",
        "HTTP request latency by route",
        ["service", "route", "method"],
        registry=theirs,
        buckets=BUCKETS,
    )
    for labels, outcome, taken in drawn:
        if taken is None:
            counted.count(labels, outcome)
        else:
            counted.observe(labels, outcome, taken)
            histogram.labels(*labels).observe(taken)
        counter.labels(*labels, outcome).inc()
    # prometheus-client lists a histogram's label sets even before any observation.
    observed = {labels for labels, _, taken in drawn if taken is not None}
    theirs_lines = [
        line
        for line in _scraped(theirs)
        if not line.startswith("http_request_duration_seconds_")
        or any(
            f'route="{route}"' in line and f'method="{method}"' in line
            for _, route, method in observed
        )
    ]
    # Sample order means nothing; a sum may differ in its last bits (ours adds per outcome first).
    our_comments, our_values = _samples(_scraped(ours))
    their_comments, their_values = _samples(theirs_lines)
    assert our_comments == their_comments
    assert our_values == pytest.approx(their_values, rel=1e-12, abs=1e-12)


def test_a_second_registration_of_the_same_names_is_refused() -> None:
    registry = CollectorRegistry()
    options = {
        "counter": "x_total",
        "counter_help": "x",
        "histogram": "x_seconds",
        "histogram_help": "x",
        "labels": ("a",),
        "outcome_label": "b",
        "buckets": (1.0,),
    }
    CountedLatencies(registry, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Duplicated"):
        CountedLatencies(registry, **options)  # type: ignore[arg-type]
