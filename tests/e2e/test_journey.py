"""The first user journey, only through the gateway, then the security edges around it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from algotrade.auth import KeySet, Principal, TokenIssuer
from algotrade.config import PLACEHOLDER_SECRET, ServiceSettings
from algotrade.keys import KEYS_FILE, InstallationKeys, load_or_create_installation_keys
from algotrade_devstack.journey import SWEEP_GRID, Journey, JourneyResult, trade_key

from .conftest import REPO, RunningStack

SPY_DAYS = 5849  # rows of data/spy-1d.csv
SPY_HOURS = 40_832  # rows of data/spy-1h.csv
FORWARD_BARS = 400  # the last hourly bars replayed into the forward session (`make demo`: 2,000)


@pytest.fixture(scope="module")
def journey(
    stack: RunningStack, client_address: str | None
) -> Iterator[tuple[Journey, JourneyResult]]:
    walk = Journey(
        stack.url(), say=lambda line: print(f"  journey: {line}"), local_address=client_address
    )
    try:
        yield (
            walk,
            walk.run(
                REPO / "data" / "spy-1d.csv",
                forward_csv=REPO / "data" / "spy-1h.csv",
                forward_bars=FORWARD_BARS,
            ),
        )
    finally:
        walk.close()


@pytest.mark.timeout(300)
def test_new_user_backtests_and_sweeps_a_template_strategy_through_the_gateway(
    journey: tuple[Journey, JourneyResult],
) -> None:
    _, result = journey
    assert len(result.node_types) >= 35
    assert result.imported["rows_read"] == SPY_DAYS
    assert result.imported["rows_rejected"] == 0
    assert result.imported["accepted"] + result.imported["duplicate"] == SPY_DAYS

    backtest = result.backtest
    assert backtest["status"] == "completed"
    assert backtest["bars"] == SPY_DAYS
    summary = backtest["summary"]
    metrics = summary["metrics"]
    for metric in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate"):
        assert isinstance(metrics[metric], float), metrics
    assert summary["trades"] == result.trades["total"] > 0
    # trade_count counts closed trades; one may still be open at the end.
    assert result.trades["total"] - 1 <= metrics["trade_count"] <= result.trades["total"]
    first = result.trades["trades"][0]
    assert first["side"] == "long" and first["entry_price"] > 0
    assert 0 < len(result.equity["points"]) <= 200
    assert result.equity["total_points"] >= SPY_DAYS - 30  # after the slow SMA's warm-up

    expected = len(SWEEP_GRID["fast"]) * len(SWEEP_GRID["slow"])
    assert result.sweep["combinations"] == expected == 20
    ranked = result.ranked["results"]
    sharpes = [r["metrics"]["sharpe"] for r in ranked]
    assert sharpes == sorted(sharpes, reverse=True)
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    print(f"  journey timings (s since start): {result.timings}")


def test_a_forward_session_on_a_replay_of_hourly_spy_trades_exactly_as_its_backtest(
    journey: tuple[Journey, JourneyResult],
) -> None:
    _, result = journey
    forward = result.forward
    assert forward is not None
    assert forward.imported["rows_read"] == SPY_HOURS
    assert forward.imported["rows_rejected"] == 0
    assert forward.backtest["bars"] == FORWARD_BARS == forward.bars
    assert forward.session["bars_applied"] == FORWARD_BARS
    assert forward.session["gaps"] == 0
    assert len(forward.backtest_trades) >= 2
    assert [trade_key(t) for t in forward.session_trades] == [
        trade_key(t) for t in forward.backtest_trades
    ]
    assert forward.session["equity"] == forward.backtest["summary"]["metrics"]["final_equity"]
    assert forward.equal
    # Analytics, from the events alone, says the same: every closed trade matched, no drift.
    assert forward.comparison is not None
    divergence = forward.comparison["divergence"]
    assert divergence["verdict"] == "consistent", divergence["reasons"]
    assert divergence["trade_matches"] >= len(forward.backtest_trades)
    assert divergence["trade_mismatches"] == 0
    assert forward.tear_sheet is not None and "<svg" in forward.tear_sheet


def test_the_reference_agent_executes_an_open_a_modify_and_a_close_and_stays_healthy(
    journey: tuple[Journey, JourneyResult],
) -> None:
    _, result = journey
    agent = result.agent
    assert agent is not None
    assert "api_key" not in agent.registered
    assert [c.ended["kind"] for c in agent.commands] == ["open", "modify", "close"]
    assert [c.ended["state"] for c in agent.commands] == ["executed"] * 3
    opened, modified, closed = (c.ended for c in agent.commands)
    ticket = opened["result"]["ticket"]
    assert opened["result"] == {"ticket": ticket, "price": 1.1, "volume": 0.1}
    assert (modified["ticket"], modified["sl"]) == (ticket, 1.095)
    assert closed["result"]["ticket"] == ticket
    assert agent.sync is not None
    assert (agent.sync["conflicts"], agent.sync["positions"]) == (0, 0)
    assert agent.status is not None and agent.status["state"] == "healthy"
    assert agent.state == "healthy"
    assert agent.health is not None and agent.health > 0
    assert agent.agent["health"]["components"]["commands"] == 100
    assert agent.ok
    print(f"  agent: health {agent.agent['health']}, sync {agent.sync}")


def test_a_second_user_gets_404_for_every_resource_of_the_first(
    journey: tuple[Journey, JourneyResult],
) -> None:
    walk, result = journey
    other = walk.new_account("other")
    backtest, sweep = result.backtest["id"], result.sweep["id"]
    paths = [
        f"/api/strategies/{result.strategy['id']}",
        f"/api/strategies/{result.strategy['id']}/versions/1",
        f"/api/market/imports/{result.imported['id']}",
        f"/api/backtests/{backtest}",
        f"/api/backtests/{backtest}/trades",
        f"/api/backtests/{backtest}/equity",
        f"/api/backtests/sweeps/{sweep}",
        f"/api/backtests/sweeps/{sweep}/results",
    ]
    for path in paths:
        response = walk.http.get(path, headers=other.headers)
        assert response.status_code == 404, f"{path}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
    deleted = walk.http.delete(f"/api/strategies/{result.strategy['id']}", headers=other.headers)
    assert deleted.status_code == 404
    listed = walk.expect(walk.http.get("/api/backtests", headers=other.headers), 200)
    assert listed["items"] == []
    # The owner still sees them.
    owner = result.account.headers
    assert walk.http.get(f"/api/backtests/{backtest}", headers=owner).status_code == 200


def _local_access_token(keys: InstallationKeys, **claims: Any) -> str:
    """A token signed with the stack's generated key, as its gateway would sign one."""
    settings = ServiceSettings(environment="local", **keys.settings_values("gateway"))
    issuer = TokenIssuer(KeySet.for_access_tokens(settings), issuer=settings.jwt_issuer)
    return issuer.issue(
        Principal(user_id=claims.pop("user_id", "nobody"), scopes=frozenset({"*"})),
        audience=settings.jwt_audience,
        token_type="access",
        ttl_seconds=claims.pop("ttl_seconds", 900),
        now=claims.pop("now", None),
    )


