"""Actions around work orders: the form's validation, creating the order, status, urge, withdraw."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from core.errors import DomainError
from nlu.actions.outage import retried, when_database_down
from nlu.actions.runtime import BOT, decision, handoff, runtime
from work_orders.models import STATUS_LABELS, Status, WorkOrder
from work_orders.schemas import WorkOrderCreate
from work_orders.service import CreatedOrder
from work_orders.tickets import parse_ticket

log = logging.getLogger(__name__)
FORM = "work_order_form"
FORM_SLOTS = ("category", "address", "description", "phone_confirmed", "district", "street", "road", "landmark",
              "deny_count")
MAX_DENIALS = 2
PLACE_ENTITIES = {"district", "street", "road", "landmark"}
DISTRICT_ONLY = re.compile(r"[\u4e00-\u9fff]{1,4}[区县市]")
# Said with the database unreachable (nlu/actions/outage.py), then the caller is handed to a person.
NOT_REGISTERED = "抱歉，系统暂时无法完成工单登记，正在为您转接人工服务，请稍候。"
STATUS_UNAVAILABLE = "抱歉，系统暂时无法查询工单进度，正在为您转接人工服务，请稍候。"
NOT_URGED = "抱歉，系统暂时无法为您办理催办，正在为您转接人工服务，请稍候。"
NOT_WITHDRAWN = "抱歉，系统暂时无法为您办理撤单，正在为您转接人工服务，请稍候。"


def _caller(tracker: Tracker) -> str | None:
    """The confirmed contact number, else the number the call came from (sent as message metadata)."""
    metadata = tracker.latest_message.get("metadata") or {}
    return tracker.get_slot("caller_phone") or metadata.get("caller")


def _place(tracker: Tracker) -> str:
    """The address from the location entities the caller has said so far (区 + 街道 + 路 + 地标)."""
    parts = [tracker.get_slot(s) for s in ("district", "street", "road", "landmark")]
    return "".join(p for p in parts if p)


def _submission_key(tracker: Tracker) -> str:
    """The idempotency key of one filled-in form: the conversation and the user turn at which the form started.
    Running the action again for the same form (a retried turn, a later turn after a failed attempt) can never
    make a second order, whatever happened to the first attempt's commit; a new complaint starts the form anew."""
    turns = started = 0
    for event in tracker.events:
        if event.get("event") == "user":
            turns += 1
        elif event.get("event") == "active_loop" and event.get("name") == FORM:
            started = turns
    key = f"bot:{tracker.sender_id}:{started}"
    return key if len(key) <= 128 else f"bot:{hashlib.sha256(key.encode()).hexdigest()}"


