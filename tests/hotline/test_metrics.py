"""Prometheus request metrics (hotline.health.MetricsMiddleware): counted per method, route template and status."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from hotline.app import create_app
from hotline.container import Container
from work_orders.taxonomy import seed_work_orders


def count(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("hotline_http_requests_total", labels) or 0.0


def timed(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("hotline_http_request_seconds_count", labels) or 0.0


async def test_requests_counted_by_route_template_and_status(client: httpx.AsyncClient, container: Container,
                                                              headers: dict) -> None:
    await seed_work_orders(container)
    body = {"category": "road.damage", "description": "路面有个大坑", "address": "东河区滨河路1号",
            "caller_phone": "13900000001", "channel": "phone"}
    before = count("POST", "/v1/work-orders", 201), timed("POST", "/v1/work-orders")
    r = await client.post("/v1/work-orders", json=body, headers=headers["agent"])
    assert r.status_code == 201, r.text
    assert (count("POST", "/v1/work-orders", 201), timed("POST", "/v1/work-orders")) == (before[0] + 1, before[1] + 1)

    route = "/v1/work-orders/{ref}"
    before_404, before_401 = count("GET", route, 404), count("GET", route, 401)
    assert (await client.get("/v1/work-orders/99999", headers=headers["agent"])).status_code == 404
    assert (await client.get("/v1/work-orders/99999")).status_code == 401
    assert (count("GET", route, 404), count("GET", route, 401)) == (before_404 + 1, before_401 + 1)

    before = count("GET", "unmatched", 404)
    assert (await client.get("/no/such/page")).status_code == 404
    assert count("GET", "unmatched", 404) == before + 1

    metrics = (await client.get("/metrics")).text
    assert 'hotline_http_requests_total{method="POST",route="/v1/work-orders",status="201"}' in metrics
    assert 'hotline_http_request_seconds_bucket{le="0.005",method="POST",route="/v1/work-orders"}' in metrics


async def test_request_that_raises_is_counted_as_500(container: Container) -> None:
    app = create_app(container.settings, container=container)

    async def broken() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/test-broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    before = count("GET", "/test-broken", 500), timed("GET", "/test-broken")
    async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as client:
        assert (await client.get("/test-broken")).status_code == 500
    assert (count("GET", "/test-broken", 500), timed("GET", "/test-broken")) == (before[0] + 1, before[1] + 1)
