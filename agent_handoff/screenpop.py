"""The screen pop: everything an agent needs the moment a call reaches them, so nobody asks twice."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from agent_handoff.store import QueueEntry
from core.db import Database
from core.logging import mask_phone
from telephony.models import Call, Turn

log = logging.getLogger(__name__)

FORM_FIELDS = ("category", "description", "address", "district", "urgency", "caller_name")


def turn_out(t: Turn) -> dict[str, Any]:
    return {"seq": t.seq, "at": t.at.isoformat(), "speaker": t.speaker, "text": t.transcript,
            "dtmf": t.dtmf, "intent": t.intent, "category": t.category, "reply": t.reply}


def prefill(context: dict[str, Any], call: Call, transcript: list[dict[str, Any]]) -> dict[str, Any]:
    """A work-order form from the bot's slots (the phone itself is filled in server-side on submit)."""
    slots = dict(context.get("slots") or {})
    form: dict[str, Any] = {k: slots.get(k) for k in FORM_FIELDS if slots.get(k) not in (None, "")}
    form.setdefault("category", context.get("category") or "other")
    if "description" not in form:
        said = [t["text"] for t in transcript if t["speaker"] == "caller" and t["text"]]
        form["description"] = context.get("summary") or "；".join(said)[-500:] or ""
    form.setdefault("address", "")
    form["caller_phone"] = mask_phone(call.caller) if call.caller else ""
    form["channel"] = "phone"
    form["call_ref"] = call.id
    return form


class ScreenPop:
    def __init__(self, db: Database, kb: Any, work_orders: Any = None) -> None:
        self.db = db
        self.kb = kb
        self.work_orders = work_orders

    async def warm(self) -> None:
        """Build the KB index now, so the first screen pop doesn't pay for it."""
        if self.kb is not None:
            try:
                await self.kb.search("热线", limit=1)
            except Exception:  # noqa: BLE001 - suggestions only
                log.exception("KB warm-up failed")

    async def build(self, entry: QueueEntry, now: float) -> dict[str, Any]:
        async with self.db.session() as session:
            call = await session.get(Call, entry.call_id)
            turns = list((await session.scalars(
                select(Turn).where(Turn.call_id == entry.call_id).order_by(Turn.seq))).all())
            previous = await self._previous_orders(session, entry.caller)
        context = dict(call.context or {}) if call else {}
        transcript = [turn_out(t) for t in turns]
        pop: dict[str, Any] = {
            "call_id": entry.call_id, "queue": entry.queue, "priority": entry.priority, "skill": entry.skill,
            "kind": entry.kind, "waited_seconds": round(entry.waited(now), 1),
            "caller": mask_phone(entry.caller) if entry.caller else "",
            "transcript": transcript,
            "bot": {"intent": context.get("intent"), "category": context.get("category"),
                    "slots": context.get("slots") or {}, "summary": context.get("summary"),
                    "reason": context.get("handoff_reason")},
            "previous_orders": previous,
            "kb": await self._kb(context, transcript),
        }
        pop["form"] = prefill(context, call, transcript) if call else {"call_ref": entry.call_id}
        return pop

    async def _previous_orders(self, session: Any, phone: str) -> list[dict[str, Any]]:
        if not phone:
            return []
        try:
            from work_orders.models import STATUS_LABELS, Status, WorkOrder
        except ImportError:  # work orders not installed in this deployment
            return []
        rows = await session.scalars(select(WorkOrder).where(WorkOrder.caller_phone == phone)
                                     .order_by(WorkOrder.created_at.desc()).limit(10))
        return [{"ticket": o.ticket, "status": o.status, "status_label": STATUS_LABELS.get(Status(o.status), o.status),
                 "category": o.category_code, "created_at": o.created_at.isoformat(),
                 "description": o.description[:120], "address": o.address} for o in rows.all()]

    async def _kb(self, context: dict[str, Any], transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
        said = [t["text"] for t in transcript if t["speaker"] == "caller" and t["text"]]
        topic = " ".join(filter(None, [context.get("summary"), *(said[-2:])])) or str(context.get("category") or "")
        if not topic.strip() or self.kb is None:
            return []
        try:
            result = await self.kb.search(topic[:200], limit=3)
        except Exception:  # noqa: BLE001 - suggestions are a help, never a reason to fail the pop
            log.exception("KB suggestions failed")
            return []
        return [{"id": h.id, "title": h.title, "category": h.category, "answer": h.text_answer or h.spoken_answer,
                 "score": round(h.score, 2)} for h in result.hits]
