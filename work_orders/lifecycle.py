"""The state machine: which action is allowed from which status, by which role, and where it leads."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Conflict, Forbidden
from work_orders.models import Status

S = Status
STAFF = frozenset({"admin", "supervisor", "agent"})
SUPERVISORS = frozenset({"admin", "supervisor"})
HANDLERS = frozenset({"admin", "supervisor", "department"})  # the department does the work
SYSTEM = frozenset({"system"})
OPEN = frozenset({S.created, S.dispatched, S.accepted, S.in_progress, S.returned, S.reopened})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[Status]
    target: Status | None  # None: status unchanged (urge), or decided by the action (callback)
    roles: frozenset[str]
    label: str


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("dispatch", frozenset({S.created, S.returned}), S.dispatched, STAFF, "派单"),
        Transition("accept", frozenset({S.dispatched, S.reopened}), S.accepted, HANDLERS, "签收"),
        Transition("start", frozenset({S.accepted}), S.in_progress, HANDLERS, "开始处置"),
        Transition("return", frozenset({S.dispatched, S.accepted, S.reopened}), S.returned, HANDLERS, "退回"),
        Transition("resolve", frozenset({S.accepted, S.in_progress}), S.resolved, HANDLERS, "办结"),
        Transition("withdraw", OPEN, S.withdrawn, STAFF, "撤单"),
        Transition("urge", OPEN, None, STAFF, "催办"),
        Transition("reopen", frozenset({S.resolved, S.closed}), S.reopened, SUPERVISORS, "重办"),
        Transition("merge", OPEN, S.merged, STAFF, "并案"),
        Transition("callback", frozenset({S.resolved}), None, STAFF, "回访"),
        Transition("close", frozenset({S.resolved}), S.closed, SUPERVISORS, "结案"),
    )
}
# Department users may only do the department's own work; everything else is the hotline's.
DEPARTMENT_ACTIONS = frozenset(a for a, t in TRANSITIONS.items() if "department" in t.roles)


def allowed_actions(status: Status | str, role: str | None = None) -> list[str]:
    status = Status(status)
    return [
        a
        for a, t in TRANSITIONS.items()
        if status in t.sources and (role is None or role in t.roles or role == "system")
    ]


def check(action: str, status: Status | str, role: str) -> Transition:
    """Raise 403 when the role may never do this, 409 (listing what is allowed) when the status forbids it."""
    t = TRANSITIONS[action]
    if role not in t.roles and role != "system":
        raise Forbidden(f"role {role!r} may not {action} an order")
    status = Status(status)
    if status not in t.sources:
        raise Conflict(
            f"cannot {action} an order that is {status.value}",
            status=status.value,
            allowed=allowed_actions(status, role),
        )
    return t
