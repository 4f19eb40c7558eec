"""Work-order storage: taxonomy, responsibility list, orders, history, callbacks, ticket counters, intake keys."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, PrimaryKeyConstraint, SmallInteger, String, Text,
    UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class Status(str, enum.Enum):
    created = "created"  # 受理
    dispatched = "dispatched"  # 派单
    accepted = "accepted"  # 签收
    in_progress = "in_progress"  # 处置中
    resolved = "resolved"  # 办结
    closed = "closed"  # 回访后结案
    returned = "returned"  # 退回
    withdrawn = "withdrawn"  # 撤单
    reopened = "reopened"  # 重办
    merged = "merged"  # 并案


OPEN_STATUSES = frozenset(
    {Status.created, Status.dispatched, Status.accepted, Status.in_progress, Status.returned, Status.reopened}
)
OPEN_VALUES = [s.value for s in OPEN_STATUSES]
STATUS_LABELS = {
    Status.created: "已受理",
    Status.dispatched: "已派单",
    Status.accepted: "已签收",
    Status.in_progress: "处理中",
    Status.resolved: "已办结",
    Status.closed: "已结案",
    Status.returned: "退回待重新派单",
    Status.withdrawn: "已撤单",
    Status.reopened: "重新办理中",
    Status.merged: "已并案",
}


class Urgency(str, enum.Enum):
    normal = "normal"  # 普通
    urgent = "urgent"  # 加急
    critical = "critical"  # 特急


URGENCY_ORDER = [Urgency.normal, Urgency.urgent, Urgency.critical]
URGENCY_LABELS = {Urgency.normal: "普通", Urgency.urgent: "加急", Urgency.critical: "特急"}


class Complexity(str, enum.Enum):
    easy = "easy"  # 易: answered on the call
    simple = "simple"  # 简
    complex = "complex"  # 繁


class Satisfaction(str, enum.Enum):
    satisfied = "satisfied"  # 满意
    basically_satisfied = "basically_satisfied"  # 基本满意
    dissatisfied = "dissatisfied"  # 不满意


class District(Base):
    __tablename__ = "wo_districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    streets: Mapped[list[str]] = mapped_column(JSON, default=list)
    roads: Mapped[list[str]] = mapped_column(JSON, default=list)
    landmarks: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class Department(Base):
    __tablename__ = "wo_departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    hotline: Mapped[str] = mapped_column(String(32), default="")
    skill: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class Category(Base):
    __tablename__ = "wo_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(16), default=Urgency.normal.value)
    complexity: Mapped[str] = mapped_column(String(16), default=Complexity.simple.value)
    skill: Mapped[str] = mapped_column(String(32), default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class RoutingRule(Base):
    """One line of the responsibility list (权责清单): category [× district] [× keyword] → department."""

    __tablename__ = "wo_routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_code: Mapped[str] = mapped_column(String(64), index=True)
    district_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    keyword: Mapped[str | None] = mapped_column(String(32), nullable=True)
    department_code: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class TicketCounter(Base):
    """Per-day ticket sequence; incremented with an upsert so concurrent creators never share a number."""

    __tablename__ = "wo_ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class WorkOrder(Base):
    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_status_due", "status", "resolution_due"),
        Index("ix_work_orders_phone_created", "caller_phone", "created_at"),
        # Intake: the hotspot master candidates (intake._candidates)
        Index("ix_work_orders_hotspot", "category_code", "place", "created_at",
              postgresql_where=text("master_id IS NULL AND place IS NOT NULL"),
              sqlite_where=text("master_id IS NULL AND place IS NOT NULL")),
        # KPI rollup: the few dispatched orders still waiting to be accepted, by response deadline (kpi_rollup.py)
        Index("ix_work_orders_awaiting_response", "response_due",
              postgresql_where=text("dispatched_at IS NOT NULL AND accepted_at IS NULL"),
              sqlite_where=text("dispatched_at IS NOT NULL AND accepted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    category_code: Mapped[str] = mapped_column(String(64), index=True)
    district_code: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    department_code: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    routing_rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(200), default="")
    place: Mapped[str | None] = mapped_column(String(64), nullable=True)  # gazetteer place found in the address
    lat: Mapped[float | None] = mapped_column(nullable=True)
    lon: Mapped[float | None] = mapped_column(nullable=True)
    caller_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    caller_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(32), default="phone")
    call_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    urgency: Mapped[str] = mapped_column(String(16))
    complexity: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    response_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolution_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    public_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    master_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), nullable=True, index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), nullable=True)
    satisfaction: Mapped[str | None] = mapped_column(String(24), nullable=True)
    solved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_open(self) -> bool:
        return Status(self.status) in OPEN_STATUSES


class WorkOrderEvent(Base):
    """History: every transition, urge, escalation, with who/when/note."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CallbackTask(Base):
    """回访: queued when an order is resolved; its result closes or reopens the order."""

    __tablename__ = "work_order_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|done|cancelled
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(24), nullable=True)
    solved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64), default="")


