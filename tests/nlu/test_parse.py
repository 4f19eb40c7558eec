"""The real Rasa server understands citizens' everyday Mandarin, as a speech recogniser transcribes it.

None of these sentences is in the training data (nlu/corpus/); they include dialect words, fillers and
recogniser homophones (紧盖/井盖, 路等/路灯, 拖钱/拖欠)."""

from __future__ import annotations

import pytest

# (utterance, expected intent)
CASES = [
    ("你好 请问是一二三四五吗", "greet"),
    ("喂 您好", "greet"),
    ("好了 没事了 再见啊", "goodbye"),
    ("谢谢你们了 辛苦", "thanks"),
    ("你们上次处理得特别好 我要给你们点个赞", "praise"),
    ("对 是这个", "affirm"),
    ("不对 不是这个", "deny"),
    ("别说了 给我转人工", "ask_human"),
    ("我要找人工客服", "ask_human"),
    ("你们这什么破服务 气死我了", "angry"),
    ("社保卡丢了去哪补办啊", "ask_info"),
    ("公积金咋提取", "ask_info"),
    ("身份证过期了怎么换", "ask_info"),
    ("俺家楼下的紧盖丢了", "report_road_manhole_cover"),
    ("井盖没了 有个大窟窿", "report_road_manhole_cover"),
    ("马路上有个大坑 一直没人修", "report_road_damage"),
    ("门口的路等不亮了", "report_lighting_streetlight"),
    ("路灯坏了 晚上黑乎乎的", "report_lighting_streetlight"),
    ("垃圾堆了一个礼拜没人拉走", "report_sanitation_garbage"),
    ("楼上半夜蹦迪 吵得睡不着", "report_environment_noise"),
    ("厂子往河里排污水 臭得很", "report_environment_pollution"),
    ("邻居养的猪臭死了", "report_agriculture_livestock"),
    ("俺家停水两天了", "report_utilities_water"),
    ("家里没电了 一直没来电", "report_utilities_power"),
    ("暖气一点都不热 屋里冷死了", "report_utilities_heating"),
    ("物业不管事 电梯坏了也不修", "report_housing_property"),
    ("老板拖钱工资 三个月没发了", "report_labor_wage_arrears"),
    ("有辆车堵在消防通道上", "report_traffic_parking"),
    ("超市卖过期的面包", "report_market_food_safety"),
    ("健身卡的钱商家不给退", "report_market_consumer"),
    ("跟邻居闹矛盾了 想找人调解一下", "report_legal_dispute"),
    ("公园的健身器材坏了", "report_public_facility"),
    ("小区停气了 做不了饭", "report_utilities_gas"),
    ("门口那棵大树的树枝快断了", "report_greening_tree"),
    ("这路公交车等了一个钟头都不来", "report_transport_bus"),
    ("我想给政府提个意见", "report_other"),
    ("我想查一下我那个工单的进度", "query_status"),
    ("都好几天了 帮我催一下", "urge"),
    ("问题解决了 我要撤单", "withdraw"),
    ("着火了 快来人", "emergency_fire"),
    ("家里煤气泄漏了", "emergency_gas"),
    ("有人拿刀打人", "emergency_crime"),
    ("我爸晕倒了 叫救护车", "emergency_medical"),
    ("帮我订一张火车票", "out_of_scope"),
    ("你是机器人吧", "chitchat"),
]


@pytest.mark.parametrize(("text", "intent"), CASES, ids=[c[1] + ":" + c[0] for c in CASES])
def test_intent(parse, text: str, intent: str) -> None:
    result = parse(text)
    assert result["intent"]["name"] == intent, (text, result["intent"], result["intent_ranking"][:3])


