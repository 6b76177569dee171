"""Every way a presented token must be refused, crafted with pyjwt, checked at the gateway."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from algotrade.config import PLACEHOLDER_SECRET
from algotrade.errors import ConfigurationError
from algotrade.events import new_event_id
from algotrade_testkit.services import session_keys

pytestmark = pytest.mark.timeout(60)

SECRET = session_keys().access_secret  # this run's generated key (conftest's gateway uses it)
KID = session_keys().access_kid


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "mallory",
        "iss": "algotrade-gateway",
        "aud": "algotrade",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": new_event_id(),
        "typ": "access",
        "roles": ["user"],
        "scopes": ["*"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(
    claims: dict[str, Any], *, key: str = SECRET, alg: str = "HS256", kid: str | None = KID
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


async def _refused(client: httpx.AsyncClient, token: str) -> str:
    response = await client.get("/api/strategies", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


async def test_a_well_formed_access_token_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/strategies", headers={"Authorization": f"Bearer {_sign(_claims())}"}
    )
    assert response.status_code == 200
    assert response.json()["principal"]["user_id"] == "mallory"


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": KID})
    assert "algorithm" in await _refused(client, unsigned)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_another_algorithm_than_the_configured_one_is_refused(
    client: httpx.AsyncClient,
) -> None:
    # Same secret, HS512 instead of the configured HS256.
    assert "algorithm" in await _refused(client, _sign(_claims(), alg="HS512"))


async def test_a_token_signed_with_a_wrong_key_is_refused(client: httpx.AsyncClient) -> None:
    forged = _sign(_claims(), key="not-the-gateway-secret-but-long-enough-000")
    assert "signature" in (await _refused(client, forged)).lower()


async def test_an_unknown_or_missing_kid_is_refused(client: httpx.AsyncClient) -> None:
    assert "unknown key" in await _refused(client, _sign(_claims(), kid="k9"))
    assert "unknown key" in await _refused(client, _sign(_claims(), kid=None))


async def test_expired_and_not_yet_valid_tokens_are_refused(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    expired = _sign(_claims(iat=now - 1000, nbf=now - 1000, exp=now - 100))
    assert "expired" in await _refused(client, expired)
    future = _sign(_claims(iat=now, nbf=now + 600, exp=now + 1500))
    assert "not yet valid" in await _refused(client, future)


async def test_wrong_issuer_or_audience_is_refused(client: httpx.AsyncClient) -> None:
    assert "issuer" in (await _refused(client, _sign(_claims(iss="someone-else")))).lower()
    assert "audience" in (await _refused(client, _sign(_claims(aud="other-app")))).lower()


async def test_missing_required_claims_and_tampering_are_refused(
    client: httpx.AsyncClient,
) -> None:
    assert "jti" in await _refused(client, _sign(_claims(jti=None)))
    assert "typ" in await _refused(client, _sign(_claims(typ=None)))
    header, _payload, signature = _sign(_claims()).split(".")
    other_payload = _sign(_claims(sub="admin")).split(".")[1]
    await _refused(client, f"{header}.{other_payload}.{signature}")
    await _refused(client, "not-a-jwt")


async def test_an_internal_token_is_refused_at_the_gateway(client: httpx.AsyncClient) -> None:
    internal = _sign(_claims(aud="algotrade-internal", typ="internal"))
    assert "audience" in (await _refused(client, internal)).lower()
    # Even with the public audience, the type gives it away.
    assert "'internal' token" in await _refused(client, _sign(_claims(typ="internal")))


async def test_a_refresh_token_is_refused_as_an_access_token(client: httpx.AsyncClient) -> None:
    assert "refresh token" in await _refused(client, "atr_" + "x" * 43)


async def test_previous_key_still_verifies_after_rotation_and_new_key_signs(
    start_gateway: Callable[..., Any],
) -> None:
    # Rotation: "k0" signed yesterday's tokens; the suite's key signs from now on.
    old_secret = "the-retired-secret-of-the-gateway-suite-00"
    old_token = _sign(_claims(sub="before-rotation"), key=old_secret, kid="k0")
    async with start_gateway(jwt_previous_secrets={"k0": old_secret}) as (
        app,
        client,
    ):
        response = await client.get(
            "/api/strategies", headers={"Authorization": f"Bearer {old_token}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["principal"]["user_id"] == "before-rotation"
        fresh = app.state.services.access_tokens.issue("u2", ["user"])
        assert jwt.get_unverified_header(fresh)["kid"] == KID
    # Once the old key is dropped from JWT_PREVIOUS_SECRETS, its tokens stop verifying.
    async with start_gateway() as (_, client):
        assert "unknown key" in await _refused(client, old_token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("kid", ["k1", KID], ids=["old-default-kid", "this-run-kid"])
async def test_a_token_forged_with_the_old_published_placeholder_is_refused(
    client: httpx.AsyncClient, kid: str
) -> None:
    """`change-me-local-only` once signed every `make run` token; it signs nothing now."""
    forged = _sign(_claims(sub="admin", roles=["admin"]), key=PLACEHOLDER_SECRET, kid=kid)
    detail = (await _refused(client, forged)).lower()
    assert "signature" in detail or "unknown key" in detail


async def test_a_gateway_without_jwt_secret_refuses_to_start(
    start_gateway: Callable[..., Any],
) -> None:
    with pytest.raises(ConfigurationError, match="JWT_SECRET is not set"):
        async with start_gateway(jwt_secret=None):
            pass


async def test_a_gateway_without_an_internal_signing_key_refuses_to_start(
    start_gateway: Callable[..., Any],
) -> None:
    with pytest.raises(ConfigurationError, match="INTERNAL_JWT_PRIVATE_KEY"):
        async with start_gateway(internal_jwt_private_key=None):
            pass
