"""read_yes_no (strict), is_backchannel, read_digits, read_choice."""

from __future__ import annotations

import pytest

from understanding.answers import (
    NO_WORDS, YES_WORDS, is_backchannel, read_choice, read_digits, read_yes_no, rest_after_answer,
)


@pytest.mark.parametrize("said", [*YES_WORDS, "对的，没错", "对对对", "嗯嗯", "是的是的", "好的谢谢", "对啊",
                                  "不错", "没问题", "對的", "OK", "可以的", "对，就是这个", "对等"])
def test_yes(said: str) -> None:
    assert read_yes_no(said) is True


@pytest.mark.parametrize("said", [*NO_WORDS, "不对，是东河区", "不是这个地址", "对，不是这个", "错了错了", "没有了",
                                  "不太对", "号码不对", "不對", "你说错了", "算了", "不用了谢谢", "对不起，不是"])
def test_no_wins(said: str) -> None:
    assert read_yes_no(said) is False


@pytest.mark.parametrize("said", ["对不对？", "对不对", "是不是", "是吗？", "对吗", "不是吗？", "好不好", "有没有",
                                  "可不可以", "是东河区", "我要投诉", "你好", "", "我不知道", "啥意思",
                                  "对了我还想问一下社保卡", "不客气"])
def test_neither(said: str) -> None:
    assert read_yes_no(said) is None


@pytest.mark.parametrize("said", ["嗯", "嗯嗯", "啊", "啊这个", "好的", "是的", "喂", "喂，在吗？", "对", "你好",
                                  "喂喂，您好", "哦，知道了", "那个…", ""])
def test_backchannels(said: str) -> None:
    assert is_backchannel(said)


@pytest.mark.parametrize("said", ["我要投诉", "那个路灯坏了", "好冷啊暖气不热", "是我家楼下", "对了我想问社保卡",
                                  "人工", "在吗我要报修", "不对"])
def test_not_backchannels(said: str) -> None:
    assert not is_backchannel(said)


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("幺三八零零幺二三四五六", "13800123456"),
        ("幺三八 零零一二 三四五六", "13800123456"),
        ("我的电话是一三九，两两三三，四四五五", "13922334455"),
        ("13800123456", "13800123456"),
        ("138-0012-3456", "13800123456"),
        ("工单号二零二六一一二五杠零零四二", "202611250042"),
        ("我查一下 二零二六一一二五零零四二 这个单子", "202611250042"),  # 一下 is no digit
        ("２０２６１１２５００４２", "202611250042"),  # full-width
        ("尾号是洞洞幺七", "0017"),
    ],
)
def test_read_digits(said: str, digits: str) -> None:
    assert read_digits(said) == digits


@pytest.mark.parametrize("said", ["我想查一下", "两个人", "第一个", "一直没人管", "二十六号", "", "不知道"])
def test_no_digits(said: str) -> None:
    assert read_digits(said) is None


OPTIONS = ["路灯不亮", "井盖缺失、松动"]


@pytest.mark.parametrize(
    ("said", "idx"),
    [
        ("第一个", 0), ("前面那个", 0), ("头一个吧", 0), ("1", 0),
        ("第二个", 1), ("后面那个", 1), ("最后一个", 1), ("2", 1),
        ("路灯", 0), ("是路灯的事", 0), ("井盖", 1), ("嗯，井盖松了", 1),
        ("路登", 0), ("井该", 1),  # by sound
    ],
)
def test_read_choice(said: str, idx: int) -> None:
    assert read_choice(said, OPTIONS) == idx


@pytest.mark.parametrize("said", ["都不是", "随便", "不是第一个", "第一个还是第二个", "路灯和井盖都有", "嗯", "第三个"])
def test_no_choice(said: str) -> None:
    assert read_choice(said, OPTIONS) is None


def test_choice_among_three_and_shared_words() -> None:
    options = ["停水", "停电", "停气"]
    assert read_choice("停电了", options) == 1
    assert read_choice("是停气", options) == 2
    assert read_choice("第三个", options) == 2
    assert read_choice("后面那个", options) == 2
    assert read_choice("停", options) is None  # shared by all: says nothing
    assert read_choice("第一个", []) is None


@pytest.mark.parametrize(("said", "rest"), [
    ("不对，是东河区", "是东河区"), ("嗯不是不是，一三九的", "一三九的"), ("不，是西城区人民路", "是西城区人民路"),
    ("不对", ""), ("不是。", ""), ("没有", ""), ("不对不对，一三九零", "一三九零"), ("不用了谢谢", "谢谢"),
])
def test_rest_after_answer(said: str, rest: str) -> None:
    assert rest_after_answer(said) == rest
