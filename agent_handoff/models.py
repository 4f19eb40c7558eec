"""Seat-side records: agent state history (for reporting) and callback tasks. Live state is in Redis."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class AgentState(str, enum.Enum):
    logged_out = "logged_out"
    available = "available"
    ringing = "ringing"
    on_call = "on_call"
    wrap_up = "wrap_up"
    paused = "paused"


class Priority(str, enum.Enum):
    emergency = "emergency"
    urgent = "urgent"
    normal = "normal"


PRIORITY_RANK = {Priority.emergency: 0, Priority.urgent: 1, Priority.normal: 2}


class AgentStateEvent(Base):
    """One row per state change, written as it happens: the durable history behind the Redis live state."""

    __tablename__ = "agent_state_events"
    __table_args__ = (Index("ix_agent_state_events_agent_at", "agent_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CallbackStatus(str, enum.Enum):
    pending = "pending"
    dialing = "dialing"
    connected = "connected"  # citizen answered and is queued for / talking to an agent
    done = "done"
    failed = "failed"  # attempts exhausted
    cancelled = "cancelled"


class CallbackRequest(Base):
    """A citizen to be called back: asked for (pressed 1 instead of waiting) or abandoned in the queue."""

    __tablename__ = "handoff_callbacks"
    __table_args__ = (Index("ix_handoff_callbacks_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin_call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # requested | abandoned
    queue: Mapped[str] = mapped_column(String(32))
    skill: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.normal.value)
    status: Mapped[str] = mapped_column(String(16), default=CallbackStatus.pending.value)
    # Keeps the citizen's place: the callback is served in the order of the original wait.
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    last_result: Mapped[str] = mapped_column(String(32), default="")  # no_answer, busy, connected, ...
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the outbound call
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class SurveyAttempt(Base):
    """Each robot dial of a satisfaction survey (回访) and what came of it."""

    __tablename__ = "survey_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, index=True)  # the work-order callback task
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    phone: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(24), default="dialing")  # answered | no_answer | no_input | failed
    result: Mapped[str | None] = mapped_column(String(24), nullable=True)  # satisfied | basically_satisfied | dissatisfied
    via: Mapped[str | None] = mapped_column(String(8), nullable=True)  # dtmf | speech
