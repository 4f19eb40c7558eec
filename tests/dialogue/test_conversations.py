"""Conversations as callers hold them, against the real bot (Rasa + actions) through /v1/dialogue: openings
with fillers, backchannels, a bare "对" at the read-back, a correction of the part named."""

from __future__ import annotations

from sqlalchemy import select

from hotline.container import Container
from work_orders.models import WorkOrder

CALLER = "13912345678"


def spoken(turn: dict) -> str:
    return " ".join(turn["replies"])


async def fill_the_form(say, turn: dict, answers: dict[str, str], limit: int = 6) -> dict:  # type: ignore[no-untyped-def]
    """Answer what the bot asks (by what it expects) until it stops asking or a ticket is read back."""
    for _ in range(limit):
        if turn["work_order"] or turn["action"] in ("human", "emergency"):
            return turn
        expect = turn["expect"]
        if expect == "yes_no":
            turn = await say(answers.get("yes_no", "对"))
        elif expect == "address":
            turn = await say(answers["address"])
        elif expect == "description":
            turn = await say(answers.get("description", "好几天了"))
        elif expect == "phone":
            turn = await say(CALLER)
        else:
            return turn
    return turn


async def test_opening_with_a_greeting_is_understood(say, seeded: Container) -> None:
    turn = await say("你好，我家楼下的路灯坏了好几天了", caller=CALLER)
    if turn["action"] == "clarify":  # an unsure reading is confirmed in words, never "换个说法"
        assert turn["category"] == "lighting.streetlight" and turn["expect"] == "yes_no", turn
        turn = await say("对")
    assert turn["action"] == "work_order" and turn["category"] == "lighting.streetlight", turn


async def test_bare_yes_confirms_the_readback_and_the_ticket_is_stored(say, seeded: Container) -> None:
    turn = await say("青山区人民路馨苑小区门口的井盖没了", caller=CALLER)
    readback = None
    for _ in range(5):
        if turn["expect"] == "yes_no":
            readback = spoken(turn)
            turn = await say("对")
            break
        turn = await fill_the_form(say, turn, {"address": "青山区人民路馨苑小区东门"}, limit=1)
    assert readback and "跟您确认一下" in readback and "井盖" in readback, readback
    assert turn["work_order"], turn
    async with seeded.db.session() as session:
        order = await session.scalar(select(WorkOrder).where(WorkOrder.ticket == turn["work_order"]["ticket"]))
    assert order is not None and order.category_code == "road.manhole_cover" and order.district_code == "qingshan"


async def test_correction_at_the_readback_changes_only_the_part_named(say, seeded: Container) -> None:
    turn = await say("建设路二十六号停水一整天了", caller=CALLER)
    turn = await fill_the_form(say, turn, {"address": "青山区建设路二十六号", "yes_no": "不对，是东河区"}, limit=4)
    assert turn["expect"] == "yes_no" and "东河区建设路" in spoken(turn), turn
    turn = await say("对")
    assert turn["work_order"], turn
    async with seeded.db.session() as session:
        order = await session.scalar(select(WorkOrder).where(WorkOrder.ticket == turn["work_order"]["ticket"]))
    assert order is not None and order.district_code == "donghe" and order.category_code == "utilities.water"
    assert "建设路" in order.address and "26" in order.address


async def test_backchannels_get_an_invitation_never_silence_or_a_loop(say) -> None:
    for text in ("嗯嗯", "啊这个", "是的"):
        turn = await say(text)
        assert turn["replies"] == ["您请讲，有什么可以帮您？"], turn
    human = await say("我要找人工客服")
    assert human["action"] == "human"
    after = await say("好的")
    assert 1 <= len(after["replies"]) <= 3, after


async def test_realistic_emergency_is_sent_on_in_the_first_turn(say) -> None:
    turn = await say("喂喂 快点 我爸刚才一下子倒在地上了 叫也叫不醒 好像没气了", caller=CALLER)
    assert turn["action"] == "emergency" and turn["handoff"]["priority"] == "emergency", turn
    assert "一二零" in spoken(turn)


async def test_places_heard_as_homophones_are_not_asked_for_again(say, seeded: Container) -> None:
    """The recogniser wrote 在青山区人民路 as "载清山区、人民路": the bot reads the places by sound and goes on to the
    read-back with them instead of asking where."""
    turn = await say("路灯坏了,载清山区、人民路、山号楼门口", caller=CALLER)
    if turn["action"] == "clarify":
        turn = await say("对")
    assert turn["expect"] != "address", turn
    turn = await fill_the_form(say, turn, {"address": "青山区人民路"})
    assert turn["work_order"], turn
    async with seeded.db.session() as session:
        order = await session.scalar(select(WorkOrder).where(WorkOrder.ticket == turn["work_order"]["ticket"]))
    assert order is not None and order.district_code == "qingshan" and "人民路" in order.address, order.address
