"""What the dialogue service itself says (Mandarin, short, for the ear): prompts, repairs, clarifications,
the read-back. Rasa's own responses live in nlu/domain.yml; these are the turns the service answers without
asking the bot, written in one place so that the IVR's keypad hints say the same."""

from __future__ import annotations

from understanding.expect import Expect

GO_AHEAD = "您请讲，有什么可以帮您？"
GOODBYE = "好的，感谢您的来电，再见。"
ASK_AGAIN = "好的，请您再说一下您要反映或者咨询的事情。"
ADDRESS_EXAMPLE = "比如：青山区人民路十八号"

#: A second miss on a yes/no or number question: the keypad (the IVR takes 1/2 and digits).
YES_NO_KEYPAD = "正确请按1，重新说请按2。"
DIGITS_KEYPAD = "也可以用电话按键输入号码，以井号键结束。"
OR_PERSON = "如果需要人工服务，请说“转人工”。"


def repair(expect: Expect, misses: int) -> str:
    """Asking the same question again in other words, with an example; from the second miss on, a way out."""
    if expect is Expect.YES_NO:  # the keypad from the first miss on
        return "抱歉，我没听清。请您说“对”或者“不对”，" + YES_NO_KEYPAD
    if expect is Expect.ADDRESS:
        first = f"抱歉，没听清地址。请说一下区和路名，{ADDRESS_EXAMPLE}。"
        return first + (OR_PERSON if misses >= 1 else "")
    if expect in (Expect.PHONE, Expect.TICKET):
        what = "电话号码" if expect is Expect.PHONE else "工单号"
        return f"抱歉，没听清{what}，请您一位一位地慢慢说，" + DIGITS_KEYPAD
    if expect is Expect.CHOICE:
        return "抱歉，没听清您选的是哪一个，请再说一遍。" + (OR_PERSON if misses >= 1 else "")
    return "抱歉，我没听清楚，请您换个说法再说一遍。"


def confirm_category(spoken: str) -> str:
    return f"您是要反映{spoken}方面的问题，对吗？"


def choose_category(first: str, second: str) -> str:
    return f"请问您要反映的是{first}，还是{second}？"


def offer_kb(title: str) -> str:
    return f"您是想咨询“{title}”吗？"


def confirm_category_change(spoken: str) -> str:
    return f"您是要改为反映{spoken}方面的问题吗？"


def ask_district(road: str) -> str:
    return f"请问是哪个区的{road}？"


def readback(what: str, where: str, phone: str | None) -> str:
    """Read back before committing: what and where (and the number to call back), in words."""
    text = f"跟您确认一下：您反映的是{where}的{what}问题"
    if phone:
        text += f"，联系电话{spoken_phone(phone)}"
    return text + "，对吗？"


def corrected(part: str) -> str:
    return f"好的，已改为{part}。"


NOTED = "好的，这个情况我也记下了。"
WHICH_PART = "请问哪一项不对？是地方、问题，还是电话号码？您直接说正确的就行。"


def spoken_phone(phone: str) -> str:
    """Digits said one by one, 1 as 幺 as on the phone: 13800138000 → 幺三八零零幺三八零零零."""
    digits = "零幺二三四五六七八九"
    return "".join(digits[int(c)] if c.isdigit() else c for c in phone)
