"""Internal tokens: minted per principal, reused briefly, short-lived."""

from __future__ import annotations

from collections.abc import Callable

import jwt

from algotrade.auth import Principal
from algotrade_testkit.services import key_settings
from api_gateway.config import Settings
from api_gateway.tokens import InternalTokens


def test_internal_token_is_reused_per_principal_within_the_reuse_window(
    verify_internal: Callable[[str], Principal],
) -> None:
    now = [1_900_000_000.0]
    settings = Settings(
        environment="test",
        **key_settings("gateway"),
        internal_token_ttl_seconds=60,
        internal_token_reuse_seconds=15,
    )
    tokens = InternalTokens(settings, clock=lambda: now[0])
    alice = Principal(user_id="alice", scopes=frozenset({"*"}))
    key = Principal(user_id="alice", scopes=frozenset({"market:read"}), api_key_id="k1")

    first = tokens.for_principal(alice)
    assert tokens.for_principal(alice) == first
    assert tokens.for_principal(key) != first
    now[0] += 16
    renewed = tokens.for_principal(alice)
    assert renewed != first
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["typ"] == "internal"
    assert jwt.get_unverified_header(renewed)["alg"] == "EdDSA"
    assert claims["aud"] == "algotrade-internal"
    assert claims["exp"] - claims["iat"] == 60


def test_internal_token_carries_api_key_scopes(
    verify_internal: Callable[[str], Principal],
) -> None:
    tokens = InternalTokens(Settings(environment="test", **key_settings("gateway")))
    principal = Principal(
        user_id="bob",
        roles=frozenset({"user"}),
        scopes=frozenset({"market:write"}),
        api_key_id="k7",
    )
    seen = verify_internal(tokens.for_principal(principal))
    assert seen.user_id == "bob"
    assert seen.scopes == frozenset({"market:write"})
    assert seen.api_key_id == "k7"
