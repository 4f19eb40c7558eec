"""Questions as callers really ask them: the story first, no punctuation, recogniser homophones; and how
sure the search is of its best hit (strong → answer, plausible → offer, none → nothing)."""

from __future__ import annotations

import pytest

from hotline.container import Container
from hotline.seed import seed_kb
from knowledge_base.strength import Strength

LONG_RESIDENCE = "我是外地来的在咱们这边打工两年了现在孩子要上学了听说要办那个居住证我想问问去哪办要带啥"


@pytest.fixture
async def seeded(container: Container) -> Container:
    await seed_kb(container)
    return container


async def test_long_question_with_its_story_first_finds_the_entry(seeded: Container) -> None:
    result = await seeded.kb.search(LONG_RESIDENCE, None, limit=3)
    assert result.hits and result.hits[0].key == "residence-permit-apply", [(h.key, h.score) for h in result.hits]
    assert result.strength is Strength.strong


@pytest.mark.parametrize(
    ("question", "key"),
    [
        ("喂你好那个我想问一下我那个社保卡上礼拜坐车的时候弄丢了现在咋整能补吗", "shebao-card-loss"),
        ("俺娘前阵子住了半个月院花了三万多出院了这钱咋报", "medins-inpatient-reimburse"),
        ("哎呀我家暖气管子崩了水哗哗往外冒楼下都渗了咋整", "heating-leak"),
        ("我們家暖氣不熱屋裡冰涼冰涼的", "heating-not-warm"),  # traditional characters
    ],
)
async def test_narratives_fillers_and_colloquial_words(seeded: Container, question: str, key: str) -> None:
    result = await seeded.kb.search(question, None, limit=3)
    assert result.hits and result.hits[0].key == key, [(h.key, h.score) for h in result.hits]
    assert result.strength is not Strength.none


async def test_misheard_social_security_card_is_never_the_bus_answer(seeded: Container) -> None:
    """"社保卡丢了咋办" heard as "社宝卡丢的咋办": the card entry, or nothing confident; never the bus one."""
    result = await seeded.kb.search("社宝卡丢的咋办", None, limit=5)
    assert "社保卡" in result.searched
    if result.strength is Strength.strong:
        assert result.hits[0].key == "shebao-card-loss"
    assert not result.hits or result.hits[0].key == "shebao-card-loss", [h.key for h in result.hits]
    assert "bus-lost-and-found" not in [h.key for h in result.hits]


@pytest.mark.parametrize(
    ("heard", "key"),
    [("社保卡的米马忘了咋整", "shebao-card-password"), ("身分正丢了去哪补", "idcard-loss"), ("公鸡金能取出来交房租吗", "hpf-withdraw-rent")],
)
async def test_recogniser_homophones_of_kb_words(seeded: Container, heard: str, key: str) -> None:
    result = await seeded.kb.search(heard, None, limit=3)
    assert result.hits and result.hits[0].key == key, (result.searched, [h.key for h in result.hits])


async def test_function_words_are_not_taken_for_kb_words(seeded: Container) -> None:
    # "去签" sounds like 取钱, "帮我" like 办我: the caller's own words stay as said.
    result = await seeded.kb.search("我那个居住证快到一年了是不是得去签个字续一下", None)
    assert "去签" in result.searched
    assert (await seeded.kb.search("你们能帮我催一下吗", None)).searched.endswith("帮我催一下吗")


@pytest.mark.parametrize(
    ("question", "strength", "key"),
    [
        ("社保卡丢了咋办", Strength.strong, "shebao-card-loss"),
        ("旧床垫旧沙发怎么扔", Strength.strong, "garbage-bulky"),
        ("公积金", Strength.plausible, None),  # a topic, not a question: which of the eight entries?
        ("我丢了一只狗", Strength.none, None),
        ("我想订一张明天去上海的火车票", Strength.none, None),
        ("你们领导叫什么名字我要投诉他", Strength.none, None),
    ],
)
async def test_strength_of_the_best_hit(seeded: Container, question: str, strength: Strength, key: str | None) -> None:
    result = await seeded.kb.search(question, None, limit=3)
    assert result.strength is strength, (result.strength, [(h.key, h.score, h.coverage, h.focus) for h in result.hits])
    if strength is Strength.none:
        assert result.hits == [] and result.margin == 0.0
    else:
        assert result.hits[0].strength is strength
        assert all(h.strength is Strength.plausible for h in result.hits[1:])
        assert 0.0 <= result.margin <= 1.0
    if key:
        assert result.hits[0].key == key
