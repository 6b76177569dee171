"""Channel names and the routing of events to streams."""

from __future__ import annotations

import pytest

from algotrade.errors import ValidationFailed
from algotrade.events import Envelope, new_event_id
from algotrade.keys import NOTIFICATION_SCOPES
from notification_service.channels import parse_channel, routes
from notification_service.snapshots import SCOPES

SID = new_event_id()


def test_channels_parse_to_canonical_names() -> None:
    assert parse_channel(f"session:{SID}").resource_id == SID
    market = parse_channel("market:btc/usd:1m")
    assert market.name == "market:BTC-USD:1m"
    assert market.stream("u1", None) == "market:-:BTC-USD:1m"
    assert market.stream("u1", "u1") == "market:u1:BTC-USD:1m"
    assert parse_channel("user").stream("u7") == "user:u7"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "session:1",
        "session:" + "x" * 26,
        "market:BTC-USD:2m",
        "market::1m",
        "bogus",
        5,
        None,
        "user:someone-else",
        "x" * 100,
    ],
)
def test_bad_channels_are_refused_with_a_reason(raw: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_channel(raw)
    assert caught.value.detail


def _event(kind: str, payload: dict[str, object], user: str | None = "u1") -> Envelope:
    return Envelope(type=kind, producer="t", user_id=user, payload=payload)


def test_events_reach_their_resource_and_their_user() -> None:
    equity = routes(_event("session.equity", {"session_id": SID}))
    assert [(r.stream, r.channel, r.family) for r in equity] == [
        (f"session:{SID}", f"session:{SID}", "account"),
        ("user:u1", "user", "account"),
    ]
    sweep = routes(_event("backtest.progress", {"job_id": SID, "kind": "sweep"}))
    assert sweep[0].stream == f"sweep:{SID}" and sweep[0].family == "backtests"
    bars = routes(_event("market.bars", {"symbol": "SPY", "timeframe": "1m", "owner": None}, None))
    assert [(r.stream, r.channel) for r in bars] == [("market:-:SPY:1m", "market:SPY:1m")]
    own = routes(_event("market.bars", {"symbol": "SPY", "timeframe": "1m", "owner": "u9"}, None))
    assert own[0].stream == "market:u9:SPY:1m"
    assert routes(_event("strategy.created", {"strategy_id": SID})) == []


def test_every_scope_a_subscribe_reads_with_is_one_the_notification_signer_may_mint() -> None:
    # The signer is narrowed to these: a token asking for any other would be refused.
    assert {scope for scopes in SCOPES.values() for scope in scopes} <= set(NOTIFICATION_SCOPES)
