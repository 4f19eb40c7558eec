"""Work-order fixtures: the seeded city (through the real seeder), a controllable clock, helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from hotline.container import Container
from work_orders.taxonomy import seed_work_orders

TZ = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=TZ)


class Clock:
    """Injectable clock: tests move time forward explicitly."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> dt.datetime:
        self.now += dt.timedelta(**kw)
        return self.now


@pytest.fixture
async def city(container: Container) -> dict[str, int]:
    return await seed_work_orders(container)


@pytest.fixture
def clock(container: Container) -> Iterator[Clock]:
    c = Clock(START)
    container.work_orders.clock = c
    yield c


def order_body(**overrides: object) -> dict:
    body = {
        "category": "road.manhole_cover",
        "description": "小区东门口的井盖松动了，踩上去晃，晚上很危险",
        "address": "青山区人民路馨苑小区东门",
        "caller_phone": "13812345678",
        "caller_name": "王先生",
        "channel": "phone",
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, h: dict, expect: int = 201, headers: dict | None = None,
                 **overrides: object) -> dict:
    r = await client.post("/v1/work-orders", json=order_body(**overrides), headers={**h, **(headers or {})})
    assert r.status_code == expect, r.text
    return r.json()


async def act(client: httpx.AsyncClient, h: dict, ref: object, action: str, expect: int = 200,
              **body: object) -> dict:
    r = await client.post(f"/v1/work-orders/{ref}/{action}", json=body, headers=h)
    assert r.status_code == expect, r.text
    return r.json()
