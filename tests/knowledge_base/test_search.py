"""Search ranking for questions asked in everyday words, over the real Mandarin seed content."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from hotline.container import Container
from hotline.seed import seed_kb

CASES = yaml.safe_load((Path(__file__).parent / "search_cases.yaml").read_text(encoding="utf-8"))


@pytest.fixture
async def seeded(container: Container) -> Container:
    created = await seed_kb(container)
    assert created >= 80
    return container


def test_enough_cases() -> None:
    assert len(CASES) >= 30


async def test_colloquial_questions_find_the_formal_entry(seeded: Container) -> None:
    misses = []
    top1 = 0
    for case in CASES:
        result = await seeded.kb.search(case["q"], None, limit=3)
        keys = [h.key for h in result.hits]
        if keys and keys[0] == case["key"]:
            top1 += 1
        elif case["key"] not in keys:
            misses.append((case["q"], case["key"], keys, result.terms))
    # Every case must be in the top 3, and nearly all first.
    assert not misses, "\n".join(map(str, misses))
    assert top1 / len(CASES) >= 0.9, f"top-1 {top1}/{len(CASES)}"


async def test_everyday_words_reach_formal_title(seeded: Container) -> None:
    result = await seeded.kb.search("社保卡丢了咋办", None)
    assert result.hits and result.hits[0].title.startswith("社会保障卡")
    assert result.hits[0].score > result.hits[-1].score or len(result.hits) == 1


@pytest.mark.parametrize(
    "question", ["今天晚上月亮圆不圆", "你们领导叫什么名字", "我想订一张去北京的机票", "讲个笑话吧", "明天天气怎么样", "股票会涨吗"]
)
async def test_unrelated_question_finds_nothing_confident(seeded: Container, question: str) -> None:
    result = await seeded.kb.search(question, None)
    assert result.hits == [], [(h.key, h.score, h.coverage) for h in result.hits]


async def test_short_topic_words_still_answer(seeded: Container) -> None:
    for word, key_prefix in [("公积金", "hpf-"), ("垃圾分类", "garbage-"), ("法律援助", "legal-aid"), ("居住证", "residence-")]:
        hits = (await seeded.kb.search(word, None)).hits
        assert hits and hits[0].key.startswith(key_prefix), (word, [h.key for h in hits])


async def test_drafts_are_not_searchable(seeded: Container) -> None:
    from sqlalchemy import select

    from knowledge_base.models import KbEntry

    async with seeded.db.session() as session:
        drafts = (await session.scalars(select(KbEntry).where(KbEntry.status == "draft"))).all()
    assert drafts, "seed content should include drafts"
    for draft in drafts:
        result = await seeded.kb.search(draft.question, None, limit=10)
        assert draft.id not in [h.id for h in result.hits]


async def test_search_with_a_character_without_a_reading(client: httpx.AsyncClient, headers: dict,
                                                         seeded: Container) -> None:
    """A question with a rare Han character (no pinyin reading) is searched like any other: 200, not a 500
    (found by tests/hotline/test_api_fuzz.py)."""
    for q in ("𪄇", "^¯(𪄇\x8d", "社保卡𪄇丢了"):
        r = await client.get("/v1/kb/search", params={"q": q}, headers=headers["agent"])
        assert r.status_code == 200, (q, r.text)
    assert (await client.get("/v1/kb/search", params={"q": "社保卡𪄇丢了"}, headers=headers["agent"])).json()["hits"]