def _hours(until: dt.datetime, now: dt.datetime) -> str:
    minutes = max(int((until - now).total_seconds() // 60), 1)
    if minutes < 60:
        return f"{minutes}分钟"
    return f"{round(minutes / 60)}个小时"


class ValidateWorkOrderForm(FormValidationAction):
    def name(self) -> str:
        return "validate_work_order_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return domain_slots

    async def extract_address(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # The first sentence often names the place already ("青山区人民路馨苑小区门口的井盖没了"): take the
        # stretch of the sentence from the first to the last place the recogniser found.
        if tracker.get_slot("address") is not None:
            return {}
        text = tracker.latest_message.get("text") or ""
        entities = tracker.latest_message.get("entities") or []
        # The dialogue service's reading of the places by sound, written properly (dialogue/planner.py).
        written = [e["value"] for e in entities if e.get("entity") == "address" and e.get("value")]
        if written:
            return {"address": str(written[0])}
        spans = [(e["start"], e["end"]) for e in entities if e.get("entity") in PLACE_ENTITIES and "start" in e]
        if not spans:
            return {}
        return {"address": text[min(s for s, _ in spans):max(e for _, e in spans)]}

    async def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # The complaint itself ("井盖被偷了，晚上很危险") is the description unless the caller adds one.
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        text = (tracker.latest_message.get("text") or "").strip()
        if tracker.get_slot("description") is None and intent.startswith("report_") and len(text) >= 4:
            return {"description": text}
        return {}

    async def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(text) < 2 or DISTRICT_ONLY.fullmatch(text):
            return {"address": None}  # too vague to send anyone: the form asks for the street or landmark
        return {"address": text[:200]}

    async def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        return {"description": text[:2000] if len(text) >= 2 else None}

    async def validate_phone_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        caller = _caller(tracker)
        if value is True and caller:
            return {"phone_confirmed": True, "caller_phone": caller}
        if value is True:  # "yes" but no number known yet: ask for one
            return {"phone_confirmed": None}
        denials = int(tracker.get_slot("deny_count") or 0) + 1
        if denials >= MAX_DENIALS:
            dispatcher.utter_message(response="utter_handoff")
            dispatcher.utter_message(
                json_message=decision("human", category=tracker.get_slot("category"),
                                      handoff=handoff("general", "normal", "confirmation_refused"))
            )
            return {"phone_confirmed": False, "deny_count": 0}
        # The number read back was wrong: forget it and ask for the right one.
        return {"phone_confirmed": None, "caller_phone": None, "deny_count": denials}

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        events = await super().run(dispatcher, tracker, domain)
        resets_phone = any(e.get("event") == "slot" and e.get("name") == "caller_phone" for e in events)
        if not resets_phone and not tracker.get_slot("caller_phone") and _caller(tracker):
            events.append(SlotSet("caller_phone", _caller(tracker)))
        if any(e.get("event") == "slot" and e.get("name") == "phone_confirmed" and e.get("value") is False
               for e in events):
            events.append(ActiveLoop(None))  # handed over: leave the form without creating an order
        return events


class CreateWorkOrder(Action):
    def name(self) -> str:
        return "action_create_work_order"

    # Not stored, or stored without our hearing of it (the database went away after the retries with the same
    # key): no ticket is read out either way. The form's slots stay for the person taking over; the same form sent
    # again reuses the key.
    @when_database_down(NOT_REGISTERED, "order_failed:database_unavailable", priority="urgent")
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        reset = [SlotSet(s, None) for s in FORM_SLOTS]
        if tracker.get_slot("phone_confirmed") is not True:
            return reset
        rt = await runtime()
        category = tracker.get_slot("category") or "other"
        address = tracker.get_slot("address") or _place(tracker)
        data = WorkOrderCreate(
            category=category,
            description=tracker.get_slot("description") or address or "市民来电反映",
            address=address or "",
            caller_phone=_caller(tracker),
            channel="phone",
            call_ref=tracker.sender_id[:64],
        )
        key = _submission_key(tracker)

        async def create() -> CreatedOrder:
            async with rt.db.session() as session:
                return await rt.work_orders.create(session, BOT, data, idempotency_key=key)

        try:
            created = await retried(create, f"order {key}")
        except DomainError as exc:
            dispatcher.utter_message(text="抱歉，工单登记没有成功，正在为您转接人工服务。")
            dispatcher.utter_message(json_message=decision(
                "human", category=category, handoff=handoff("general", "urgent", f"order_failed:{exc.message}")))
            return reset
        # The ticket is read back only now, after the order is committed.
        who = created.department_name or "相关部门"
        if created.outcome == "linked_repeat":
            text = f"您反映的问题已有工单在办理，工单号是{created.ticket}。我们已为您催办，{who}会尽快处理。"
        else:
            wait = _hours(created.response_due, rt.work_orders.clock())
            text = f"已为您登记，工单号是{created.ticket}。{who}会在{wait}内响应，请保持电话畅通。"
        dispatcher.utter_message(text=text)
        dispatcher.utter_message(json_message=decision(
            "work_order", category=category,
            work_order={"ticket": created.ticket, "department": created.department_name,
                        "response_deadline": created.response_due.isoformat()},
        ))
        return reset


async def _find_order(tracker: Tracker) -> WorkOrder | None:
    """The order the caller means: the ticket they said, else their latest open one (a read: retried)."""
    rt = await runtime()
    ticket = parse_ticket(tracker.get_slot("ticket") or "") or parse_ticket(tracker.latest_message.get("text") or "")
    caller = _caller(tracker)

    async def find() -> WorkOrder | None:
        async with rt.db.session() as session:
            if ticket:
                return await rt.work_orders.get_by_ticket(session, ticket)
            if caller:
                orders = await rt.work_orders.open_orders_for_phone(session, caller)
                return max(orders, key=lambda o: o.created_at) if orders else None
        return None

    return await retried(find, "finding the order")


def _status_text(order: WorkOrder) -> str:
    return STATUS_LABELS.get(Status(order.status), order.status)


class QueryStatus(Action):
    def name(self) -> str:
        return "action_query_status"

    @when_database_down(STATUS_UNAVAILABLE, "status_failed:database_unavailable")
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        order = await _find_order(tracker)
        if order is None:
            dispatcher.utter_message(text="没有查到您的工单。请说一下十二位工单号，比如二零二六一一二五零零四二。")
            dispatcher.utter_message(json_message=decision("status_query"))
            return [SlotSet("ticket", None)]
        dispatcher.utter_message(text=f"您的工单{order.ticket}目前{_status_text(order)}。")
        dispatcher.utter_message(json_message=decision("status_query", work_order={"ticket": order.ticket}))
        return [SlotSet("ticket", None)]


class _OrderAction:
    """Shared body of urge/withdraw (not an Action itself: rasa-sdk registers every Action subclass)."""

    verb = ""
    done_text = ""

    async def apply(self, order: WorkOrder) -> WorkOrder:
        """The write, tried once: urging twice is not the same as once, and a lost answer may hide a commit."""
        rt = await runtime()
        async with rt.db.session() as session:
            return await getattr(rt.work_orders, self.verb)(session, BOT, order.ticket, note="市民来电")

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        """The database unreachable: the subclass's `run` (decorated) apologises and hands over."""
        order = await _find_order(tracker)
        if order is None:
            dispatcher.utter_message(text="没有查到您在办的工单。请说一下十二位工单号。")
            dispatcher.utter_message(json_message=decision(self.verb))
            return [SlotSet("ticket", None)]
        try:
            order = await self.apply(order)
        except DomainError:
            dispatcher.utter_message(text=f"您的工单{order.ticket}目前{_status_text(order)}，不能再{self.done_text}。")
        else:
            dispatcher.utter_message(text=f"已为您{self.done_text}，工单号{order.ticket}。")
        dispatcher.utter_message(json_message=decision(self.verb, work_order={"ticket": order.ticket}))
        return [SlotSet("ticket", None)]


class Urge(_OrderAction, Action):
    verb, done_text = "urge", "催办"

    def name(self) -> str:
        return "action_urge"

    @when_database_down(NOT_URGED, "urge_failed:database_unavailable", priority="urgent")
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        return await super().run(dispatcher, tracker, domain)


class Withdraw(_OrderAction, Action):
    verb, done_text = "withdraw", "撤单"

    def name(self) -> str:
        return "action_withdraw"

    @when_database_down(NOT_WITHDRAWN, "withdraw_failed:database_unavailable")
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        return await super().run(dispatcher, tracker, domain)
