from __future__ import annotations

import pytest

from algotrade.config import PLACEHOLDER_SECRET, ServiceSettings
from algotrade.errors import ConfigurationError

STRONG = "s" * 40


def test_local_mode_runs_with_the_placeholder_secret() -> None:
    assert ServiceSettings(environment="local").jwt_secret.get_secret_value() == PLACEHOLDER_SECRET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "JWT_SECRET is the local placeholder"),
        ({"jwt_secret": "short"}, "at least 32"),
        ({"jwt_secret": STRONG, "jwt_previous_secrets": {"k0": "tiny"}}, "PREVIOUS"),
    ],
)
def test_production_refuses_placeholder_or_weak_secrets(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ServiceSettings(environment="production", **overrides)  # type: ignore[arg-type]


def test_production_starts_with_real_secrets_which_never_print() -> None:
    settings = ServiceSettings(
        environment="production", jwt_secret=STRONG, s3_secret_key="real-secret-key"
    )
    shown = repr(settings) + str(settings.model_dump())
    assert STRONG not in shown
    assert "real-secret-key" not in shown


def test_empty_environment_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "")
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", "")
    settings = ServiceSettings()
    assert settings.s3_endpoint is None
    assert settings.jwt_previous_secrets == {}


def test_settings_read_flat_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", '{"k0": "old"}')
    settings = ServiceSettings()
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.jwt_previous_secrets["k0"].get_secret_value() == "old"


async def test_a_service_using_s3_refuses_the_local_s3_secret_outside_local_mode() -> None:
    from asgi_lifespan import LifespanManager

    from algotrade.service import create_service_app

    settings = ServiceSettings(environment="production", jwt_secret=STRONG)
    without_s3 = create_service_app(name="t", settings=settings, uses=())
    async with LifespanManager(without_s3):
        pass
    with_s3 = create_service_app(name="t", settings=settings, uses=("s3",))
    with pytest.raises(ConfigurationError, match="S3_SECRET_KEY"):
        async with LifespanManager(with_s3):
            pass
