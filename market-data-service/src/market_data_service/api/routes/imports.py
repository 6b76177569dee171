"""File imports: ``POST /api/market/imports`` (upload or server path), progress, listing."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from algotrade.bars import TIMEFRAMES, normalize_symbol
from algotrade.errors import BadRequest, ValidationFailed
from algotrade.problems import PROBLEM_JSON
from algotrade.strict_json import api_router, body_schema
from market_data_service.api.deps import ReaderDep, ServicesDep, WriterDep, dependency_errors
from market_data_service.owners import parse_owner, public_owner
from market_data_service.schemas import ImportFromPath, ImportPublic, ImportsPublic

router = api_router(prefix="/api/market/imports", tags=["imports"])
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
ImportId = Annotated[str, Path(min_length=1, max_length=26)]


def to_public(row: dict[str, Any]) -> ImportPublic:
    total = int(row["bytes_total"]) or 1
    return ImportPublic(
        id=row["id"],
        state=row["state"],
        origin=row["origin"],
        filename=row["filename"],
        format=row["file_format"],
        symbol=row["symbol"],
        owner=public_owner(row["owner"]),
        timeframe=row["timeframe"],
        atomic=row["atomic"],
        progress=min(1.0, int(row["bytes_done"]) / total),
        bytes_total=row["bytes_total"],
        bytes_done=row["bytes_done"],
        rows_read=row["rows_read"],
        rows_rejected=row["rows_rejected"],
        accepted=row["accepted"],
        duplicate=row["duplicate"],
        corrected=row["corrected"],
        errors=row["errors"],
        message=row["message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def _field_error(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{name}: {message}",
        errors=[{"loc": ["body", name], "code": f"invalid_{name}", "message": message}],
    )


def _symbol(value: Any) -> str:
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise _field_error("symbol", str(exc)) from None


def _owner(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _field_error("owner", "a user id or 'platform'")
    return parse_owner(value, loc=("body", "owner"))


def _timeframe(value: Any) -> str:
    if value not in TIMEFRAMES:
        raise _field_error("timeframe", f"use one of {', '.join(TIMEFRAMES)}")
    return str(value)


def _flag(value: Any) -> bool:
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise _field_error("atomic", "use true or false")


@router.post(
    "",
    status_code=202,
    response_model=ImportPublic,
    summary="Start an import from an upload (multipart) or a server path (JSON)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "symbol", "timeframe"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "symbol": {"type": "string"},
                            "timeframe": {"type": "string", "enum": list(TIMEFRAMES)},
                            "atomic": {"type": "boolean"},
                            "format": {"type": "string", "enum": ["csv", "parquet"]},
                            "owner": {
                                "type": "string",
                                "maxLength": 100,
                                "description": "omit for your own series; 'platform' for "
                                "the reference data (market-admin role only)",
                            },
                        },
                    }
                },
                "application/json": {"schema": body_schema(ImportFromPath)},
            },
        }
    },
    responses={
        400: {"description": "malformed body", **_PROBLEM},
        403: {
            "description": "path outside the import directory, or ``owner`` names data you "
            "may read but not write",
            **_PROBLEM,
        },
        404: {
            "description": "no such file in the import directory, or ``owner`` invisible",
            **_PROBLEM,
        },
        413: {"description": "upload too large", **_PROBLEM},
    },
)
async def create_import(request: Request, principal: WriterDep, market: ServicesDep) -> Response:
    """Multipart: ``file`` (CSV, gzip CSV or Parquet), ``symbol``, ``timeframe``, optional
    ``atomic``, ``format`` and ``owner``. JSON: ``{"path": "<relative to IMPORT_DIR>",
    "symbol", "timeframe", "atomic", "owner"}``. The bars become your own series (a symbol new
    to you is yours, private); ``owner=platform`` imports reference data (the
    ``market-admin`` role only). The import runs in the background; poll the returned job."""
    content_type = request.headers.get("content-type", "").lower()
    with dependency_errors():
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=10) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise _field_error("file", "attach the file as the 'file' part")
                declared = form.get("format")
                if declared not in (None, "", "csv", "parquet"):
                    raise _field_error("format", "use csv or parquet")
                symbol = _symbol(form.get("symbol"))
                owner = await market.directory.resolve_write(
                    principal, [symbol], _owner(form.get("owner"))
                )
                import_id = await market.imports.from_upload(
                    user_id=principal.user_id,
                    owner=owner,
                    upload=upload,
                    symbol=symbol,
                    timeframe=_timeframe(form.get("timeframe")),
                    atomic=_flag(form.get("atomic")),
                    declared_format=str(declared) if declared else None,
                )
        elif content_type.startswith("application/json"):
            try:
                # The route's request is the shared strict one: NaN, NUL, deep nesting refused.
                body = ImportFromPath.model_validate(await request.json())
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"the request body is not valid JSON: {exc}") from None
            except ValidationError as exc:
                raise ValidationFailed(
                    "invalid import request",
                    errors=[
                        {"loc": ["body", *e["loc"]], "code": e["type"], "message": e["msg"]}
                        for e in exc.errors()
                    ],
                ) from None
            symbol = _symbol(body.symbol)
            owner = await market.directory.resolve_write(principal, [symbol], _owner(body.owner))
            import_id = await market.imports.from_path(
                user_id=principal.user_id,
                owner=owner,
                relative=body.path,
                symbol=symbol,
                timeframe=body.timeframe,
                atomic=body.atomic,
            )
        else:
            raise BadRequest("send multipart/form-data (upload) or application/json (path)")
        row = await market.imports.get(principal.user_id, import_id)
    return Response(
        to_public(row).model_dump_json(),
        status_code=202,
        media_type="application/json",
        headers={"Location": f"/api/market/imports/{import_id}"},
    )


@router.get("", response_model=ImportsPublic, summary="Your imports, newest first")
async def list_imports(principal: ReaderDep, market: ServicesDep) -> ImportsPublic:
    with dependency_errors():
        rows = await market.imports.list_for(principal.user_id)
    return ImportsPublic(imports=[to_public(r) for r in rows])


@router.get(
    "/{import_id}",
    response_model=ImportPublic,
    summary="Progress and outcome of one of your imports",
    responses={404: {"description": "no such import of yours", **_PROBLEM}},
)
async def get_import(
    import_id: ImportId, principal: ReaderDep, market: ServicesDep
) -> ImportPublic:
    with dependency_errors():
        row = await market.imports.get(principal.user_id, import_id)
    return to_public(row)
