"""A service's OpenAPI document describes its error answers as the problems they are."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
from pydantic import BaseModel

from algotrade.config import ServiceSettings
from algotrade.errors import Conflict
from algotrade.openapi import PROBLEM_REF
from algotrade.problems import PROBLEM_JSON
from algotrade.service import create_service_app
from algotrade.strict_json import api_router
from algotrade_testkit.services import key_settings


class Thing(BaseModel):
    name: str


JSON = {"content-type": "application/json"}


def _app() -> Any:
    router = api_router()

    @router.post("/things", responses={409: {"description": "the name is taken"}})
    async def create(thing: Thing) -> dict[str, str]:
        raise Conflict(f"{thing.name} is taken")

    @router.get("/things/{thing_id}", responses={404: {"content": {PROBLEM_JSON: {}}}})
    async def get(thing_id: int) -> dict[str, str]:
        return {}

    settings = ServiceSettings(environment="test", **key_settings(None))
    return create_service_app(name="things", settings=settings, uses=(), routers=[router])


def test_every_error_response_references_the_problem_schema() -> None:
    document = _app().openapi()
    create = document["paths"]["/things"]["post"]["responses"]
    get = document["paths"]["/things/{thing_id}"]["get"]["responses"]
    for response in (create["409"], create["422"], get["404"], get["422"]):
        assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    schemas = document["components"]["schemas"]
    assert "Problem" in schemas
    assert "HTTPValidationError" not in schemas  # FastAPI's own shape, never sent


async def test_the_problem_schema_matches_what_the_handlers_answer() -> None:
    app = _app()
    problem = app.openapi()["components"]["schemas"]["Problem"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = [
            await client.post("/things", json={"name": "x"}),  # 409 from a platform error
            await client.post("/things", json={"name": 1}),  # 422 with `errors`
            await client.post("/things", content=b"{", headers=JSON),  # 400, malformed
            await client.get("/nowhere"),  # 404 from routing
        ]
    assert [a.status_code for a in answers] == [409, 422, 400, 404]
    for answer in answers:
        assert answer.headers["content-type"] == PROBLEM_JSON
        jsonschema.validate(answer.json(), problem)