class IntakeKey(Base):
    """Open311 api_key issued by an admin to one intake channel (city app, WeChat, partner); stored hashed."""

    __tablename__ = "wo_intake_keys"
    __table_args__ = (UniqueConstraint("key_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    key_prefix: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")


# -- KPI rollup (work_orders/kpi_rollup.py, work_orders/KPIS.md) ------------------------------------------------
# Per-order contribution to the KPI counts. `response_due` is split: resp_accepted + resp_waiting, minus (at
# query time) the waiting orders whose response deadline is still ahead of "now".
ROLLUP_COUNTS = (
    "orders", "dispatched", "resp_accepted", "resp_waiting", "responded_on_time", "resolved", "resolved_on_time",
    "completion_base", "completed", "returned", "rated", "solved", "satisfied", "repeat",
)


class KpiDelta(Base):
    """Append-only change log written by database triggers on work_orders (migration 0005): for every insert,
    delete, or update of a counted field, -1 × the old row's contribution and +1 × the new row's. Never updated,
    so concurrent writers never wait on each other here; folded into KpiDaily by kpi_rollup.compact()."""

    __tablename__ = "wo_kpi_deltas"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    department_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category_code: Mapped[str] = mapped_column(String(64))
    district_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    orders: Mapped[int] = mapped_column(SmallInteger)
    dispatched: Mapped[int] = mapped_column(SmallInteger)
    resp_accepted: Mapped[int] = mapped_column(SmallInteger)
    resp_waiting: Mapped[int] = mapped_column(SmallInteger)
    responded_on_time: Mapped[int] = mapped_column(SmallInteger)
    resolved: Mapped[int] = mapped_column(SmallInteger)
    resolved_on_time: Mapped[int] = mapped_column(SmallInteger)
    completion_base: Mapped[int] = mapped_column(SmallInteger)
    completed: Mapped[int] = mapped_column(SmallInteger)
    returned: Mapped[int] = mapped_column(SmallInteger)
    rated: Mapped[int] = mapped_column(SmallInteger)
    solved: Mapped[int] = mapped_column(SmallInteger)
    satisfied: Mapped[int] = mapped_column(SmallInteger)
    repeat: Mapped[int] = mapped_column(SmallInteger)


class KpiDaily(Base):
    """Summed contributions per local day (city time zone) of the orders' creation, per grouping dimension
    ('department' | 'category' | 'district') and key ('' = none). Written only by kpi_rollup.compact/rebuild."""

    __tablename__ = "wo_kpi_daily"
    __table_args__ = (PrimaryKeyConstraint("dim", "day", "key"),)

    dim: Mapped[str] = mapped_column(String(12))
    day: Mapped[dt.date] = mapped_column(Date)
    key: Mapped[str] = mapped_column(String(64))
    orders: Mapped[int] = mapped_column(Integer, default=0)
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    resp_accepted: Mapped[int] = mapped_column(Integer, default=0)
    resp_waiting: Mapped[int] = mapped_column(Integer, default=0)
    responded_on_time: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    resolved_on_time: Mapped[int] = mapped_column(Integer, default=0)
    completion_base: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    returned: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    solved: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    repeat: Mapped[int] = mapped_column(Integer, default=0)


class KpiRollupState(Base):
    """One row (id 1) once the daily rollup has been built: the time zone its days are in. Without it (fresh
    migration, reset database, other time zone) KPIs are computed from work_orders until the next rebuild."""

    __tablename__ = "wo_kpi_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tz: Mapped[str] = mapped_column(String(64))
    rebuilt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    compacted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
