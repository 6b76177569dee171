"""Password rules and argon2id hashing."""

from __future__ import annotations

from api_gateway.passwords import PasswordHasher, password_problems


def _codes(password: str, email: str = "dana.scully@example.com") -> set[str]:
    return {p["code"] for p in password_problems(password, email)}


def test_a_good_password_passes() -> None:
    assert _codes("violet-submarine-71") == set()


def test_each_rule() -> None:
    assert "password_too_short" in _codes("short1!")
    assert "password_too_long" in _codes("ab1!" * 40)
    assert "password_contains_email" in _codes("dana.scully@example.com")
    assert "password_contains_email" in _codes("i-am-DANA.SCULLY-ok")
    assert "password_too_repetitive" in _codes("aaaaaaaaaaaa")
    assert "password_too_common" in _codes("QWERTYUIOP")


async def test_hashes_are_argon2id_salted_and_verify() -> None:
    hasher = PasswordHasher(time_cost=1, memory_kib=1024, parallelism=1, concurrency=2)
    first = await hasher.hash("violet-submarine-71")
    second = await hasher.hash("violet-submarine-71")
    assert first.startswith("$argon2id$")
    assert first != second
    assert await hasher.verify(first, "violet-submarine-71")
    assert not await hasher.verify(first, "violet-submarine-72")
    assert not await hasher.verify("not a hash", "x")
    stronger = PasswordHasher(time_cost=2, memory_kib=1024, parallelism=1, concurrency=2)
    assert stronger.needs_rehash(first)
    assert not hasher.needs_rehash(first)
