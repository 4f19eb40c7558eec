"""One dialogue turn: read the caller's words, answer what we can, let the bot (Rasa) do the rest.

Every turn: the text is normalised and recogniser slips in domain words corrected (understanding/), the
emergency net runs first (a life-safety call is answered in the first turn, whatever else is going on), then
the planner (dialogue/planner.py) reads the text as the answer to the question the bot asked, clarifies what
the classifier is unsure of, or sends it on. Custom actions attach their decision as a JSON message
`{"hotline": {...}}` (see nlu/actions/); plain Rasa turns are classified from the intent and the active form.
Every turn says one to three things and tells the caller's side what answer it expects next (`expect`). If
Rasa is down or slower than the timeout the turn degrades at once to a Mandarin keypad menu that also offers
a human.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Histogram

from dialogue import replies
from dialogue.planner import KbProbe, Plan, TurnPlanner
from dialogue.rasa_client import BotUnavailable, RasaClient
from dialogue.schemas import Handoff, TurnIn, TurnOut, WorkOrderRef
from dialogue.state import DialogueState, DialogueStates
from core.logging import mask_phone
from understanding.categories import category_of_intent, load_categories
from understanding.emergency import detect_emergency
from understanding.expect import SLOT_EXPECTS, Expect
from understanding.reading import read_caller_text

log = logging.getLogger(__name__)

TURN_SECONDS = Histogram("hotline_dialogue_turn_seconds", "dialogue turn latency", ["outcome"])

DEGRADED_REPLY = (
    "抱歉，智能客服暂时无法回答。请按键选择：咨询请按一，投诉或报修请按二，查询办理进度请按三，转人工服务请按零。"
)
DEGRADED_MENU = {"1": "咨询", "2": "投诉/报修", "3": "查询进度", "0": "人工服务"}
CHITCHAT_INTENTS = {"greet", "goodbye", "thanks", "praise", "chitchat", "out_of_scope", "affirm", "deny", "silence"}
FORM = "work_order_form"
CALLER_TTL_SECONDS = 4 * 3600
SLOT_KEYS = ("category", "district", "street", "road", "landmark", "address", "description", "caller_phone", "ticket")
ORDER_SLOTS = ("category", "district", "address", "description", "caller_phone")
MAX_REPLIES = 3
PHONE_QUESTION = "联系电话是"  # the bot's own phone check (nlu/domain.yml utter_ask_phone_confirmed)
ANYTHING_ELSE = "还有其他"


class DialogueService:
    def __init__(self, rasa: RasaClient, redis: aioredis.Redis, timeout: float,
                 kb_probe: KbProbe | None = None) -> None:
        self.rasa = rasa
        self.redis = redis
        self.timeout = timeout
        self.states = DialogueStates(redis)
        self.planner = TurnPlanner(rasa.parse, kb_probe)
        self._callers: dict[str, str] = {}  # used only while Redis is unreachable

    async def _caller(self, session_id: str, caller: str | None) -> str | None:
        """The caller number lives in Redis for the session, so any API process can serve the next turn."""
        key = f"dialogue:caller:{session_id}"
        try:
            if caller:
                await self.redis.set(key, caller, ex=CALLER_TTL_SECONDS)
                return caller
            return await self.redis.get(key) or self._callers.get(session_id)
        except Exception:  # noqa: BLE001 - Redis down: remember it in this process
            if caller:
                self._callers[session_id] = caller
            return caller or self._callers.get(session_id)

    async def turn(self, session_id: str, data: TurnIn) -> TurnOut:
        start = time.perf_counter()
        caller = await self._caller(session_id, data.caller)
        raw = data.text.strip()
        text = read_caller_text(raw) if raw and raw != "/silence" else ""
        hit = detect_emergency(text) if text else None
        if hit is not None:  # before anything else, bot or no bot
            await self.states.drop(session_id)
            TURN_SECONDS.labels("emergency").observe(time.perf_counter() - start)
            return TurnOut(replies=[hit.reply], intent=f"emergency_{hit.kind}", confidence=1.0, action="emergency",
                           handoff=Handoff(queue="emergency", priority="emergency", reason=f"{hit.kind}:{'/'.join(hit.dial)}"))
        state = await self.states.load(session_id)
        metadata = {"caller": caller} if caller else {}
        try:
            async with asyncio.timeout(self.timeout):
                if not text:
                    bot = await self.rasa.turn(session_id, "/silence", metadata)
                    out = self._after_bot(state, bot, None)
                else:
                    plan = await self.planner.plan(state, text, state.slots)
                    out = await self._carry_out(session_id, state, plan, metadata)
        except (BotUnavailable, TimeoutError) as exc:
            log.warning("bot unavailable for session %s: %s", session_id, mask_phone(str(exc)))
            TURN_SECONDS.labels("degraded").observe(time.perf_counter() - start)
            return TurnOut(
                replies=[DEGRADED_REPLY], intent=None, confidence=None, action="fallback",
                degraded=True, menu=DEGRADED_MENU,
            )
        out.replies = speakable(out.replies, out.expect)
        # "还有其他需要帮忙的吗？" - asked by the bot, or by the IVR after an order or an answer
        state.asked_more = ANYTHING_ELSE in "".join(out.replies) or out.work_order is not None \
            or out.action in ("kb_answer", "status_query", "urge", "withdraw")
        await self.states.save(session_id, state)
        TURN_SECONDS.labels(out.action).observe(time.perf_counter() - start)
        return out

    async def _carry_out(self, session_id: str, state: DialogueState, plan: Plan,
                         metadata: dict[str, Any]) -> TurnOut:
        if plan.set_slots:
            await self.rasa.set_slots(session_id, plan.set_slots)
            state.slots.update(plan.set_slots)
        if plan.forward is None:  # answered here: a clarification, a repair, a prompt, a correction
            said = list(plan.replies)
            if plan.readback_after:
                said.append(readback_question(state.slots))
            state.expect = plan.expect.value
            if plan.action != "collecting" or plan.expect is not Expect.YES_NO or not plan.readback_after:
                state.readback = None
            category = plan.category or (state.slots.get("category") if state.requested_slot else None)
            return TurnOut(replies=said, intent=plan.intent, confidence=plan.confidence, action=plan.action,
                           category=category, expect=plan.expect,
                           handoff=Handoff(**plan.handoff) if plan.handoff else None,
                           slots={k: v for k, v in state.slots.items() if v not in (None, "", [])})
        state.misses = 0
        bot = await self.rasa.turn(session_id, plan.forward, metadata, parse=plan.parse)
        return self._after_bot(state, bot, plan)

    def _after_bot(self, state: DialogueState, bot: Any, plan: Plan | None) -> TurnOut:
        out = self._interpret(bot.messages, bot.intent, bot.confidence, bot.slots, bot.active_loop)
        if plan is not None and plan.confidence is not None:
            out.confidence = round(plan.confidence, 4)
        requested = bot.slots.get("requested_slot") if bot.active_loop == FORM else None
        state.requested_slot = requested
        state.slots = {k: bot.slots.get(k) for k in ORDER_SLOTS if bot.slots.get(k) not in (None, "")}
        state.pending = None if out.action != "clarify" else state.pending
        expect = SLOT_EXPECTS.get(requested, Expect.FREE) if requested else Expect.FREE
        if requested == "phone_confirmed" and not bot.slots.get("caller_phone"):
            expect = Expect.PHONE
        elif requested == "phone_confirmed":  # the phone check becomes the read-back of the whole order
            question = readback_question(state.slots)
            out.replies = [question if PHONE_QUESTION in r else r for r in out.replies]
            state.readback = question
        out.expect = expect
        state.expect = expect.value
        return out

    async def warm_up(self) -> None:
        """Load the lexicons and the KB index before the first caller (seconds, once per process)."""
        await asyncio.to_thread(read_caller_text, "你好，社保卡丢了咋办")
        await asyncio.to_thread(self.planner.warm_up)
        try:
            await self.planner._probe("社保卡丢了咋办")
        except Exception:  # noqa: BLE001
            log.warning("KB not ready for the warm-up")

    async def end(self, session_id: str) -> None:
        self._callers.pop(session_id, None)
        await self.states.drop(session_id)
        try:
            await self.redis.delete(f"dialogue:caller:{session_id}")
        except Exception:  # noqa: BLE001
            pass
        try:
            async with asyncio.timeout(self.timeout):
                await self.rasa.restart(session_id)
        except (BotUnavailable, TimeoutError) as exc:
            log.warning("could not reset bot session %s: %s", session_id, exc)

    @staticmethod
    def _interpret(
        messages: list[dict[str, Any]],
        intent: str | None,
        confidence: float | None,
        slots: dict[str, Any],
        active_loop: str | None,
    ) -> TurnOut:
        replies: list[str] = []
        decision: dict[str, Any] = {}
        for m in messages:
            if m.get("text"):
                replies.append(str(m["text"]))
            custom = m.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("hotline"), dict):
                decision.update(custom["hotline"])
        category = decision.get("category") or category_of_intent(intent) or (slots.get("category") if active_loop == FORM else None)
        action = decision.get("action")
        if action is None:
            if category_of_intent(intent):
                action = "work_order"
            elif active_loop == FORM:
                action = "collecting"
            elif intent in CHITCHAT_INTENTS:
                action = "chitchat"
            else:
                action = "fallback"
        order = decision.get("work_order")
        handoff = decision.get("handoff")
        return TurnOut(
            replies=replies,
            intent=intent,
            confidence=round(confidence, 4) if confidence is not None else None,
            action=action,
            category=category,
            kb_entry_id=decision.get("kb_entry_id"),
            work_order=WorkOrderRef(**order) if isinstance(order, dict) else None,
            handoff=Handoff(**handoff) if isinstance(handoff, dict) else None,
            slots={k: slots[k] for k in SLOT_KEYS if slots.get(k) not in (None, "", [])},
        )


def readback_question(slots: dict[str, Any]) -> str:
    """The read-back before an order is committed: 跟您确认一下：您反映的是青山区建设路26号的…问题，对吗？"""
    cat = load_categories().get(str(slots.get("category") or "other"))
    what = cat.spoken if cat and cat.code != "other" else "相关"
    where = str(slots.get("address") or slots.get("district") or "您说的地方")
    return replies.readback(what, where, slots.get("caller_phone"))


def speakable(said: list[str], expect: Expect) -> list[str]:
    """One to three things a turn: repeats dropped (a bot loop must never reach the caller), never silence."""
    out: list[str] = []
    for text in said:
        text = text.strip()
        if text and text not in out:
            out.append(text)
    if not out:
        out = [replies.repair(expect, 0) if expect is not Expect.FREE else replies.GO_AHEAD]
    return out[:MAX_REPLIES]