def test_expired_or_tampered_tokens_get_401(
    journey: tuple[Journey, JourneyResult], stack: RunningStack
) -> None:
    walk, result = journey
    keys = load_or_create_installation_keys(stack.state_dir)
    expired = _local_access_token(keys, now=time.time() - 3600, ttl_seconds=60)
    token = result.account.access_token
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for bad in (expired, tampered, "not-a-token"):
        response = walk.http.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, response.text
        proxied = walk.http.get("/api/strategies", headers={"Authorization": f"Bearer {bad}"})
        assert proxied.status_code == 401, proxied.text
    assert walk.http.get("/api/strategies").status_code == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_the_stack_signs_with_its_own_keys_not_the_old_placeholder(
    journey: tuple[Journey, JourneyResult], stack: RunningStack
) -> None:
    """`make run` once signed with `change-me-local-only`: tokens forged with it, with any
    `sub`, went through the gateway and straight into the services."""
    walk, _ = journey
    key_file = stack.state_dir / KEYS_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    now = int(time.time())
    claims = {"iss": "algotrade-gateway", "iat": now, "nbf": now, "exp": now + 600}
    claims |= {"jti": "forged", "sub": "admin", "roles": ["admin"], "scopes": ["*"]}
    keys = load_or_create_installation_keys(stack.state_dir)
    for kid in ("k1", keys.access_kid):
        access = {**claims, "aud": "algotrade", "typ": "access"}
        forged = jwt.encode(access, PLACEHOLDER_SECRET, "HS256", {"kid": kid})
        response = walk.http.get("/api/strategies", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, response.text
    for kid in ("k1", *keys.public_keys()):
        internal = {**claims, "aud": "algotrade-internal", "typ": "internal"}
        forged = jwt.encode(internal, PLACEHOLDER_SECRET, "HS256", {"kid": kid})
        direct = httpx.get(
            f"{stack.url('strategy-service')}/api/strategies",
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert direct.status_code == 401, direct.text


def test_reusing_a_spent_refresh_token_revokes_its_family(
    journey: tuple[Journey, JourneyResult],
) -> None:
    walk, _ = journey
    account = walk.new_account("refresh")
    first = account.refresh_token
    rotated = walk.expect(walk.http.post("/api/auth/refresh", json={"refresh_token": first}), 200)
    second = rotated["refresh_token"]
    assert second != first
    reused = walk.http.post("/api/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    # The family is gone: the token that was still valid no longer works either.
    assert walk.http.post("/api/auth/refresh", json={"refresh_token": second}).status_code == 401


def test_hammering_an_endpoint_yields_429_with_retry_after(
    stack: RunningStack, own_client_address: str | None
) -> None:
    # From an address of its own: the other tests' sign-ins are not refused after this one.
    walk = Journey(stack.url(), local_address=own_client_address)
    limited: httpx.Response | None = None
    try:
        for _ in range(50):
            response = walk.http.post(
                "/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
            )
            if response.status_code == 429:
                limited = response
                break
            assert response.status_code == 401
    finally:
        walk.close()
    assert limited is not None, "50 rapid logins were never limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
