"""One dialogue turn: send the text to Rasa, read what its actions decided, answer in one shape.

Custom actions attach their decision as a JSON message `{"hotline": {...}}` (see nlu/actions/); plain
Rasa turns are classified from the intent and the active form. If Rasa is down or slower than the
timeout the turn degrades at once to a Mandarin keypad menu that also offers a human.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Histogram

from dialogue.rasa_client import BotUnavailable, RasaClient
from dialogue.schemas import Handoff, TurnIn, TurnOut, WorkOrderRef
from hotline.logging import mask_phone

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


def category_of_intent(intent: str | None) -> str | None:
    """report_road_manhole_cover → road.manhole_cover; report_other → other."""
    if not intent or not intent.startswith("report_"):
        return None
    code = intent.removeprefix("report_")
    return code.replace("_", ".", 1) if "_" in code else code


class DialogueService:
    def __init__(self, rasa: RasaClient, redis: aioredis.Redis, timeout: float) -> None:
        self.rasa = rasa
        self.redis = redis
        self.timeout = timeout
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
        text = data.text.strip() or "/silence"
        try:
            async with asyncio.timeout(self.timeout):
                bot = await self.rasa.turn(session_id, text, {"caller": caller} if caller else {})
        except (BotUnavailable, TimeoutError) as exc:
            log.warning("bot unavailable for session %s: %s", session_id, mask_phone(str(exc)))
            TURN_SECONDS.labels("degraded").observe(time.perf_counter() - start)
            return TurnOut(
                replies=[DEGRADED_REPLY], intent=None, confidence=None, action="fallback",
                degraded=True, menu=DEGRADED_MENU,
            )
        out = self._interpret(bot.messages, bot.intent, bot.confidence, bot.slots, bot.active_loop)
        TURN_SECONDS.labels(out.action).observe(time.perf_counter() - start)
        return out

    async def end(self, session_id: str) -> None:
        self._callers.pop(session_id, None)
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
