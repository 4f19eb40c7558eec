"""The planner's decisions for given classifier readings: when to confirm, ask which, offer the KB, fill the
question asked, take a correction. The classifier's reading is given (a `Parse`), so each branch is reached
deterministically; tests/dialogue/test_conversations.py runs the same flows against the real bot."""

from __future__ import annotations

import pytest

from dialogue.planner import KbHit, TurnPlanner
from dialogue.rasa_client import Parse
from dialogue.state import DialogueState, Pending
from understanding.expect import Expect


def reading(*ranking: tuple[str, float], entities: list[dict] | None = None):  # type: ignore[no-untyped-def]
    async def parse(text: str) -> Parse:
        top = ranking[0] if ranking else ("nlu_fallback", 0.0)
        return Parse(top[0], top[1], list(ranking), entities or [])

    return parse


def kb(title: str | None, strength: str = "strong"):  # type: ignore[no-untyped-def]
    async def probe(text: str) -> KbHit | None:
        return KbHit(7, title, strength) if title else None

    return probe


async def test_sure_report_goes_to_the_bot_with_its_reading() -> None:
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.93)))
    plan = await planner.plan(DialogueState(), "楼下路灯坏了好几天了", {})
    assert plan.forward == "楼下路灯坏了好几天了"
    assert plan.parse == {"intent": "report_lighting_streetlight", "entities": []}


async def test_unsure_report_is_confirmed_in_words_then_yes_goes_on() -> None:
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.55), ("report_road_damage", 0.2)))
    state = DialogueState()
    plan = await planner.plan(state, "晚上出门黑乎乎的啥也看不见", {})
    assert plan.forward is None and plan.expect is Expect.YES_NO
    assert plan.replies == ["您是要反映路灯不亮方面的问题，对吗？"]
    yes = await planner.plan(state, "对", {})
    assert yes.forward == "晚上出门黑乎乎的啥也看不见"
    assert yes.parse and yes.parse["intent"] == "report_lighting_streetlight"
    assert state.pending is None


async def test_two_close_readings_ask_which() -> None:
    planner = TurnPlanner(reading(("report_utilities_water", 0.45), ("report_utilities_heating", 0.4)))
    state = DialogueState()
    plan = await planner.plan(state, "家里管子的事", {})
    assert plan.expect is Expect.CHOICE and "还是" in plan.replies[0]
    second = await planner.plan(state, "第二个", {})
    assert second.parse and second.parse["intent"] == "report_utilities_heating"


async def test_fallback_with_a_kb_hit_offers_the_answer() -> None:
    planner = TurnPlanner(reading(("nlu_fallback", 0.6), ("chitchat", 0.2)), kb("居住证申领", "plausible"))
    state = DialogueState()
    plan = await planner.plan(state, "外地来的孩子上学要办个证去哪办", {})
    assert plan.replies == ["您是想咨询“居住证申领”吗？"] and plan.expect is Expect.YES_NO
    yes = await planner.plan(state, "是的", {})
    assert yes.parse and yes.parse["intent"] == "ask_info" and yes.forward == "外地来的孩子上学要办个证去哪办"
    assert yes.parse["entities"] == [{"entity": "kb_entry", "value": "7"}]


async def test_a_strong_kb_hit_answers_a_question_the_classifier_missed() -> None:
    planner = TurnPlanner(reading(("nlu_fallback", 0.6), ("chitchat", 0.2)), kb("社会保障卡挂失补办"))
    plan = await planner.plan(DialogueState(), "我那个社保卡找不着了上哪弄去", {})
    assert plan.parse == {"intent": "ask_info", "entities": [{"entity": "kb_entry", "value": "7"}]}


