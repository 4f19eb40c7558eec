"""Property test against the real bot: random conversations — requests, questions, fillers, silences, yes and
no, addresses, numbers, in any order — and every turn says one to three things and names a known action.

A failure prints the conversation so far, which replays it (the generator is seeded per conversation)."""

from __future__ import annotations

import random
import typing

from dialogue.schemas import BotAction, TurnIn
from hotline.container import Container

CONVERSATIONS = 200
ACTIONS = set(typing.get_args(BotAction))

REQUESTS = [
    "我家楼下的路灯坏了", "那个我们小区门口的井盖被偷了", "楼上天天半夜装修吵死了", "家里又停水了",
    "暖气一点都不热", "老板欠了我三个月工资不给", "小区门口乱停车堵得出不去", "社保卡丢了咋办",
    "公积金怎么提取", "居住证去哪办", "我上次反映的事一直没人管", "查一下我的工单", "我要撤单",
    "你们工作人员态度真好", "给我转人工", "路面上有个大坑", "垃圾好几天没人收了", "楼下饭店油烟太大",
]
FILLERS = ["嗯", "嗯嗯", "啊这个", "那个", "喂", "好的", "是的", "对", "不是", "不对", "没有了", "谢谢", "喂你好"]
ANSWERS = ["青山区人民路十八号", "东河区滨河路滨河花园三号楼", "解放路", "金川区", "就在那个超市门口",
           "幺三八零零幺三八零零零", "13800138000", "二零二六一一二五零零四二", "第一个", "第二个",
           "一直这样好几天了", "火星上", "啊吧啊吧", "", "/silence"]


def utterance(rng: random.Random) -> str:
    pool = rng.choices([REQUESTS, FILLERS, ANSWERS], weights=[4, 3, 3])[0]
    text = rng.choice(pool)
    if pool is REQUESTS and rng.random() < 0.4:
        text = rng.choice(["喂 你好 ", "那个 ", "我跟你说 ", "麻烦问一下 "]) + text
    return text


async def test_every_turn_speaks_one_to_three_things_and_names_a_known_action(seeded: Container) -> None:
    dialogue = seeded.dialogue
    failures: list[str] = []
    for n in range(CONVERSATIONS):
        rng = random.Random(n)
        session = f"prop-{n}"
        said: list[str] = []
        for turn_no in range(rng.randint(2, 7)):
            text = utterance(rng)
            said.append(text)
            out = await dialogue.turn(session, TurnIn(text=text, caller="13800138000" if turn_no == 0 else None))
            problem = None
            if not 1 <= len(out.replies) <= 3:
                problem = f"{len(out.replies)} replies"
            elif out.action not in ACTIONS:
                problem = f"action {out.action!r}"
            elif any(not r.strip() for r in out.replies):
                problem = "an empty reply"
            if problem:
                failures.append(f"conversation {n}: {said} -> {problem}: {out.replies}")
                break
            if out.action in ("emergency", "human"):
                break
        await dialogue.end(session)
    assert not failures, "\n".join(failures[:10])
