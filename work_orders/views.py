"""Turning orders into API shapes per role: names resolved, personal data only to those who need it."""

from __future__ import annotations

import datetime as dt

from core.logging import mask_phone
from work_orders import lifecycle
from work_orders.models import STATUS_LABELS, Status, WorkOrder, WorkOrderEvent
from work_orders.routing import Taxonomy
from work_orders.schemas import EventOut, PublicNote, PublicOrder, WorkOrderDetail, WorkOrderOut

RESPONSE_PENDING = frozenset({Status.created.value, Status.dispatched.value, Status.returned.value})
# Roles that talk to the citizen see the full number; departments see it masked; nobody else sees it.
FULL_PERSONAL_DATA = frozenset({"admin", "supervisor", "agent", "system"})


def masked(phone: str | None) -> str | None:
    if not phone:
        return phone
    m = mask_phone(phone)
    return m if m != phone else (phone[:2] + "*" * max(len(phone) - 4, 0) + phone[-2:])


def is_overdue(order: WorkOrder, now: dt.datetime) -> bool:
    if not order.is_open:
        return False
    return order.resolution_due <= now or (order.status in RESPONSE_PENDING and order.response_due <= now)


def order_out(order: WorkOrder, tax: Taxonomy, role: str, now: dt.datetime, outcome: str | None = None) -> WorkOrderOut:
    out = WorkOrderOut.model_validate(order)
    out.status_label = STATUS_LABELS[Status(order.status)]
    out.category_name = tax.category_name(order.category_code)
    out.department_name = tax.department_name(order.department_code)
    out.overdue = is_overdue(order, now)
    out.allowed_actions = lifecycle.allowed_actions(order.status, role)
    out.outcome = outcome
    if role not in FULL_PERSONAL_DATA:
        out.caller_phone = masked(order.caller_phone)
        out.caller_name = (order.caller_name[:1] + "**") if order.caller_name else None
    return out


def order_detail(
    order: WorkOrder, tax: Taxonomy, role: str, now: dt.datetime, events: list[WorkOrderEvent], children: list[str]
) -> WorkOrderDetail:
    base = order_out(order, tax, role, now)
    return WorkOrderDetail(
        **base.model_dump(), history=[EventOut.model_validate(e) for e in events], children=children
    )


def public_order(order: WorkOrder, tax: Taxonomy, events: list[WorkOrderEvent]) -> PublicOrder:
    return PublicOrder(
        ticket=order.ticket,
        status=Status(order.status),
        status_label=STATUS_LABELS[Status(order.status)],
        category=tax.category_name(order.category_code),
        department=tax.department_name(order.department_code),
        created_at=order.created_at,
        response_due=order.response_due,
        resolution_due=order.resolution_due,
        resolved_at=order.resolved_at,
        public_note=mask_phone(order.public_note) if order.public_note else None,
        notes=[
            PublicNote(at=e.at, status=e.to_status, note=mask_phone(str(e.detail.get("public_text", ""))))
            for e in events
            if e.public
        ],
    )
