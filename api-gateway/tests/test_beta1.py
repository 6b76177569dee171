"""Users migrated from Beta1 log in with their old password, which is then rehashed with
argon2id; the import is idempotent and never attaches a taken email to a migrated user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from algotrade.beta1 import UserRecord
from algotrade.db import build_engine, build_session_factory
from api_gateway.beta1 import UserImporter, stand_in_email
from api_gateway.models import User
from api_gateway.passwords import is_legacy_hash

pytestmark = pytest.mark.timeout(60)

OLD_PASSWORD = "old beta1 secret"


@pytest.fixture
async def importer(
    identity_client: httpx.AsyncClient, database_url: str
) -> AsyncIterator[UserImporter]:
    engine = build_engine(database_url, pool_size=2)
    try:
        yield UserImporter(build_session_factory(engine))
    finally:
        await engine.dispose()


def user(legacy_id: int, email: str, password_hash: str | None) -> UserRecord:
    return UserRecord(
        legacy_id=legacy_id,
        username=f"user{legacy_id}",
        email=email,
        password_hash=password_hash,
        created_at=datetime(2022, 1, 2, tzinfo=UTC),
        is_active=True,
    )


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_a_migrated_user_logs_in_with_the_beta1_password_once_rehashed(
    identity_client: httpx.AsyncClient, importer: UserImporter, database_url: str
) -> None:
    records = [
        user(1, "pbkdf2@example.com", generate_password_hash(OLD_PASSWORD, "pbkdf2:sha256:1000")),
        user(2, "scrypt@example.com", generate_password_hash(OLD_PASSWORD, "scrypt:1024:8:1")),
        user(3, "nopassword@example.com", None),
    ]
    outcomes = await importer.import_batch(records)
    assert [o.state for o in outcomes] == ["migrated"] * 3
    assert "must set one" in outcomes[2].flags[0]

    for email in ("pbkdf2@example.com", "scrypt@example.com"):
        assert (await login(identity_client, email, "wrong password!")).status_code == 401
        answer = await login(identity_client, email, OLD_PASSWORD)
        assert answer.status_code == 200, answer.text
    assert (await login(identity_client, "nopassword@example.com", "")).status_code in (401, 422)

    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_session_factory(engine)() as session:
            hashes = dict(
                (await session.execute(select(User.email, User.password_hash))).tuples().all()
            )
    finally:
        await engine.dispose()
    # The first successful login replaced the Werkzeug hash with argon2id ...
    assert hashes["pbkdf2@example.com"].startswith("$argon2id$")
    assert hashes["scrypt@example.com"].startswith("$argon2id$")
    # ... and the new hash still takes the same password.
    assert (await login(identity_client, "scrypt@example.com", OLD_PASSWORD)).status_code == 200

    again = await importer.import_batch(records)
    assert [(o.state, o.new_id) for o in again] == [("present", o.new_id) for o in outcomes]
    inventory = await importer.inventory(["1", "2", "3"])
    assert {v["new_id"] for v in inventory.values()} == {o.new_id for o in outcomes}


async def test_an_email_taken_in_beta2_is_never_given_to_a_migrated_user(
    identity_client: httpx.AsyncClient, importer: UserImporter
) -> None:
    registered = await identity_client.post(
        "/api/auth/register", json={"email": "taken@example.com", "password": "a new passphrase"}
    )
    assert registered.status_code == 201
    hashed = generate_password_hash(OLD_PASSWORD, "pbkdf2:sha256:1000")
    (outcome,) = await importer.import_batch([user(9, "taken@example.com", hashed)])
    assert outcome.detail["email"] == stand_in_email(9)
    assert "belongs to a Beta2 account" in outcome.flags[0]
    assert (await login(identity_client, "taken@example.com", OLD_PASSWORD)).status_code == 401
    assert (await login(identity_client, stand_in_email(9), OLD_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("stored", "legacy"),
    [
        ("pbkdf2:sha256:600000$salt$00", True),
        ("scrypt:32768:8:1$salt$00", True),
        ("pbkdf2:sha256:999999999$salt$00", False),  # too costly to verify: refused
        ("scrypt:1048576:64:64$salt$00", False),
        ("pbkdf2:sha256:abc$salt$00", False),
        ("$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA", False),
    ],
)
def test_only_werkzeug_hashes_within_cost_bounds_are_verified_as_legacy(
    stored: str, legacy: bool
) -> None:
    assert is_legacy_hash(stored) is legacy
