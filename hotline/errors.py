"""Domain errors and their HTTP mapping: every bad input is a 4xx with a message, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message, **exc.extra}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", exc.orig)
        return JSONResponse({"detail": "conflicts with existing data"}, status_code=409)

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
