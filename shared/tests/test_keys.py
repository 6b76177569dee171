"""The per-installation key file `make run` creates once and reuses."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from algotrade.auth import InternalTokens, internal_verifier
from algotrade.config import ServiceSettings
from algotrade.errors import ConfigurationError, Unauthorized
from algotrade.keys import (
    ANALYTICS_SCOPES,
    KEYS_FILE,
    InstallationKeys,
    load_or_create_installation_keys,
)
from algotrade_devstack.infra import Provided
from algotrade_devstack.stack import SIGNERS, Stack


def test_the_key_file_is_created_0600_and_reused_across_restarts(tmp_path: Path) -> None:
    first = load_or_create_installation_keys(tmp_path)
    path = tmp_path / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_bytes()
    again = load_or_create_installation_keys(tmp_path)
    assert again == first
    assert path.read_bytes() == written
    # A token minted before the "restart" still verifies after it.
    before = InternalTokens(
        ServiceSettings(environment="local", **first.settings_values("gateway")), ttl_seconds=60
    ).for_user("u1", "market:read")
    after = internal_verifier(ServiceSettings(environment="local", **again.settings_values(None)))
    assert after.verify(before).user_id == "u1"


def test_each_installation_gets_different_keys(tmp_path: Path) -> None:
    one = load_or_create_installation_keys(tmp_path / "a")
    two = load_or_create_installation_keys(tmp_path / "b")
    assert one.access_secret != two.access_secret
    assert one.public_keys().keys().isdisjoint(two.public_keys())
    assert one.public_keys().values() != two.public_keys().values()


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_installation_keys(tmp_path)
    (tmp_path / KEYS_FILE).chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_or_create_installation_keys(tmp_path)


def test_a_key_file_from_before_the_analytics_signer_gains_one_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    first = load_or_create_installation_keys(tmp_path)
    path = tmp_path / KEYS_FILE
    data = json.loads(path.read_text())
    del data["internal"]["analytics"]  # as written before the role existed
    path.write_text(json.dumps(data))
    upgraded = load_or_create_installation_keys(tmp_path)
    assert upgraded.access_secret == first.access_secret
    earlier = {role: s for role, s in first.signers.items() if role != "analytics"}
    assert {role: s for role, s in upgraded.signers.items() if role != "analytics"} == earlier
    analytics = upgraded.signers["analytics"]
    assert analytics.scopes == ANALYTICS_SCOPES
    assert analytics.kid not in {s.kid for s in earlier.values()}
    # Written back (still 0600), so the next start keeps the new signer.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_installation_keys(tmp_path) == upgraded


def test_the_analytics_signer_mints_only_market_and_strategy_reads() -> None:
    keys = InstallationKeys.generate()
    tokens = InternalTokens(
        ServiceSettings(environment="local", **keys.settings_values("analytics")), ttl_seconds=60
    )
    verifier = internal_verifier(ServiceSettings(environment="local", **keys.settings_values(None)))
    principal = verifier.verify(tokens.for_user("u1", "market:read", "strategies:read"))
    assert principal.user_id == "u1"
    assert principal.scopes == {"market:read", "strategies:read"}
    with pytest.raises(Unauthorized, match="may not grant"):
        verifier.verify(tokens.for_user("u1", "backtests:read"))


def test_only_signers_get_private_keys_and_only_the_gateway_the_access_secret() -> None:
    keys = InstallationKeys.generate()
    gateway, backtesting, service = keys.env("gateway"), keys.env("backtesting"), keys.env(None)
    assert gateway["JWT_SECRET"] == keys.access_secret
    assert "JWT_SECRET" not in backtesting and "JWT_SECRET" not in service
    assert "INTERNAL_JWT_PRIVATE_KEY" not in service
    assert "PRIVATE" not in json.dumps(service)
    assert backtesting["INTERNAL_JWT_PRIVATE_KEY"] != gateway["INTERNAL_JWT_PRIVATE_KEY"]
    forward = keys.env("forward-test")
    assert len({backtesting["INTERNAL_JWT_PRIVATE_KEY"], forward["INTERNAL_JWT_PRIVATE_KEY"]}) == 2
    assert "JWT_SECRET" not in forward
    private_keys = {keys.env(role)["INTERNAL_JWT_PRIVATE_KEY"] for role in keys.signers}
    assert len(private_keys) == len(keys.signers) == 5
    assert "JWT_SECRET" not in keys.env("analytics")
    assert json.loads(service["INTERNAL_JWT_KEY_SCOPES"]) == {
        keys.signers["backtesting"].kid: ["market:read", "strategies:read"],
        keys.signers["forward-test"].kid: ["market:read", "strategies:read"],
        keys.signers["notification"].kid: [
            "sessions:read",
            "backtests:read",
            "agents:read",
            "market:read",
        ],
        keys.signers["analytics"].kid: ["market:read", "strategies:read"],
    }
    assert SIGNERS == {
        "api-gateway": "gateway",
        "backtesting-service": "backtesting",
        "forward-test-service": "forward-test",
        "notification-service": "notification",
        "analytics-service": "analytics",
    }


def test_the_stack_passes_each_child_only_its_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shell's leftovers (say, exported for docker compose) must not reach any child.
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    monkeypatch.setenv("INTERNAL_JWT_PRIVATE_KEY", "leftover")
    stack = Stack(state_dir=tmp_path, base_port=18000)
    stack.infra = [
        Provided(name, f"{name}://here", "test", stop=lambda: None)
        for name in ("postgres", "redis", "kafka", "s3")
    ]
    monkeypatch.setattr(stack, "worker_count", lambda: 1)
    monkeypatch.setattr("algotrade_devstack.stack.Child.start", lambda self: None)
    monkeypatch.setattr(stack, "write_status", lambda: None)
    stack.start_services()
    keys = load_or_create_installation_keys(tmp_path)
    envs = {child.name: child.env for child in stack.children}
    assert envs["api-gateway"]["JWT_SECRET"] == keys.access_secret
    for name, env in envs.items():
        assert json.loads(env["INTERNAL_JWT_PUBLIC_KEYS"]) == keys.public_keys()
        signer = SIGNERS.get(name)
        if name.startswith("backtest-worker"):
            signer = "backtesting"
        if name.startswith("forward-test-worker"):
            signer = "forward-test"
        if signer is None:
            assert "INTERNAL_JWT_PRIVATE_KEY" not in env, name
        else:
            assert env["INTERNAL_JWT_KEY_ID"] == keys.signers[signer].kid  # type: ignore[index]
        if name != "api-gateway":
            assert "JWT_SECRET" not in env, name
        assert env.get("INTERNAL_JWT_PRIVATE_KEY") != "leftover"
