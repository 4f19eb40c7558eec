"""End-of-turn judges (ivr/speech/turn_end.py) on their own: the transcript rules, the policy, Smart Turn on G.711."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.turn_end import SmartTurn, TurnEndConfig, TurnEndPolicy, text_completeness


@pytest.mark.parametrize("text", [
    "我家住在青山区", "我家住在青山区人民路", "我想问一下那个", "我的电话是一三八", "我的电话是138-0013", "在青山区的",
    "工单号是二零二六一一二五", "我要反映", "路灯坏了，在和平区解放大道", "我家住在",
])
def test_unfinished_words(text: str) -> None:
    assert text_completeness(text) <= TurnEndConfig().unfinished_text, text


@pytest.mark.parametrize("text", [
    "社保卡丢了怎么补办", "我家住在青山区人民路三号楼", "我的电话是13800138001", "我的电话是一三八零零一三八零零一",
    "在青山区人民路和文化路路口", "谢谢", "是的", "对", "转人工", "请问办理居住证需要带哪些材料", "社保卡丢了怎么不办?",
    "工单号是二零二六一一二五零零四二",
])
def test_finished_words(text: str) -> None:
    assert text_completeness(text) >= TurnEndConfig().finished_text, text


def test_a_landline_of_eight_digits_is_whole_but_a_mobile_needs_eleven() -> None:
    assert text_completeness("电话是八六五四三二一零") >= 0.75
    assert text_completeness("电话是一三八零零一三八") <= 0.35
    assert text_completeness("八零零一", expect="phone") <= 0.35


def test_policy_waits_for_unfinished_words_up_to_the_limit() -> None:
    p = TurnEndPolicy(TurnEndConfig(pause_ms=200, max_silence_ms=2500))
    assert not p.decide(1400, "我家住在青山区", 0.95).end  # the audio model's "finished" does not override the words
    assert p.decide(2500, "我家住在青山区", None).end and p.decide(2500, "我家住在青山区", None).reason == "max_silence"


def test_policy_ends_at_once_on_finished_words_and_asks_the_audio_when_they_cannot_tell() -> None:
    p = TurnEndPolicy()
    d = p.decide(220, "社保卡丢了怎么补办", None)
    assert d.end and d.reason == "text"
    assert not p.decide(100, "社保卡丢了怎么补办", None).end  # not even a pause yet
    neutral = "我想了解一下养老保险缴费基数"
    assert 0.35 < text_completeness(neutral) < 0.75
    assert p.decide(700, neutral, 0.8).reason == "audio"
    assert not p.decide(300, neutral, 0.2).end
    assert p.decide(1200, neutral, 0.2).end  # the fallback rule: silence


def test_policy_without_a_transcript_waits_for_one_then_falls_back_to_silence() -> None:
    p = TurnEndPolicy()
    assert not p.decide(900, None, 0.99).end
    assert p.decide(1500, None, None).end


def test_smart_turn_scores_audio_and_says_what_it_cost() -> None:
    model = SmartTurn()
    rng = np.random.default_rng(0)
    pcm = (rng.normal(0, 3000, 16000 * 2)).astype("<i2").tobytes()
    p = model.predict(pcm)
    assert 0.0 <= p <= 1.0
    assert model.last_ms > 0


@pytest.mark.parametrize("text", ["我的电话是一三吧", "路灯坏了再和平息", "我家就在清山去"])
def test_homophones_of_digits_and_places_are_read_by_sound(text: str) -> None:
    """What Whisper writes for "…一三八", "…在和平区", "…住在青山区" over the phone still reads as unfinished."""
    assert text_completeness(text) <= TurnEndConfig().unfinished_text, text


def test_a_place_after_zai_without_a_number_or_landmark_is_still_being_given() -> None:
    assert text_completeness("我要反应路灯坏了,在清山区,闲名路等") <= TurnEndConfig().unfinished_text
    assert text_completeness("路灯坏了在和平区解放大道一百二十八号门口") >= TurnEndConfig().finished_text


def test_a_bare_no_to_a_yes_no_question_leaves_the_line_open() -> None:
    """"不对……是东河区": after a bare no the caller often corrects; the words alone do not end the turn."""
    p = TurnEndPolicy()
    for no in ("不对", "不是。", "不"):
        assert text_completeness(no, expect="yes_no") == 0.5
        assert not p.decide(400, no, 0.2, expect="yes_no").end
        assert p.decide(1200, no, 0.2, expect="yes_no").end  # nobody corrects: the silence ends it
    assert p.decide(220, "对", None, expect="yes_no").end  # a yes ends at once
    assert p.decide(220, "不对", None).end  # to any other question a no is a whole answer
