"""坐席工作台 in a real browser on the real seat stack: an agent logs in, goes available, a citizen's call is
handed over by the bot (Asterisk, SIP test phones, the seats dispatcher), the screen pop shows the caller
(masked), the transcript (past and live) and a pre-filled form; the agent submits the order and wraps up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from hotline.container import Container
from hotline.seed import seed_kb
from tests.support.sip_caller import SipCaller, SipPhone
from work_orders.models import WorkOrder
from work_orders.schemas import WorkOrderCreate
from work_orders.taxonomy import seed_work_orders

from tests.agent_handoff.conftest import Bot, Handover, add_agent, asterisk, bot, seat_overrides, seats, until  # noqa: F401
from .conftest import LiveServer, shot, ui_login

CALLER = "13900000031"
CONTEXT = {
    "intent": "report_road.manhole_cover",
    "category": "road.manhole_cover",
    "slots": {"address": "青山区人民路馨苑小区东门", "district": "qingshan"},
    "summary": "市民反映人民路馨苑小区东门井盖松动，晚上有安全隐患",
    "handoff_reason": "市民要求转人工",
}
SAID = ["你好，我要反映小区门口的井盖松动了", "在人民路馨苑小区东门，晚上走路很危险"]


async def state_of(page: Any) -> str:
    return await page.get_attribute("#agent-state", "data-state")


async def test_agent_takes_call_with_screen_pop_and_submits_order(seats: Container, bot: Bot, seats_live: LiveServer,
                                                                 page: Any) -> None:
    live = seats_live
    await seed_work_orders(seats)
    await seed_kb(seats)
    agent = await add_agent(seats, 1, "综合")
    bot.plans = {CALLER: Handover(context=CONTEXT, transcript=SAID)}
    async with seats.db.session() as s:  # the caller phoned before: the pop lists that order
        earlier = await seats.work_orders.create(s, agent, WorkOrderCreate(
            category="lighting.streetlight", description="小区北门路灯不亮已经一周", address="青山区人民路馨苑小区北门",
            caller_phone=CALLER))

    async with SipPhone(local_port=5071, answer_after=1.0, user="agent1") as phone, \
            SipCaller(user=CALLER) as citizen:
        await ui_login(page, live, agent.username)
        assert page.url.endswith("/console/agent")
        await page.wait_for_selector("#ws-status.ok")
        assert await page.input_value("#seat-endpoint") == "PJSIP/agent1"
        await page.click("#seat-login")
        await page.wait_for_selector("#agent-state[data-state=paused]")
        await page.click("#go-available")
        await page.wait_for_selector("#agent-state[data-state=available]")
        await shot(page, "agent-idle")

        asyncio.create_task(citizen.dial("12345"))
        ring = await phone.wait_call(15)  # the agent's phone rings ...
        rang = time.monotonic()
        await page.wait_for_selector("#call-box:not(.hidden)", timeout=5000)  # ... and the pop is on screen
        print(f"screen pop on screen {time.monotonic() - rang:.2f} s after the phone rang")
        call_id = bot.call_ids[CALLER]
        assert await page.text_content("#caller") == "139****0031"
        transcript = await page.text_content("#transcript")
        assert all(s in transcript for s in SAID)
        assert await page.text_content("#bot-category") == "井盖缺失/松动"
        assert "要求转人工" in await page.text_content("#bot-info")
        assert await page.input_value("#f-category") == "road.manhole_cover"
        assert await page.input_value("#f-address") == CONTEXT["slots"]["address"]
        assert await page.input_value("#f-district") == "qingshan"
        assert await page.input_value("#f-description") == CONTEXT["summary"]
        assert earlier.ticket in await page.text_content("#previous-orders")
        assert await page.text_content("#kb-results .hit")  # KB suggestions for the topic

        await ring.wait_answered(5)
        await page.wait_for_selector("#agent-state[data-state=on_call]")
        await page.wait_for_selector("#call-status[data-state=connected]")
        await seats.handoff.publish_transcript(call_id, "caller", "井盖旁边还有一个坑，麻烦尽快处理")
        await page.wait_for_selector("#transcript .line.live:has-text('还有一个坑')")
        await page.fill("#f-caller-name", "王先生")
        await page.fill("#f-description", CONTEXT["summary"] + "；井盖旁还有一个坑")
        await page.wait_for_selector("#route-preview:has-text('将派往')")
        await shot(page, "agent-pop")
        await page.click("#submit-order")
        await page.wait_for_selector("#order-result .msg.ok")
        ticket = await page.get_attribute("#order-result", "data-ticket")
        await shot(page, "agent-order-submitted")

        async with seats.db.session() as s:
            order = (await s.scalars(select(WorkOrder).where(WorkOrder.ticket == ticket))).one()
        assert order.call_ref == call_id and order.caller_phone == CALLER and order.caller_name == "王先生"
        assert order.category_code == "road.manhole_cover" and order.district_code == "qingshan"
        assert "还有一个坑" in order.description and order.status == "dispatched"

        await citizen.hangup()
        await page.wait_for_selector("#agent-state[data-state=wrap_up]")
        await page.select_option("#wrap-code", "order_created")
        await page.click("#wrap-done")
        await page.wait_for_selector("#agent-state[data-state=available]")
        await page.wait_for_selector("#call-box.hidden", state="attached")
        async with seats.db.session() as s:
            from telephony.models import Call

            call = await s.get(Call, call_id)
        assert call is not None and call.wrap_up_code == "order_created" and call.ticket == ticket
