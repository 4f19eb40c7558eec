"""normalize / strip_fillers / spoken_digits on text as callers and the recogniser produce it."""

from __future__ import annotations

import pytest

from understanding.normalize import chinese_number, normalize, spoken_digits, spoken_number, strip_fillers


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("你好，我家樓下的路燈壞了好幾天了", "你好，我家楼下的路灯坏了好几天了"),
        ("請問禮拜天辦證嗎", "请问礼拜天办证吗"),  # the traditional 禮 that sent a call to fallback
        ("樓道裡著火了", "楼道里着火了"),  # 著 of 着火 (t2s keeps 著: it is simplified in 著名)
        ("著名的鐘錶店", "著名的钟表店"),
        ("頭髮 乾淨", "头发，干净"),
        ("ＡＢＣ１２３　電話", "ABC123电话"),  # full-width letters, digits, ideographic space
        ("青山期间,设度26号", "青山期间，设度26号"),
        ("怎么办？？!", "怎么办？"),
        ("价格3.5元,时间10:30。。", "价格3.5元，时间10:30。"),
        ("  路灯坏了...  ", "路灯坏了"),
        ("解放路这一片停气了 也没见啥通知", "解放路这一片停气了，也没见啥通知"),
        ("", ""),
    ],
)
def test_normalize(raw: str, want: str) -> None:
    assert normalize(raw) == want


def test_normalize_is_idempotent() -> None:
    for raw in ("喂 您好 那個 我跟你說啊 路燈壞了 謝謝啊", "幺三八 零零一二 三四五六", "ｏｋ，好的！！"):
        once = normalize(raw)
        assert normalize(once) == once


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("喂，你好，那个，我家楼下的路灯坏了好几天了，谢谢啊", "我家楼下的路灯坏了好几天了"),
        ("喂喂喂你好我要投诉", "我要投诉"),
        ("嗯 呃 是这样的，麻烦问一下公积金怎么取呢？", "公积金怎么取？"),
        ("请问社保卡怎么办？", "社保卡怎么办？"),
        ("打扰一下，我跟你说，楼上漏水", "楼上漏水"),
        ("就是我想问一下", "我想问一下"),
        ("哎呀 那个 你们管不管", "你们管不管"),
        ("对不对？", "对不对？"),
        # words that only look like fillers are content
        ("你好像搞错了", "你好像搞错了"),
        ("那个人打我", "那个人打我"),
        ("就是他偷的", "就是他偷的"),
        ("这个井盖丢了", "这个井盖丢了"),
        ("我想问一下", "我想问一下"),
        ("路灯坏了啊", "路灯坏了"),
        ("帮我查一下吧谢谢", "帮我查一下"),
        # utterances of fillers only leave nothing
        ("啊", ""),
        ("嗯嗯嗯", ""),
        ("喂喂，你好", ""),
        ("啊这个", ""),
    ],
)
def test_strip_fillers(raw: str, want: str) -> None:
    assert strip_fillers(normalize(raw)) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("青山区建设路二十六号", "青山区建设路26号"),
        ("和平路七号院", "和平路7号院"),
        ("馨苑小区三栋二单元三零二室", "馨苑小区3栋2单元302室"),
        ("住在十二楼", "住在12楼"),
        ("一百零三号", "103号"),
        ("两号楼", "2号楼"),
        ("我电话幺三八零零一二三四五六", "我电话13800123456"),
        ("工单号二零二六一一二五洞洞四二", "工单号202611250042"),
        ("138幺二三四", "1381234"),
        # words with numerals that are not numbers
        ("等一下一直第一万一二手房三轮车", "等一下一直第一万一二手房三轮车"),
        ("一五一十地说", "一五一十地说"),
        ("五六个人", "五六个人"),
        ("一楼道里都是烟", "一楼道里都是烟"),
        ("统一号码", "统一号码"),
    ],
)
def test_spoken_digits(raw: str, want: str) -> None:
    assert spoken_digits(raw) == want


def test_numbers_both_ways() -> None:
    cases = {1: "一", 10: "十", 12: "十二", 26: "二十六", 103: "一百零三", 110: "一百一十", 1203: "一千二百零三",
             2026: "两千零二十六"}
    for n, words in cases.items():
        assert spoken_number(n) == words
        assert chinese_number(words.replace("两", "二")) == n
    assert chinese_number("三零二") == 302
    assert chinese_number("二手") is None
