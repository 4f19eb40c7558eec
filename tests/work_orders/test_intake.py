"""Repeat calls (催办 instead of duplicates), hotspot grouping, and the in-process API the bot and IVR use."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest

from hotline.container import Container
from work_orders.schemas import WorkOrderCreate
from work_orders.service import SystemActor
from work_orders.tickets import parse_ticket, speakable
from tests.work_orders.conftest import START, Clock, act, create, order_body

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True),
    pytest.mark.usefixtures("city"),
]


async def test_repeat_call_links_to_open_order(client: httpx.AsyncClient, headers: dict, clock: Clock) -> None:
    agent = headers["agent"]
    first = await create(client, agent, address="青山区人民路馨苑小区东门")
    clock.advance(days=2)
    # same phone, same category, same place (written differently) → urge, no new order
    again = await create(client, agent, expect=200, address="馨苑小区东门口", description="井盖还是没人修")
    assert again["id"] == first["id"] and again["outcome"] == "linked_repeat" and again["urge_count"] == 1
    again = await create(client, agent, expect=200, address="人民路馨苑小区", description="第三次打电话了")
    assert again["urge_count"] == 2 and again["urgency"] == "critical"  # urgent raised after N=2 urges
    hist = (await client.get(f"/v1/work-orders/{first['id']}", headers=agent)).json()["history"]
    urges = [e for e in hist if e["action"] == "urge"]
    assert len(urges) == 2 and urges[0]["detail"]["repeat_call"] is True and "井盖还是没人修" in urges[0]["note"]
    # different category, different place, or another phone → new orders
    assert (await create(client, agent, category="road.damage"))["id"] != first["id"]
    assert (await create(client, agent, address="青山区钟楼商场北门"))["outcome"] == "created"
    # past the 7-day window → a new order even for the same place
    clock.advance(days=6)
    assert (await create(client, agent))["outcome"] != "linked_repeat"


async def test_repeat_call_retried_with_its_key_urges_once(client: httpx.AsyncClient, headers: dict,
                                                           clock: Clock) -> None:
    """A repeat call sent again with its Idempotency-Key (a client retrying after a lost answer, e.g. while the
    database restarted) is the same call: the order it urged comes back, not urged again (urges raise urgency)."""
    agent = headers["agent"]
    first = await create(client, agent)
    clock.advance(hours=3)
    key = {"Idempotency-Key": "repeat-call-retried-1"}
    urged = await create(client, agent, expect=200, headers=key, description="井盖还是没人修")
    assert urged["id"] == first["id"] and urged["outcome"] == "linked_repeat" and urged["urge_count"] == 1
    for _ in range(2):
        again = await create(client, agent, expect=200, headers=key, description="井盖还是没人修")
        assert (again["id"], again["outcome"], again["urge_count"]) == (first["id"], "replayed", 1)
        assert again["urgency"] == first["urgency"]
    other = await create(client, agent, expect=200, headers={"Idempotency-Key": "repeat-call-2"})
    assert other["outcome"] == "linked_repeat" and other["urge_count"] == 2  # another call still urges
    # The same call sent several times at once: one urge (the others lose the order's version race, retry, and
    # find it).
    h = {**agent, "Idempotency-Key": "repeat-call-3"}
    rs = await asyncio.gather(*(client.post("/v1/work-orders", json=order_body(), headers=h) for _ in range(4)))
    assert [r.status_code for r in rs] == [200] * 4, [r.text for r in rs]
    assert sorted(r.json()["outcome"] for r in rs) == ["linked_repeat"] + ["replayed"] * 3
    assert {r.json()["urge_count"] for r in rs} == {3}


async def test_closed_orders_are_not_linked(client: httpx.AsyncClient, headers: dict, clock: Clock) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路胜利小区")
    await act(client, headers["supervisor"], o["id"], "withdraw", note="市民已自行解决")
    again = await create(client, headers["agent"], address="东河区滨河路胜利小区")
    assert again["outcome"] == "created" and again["id"] != o["id"]
    # opting out of linking (an agent who knows it is a new problem)
    third = await create(client, headers["agent"], address="东河区滨河路胜利小区", link_repeats=False)
    assert third["id"] not in (o["id"], again["id"])


async def test_hotspot_groups_several_citizens(client: httpx.AsyncClient, headers: dict, clock: Clock) -> None:
    agent, sup = headers["agent"], headers["supervisor"]
    master = await create(client, agent, category="sanitation.garbage", description="垃圾好几天没人清运",
                          address="云湖区望湖苑南门垃圾站", caller_phone="13911110001")
    kids = []
    for i, addr in enumerate(("望湖苑南门", "云湖区望湖路望湖苑小区")):
        clock.advance(hours=3)
        kids.append(await create(client, agent, category="sanitation.garbage", description="垃圾堆成山了，很臭",
                                 address=addr, caller_phone=f"1391111000{i + 2}"))
    assert [k["outcome"] for k in kids] == ["hotspot_child", "hotspot_child"]
    assert all(k["master_id"] == master["id"] and k["department_code"] == master["department_code"] for k in kids)
    assert all(k["ticket"] != master["ticket"] for k in kids)  # every citizen keeps a ticket of their own
    d = (await client.get(f"/v1/work-orders/{master['id']}", headers=sup)).json()
    assert d["children"] == [k["ticket"] for k in kids]
    assert [e["action"] for e in d["history"]].count("hotspot_join") == 2
    other = await create(client, agent, category="sanitation.garbage", description="垃圾没清",
                         address="云湖区云湖公园东门", caller_phone="13911110009")
    assert other["outcome"] == "created" and other["master_id"] is None
    # resolving the master resolves the grouped orders, each with its own callback task
    await act(client, sup, master["id"], "accept")
    await act(client, sup, master["id"], "resolve", note="已清运并增加清运频次")
    for k in kids:
        k = (await client.get(f"/v1/work-orders/{k['id']}", headers=sup)).json()
        assert k["status"] == "resolved" and k["result_note"] == "已清运并增加清运频次"
    queue = (await client.get("/v1/work-orders/callbacks", headers=agent)).json()
    assert sorted(c["ticket"] for c in queue) == sorted([master["ticket"]] + [k["ticket"] for k in kids])


def test_ticket_found_in_a_spoken_sentence() -> None:
    """Only a run of digits is a ticket: the 一 of 查一下 / 一个 must not join it (it used to, making 13 digits)."""
    assert parse_ticket("帮我查一下工单二零二六一二零三零零零一现在办得怎么样了") == "20261203-0001"
    assert parse_ticket("我想问一个事，单号二〇二六一一二五 杠 幺零零二") == "20261125-1002"
    assert parse_ticket("工单２０２６１１２５-００４２") == "20261125-0042"
    assert parse_ticket("查一下我的工单") is None
    assert parse_ticket("我的电话是13900001234") is None  # 11 digits: a mobile number, not a ticket


async def test_python_api_for_bot_and_ivr(container: Container, clock: Clock) -> None:
    svc, bot = container.work_orders, SystemActor(username="bot", role="agent")
    async with container.db.session() as s:
        cats = {c.code: c.name for c in await svc.categories(s)}
        assert cats["road.manhole_cover"] == "井盖缺失/松动"
        assert (await svc.route(s, "utilities.water", "yunhu", "停水")).department_name == "市水务集团"
        made = await svc.create(s, bot, WorkOrderCreate(
            category="utilities.water", description="家里停水了", address="云湖区望湖苑5栋",
            caller_phone="13700001234", caller_name="李女士", channel="ivr", call_ref="call-1"))
    assert made.outcome == "created" and made.department_name == "市水务集团"
    assert made.ticket == "20261125-0001" and made.spoken_ticket == "二零二六一一二五 杠 零零零一"
    assert made.response_due == START + dt.timedelta(hours=1) and made.urgency == "urgent"
    assert parse_ticket("二零二六一一二五零零零一") == made.ticket == parse_ticket("20261125 0001")
    assert speakable("20261125-0042").endswith("零零四二")
    async with container.db.session() as s:  # a new session: the ticket told to the caller is committed
        got = await svc.get_by_ticket(s, made.ticket)
        assert got is not None and got.call_ref == "call-1" and got.channel == "ivr"
        assert [o.ticket for o in await svc.open_orders_for_phone(s, "13700001234")] == [made.ticket]
        urged = await svc.urge(s, bot, made.ticket, "来电催办")
        assert urged.urge_count == 1
        done = await svc.withdraw(s, bot, made.ticket, "市民来电撤单")
        assert done.status == "withdrawn"
        assert await svc.open_orders_for_phone(s, "13700001234") == []
