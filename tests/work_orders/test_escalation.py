"""Deadlines from urgency and the three escalation levels, with a controllable clock; the worker is idempotent."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from hotline.container import Container
from work_orders.escalation import run_escalation
from work_orders.models import WorkOrderEvent
from work_orders.service import WorkOrderService
from tests.work_orders.conftest import START, Clock, act, create

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True),
    pytest.mark.usefixtures("city"),
]


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


async def levels(client: httpx.AsyncClient, h: dict, orders: dict[str, dict]) -> dict[str, int]:
    return {k: (await client.get(f"/v1/work-orders/{o['id']}", headers=h)).json()["escalation_level"]
            for k, o in orders.items()}


async def escalate_events(container: Container) -> list[tuple[int, int]]:
    async with container.db.session() as s:
        rows = await s.scalars(select(WorkOrderEvent).where(WorkOrderEvent.action == "escalate")
                               .order_by(WorkOrderEvent.id))
        return [(e.order_id, e.detail["level"]) for e in rows.all()]


async def test_deadlines_and_three_levels(client: httpx.AsyncClient, headers: dict, container: Container,
                                          clock: Clock) -> None:
    agent, sup, dept = headers["agent"], headers["supervisor"], headers["dept_a"]
    svc = container.work_orders
    base = {"category": "road.damage", "address": "东河区滨河路与胜利街交口"}  # → municipal (dept_a)
    o = {}
    for i, urgency in enumerate(("normal", "urgent", "critical")):
        o[urgency] = await create(client, agent, urgency=urgency, caller_phone=f"1380000000{i}", **base)
    o["accepted"] = await create(client, agent, caller_phone="13800000009", urgency="normal",
                                 description="路面塌陷一个大坑", **{**base, "address": "东河区胜利街8号"})
    o["urged"] = await create(client, agent, caller_phone="13800000008", urgency="normal",
                              description="路面裂缝越来越大", **{**base, "address": "东河区铁西路100号"})
    # deadlines: 普通 2 h / 5 days, 加急 1 h / 2 days, 特急 30 min / 24 h (settings)
    assert at(o["normal"]["response_due"]) == START + dt.timedelta(hours=2)
    assert at(o["normal"]["resolution_due"]) == START + dt.timedelta(days=5)
    assert at(o["urgent"]["response_due"]) == START + dt.timedelta(hours=1)
    assert at(o["urgent"]["resolution_due"]) == START + dt.timedelta(days=2)
    assert at(o["critical"]["response_due"]) == START + dt.timedelta(minutes=30)
    assert at(o["critical"]["resolution_due"]) == START + dt.timedelta(hours=24)

    clock.advance(minutes=5)
    await act(client, dept, o["accepted"]["id"], "accept")
    await act(client, agent, o["urged"]["id"], "urge", note="市民来电催促")
    u = await act(client, agent, o["urged"]["id"], "urge", note="市民再次催促")
    assert u["urge_count"] == 2 and u["urgency"] == "urgent"  # raised after N=2 urges
    assert at(u["response_due"]) == START + dt.timedelta(hours=1)
    assert await run_escalation(svc) == 1  # urged repeatedly → level 2 at once
    assert (await levels(client, sup, o)) == {"normal": 0, "urgent": 0, "critical": 0, "accepted": 0, "urged": 2}

    clock.now = START + dt.timedelta(minutes=31)
    assert await run_escalation(svc) == 1
    assert (await levels(client, sup, o))["critical"] == 3  # 特急 overdue → straight to leadership
    clock.now = START + dt.timedelta(minutes=61)
    await run_escalation(svc)
    lv = await levels(client, sup, o)
    assert lv["urgent"] == 2 and lv["normal"] == 0
    clock.now = START + dt.timedelta(minutes=121)
    await run_escalation(svc)
    lv = await levels(client, sup, o)
    assert lv == {"normal": 1, "urgent": 2, "critical": 3, "accepted": 0, "urged": 2}

    # idempotent: more passes, or a restarted worker (new service over the same database), change nothing
    before = await escalate_events(container)
    assert await run_escalation(svc) == 0
    restarted = WorkOrderService(container.db, container.settings, clock=clock)
    assert await run_escalation(restarted) == 0
    assert await escalate_events(container) == before and len(before) == 4

    # level 2 still unsolved after wo_level3_after_hours (24 h) → level 3; level 1 stays 1
    clock.now = START + dt.timedelta(minutes=61, hours=24)
    assert await run_escalation(svc) == 2  # the urged one (level 2 since 09:05) too
    lv = await levels(client, sup, o)
    assert lv["urgent"] == 3 and lv["urged"] == 3 and lv["normal"] == 1
    # the accepted ordinary order escalates only when its 5-day resolution deadline passes
    clock.now = START + dt.timedelta(days=5, minutes=1)
    await run_escalation(svc)
    assert (await levels(client, sup, o))["accepted"] == 1
    detail = (await client.get(f"/v1/work-orders/{o['urgent']['id']}", headers=sup)).json()
    esc = [e for e in detail["history"] if e["action"] == "escalate"]
    assert [e["detail"]["level"] for e in esc] == [2, 3]
    assert esc[0]["note"].startswith("二级预警") and "超过响应时限" in esc[0]["note"]
    assert esc[1]["detail"]["reason"] == "二级预警后仍未解决" and esc[0]["actor"] == "system"
    r = await client.get("/v1/work-orders?escalation_level=3", headers=sup)
    assert {x["id"] for x in r.json()["items"]} == {o[k]["id"] for k in ("critical", "urgent", "urged")}
    assert r.json()["items"][0]["overdue"] is True


async def test_resolved_orders_do_not_escalate_and_job_is_registered(
    client: httpx.AsyncClient, headers: dict, container: Container, clock: Clock
) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路", urgency="critical")
    await act(client, headers["dept_a"], o["id"], "accept")
    await act(client, headers["dept_a"], o["id"], "resolve", note="已修复")
    clock.advance(days=30)
    assert await run_escalation(container.work_orders) == 0
    jobs = {j.name: j for j in container.periodic_jobs()}
    assert jobs["work_orders.escalation"].interval_seconds == container.settings.escalation_interval_seconds
    assert await jobs["work_orders.escalation"].run() == 0
    r = await client.post("/v1/work-orders/escalation/run", headers=headers["supervisor"])
    assert r.status_code == 200 and r.json() == {"raised": 0}
    assert (await client.post("/v1/work-orders/escalation/run", headers=headers["agent"])).status_code == 403
