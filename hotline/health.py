"""Liveness, readiness (DB, Redis and whichever optional services are configured) and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

from hotline.deps import ContainerDep
from hotline.redis import redis_ok

router = APIRouter(tags=["health"])

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


async def metrics_middleware(request: Request, call_next):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
    REQUESTS.labels(request.method, path, str(response.status_code)).inc()
    return response
