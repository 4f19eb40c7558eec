"""Everything the controller itself says to a citizen (Mandarin). Pre-rendered at start-up.

The bot's replies come from the dialogue service; these are the fixed prompts around them.
Numbers are written the way they must be read (digits as Hanzi) so text normalisation is a no-op here.
"""

from __future__ import annotations

GREETING = "您好，这里是青山市一二三四五市民服务热线，我是智能客服。请问有什么可以帮您？"
NO_INPUT = "您好，您还在吗？请直接说出您要咨询或反映的问题。"
NO_MATCH = "抱歉，我没有听清楚，请您再说一遍。"
MENU = (
    "请按键选择：咨询请按一，投诉或报修请按二，查询办理进度请按三，转人工服务请按零。"
)
MENU_INVALID = "输入有误。"
MENU_SPEAK = "好的，请说出您的问题。"
THINKING_TIMEOUT = "抱歉，系统有些忙。"
TRANSFER = "正在为您转接人工服务，请稍候。"
TRANSFER_EMERGENCY = "正在为您紧急转接人工服务，请不要挂机。"
ANYTHING_ELSE = "请问还有其他可以帮您的吗？"
GOODBYE = "感谢您的来电，再见。"
MAX_DURATION = "通话时间较长，我们为您转接人工服务。"
NOTHING_TO_REPEAT = "请直接说出您的问题。"

#: Keypad menu → what the caller chose, as a sentence the bot understands (when the bot is up).
MENU_TEXT = {"1": "我想咨询一个问题", "2": "我要投诉报修", "3": "我想查询工单办理进度"}
MENU_TOPIC = {"1": "咨询", "2": "投诉/报修", "3": "查询进度", "0": "人工服务"}

FIXED_PROMPTS = [
    GREETING, NO_INPUT, NO_MATCH, MENU, MENU_INVALID + MENU, MENU_SPEAK, THINKING_TIMEOUT + MENU,
    TRANSFER, TRANSFER_EMERGENCY, ANYTHING_ELSE, GOODBYE, MAX_DURATION, NOTHING_TO_REPEAT,
]


def ticket_readback(ticket: str, response_deadline: str | None = None, department: str | None = None) -> str:
    """The ticket read back digit by digit (text_norm reads 20261125-0042 as 二零二六一一二五杠零零四二)."""
    return f"您的工单已受理，工单编号是{ticket}，再说一遍，{ticket}。" + promised_response(response_deadline, department)


def promised_response(response_deadline: str | None = None, department: str | None = None) -> str:
    text = f"已转交{department}办理。" if department else ""
    if response_deadline:
        return text + f"承办部门将在{response_deadline}前响应。"
    return text + "承办部门将在两小时内响应。"


def deadline_text(deadline: str | None) -> str | None:
    """ISO deadline → '十一月二十五日十八点半' style text (text_norm reads the digits)."""
    if not deadline:
        return None
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        when = dt.datetime.fromisoformat(deadline)
    except ValueError:
        return deadline
    if when.tzinfo is not None:
        when = when.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{when.month}月{when.day}日{when.hour}:{when.minute:02d}"
