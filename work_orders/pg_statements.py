"""The intake's statements, built once per shape: the candidate lookup (a SQLAlchemy query, run through the ORM
on SQLite, compiled once for the driver on PostgreSQL) and the hand-built PostgreSQL statement that writes a new
order, its history and its audit row in one round trip (`Intake._insert_pg`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, bindparam, or_, select
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

from core.audit import AuditLog
from core.db import UTCDateTime
from work_orders.models import OPEN_VALUES, WorkOrder, WorkOrderEvent
from work_orders.tickets import ticket_sql


@lru_cache(maxsize=64)
def candidates_statement(repeat: bool, master: bool, by_district: bool, other_phone: bool, by_key: bool) -> Any:
    """The query of Intake._candidates for one combination of what is looked for, built once (building
    SQL expressions costs more CPU than running the query)."""
    W = WorkOrder
    arms = []
    if repeat:
        arms.append((W.caller_phone == bindparam("phone")) & (W.created_at >= bindparam("repeat_since")))
    if master:
        arm = (W.place == bindparam("place")) & W.master_id.is_(None) & (W.created_at >= bindparam("master_since"))
        if by_district:
            arm &= W.district_code == bindparam("district")
        if other_phone:
            arm &= or_(W.caller_phone.is_(None), W.caller_phone != bindparam("phone"))
        arms.append(arm)
    # Each arm of the OR is indexable on its own (caller_phone+created_at; the hotspot partial index; the key).
    same = (W.category_code == bindparam("category")) & W.status.in_(OPEN_VALUES)
    conditions = [same & arm for arm in arms]
    if by_key:
        conditions.append(W.idempotency_key == bindparam("key"))
    if not conditions:
        return None
    return (select(W.id, W.ticket, W.caller_phone, W.created_at, W.place, W.master_id, W.district_code, W.address,
                   W.department_code, W.idempotency_key, W.category_code, W.status)
            .where(or_(*conditions)).order_by(W.id))



_EVENT_COLUMNS = ("at", "actor", "actor_role", "action", "from_status", "to_status", "note", "public", "detail")
_AUDIT_COLUMNS = ("at", "user_id", "username", "action", "object_type", "object_id", "detail")


def _sql_type(column: Any) -> str:
    t = column.type
    if isinstance(t, UTCDateTime):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(t, JSON):
        return "JSON"
    if isinstance(t, Boolean):
        return "BOOLEAN"
    if isinstance(t, Float):
        return "DOUBLE PRECISION"
    if isinstance(t, Integer):
        return "INTEGER"
    return "TEXT"


class _Positional:
    """SQL with $1, $2 … placeholders for the driver, and the parameter name of each."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, sql_type: str) -> str:
        self.names.append(name)
        return f"CAST(${len(self.names)} AS {sql_type})"


@lru_cache(maxsize=64)
def create_statement(day: str, n_events: int, with_master: bool) -> tuple[str, tuple[str, ...]]:
    """WITH o AS (INSERT the order RETURNING id, ticket), e AS (INSERT its events [+ the master's hotspot_join]),
    a AS (INSERT the audit row) SELECT id, ticket FROM o — one round trip (PostgreSQL). Returns the SQL and the
    parameter names in placeholder order."""
    p = _Positional()
    order_cols = [c for c in WorkOrder.__table__.columns if c.name not in ("id", "ticket", "version")]
    events = WorkOrderEvent.__table__
    order_values = ", ".join(p(f"o_{c.name}", _sql_type(c)) for c in order_cols)
    selects = []
    for i in range(n_events):
        values = ", ".join(p(f"e{i}_{c}", _sql_type(events.c[c])) for c in _EVENT_COLUMNS)
        selects.append(f"SELECT o.id, {values} FROM o")
    if with_master:
        special = {"note": lambda: p("m_note", "TEXT") + " || o.ticket",
                   "detail": lambda: "json_build_object('child', o.ticket)"}
        order_id = p("m_order_id", "INTEGER")
        values = ", ".join(special[c]() if c in special else p(f"m_{c}", _sql_type(events.c[c]))
                           for c in _EVENT_COLUMNS)
        selects.append(f"SELECT {order_id}, {values} FROM o")
    audit_values = (f"{p('a_at', 'TIMESTAMP WITH TIME ZONE')}, {p('a_user_id', 'INTEGER')}, "
                    f"{p('a_username', 'TEXT')}, 'work_order.create', 'work_order', o.ticket, {p('a_detail', 'JSON')}")
    assert set(_AUDIT_COLUMNS) == {c.name for c in AuditLog.__table__.columns} - {"id"}
    sql = f"""
WITH o AS (
    INSERT INTO work_orders (ticket, version, {", ".join(c.name for c in order_cols)})
    VALUES ({ticket_sql(day)}, 1, {order_values})
    RETURNING id, ticket
), e AS (
    INSERT INTO work_order_events (order_id, {", ".join(_EVENT_COLUMNS)})
    {" UNION ALL ".join(selects)}
), a AS (
    INSERT INTO audit_log ({", ".join(_AUDIT_COLUMNS)}) SELECT {audit_values} FROM o
)
SELECT id, ticket FROM o"""
    return sql, tuple(p.names)


@lru_cache(maxsize=64)
def candidates_sql(*shape: bool) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """candidates_statement compiled once for PostgreSQL, for the driver: (SQL, parameter names, the values of
    the fixed parameters such as the open statuses)."""
    stmt = candidates_statement(*shape)
    if stmt is None:
        return None
    placeholders = dict.fromkeys(("category", "phone", "repeat_since", "place", "master_since", "district", "key"))
    compiled = stmt.params(**placeholders).compile(dialect=pg_asyncpg.dialect(),
                                                   compile_kwargs={"render_postcompile": True})
    return str(compiled), tuple(compiled.positiontup or ()), compiled.construct_params()
