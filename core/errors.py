"""Domain errors and their HTTP mapping: every bad input is a 4xx with a message, never a 500."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from core.db_errors import RETRY_AFTER_SECONDS, database_unavailable

log = logging.getLogger(__name__)


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(DomainError):
    status_code = 400


class NotFound(DomainError):
    status_code = 404


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    """Optimistic-concurrency clashes, invalid state transitions, duplicates."""

    status_code = 409


class TooManyRequests(DomainError):
    status_code = 429


def _bad_value(exc: BaseException) -> str | None:
    """Why the database (or its driver) refused a value from the request, if that is what happened: SQLSTATE
    class 22 (NUL in text, numeric out of range, ...) or the driver's own argument check (an id beyond int32)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        state = str(getattr(seen, "sqlstate", "") or "")
        if state == "22021":
            return "text contains a character that cannot be stored (a NUL byte?)"
        if state.startswith("22") or isinstance(seen, (ValueError, OverflowError)):
            return "a value is out of range or malformed (e.g. an id beyond 2147483647)"
        seen = getattr(seen, "orig", None) if isinstance(seen, DBAPIError) else seen.__cause__
    return None


# What the 422 handler below really sends (FastAPI would document its own list-shaped `detail`).
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {"type": "array", "title": "Errors", "items": {
            "type": "object", "required": ["loc", "msg", "type"],
            "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}, "type": {"type": "string"}},
        }},
    },
}


def _document_validation_errors(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _unavailable(request: Request, exc: BaseException) -> JSONResponse:
    """503: the database cannot be reached (restart, crash). Nothing was half-written (every write is one
    transaction); a write whose commit was cut off may or may not be stored, so clients send it again with
    the same Idempotency-Key."""
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    return JSONResponse(
        {"detail": "数据库暂时无法连接，请稍后重试 (database temporarily unavailable; retry shortly, "
                   "with the same Idempotency-Key for a new order)"},
        status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    _document_validation_errors(app)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message, **exc.extra}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", exc.orig)
        return JSONResponse({"detail": "conflicts with existing data"}, status_code=409)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return _unavailable(request, exc)
        reason = _bad_value(exc)
        if reason is None:
            raise exc  # a real server error: 500
        return JSONResponse({"detail": f"invalid request: {reason}"}, status_code=422)

    # While the database is down or recovering, a new pooled connection fails with the driver's or the socket's
    # own exception (SQLAlchemy translates errors of open connections only).
    async def _connection_lost(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            return _unavailable(request, exc)
        raise exc

    for cls in (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(cls, _connection_lost)  # type: ignore[arg-type]

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        # Date/number arithmetic on a value from the request (e.g. `to=0001-01-01` minus a week).
        return JSONResponse({"detail": f"invalid request: a date or number is out of range ({exc})"}, status_code=422)

    @app.exception_handler(StaleDataError)
    async def _stale(_: Request, exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            {"detail": "changed by someone else at the same time; reload and try again"}, status_code=409
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            errors.append({"loc": loc, "msg": err.get("msg", "invalid"), "type": err.get("type", "")})
        summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)
