"""Helpers for the strategy service tests (imported by tests and conftest)."""

from __future__ import annotations

import json as stdlib_json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from algotrade_testkit.services import ALL_SCOPES, internal_token, serve_in_process
from strategy_service.config import Settings
from strategy_service.main import create_app

PROBLEM = "application/problem+json"
DATA = Path(__file__).resolve().parents[2] / "data"


def sma_cross(fast: int = 10, slow: int = 30, **meta: Any) -> dict[str, Any]:
    """A small valid graph with two tunables."""
    return {
        "nodes": [
            {"id": "close", "type": "price", "params": {"field": "close"}},
            {"id": "fast", "type": "sma", "params": {"period": {"$param": "fast"}}},
            {"id": "slow", "type": "sma", "params": {"period": {"$param": "slow"}}},
            {"id": "up", "type": "cross_above", "params": {}},
            {"id": "entry", "type": "enter_long", "params": {}},
        ],
        "edges": [
            {"from": "close.out", "to": "fast.in"},
            {"from": "close.out", "to": "slow.in"},
            {"from": "fast.out", "to": "up.a"},
            {"from": "slow.out", "to": "up.b"},
            {"from": "up.out", "to": "entry.in"},
        ],
        "parameters": {
            "fast": {"default": fast, "min": 2, "max": 50, "step": 1},
            "slow": {"default": slow, "min": 5, "max": 200, "step": 1},
        },
        "meta": meta,
    }


def broken_graph() -> dict[str, Any]:
    """Three independent defects: unknown type, param out of range, no entry signal."""
    return {
        "nodes": [
            {"id": "close", "type": "price", "params": {}},
            {"id": "x", "type": "no_such_node", "params": {}},
            {"id": "avg", "type": "sma", "params": {"period": 1}},
        ],
        "edges": [{"from": "close.out", "to": "avg.in"}],
    }


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    def headers(self, user_id: str = "u1", scopes: frozenset[str] = ALL_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {internal_token(self.settings, user_id, scopes)}"}

    async def call(
        self, method: str, url: str, *, user: str = "u1", json: Any = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.headers(user), **kwargs.pop("headers", {})}
        if json is not None:
            try:
                kwargs["content"] = orjson.dumps(json)
            except TypeError:  # nesting or integers orjson refuses: the stdlib writes them
                kwargs["content"] = stdlib_json.dumps(json).encode()
            headers["content-type"] = "application/json"
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def create(
        self, graph: dict[str, Any] | None = None, *, name: str = "My strategy", user: str = "u1"
    ) -> dict[str, Any]:
        body = {"name": name, "description": "test", "graph": graph or sma_cross()}
        response = await self.call("POST", "/api/strategies", json=body, user=user)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the service's /metrics (0 when absent)."""
        text = (await self.client.get("/metrics")).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        key = f"{name}{{{wanted}}}" if labels else name
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            if sample == key:
                return float(value)
        return 0.0


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with serve_in_process(app) as client:
        yield Service(app, client, settings)
