"""Actions that answer: KB questions, fallback with two-strikes-then-human, handoff, emergencies, praise."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from core import audit
from nlu.actions.outage import retried, when_database_down
from nlu.actions.runtime import BOT, decision, handoff, runtime

EMERGENCY_REPLIES = {
    "emergency_fire": ("utter_emergency_fire", "119"),
    "emergency_gas": ("utter_emergency_gas", "119"),
    "emergency_crime": ("utter_emergency_crime", "110"),
    "emergency_medical": ("utter_emergency_medical", "120"),
}
MAX_FAILURES = 2
# Said with the database unreachable (nlu/actions/outage.py). A KB question is only offered a person; a praise
# not recorded is handed over, so that someone can take it down.
KB_UNAVAILABLE = "抱歉，系统暂时无法查询相关信息，请稍后再问；如需人工服务，请说“转人工”。"
PRAISE_NOT_RECORDED = "谢谢您的肯定！抱歉，系统暂时无法记录，正在为您转接人工服务，请稍候。"


def _failed(tracker: Tracker, dispatcher: CollectingDispatcher, reason: str) -> list[dict[str, Any]]:
    """First failure: ask to rephrase. Second: hand over to a person."""
    failures = int(tracker.get_slot("failed_understandings") or 0) + 1
    if failures >= MAX_FAILURES:
        dispatcher.utter_message(response="utter_default")
        dispatcher.utter_message(json_message=decision("human", handoff=handoff("general", "normal", reason)))
        return [SlotSet("failed_understandings", 0)]
    dispatcher.utter_message(response="utter_ask_rephrase")
    dispatcher.utter_message(json_message=decision("fallback"))
    return [SlotSet("failed_understandings", failures)]


class AnswerFromKb(Action):
    def name(self) -> str:
        return "action_answer_from_kb"

    @when_database_down(KB_UNAVAILABLE, None)
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        rt = await runtime()
        text = (tracker.latest_message.get("text") or "").strip()
        # The entry the caller confirmed ("您是想咨询…吗？" "对"), or the one the dialogue service found strong.
        chosen = next((str(e.get("value")) for e in tracker.latest_message.get("entities") or []
                       if e.get("entity") == "kb_entry"), None)
        # The search reads the database (is the published set still the indexed one?): a read, retried.
        result = await retried(lambda: rt.kb.search(text, None, limit=5), "kb search") if text else None
        hits = result.hits if result else []
        hit = next((h for h in hits if str(h.id) == chosen), hits[0] if hits else None)
        if hit is None:
            return _failed(tracker, dispatcher, "kb_no_answer")
        dispatcher.utter_message(text=hit.spoken_answer)
        dispatcher.utter_message(json_message=decision("kb_answer", kb_entry_id=hit.id))
        return [SlotSet("failed_understandings", 0)]


class DefaultFallback(Action):
    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        return _failed(tracker, dispatcher, "not_understood")


class Handoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = "angry" if intent == "angry" else "caller_request"
        priority = "urgent" if intent == "angry" else "normal"
        category = tracker.get_slot("category")
        dispatcher.utter_message(response="utter_handoff")
        dispatcher.utter_message(json_message=decision("human", category=category, handoff=handoff("general", priority, reason)))
        return [SlotSet("failed_understandings", 0)]


class Emergency(Action):
    def name(self) -> str:
        return "action_emergency"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or "emergency_crime"
        response, number = EMERGENCY_REPLIES.get(intent, EMERGENCY_REPLIES["emergency_crime"])
        dispatcher.utter_message(response=response)
        dispatcher.utter_message(response="utter_handoff")
        dispatcher.utter_message(
            json_message=decision("emergency", handoff=handoff("emergency", "emergency", f"{intent}:{number}"))
        )
        return []


class RecordPraise(Action):
    def name(self) -> str:
        return "action_record_praise"

    # The audit record is tried once (no key to make a second try harmless).
    @when_database_down(PRAISE_NOT_RECORDED, "praise_failed:database_unavailable")
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        rt = await runtime()
        async with rt.db.session() as session:
            audit.record(
                session, BOT, "citizen.praise", "conversation", tracker.sender_id,
                text=(tracker.latest_message.get("text") or "")[:500],
            )
            await session.commit()
        dispatcher.utter_message(response="utter_praise_recorded")
        dispatcher.utter_message(json_message=decision("chitchat"))
        return []
