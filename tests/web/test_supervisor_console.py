"""监控大屏 in a real browser: the queue length follows a real waiting call, and today's KPI cards follow an
order being created and then resolved (all through the API the dashboard polls and the supervisor websocket)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from core.auth.models import Role
from hotline.container import Container
from tests.support.sip_caller import SipCaller
from work_orders.taxonomy import seed_work_orders

from tests.agent_handoff.conftest import Bot, Handover, add_agent, asterisk, bot, seat_overrides, seats  # noqa: F401
from tests.conftest import add_user
from .conftest import LiveServer, shot, token_headers, ui_login

CALLER = "13900000041"


async def card(page: Any, card_id: str) -> str:
    return (await page.text_content(f"#{card_id} .v")).strip()


async def test_supervisor_sees_queue_and_kpis_change(seats: Container, bot: Bot, seats_live: LiveServer,
                                                     page: Any) -> None:
    live = seats_live
    await seed_work_orders(seats)
    await add_user(seats, "banzhang", Role.supervisor)
    await add_user(seats, "caller_desk", Role.agent)
    paused = await add_agent(seats, 2, "综合,劳动保障:3")
    await seats.handoff.agents.login(paused, ready=False)  # signed in, not taking calls: the call waits
    bot.plans = {CALLER: Handover(priority="urgent", context={"intent": "report_labor.wage_arrears"})}

    async with SipCaller(user=CALLER) as citizen:
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as api:
            await ui_login(page, live, "banzhang")
            assert page.url.endswith("/console/supervisor")
            await page.wait_for_selector("#kpi-orders")
            assert await card(page, "kpi-orders") == "0"
            assert await page.get_attribute("#queue-waiting", "data-count") == "0"
            assert await card(page, "agents-paused") == "1"

            # a citizen waits in the queue: the dashboard shows it at once (websocket) or on the next poll
            asyncio.create_task(citizen.dial("12345"))
            await page.wait_for_selector("#queue-waiting[data-count='1']", timeout=15000)
            assert "139****0041" not in await page.text_content("#queues")  # supervisors see full numbers
            assert CALLER in await page.text_content("#queues")

            # an order is created, then resolved by its department: KPI cards follow
            agent_h = await token_headers(api, "caller_desk")
            r = await api.post("/v1/work-orders", headers=agent_h, json={
                "category": "road.manhole_cover", "description": "小区东门井盖松动，晚上很危险",
                "address": "青山区人民路馨苑小区东门", "caller_phone": "13812345678", "caller_name": "王先生"})
            assert r.status_code == 201, r.text
            order = r.json()
            await page.wait_for_selector("#kpi-orders .v[data-value='1']", timeout=12000)
            await shot(page, "supervisor-dashboard")

            await add_user(seats, "dept_user", Role.department, order["department_code"])
            dept_h = await token_headers(api, "dept_user")
            for action, body in (("accept", {}), ("resolve", {"note": "已更换井盖"})):
                r = await api.post(f"/v1/work-orders/{order['id']}/{action}", json=body, headers=dept_h)
                assert r.status_code == 200, r.text
            await page.wait_for_selector("#kpi-resolved .v[data-value='1']", timeout=12000)
            assert await card(page, "kpi-completion") == "100.0%"
            assert await card(page, "kpi-response") == "100.0%"

            await citizen.hangup()
            await page.wait_for_selector("#queue-waiting[data-count='0']", timeout=12000)
            await page.wait_for_selector("#chart-category svg")
            await shot(page, "supervisor-after")
