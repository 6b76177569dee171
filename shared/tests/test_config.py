from __future__ import annotations

import pytest

from algotrade.config import PLACEHOLDER_SECRET, ServiceSettings
from algotrade.errors import ConfigurationError
from algotrade_testkit.services import key_settings

STRONG = "s" * 40


def test_no_environment_has_a_default_key() -> None:
    for environment in ("local", "test", "staging", "production"):
        settings = ServiceSettings(environment=environment, _env_file=None)  # type: ignore[arg-type, call-arg]
        assert settings.jwt_secret is None
        assert settings.internal_jwt_private_key is None
        assert settings.internal_jwt_public_keys == {}


@pytest.mark.parametrize("environment", ["local", "test", "production"])
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_secret": PLACEHOLDER_SECRET}, "JWT_SECRET is the old published placeholder"),
        ({"jwt_secret": "short"}, "at least 32"),
        ({"jwt_secret": STRONG, "jwt_previous_secrets": {"k0": "tiny"}}, "PREVIOUS"),
    ],
)
def test_every_environment_refuses_placeholder_or_weak_secrets(
    environment: str, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ServiceSettings(environment=environment, **overrides)  # type: ignore[arg-type]


async def test_a_service_without_public_keys_refuses_to_start() -> None:
    from asgi_lifespan import LifespanManager

    from algotrade.service import create_service_app

    for environment in ("local", "test", "production"):
        settings = ServiceSettings(environment=environment, _env_file=None)  # type: ignore[arg-type, call-arg]
        app = create_service_app(name="t", settings=settings, uses=())  # builds: OpenAPI works
        assert "/healthz" in app.openapi()["paths"]
        with pytest.raises(ConfigurationError, match="INTERNAL_JWT_PUBLIC_KEYS is not set"):
            async with LifespanManager(app):
                pass


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
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", '{"k0": "' + STRONG + '"}')
    monkeypatch.setenv("INTERNAL_JWT_PUBLIC_KEYS", '{"gw": "PEM"}')
    settings = ServiceSettings()
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.jwt_previous_secrets["k0"].get_secret_value() == STRONG
    assert settings.internal_jwt_public_keys == {"gw": "PEM"}


async def test_a_service_using_s3_refuses_the_local_s3_secret_outside_local_mode() -> None:
    from asgi_lifespan import LifespanManager

    from algotrade.service import create_service_app

    settings = ServiceSettings(environment="production", **key_settings(None))
    without_s3 = create_service_app(name="t", settings=settings, uses=())
    async with LifespanManager(without_s3):
        pass
    with_s3 = create_service_app(name="t", settings=settings, uses=("s3",))
    with pytest.raises(ConfigurationError, match="S3_SECRET_KEY"):
        async with LifespanManager(with_s3):
            pass
