"""Every bot flow end to end through /v1/dialogue: real Rasa, real actions, real database."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import select

from dialogue.rasa_client import RasaClient
from dialogue.schemas import TurnIn
from dialogue.service import DialogueService
from hotline.container import Container
from knowledge_base.models import KbEntry
from work_orders.models import WorkOrder
from work_orders.schemas import WorkOrderCreate
from work_orders.service import SYSTEM

CALLER = "13812345678"
CN_DIGITS = "零一二三四五六七八九"


def spoken(ticket: str) -> str:
    return "".join(CN_DIGITS[int(c)] for c in ticket if c.isdigit())


async def test_kb_question_answered_from_the_kb(say, seeded: Container) -> None:
    turn = await say("社保卡丢了咋办啊", caller=CALLER)
    assert turn["intent"] == "ask_info" and turn["action"] == "kb_answer"
    async with seeded.db.session() as session:
        entry = await session.get(KbEntry, turn["kb_entry_id"])
    assert entry is not None and entry.key == "shebao-card-loss"
    assert turn["replies"][0] == entry.spoken_answer


async def test_kb_edit_takes_effect_without_retraining(say, seeded: Container, client: httpx.AsyncClient,
                                                       headers: dict) -> None:
    first = await say("社保卡丢了咋办啊")
    entry_id = first["kb_entry_id"]
    entry = (await client.get(f"/v1/kb/entries/{entry_id}", headers=headers["admin"])).json()
    new_answer = "社保卡丢了，请先打电话挂失，再到政务服务中心一楼社保窗口当场补卡。"
    r = await client.put(f"/v1/kb/entries/{entry_id}", json={"version": entry["version"], "spoken_answer": new_answer},
                         headers=headers["admin"])
    assert r.status_code == 200
    again = await say("我的社保卡掉了怎么补")
    assert again["replies"][0] == new_answer


async def test_full_work_order_conversation(say, seeded: Container) -> None:
    greet = await say("喂你好", caller=CALLER)
    assert greet["intent"] == "greet" and greet["action"] == "chitchat"
    first = await say("青山区人民路馨苑小区门口那个井盖没了，晚上黑乎乎的特别危险")
    assert first["action"] == "work_order" and first["category"] == "road.manhole_cover"
    assert first["work_order"] is None
    turn = first
    for _ in range(4):  # the form asks what is still missing; the address was in the first sentence
        reply = " ".join(turn["replies"])
        if "联系电话" in reply:
            turn = await say("对的，就是这个号")
        elif "地址" in reply:
            turn = await say("青山区人民路馨苑小区东门")
        elif "情况" in reply:
            turn = await say("井盖丢了一个多星期了")
        if turn["work_order"]:
            break
        assert turn["action"] == "collecting", turn
    assert turn["action"] == "work_order" and turn["work_order"], turn
    ticket = turn["work_order"]["ticket"]
    assert ticket in " ".join(turn["replies"])
    async with seeded.db.session() as session:
        order = await session.scalar(select(WorkOrder).where(WorkOrder.ticket == ticket))
    assert order is not None, "the ticket read back must be stored"
    assert order.category_code == "road.manhole_cover" and order.caller_phone == CALLER
    assert order.department_code == "district.qingshan"  # responsibility list: manhole × 青山区
    assert "馨苑小区" in order.address


async def test_refusing_the_confirmation_twice_hands_over(say, seeded: Container) -> None:
    turn = await say("东河区滨河路的路灯一到晚上就不亮", caller=CALLER)
    denials = 0
    for _ in range(5):
        if "地址" in " ".join(turn["replies"]):
            turn = await say("东河区滨河路和平路口")
        else:
            denials += 1
            turn = await say("不对" if denials == 1 else "不是这个")
        if turn["action"] == "human":
            break
    assert turn is not None and turn["action"] == "human" and turn["handoff"]["reason"] == "confirmation_refused"
    async with seeded.db.session() as session:
        assert (await session.scalar(select(WorkOrder).where(WorkOrder.caller_phone == CALLER))) is None


async def existing_order(container: Container) -> str:
    async with container.db.session() as session:
        created = await container.work_orders.create(
            session, SYSTEM,
            WorkOrderCreate(category="lighting.streetlight", description="路灯不亮", address="东河区滨河路",
                            caller_phone=CALLER),
        )
    return created.ticket


async def test_status_query_by_spoken_ticket_digits(say, seeded: Container) -> None:
    ticket = await existing_order(seeded)
    turn = await say(f"帮我查一下工单{spoken(ticket)}现在办得怎么样了")
    assert turn["action"] == "status_query", turn
    assert turn["work_order"]["ticket"] == ticket
    assert "已派单" in turn["replies"][0] or "已受理" in turn["replies"][0]


async def test_urge_and_withdraw_by_caller_number(say, seeded: Container) -> None:
    ticket = await existing_order(seeded)
    urge = await say("我反映的问题一直没人管，麻烦催办一下", caller=CALLER)
    assert urge["action"] == "urge" and urge["work_order"]["ticket"] == ticket
    withdraw = await say("算了这个事不用办了，我要撤单")
    assert withdraw["action"] == "withdraw" and withdraw["work_order"]["ticket"] == ticket
    async with seeded.db.session() as session:
        order = await seeded.work_orders.get_by_ticket(session, ticket)
    assert order is not None and order.status == "withdrawn" and order.urge_count >= 1


@pytest.mark.parametrize(
    ("text", "number"),
    [("我家厨房着火了，火特别大", "一一九"), ("楼道里全是煤气味，好像漏气了", "一一九"),
     ("有人在小区门口打架还拿着刀", "一一零"), ("我爸突然晕倒了叫不醒", "一二零")],
)
async def test_emergency_goes_straight_to_a_person(say, text: str, number: str) -> None:
    turn = await say(text, caller=CALLER)
    assert turn["action"] == "emergency", turn
    assert turn["handoff"] == {"queue": "emergency", "priority": "emergency", "reason": turn["handoff"]["reason"]}
    assert number in turn["replies"][0]


async def test_human_on_request_and_on_anger(say) -> None:
    assert (await say("我不跟机器说，给我转人工"))["action"] == "human"
    angry = await say("你们这些人就会踢皮球，气死我了")
    assert angry["action"] == "human" and angry["handoff"]["priority"] == "urgent"


async def test_two_failures_then_a_person(say) -> None:
    first = await say("量子纠缠的波函数坍缩了吗")
    assert first["action"] == "fallback", first
    second = await say("叽里咕噜哇啦哇啦")  # babble, not a backchannel
    assert second["action"] == "human", second
    assert second["handoff"]["reason"] in ("kb_no_answer", "not_understood")


async def test_small_talk(say) -> None:
    assert (await say("谢谢你啊"))["action"] == "chitchat"
    assert (await say("/silence"))["action"] == "chitchat"


async def test_degrades_when_rasa_is_down_or_slow(seeded: Container) -> None:
    # Down: nothing listens on the port.
    down = DialogueService(RasaClient("http://127.0.0.1:9", 1.5), seeded.redis, 1.5)
    start = time.perf_counter()
    turn = await down.turn("down-1", TurnIn(text="社保卡丢了怎么办", caller=CALLER))
    assert time.perf_counter() - start < 1.6
    assert turn.degraded and turn.action == "fallback" and turn.menu and "0" in turn.menu
    assert "转人工" in turn.replies[0] and "按一" in turn.replies[0]

    # Slow: a server that accepts the connection and never answers.
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    slow = DialogueService(RasaClient(f"http://127.0.0.1:{port}", 1.5), seeded.redis, 1.5)
    start = time.perf_counter()
    turn = await slow.turn("slow-1", TurnIn(text="社保卡丢了怎么办"))
    elapsed = time.perf_counter() - start
    server.close()
    assert turn.degraded and 1.4 < elapsed < 2.0
    await down.rasa.close()
    await slow.rasa.close()


async def test_bad_input(client: httpx.AsyncClient, headers: dict) -> None:
    h = headers["agent"]
    assert (await client.post("/v1/dialogue/abc", json={"text": "长" * 501}, headers=h)).status_code == 422
    assert (await client.post("/v1/dialogue/abc", json={"text": "hi", "caller": "phone"}, headers=h)).status_code == 422
    assert (await client.post("/v1/dialogue/bad id!", json={"text": "hi"}, headers=h)).status_code in (404, 422)
    assert (await client.post("/v1/dialogue/abc", json={"text": "hi"})).status_code == 401
    assert (await client.post("/v1/dialogue/abc", json={"text": "hi"}, headers=headers["dept_a"])).status_code == 403
