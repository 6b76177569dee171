from __future__ import annotations

import re
import time

import orjson
import pytest
from pydantic import BaseModel
from ulid import ULID

from algotrade.errors import EventError
from algotrade.events import (
    ULID_PATTERN,
    Envelope,
    EventRegistry,
    TestEventPayload,
    Topics,
    default_registry,
    new_event_ids,
)


def test_envelope_round_trips_through_bytes() -> None:
    env = default_registry.build(
        "platform.ping", TestEventPayload(n=7, note="x"), producer="t", key="k", user_id="u1"
    )
    decoded, payload = default_registry.decode(env.to_bytes())
    assert decoded == env
    assert isinstance(payload, TestEventPayload)
    assert payload.n == 7


def test_event_ids_sort_by_creation_time() -> None:
    ids = [Envelope(type="platform.ping", producer="t").id for _ in range(200)]
    assert len(set(ids)) == 200
    # ULIDs made in later milliseconds sort after earlier ones.
    assert ids[0][:10] <= ids[-1][:10]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "tombstone"),
        (b"not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"type": "platform.ping"}', "bad envelope"),
        (
            Envelope(type="no.such.type", producer="t").to_bytes(),
            "unknown event type",
        ),
        (
            Envelope(type="platform.ping", producer="t", payload={"n": "seven"}).to_bytes(),
            "bad payload",
        ),
        (b"{" + b'"a":' * 1 + b'"' + b"x" * 1_000_001 + b'"}', "exceeds"),
    ],
)
def test_malformed_events_are_typed_errors(raw: bytes | None, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        default_registry.decode(raw)


def test_registry_refuses_a_second_model_for_one_type() -> None:
    registry = EventRegistry()

    class A(BaseModel):
        x: int

    class B(BaseModel):
        x: int

    registry.register("a.b")(A)
    with pytest.raises(ValueError, match="twice"):
        registry.register("a.b")(B)


def test_build_refuses_a_payload_of_the_wrong_model() -> None:
    class Other(BaseModel):
        n: int

    with pytest.raises(EventError):
        default_registry.build("platform.ping", Other(n=1), producer="t")


def test_topics_are_versioned_and_prefixable() -> None:
    topics = Topics("t1.")
    assert topics.market_bars == "t1.market.bars.v1"
    assert Topics.dlq(topics.backtest_jobs) == "t1.backtest.jobs.v1.dlq"
    assert all(name.endswith(".v1") for name in Topics().all())


def test_envelope_json_is_plain_orjson() -> None:
    env = Envelope(type="platform.ping", producer="p", payload={"n": 1})
    data = orjson.loads(env.to_bytes())
    assert set(data) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "producer",
        "key",
        "correlation_id",
        "user_id",
        "payload",
    }


def test_event_ids_strictly_increase_even_within_one_millisecond() -> None:
    """The outbox publishes in id order; python-ulid's default policy keeps ids of one
    millisecond monotonic, and this pins that we rely on it."""
    from algotrade.events import new_event_id

    ids = [new_event_id() for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({i[:10] for i in ids}) < len(ids)  # the case this guards did occur


def test_ids_made_in_bulk_are_ulids_of_now_and_all_different() -> None:
    before = int(time.time() * 1000)
    ids = new_event_ids(5_000)
    after = int(time.time() * 1000)
    assert len(set(ids)) == 5_000
    pattern = re.compile(ULID_PATTERN)
    for event_id in ids:
        assert pattern.match(event_id), event_id
        assert before <= ULID.from_str(event_id).milliseconds <= after
    # The random part is spread over the whole alphabet (not, say, stuck at one character).
    assert len({c for event_id in ids for c in event_id[10:]}) == 32
    assert new_event_ids(0) == []
