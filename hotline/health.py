"""Liveness, readiness (DB, Redis and whichever optional services are configured) and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.deps import get_container
from core.redis import redis_ok
from hotline.container import Container

router = APIRouter(tags=["health"])
ContainerDep = Annotated[Container, Depends(get_container)]

REQUESTS = Counter("hotline_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("hotline_http_request_seconds", "HTTP request latency", ["method", "route"])

ReadinessCheck = Callable[[], Awaitable[bool]]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(container: ContainerDep) -> JSONResponse:
    checks: dict[str, bool] = {}
    try:
        async with container.db.session() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # noqa: BLE001
        checks["database"] = False
    checks["redis"] = await redis_ok(container.redis)
    for name, check in container.readiness_checks.items():
        try:
            checks[name] = await check()
        except Exception:  # noqa: BLE001
            checks[name] = False
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts requests and times them per route template (`/v1/work-orders/{ref}`, or "unmatched").

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware (`app.middleware("http")`) ran every request in a task
    group of its own and wrapped its body stream, costing as much CPU as some whole endpoints. Timed to the end of
    the response body; a request that raises (the outer error middleware answers 500) is counted as a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] = {}  # id(route) -> its full path template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            path = self._template(scope)
            method = scope["method"]
            LATENCY.labels(method, path).observe(time.perf_counter() - start)
            REQUESTS.labels(method, path, str(status)).inc()

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return "unmatched"
        template = self._templates.get(id(route))
        if template is None:
            # A route of an included router knows only its own part of the path (`/work-orders`, not
            # `/v1/work-orders`); the app's route contexts have the whole template.
            self._templates = _route_templates(scope["app"].routes)
            template = self._templates.setdefault(id(route), getattr(route, "path", "unmatched"))
        return template


def _route_templates(routes: list[BaseRoute]) -> dict[int, str]:
    paths: dict[int, set[str]] = {}
    for context in iter_route_contexts(routes):
        paths.setdefault(id(context.original_route), set()).add(context.path)
    # A route included under two prefixes is ambiguous: it keeps its own path.
    return {key: found.pop() for key, found in paths.items() if len(found) == 1}