async def test_a_no_to_a_clarification_asks_again_then_a_person() -> None:
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.5)))
    state = DialogueState()
    await planner.plan(state, "那个灯的事", {})
    assert (await planner.plan(state, "不是", {})).action == "clarify"
    await planner.plan(state, "那个灯的事", {})
    final = await planner.plan(state, "不对", {})
    assert final.action == "human" and final.handoff and final.handoff["reason"] == "clarification_failed"


@pytest.mark.parametrize("text", ["嗯", "嗯嗯", "啊这个", "好的", "是的"])
async def test_backchannel_first_turn_is_invited_to_speak(text: str) -> None:
    planner = TurnPlanner(reading(("affirm", 0.9)))
    plan = await planner.plan(DialogueState(), text, {})
    assert plan.forward is None and plan.replies == ["您请讲，有什么可以帮您？"]


async def test_the_answer_to_where_is_an_address_not_a_new_request() -> None:
    # The classifier would call it a consumer complaint; asked for the address, it is the address.
    planner = TurnPlanner(reading(("report_market_consumer", 0.95)))
    state = DialogueState(expect=Expect.ADDRESS.value, requested_slot="address")
    plan = await planner.plan(state, "东河区解放路的一家装修公司", {"category": "labor.wage_arrears"})
    assert plan.parse and plan.parse["intent"] == "inform"
    values = {e["entity"]: e["value"] for e in plan.parse["entities"]}
    assert values["district"] == "东河区"


async def test_a_road_in_two_districts_gets_a_question() -> None:
    planner = TurnPlanner(reading(("inform", 0.9)))
    state = DialogueState(expect=Expect.ADDRESS.value, requested_slot="address")
    plan = await planner.plan(state, "解放路十二号", {"category": "road.damage"})
    assert plan.replies == ["请问是哪个区的解放路？"]
    answer = await planner.plan(state, "东河区", {"category": "road.damage"})
    values = {e["entity"]: e["value"] for e in answer.parse["entities"]}
    assert values["district"] == "东河区" and values.get("road") == "解放路"


async def test_a_new_request_while_asked_for_the_address_is_confirmed_not_taken() -> None:
    planner = TurnPlanner(reading(("report_utilities_power", 0.96)))
    state = DialogueState(expect=Expect.ADDRESS.value, requested_slot="address")
    plan = await planner.plan(state, "家里停电了", {"category": "utilities.water"})
    assert plan.forward is None and plan.expect is Expect.YES_NO and "改为" in plan.replies[0]
    yes = await planner.plan(state, "对", {"category": "utilities.water"})
    assert yes.set_slots == {"category": "utilities.power"} and yes.expect is Expect.ADDRESS


async def test_an_address_the_map_does_not_know_is_asked_again_with_an_example() -> None:
    planner = TurnPlanner(reading(("chitchat", 0.5)))
    state = DialogueState(expect=Expect.ADDRESS.value, requested_slot="address")
    plan = await planner.plan(state, "嗯那个", {"category": "road.damage"})
    assert plan.forward is None and "比如" in plan.replies[0] and plan.expect is Expect.ADDRESS


async def test_readback_yes_no_and_the_named_correction() -> None:
    planner = TurnPlanner(reading(("affirm", 0.9)))
    slots = {"category": "utilities.water", "address": "青山区建设路26号", "caller_phone": "13800138000"}
    state = DialogueState(expect=Expect.YES_NO.value, requested_slot="phone_confirmed", slots=dict(slots))
    assert (await planner.plan(state, "对", slots)).parse == {"intent": "affirm", "entities": []}
    fix = await planner.plan(state, "不对，是东河区", slots)
    assert fix.set_slots and fix.set_slots["address"] == "东河区建设路26号" and fix.readback_after
    assert (await planner.plan(state, "不是", slots)).parse is None  # a "no" never confirms
    bare = await planner.plan(DialogueState(expect="yes_no", requested_slot="phone_confirmed"), "不对", slots)
    assert bare.forward is None and "哪一项不对" in bare.replies[0]


