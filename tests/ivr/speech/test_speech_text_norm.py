"""Making hotline text speakable."""

from __future__ import annotations

import pytest

from ivr.speech.base import split_sentences
from ivr.speech.text_norm import normalize, read_integer


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # ticket numbers: digit by digit, dash read as 杠
        ("您的工单号是20261125-0042，请记好。", "您的工单号是二零二六一一二五杠零零四二，请记好。"),
        ("工单20261125-0042已办结", "工单二零二六一一二五杠零零四二已办结"),
        # phone numbers: digit by digit, 1 as 幺, mobiles grouped 3-4-4
        ("请拨打13812345678", "请拨打幺三八，幺二三四，五六七八"),
        ("电话0571-87654321", "电话零五七幺，八七六五四三二幺"),
        ("拨打12345热线", "拨打幺二三四五热线"),
        ("+86 139 0000 1111", "幺三九，零零零零，幺幺幺幺"),
        # times
        ("上午09:00开门", "上午九点开门"),
        ("中午12:30休息", "中午十二点半休息"),
        ("17:05前", "十七点零五分前"),
        ("办公时间9:00-17:00", "办公时间九点至十七点"),
        # dates
        ("2026年11月25日", "二零二六年十一月二十五日"),
        ("2026-11-25", "二零二六年十一月二十五日"),
        # quantities
        ("一共25个", "一共二十五个"),
        ("需要2个工作日", "需要两个工作日"),
        ("3-5个工作日", "三至五个工作日"),
        ("第10天", "第十天"),
        ("共105户", "共一百零五户"),
        ("罚款1,000元", "罚款一千元"),
        ("补贴20000元", "补贴两万元"),
        ("费用¥120", "费用一百二十元"),
        ("3.5公里", "三点五公里"),
        # percentages
        ("满意率98.5%", "满意率百分之九十八点五"),
        ("增长12％", "增长百分之十二"),
        # long digit strings are read digit by digit (幺 is for phone numbers only)
        ("身份证号110101199001011234", "身份证号一一零一零一一九九零零一零一一二三四"),
        # symbols and letters
        ("【提示】请#关注*公众号~", "提示请关注公众号"),
        ("请用APP办理", "请用应用办理"),
        ("ABC小区", "诶必西小区"),
        ("气温28℃", "气温二十八摄氏度"),
        ("Hello, 你好!", "你好！"),
    ],
)
def test_normalize(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


def test_phone_without_yao() -> None:
    assert normalize("13812345678", phone_yao=False) == "一三八，一二三四，五六七八"


@pytest.mark.parametrize(
    ("n", "spoken"),
    [(0, "零"), (7, "七"), (10, "十"), (12, "十二"), (20, "二十"), (101, "一百零一"), (110, "一百一十"),
     (1001, "一千零一"), (2000, "两千"), (10010, "一万零一十"), (123456, "十二万三千四百五十六"), (100000000, "一亿")],
)
def test_read_integer(n: int, spoken: str) -> None:
    assert read_integer(n) == spoken


def test_output_only_has_speakable_characters() -> None:
    out = normalize("Q&A：编号A-12/B#3（见附件）→ 详情@官网 <b>粗体</b> 😀")
    assert all("\u4e00" <= c <= "\u9fff" or c in "，。！？；：、" for c in out), out


def test_split_sentences() -> None:
    text = "您好！社保卡丢了可以到政务服务中心补办。需要带身份证，还要填写申请表；办理时间是工作日。"
    parts = split_sentences(text)
    assert parts == ["您好！", "社保卡丢了可以到政务服务中心补办。", "需要带身份证，还要填写申请表；", "办理时间是工作日。"]
    long = "，".join(["这是一个比较长的分句"] * 8) + "。"
    assert all(len(p) <= 40 for p in split_sentences(long))
    assert "".join(split_sentences(long)) == long
