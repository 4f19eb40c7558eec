"""Toneless pinyin, the confusion-aware similarity and the domain lexicon (precision before recall)."""

from __future__ import annotations

import pytest
import yaml

from understanding.normalize import normalize
from understanding.pinyin import (
    KB_SEED_FILE,
    PinyinLexicon,
    Term,
    default_lexicon,
    domain_terms,
    sound_class,
    split_syllable,
    syllable_similarity,
    syllables,
    toneless,
)


def test_syllables_follow_the_text() -> None:
    assert syllables("社保卡") == ("she", "bao", "ka")
    assert syllables("银行26号,") == ("yin", "hang", None, None, "hao", None)  # context picks 行 = hang
    assert toneless("居住证") == "ju zhu zheng"
    assert split_syllable("zhuang") == ("zh", "uang")
    assert split_syllable("ju") == ("j", "v") and split_syllable("an") == ("", "an")
    assert sound_class("zhu") == sound_class("zu") and sound_class("jing") == sound_class("jin")


def test_similarity_knows_the_confusions() -> None:
    for a, b in [("zhi", "zi"), ("shan", "san"), ("nan", "lan"), ("fu", "hu"), ("ren", "len"), ("ban", "bang"),
                 ("chen", "cheng"), ("xin", "xing"), ("jian", "jiang"), ("guan", "guang")]:
        assert syllable_similarity(a, b) == pytest.approx(0.85), (a, b)
    assert syllable_similarity("ju", "ji") == pytest.approx(0.75)  # 居/机
    assert syllable_similarity("zhang", "zan") == pytest.approx(0.85 * 0.85)
    assert syllable_similarity("du", "lu") == pytest.approx(0.35)  # only the final
    assert syllable_similarity("du", "deng") == pytest.approx(0.2)  # only the initial
    assert syllable_similarity("xuan", "shen") == 0
    assert syllable_similarity("ka", "ka") == 1


@pytest.mark.parametrize(
    ("heard", "meant"),
    [
        ("社宝卡丢的咋办", "社保卡丢的咋办"),  # issue #13
        ("机住正怎么办", "居住证怎么办"),  # issue #12: 居住证 heard as 机住正
        ("你好，请帮我转员工客服", "你好，请帮我转人工客服"),  # the failed transfer test of issue #12
        ("研工客服", "人工客服"),
        ("我家楼下的路都不亮了", "我家楼下的路灯不亮了"),
        ("怎么提取住房公鸡金", "怎么提取住房公积金"),
        ("我要头诉", "我要投诉"),
        ("我想查一下公单进度", "我想查一下工单进度"),
        ("暖器不热", "暖气不热"),
        ("转人公", "转人工"),
    ],
)
def test_recogniser_slips_are_corrected(heard: str, meant: str) -> None:
    c = default_lexicon().correct(heard)
    assert c.text == meant
    assert c.fixes and all(f.heard != f.term.text for f in c.fixes)


@pytest.mark.parametrize(
    "text",
    [
        "马路都修好了",  # 路都 inside 马路: the word is not cut
        "是不是没气了",  # 没气 (no gas) is no 煤气
        "我想查个进度",  # 查个进度 is no 查询进度
        "这个可以网上办理",  # words only: no 网上办事
        "学府华庭几号停电",  # no 计划停电
        "他们员工都走了",  # 员工 alone is a word
        "金川小学门口", "青山二中", "二手房过户", "一直没人管",
        "宣伸正丢了",  # 身份证? too far to be sure: left alone
    ],
)
def test_real_words_are_left_alone(text: str) -> None:
    assert default_lexicon().correct(text).text == text


def test_no_rewrites_in_the_knowledge_base_texts() -> None:
    """650 well-written questions and answers (16,000 characters): nothing in them is 'corrected'."""
    entries = yaml.safe_load(KB_SEED_FILE.read_text(encoding="utf-8"))
    texts = [t for e in entries for t in (e["question"], *(e.get("alt_questions") or ()), e["spoken_answer"])]
    assert len(texts) > 500
    rewritten = [(t, default_lexicon().correct(normalize(t)).fixes) for t in texts]
    assert [r for r in rewritten if r[1]] == []


def test_domain_terms() -> None:
    terms = set(domain_terms())
    assert {"青山区", "东河", "解放路", "人民路街道", "馨苑小区"} <= terms  # gazetteer
    assert {"路灯不亮", "井盖缺失", "松动"} <= terms  # category names, split at '/'
    assert {"社保卡", "公积金", "身份证", "居住证", "医保", "养老金", "低保", "户口"} <= terms  # KB tags
    assert {"人工客服", "工单", "催办", "撤单", "投诉", "举报", "路灯", "井盖", "停水", "停电", "暖气", "燃气"} <= terms
    assert "紧盖" not in terms  # category keywords hold misspellings on purpose: never a correction target


def test_a_small_lexicon_and_exact_homophones_first() -> None:
    lex = PinyinLexicon(["公积金", "工单", Term("人工客服", loose=True)])
    fixes = lex.find("公鸡金和供单")
    assert [(f.heard, f.term.text, f.score) for f in fixes] == [("公鸡金", "公积金", 1.0), ("供单", "工单", 1.0)]
    assert lex.correct("工单").fixes == ()  # already right
    assert PinyinLexicon(["卡"]).terms == {}  # one syllable: never a term


def test_characters_without_a_reading() -> None:
    """𪄇 (CJK Extension B) is a Han character pypinyin has no reading for: no syllable, no error (it raised a
    TypeError, which made a KB search containing it a 500)."""
    assert syllables("𪄇") == (None,)
    assert syllables("^¯(𪄇\x8d社保") == (None, None, None, None, None, "she", "bao")
    assert toneless("社𪄇保") == "she bao"
