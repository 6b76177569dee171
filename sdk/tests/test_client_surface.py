"""`Client` and `AsyncClient` offer the same resources and methods with the same parameters,
since both come from one description of each endpoint; the async ones are coroutines."""

from __future__ import annotations

import inspect

import pytest

from algotrade_client import AsyncClient, Client

RESOURCES = ("auth", "strategies", "market", "backtests", "sessions", "agents", "analytics")


def public_methods(resource: object) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(resource, name))
        for name in dir(type(resource))
        if not name.startswith("_")
    }


async def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    sync_client, async_client = Client(), AsyncClient()
    try:
        for name in RESOURCES:
            sync_methods = public_methods(getattr(sync_client, name))
            async_methods = public_methods(getattr(async_client, name))
            assert sync_methods == async_methods, name
            for method in async_methods:
                assert inspect.iscoroutinefunction(getattr(getattr(async_client, name), method))
        assert "self" not in str(inspect.signature(sync_client.strategies.get))
    finally:
        sync_client.close()
        await async_client.aclose()


@pytest.mark.parametrize(
    ("resource", "methods"),
    [
        ("auth", "register login refresh me create_api_key api_keys revoke_api_key"),
        ("strategies", "list get create new_version versions node_types templates instantiate"),
        ("market", "push_bars import_file symbols bars"),
        (
            "backtests",
            "submit get wait run trades equity sweep_results cancel trades_frame sweep",
        ),
        ("sessions", "start list get trades equity pause resume stop delete"),
        ("agents", "register list get status"),
        (
            "analytics",
            "session backtest create_portfolio portfolio comparison report_html",
        ),
    ],
)
def test_the_interface_the_command_line_is_written_against(resource: str, methods: str) -> None:
    with Client() as client:
        assert set(methods.split()) <= set(public_methods(getattr(client, resource)))
