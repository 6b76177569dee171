"""A service's OpenAPI document describes its error answers as the problems they are, and
every operation declares the ones the platform's machinery may answer for it."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import jsonschema
from fastapi import Depends
from pydantic import BaseModel

from algotrade.auth import CurrentPrincipal, Principal, principal_with_scope
from algotrade.config import ServiceSettings
from algotrade.errors import Conflict
from algotrade.openapi import PROBLEM_REF
from algotrade.problems import PROBLEM_JSON
from algotrade.service import create_service_app
from algotrade.strict_json import api_router
from algotrade_testkit.services import internal_token, key_settings, serve_in_process


class Thing(BaseModel):
    name: str


JSON = {"content-type": "application/json"}
Writer = Annotated[Principal, Depends(principal_with_scope("things:write"))]


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


def _guarded_app() -> Any:
    router = api_router()

    @router.get("/open")
    async def open_door() -> dict[str, str]:
        return {}

    @router.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"user": principal.user_id}

    @router.put("/things/{thing_id}")
    async def put(thing_id: int, thing: Thing, principal: Writer) -> dict[str, str]:
        return {"name": thing.name}

    settings = ServiceSettings(environment="test", **key_settings())
    return create_service_app(
        name="things", settings=settings, uses=(), routers=[router], body_limits={"/things": 64}
    )


def _declared(document: dict[str, Any], path: str, method: str = "get") -> list[str]:
    return list(document["paths"][path][method]["responses"])


def test_each_operation_declares_what_the_platform_may_answer_for_it() -> None:
    document = _guarded_app().openapi()
    assert _declared(document, "/healthz") == ["200", "431"]  # from memory: no outage
    assert _declared(document, "/readyz") == ["200", "431", "503"]
    assert _declared(document, "/open") == ["200", "431", "503"]
    assert _declared(document, "/me") == ["200", "401", "431", "503"]  # a credential, no scope
    put = _declared(document, "/things/{thing_id}", "put")
    assert put == ["200", "400", "401", "403", "404", "413", "422", "431", "503"]
    responses = document["paths"]["/things/{thing_id}"]["put"]["responses"]
    for status in put[1:]:
        assert responses[status]["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def test_a_status_the_route_declares_keeps_its_own_description() -> None:
    responses = _app().openapi()["paths"]["/things"]["post"]["responses"]
    assert responses["409"]["description"] == "the name is taken"
    assert {"400", "413", "422", "431", "503"} <= set(responses)
    assert "401" not in responses  # the route takes no credential


async def test_the_declared_statuses_are_what_the_machinery_answers() -> None:
    app = _guarded_app()
    settings = ServiceSettings(environment="test", **key_settings())
    reader = {"Authorization": f"Bearer {internal_token(settings, scopes=frozenset({'x:read'}))}"}
    writer = {"Authorization": f"Bearer {internal_token(settings)}"}
    declared = set(_declared(app.openapi(), "/things/{thing_id}", "put"))
    async with serve_in_process(app) as client:
        answers = {
            401: await client.put("/things/1", json={"name": "x"}),
            403: await client.put("/things/1", json={"name": "x"}, headers=reader),
            400: await client.put("/things/1?q=%00", json={"name": "x"}, headers=writer),
            413: await client.put("/things/1", json={"name": "x" * 100}, headers=writer),
            422: await client.put("/things/one", json={"name": "x"}, headers=writer),
        }
        malformed = await client.put("/things/1", content=b"{", headers={**writer, **JSON})
    assert {status: a.status_code for status, a in answers.items()} == {s: s for s in answers}
    assert malformed.status_code == 400
    assert set(map(str, answers)) <= declared