def test_every_intent_in_the_domain_is_covered(rasa_client) -> None:
    domain = rasa_client.get("/domain", headers={"Accept": "application/json"}).json()
    names = {next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]}
    rasa_defaults = {"restart", "back", "session_start", "nlu_fallback"}
    assert "silence" in names  # the IVR sends "/silence"; see test_silence_payload
    # silence: test_silence_payload; inform: test_address_answer_in_the_form
    assert names - rasa_defaults - {"silence", "inform"} == {intent for _, intent in CASES}


def test_address_answer_in_the_form(parse) -> None:
    """A bare address (the answer to utter_ask_address) fills the form's address slot from the text and its
    gazetteer entities. Its intent is often low-confidence (inform vs nlu_fallback - a known weakness of the
    current model); what matters is that it is not one of the intents that stop the form (domain not_intent)."""
    result = parse("地址是青山区人民路 馨苑小区门口")
    stoppers = {"ask_human", "angry", "withdraw", "silence"} | {
        f"emergency_{k}" for k in ("fire", "gas", "crime", "medical")}
    assert result["intent"]["name"] not in stoppers, result["intent"]
    assert {"inform", "nlu_fallback"} & {result["intent"]["name"], result["intent_ranking"][1]["name"]}
    # The form takes the whole answer as the address (from_text); of the gazetteer entities the model reliably
    # tags the district in a bare address (road/landmark tagging there is a known weakness, see nlu/README.md).
    found = {(e["entity"], e["value"]) for e in result["entities"]}
    assert ("district", "青山区") in found, result["entities"]


def test_silence_payload(parse) -> None:
    result = parse("/silence")
    assert result["intent"]["name"] == "silence"
    assert result["intent"]["confidence"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "ticket"),
    [
        ("我想查一下工单二零二六一一二五零零四二的进度", "二零二六一一二五零零四二"),
        ("单号是20261125-0042 现在啥情况", "20261125-0042"),
        ("帮我催一下 工单号二零二六零三一七零一二八", "二零二六零三一七零一二八"),
    ],
)
def test_ticket_entity(parse, text: str, ticket: str) -> None:
    """The ticket entity covers the spoken digits. DIET may cut it into adjacent pieces at token boundaries
    (20261125 / - / 0042), so the contract is the span from the first to the last ticket piece; the actions
    normalise it (Chinese digits -> Arabic) before looking the order up."""
    result = parse(text)
    assert result["intent"]["name"] in {"query_status", "urge"}, result["intent"]
    pieces = [e for e in result["entities"] if e["entity"] == "ticket"]
    assert pieces, result["entities"]
    assert text[min(e["start"] for e in pieces):max(e["end"] for e in pieces)] == ticket, result["entities"]


def test_phone_entity(parse) -> None:
    text = "我的电话是幺三九幺二三四五六七八"
    result = parse(text)
    pieces = [e for e in result["entities"] if e["entity"] == "phone"]
    assert pieces, result["entities"]
    assert text[min(e["start"] for e in pieces):max(e["end"] for e in pieces)] == "幺三九幺二三四五六七八"


def test_address_entities(parse) -> None:
    from hotline.services.rasa import NLU_DIR
    import yaml

    lookups = {b["lookup"]: b["examples"] for b in yaml.safe_load((NLU_DIR / "data/lookups.yml").read_text())["nlu"]
               if "lookup" in b}
    districts = [d.lstrip("- ").strip() for d in lookups["district"].splitlines()]
    roads = [r.lstrip("- ").strip() for r in lookups["road"].splitlines()]
    # Known weakness: a road named after its district (东河大道) is tagged as district; pick one that is not.
    road = next(r for r in roads if not any(d[:2] in r for d in districts))
    result = parse(f"{road}上有个井盖没了")
    assert result["intent"]["name"] == "report_road_manhole_cover"
    assert [e["value"] for e in result["entities"] if e["entity"] == "road"] == [road], result["entities"]


def test_parse_is_fast(parse) -> None:
    import time

    parse("预热")
    started = time.perf_counter()
    for _ in range(20):
        parse("俺家门口的井盖丢了")
    assert (time.perf_counter() - started) / 20 < 0.2