async def test_bare_no_twice_at_the_readback_hands_over() -> None:
    planner = TurnPlanner(reading(("deny", 0.9)))
    state = DialogueState(expect=Expect.YES_NO.value, requested_slot="phone_confirmed",
                          pending=Pending("correction", "不对"))
    plan = await planner.plan(state, "不是", {"category": "road.damage"})
    assert plan.action == "human" and plan.handoff["reason"] == "confirmation_refused"


async def test_more_about_the_problem_at_the_readback_is_added_and_read_back_again() -> None:
    planner = TurnPlanner(reading(("inform", 0.6)))
    slots = {"category": "lighting.streetlight", "address": "青山区人民路", "description": "人民路的路灯坏了"}
    state = DialogueState(expect=Expect.YES_NO.value, requested_slot="phone_confirmed", slots=dict(slots))
    plan = await planner.plan(state, "路灯一直不亮已经三天了", slots)
    assert plan.forward is None and plan.readback_after and plan.expect is Expect.YES_NO
    assert plan.set_slots == {"description": "人民路的路灯坏了；路灯一直不亮已经三天了"}


async def test_which_part_answered_with_a_yes_confirms_the_order() -> None:
    planner = TurnPlanner(reading(("affirm", 0.9)))
    state = DialogueState(expect=Expect.FREE.value, requested_slot="phone_confirmed",
                          pending=Pending("correction", "不对"))
    plan = await planner.plan(state, "对的没错", {"category": "road.damage"})
    assert plan.parse == {"intent": "affirm", "entities": []} and state.pending is None


async def test_no_answer_to_the_readback_is_asked_again_with_the_keypad() -> None:
    planner = TurnPlanner(reading(("chitchat", 0.7)))
    state = DialogueState(expect=Expect.YES_NO.value, requested_slot="phone_confirmed")
    plan = await planner.plan(state, "这个我得想一想", {"category": "road.damage", "address": "青山区人民路"})
    assert plan.forward is None and plan.set_slots is None and plan.expect is Expect.YES_NO
    assert "按" in plan.replies[0] and state.pending is None


async def test_a_yes_no_reading_of_babble_is_not_understood() -> None:
    planner = TurnPlanner(reading(("deny", 0.78)))
    plan = await planner.plan(DialogueState(), "叽里咕噜哇啦哇啦", {})
    assert plan.parse == {"intent": "nlu_fallback", "entities": []}


async def test_places_the_classifier_missed_are_read_by_sound_in_a_report() -> None:
    """"载清山区、人民路" is how the recogniser may write 在青山区人民路: the gazetteer reads it, and the address goes
    to the bot written properly, so the bot need not ask where."""
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.93)))
    plan = await planner.plan(DialogueState(), "路灯坏了,载清山区、人民路、山号楼门口", {})
    entities = plan.parse["entities"]
    assert {"entity": "district", "value": "青山区"} in entities and {"entity": "road", "value": "人民路"} in entities
    assert {"entity": "address", "value": "青山区人民路"} in entities
    # what the classifier found stands when it names as many places (its spans keep the details: 三号楼门口)
    found = [{"entity": "district", "value": "青山区", "start": 0, "end": 3},
             {"entity": "road", "value": "人民路", "start": 3, "end": 6}]
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.93), entities=found))
    assert (await planner.plan(DialogueState(), "青山区人民路三号楼门口路灯坏了", {})).parse["entities"] == found


async def test_a_place_the_classifier_made_up_gives_way_to_the_gazetteer() -> None:
    bogus = [{"entity": "district", "value": "山区", "start": 7, "end": 9}]  # what DIET made of 载清山区
    planner = TurnPlanner(reading(("report_lighting_streetlight", 0.93), entities=bogus))
    entities = (await planner.plan(DialogueState(), "路灯坏了,载清山区、人民路、山号楼门口", {})).parse["entities"]
    assert {"entity": "district", "value": "青山区"} in entities and bogus[0] not in entities
