"""Call records: one row per call, one per turn, written as the call happens."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, UTCDateTime, utcnow


class CallOutcome(str, enum.Enum):
    in_progress = "in_progress"
    answered = "answered"  # settled by the bot (KB answer, status query, …)
    work_order = "work_order"  # ended with an order ticket read back
    transferred = "transferred"  # handed to a human seat
    abandoned = "abandoned"  # caller hung up before anything was settled
    failed = "failed"  # our side failed (controller crash, media error)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the Asterisk channel id
    caller: Mapped[str] = mapped_column(String(32), index=True)
    direction: Mapped[str] = mapped_column(String(8), default="in")  # in | out (callbacks, surveys)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default=CallOutcome.in_progress.value, index=True)
    ticket: Mapped[str | None] = mapped_column(String(32), nullable=True)
    node: Mapped[str] = mapped_column(String(64), default="")  # Asterisk node the call is pinned to
    controller: Mapped[str] = mapped_column(String(64), default="")  # controller instance handling it
    # Human-seat side (filled by agent_handoff): when it queued, who answered, when it was done.
    queue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[str | None] = mapped_column(String(16), nullable=True)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    agent_answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    wrap_up_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    wrap_up_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # bot intent, category, slots at handoff

    turns: Mapped[list["Turn"]] = relationship(
        back_populates="call", order_by="Turn.seq", cascade="all, delete-orphan", lazy="selectin"
    )


class Turn(Base):
    __tablename__ = "call_turns"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    speaker: Mapped[str] = mapped_column(String(8), default="caller")  # caller | agent
    transcript: Mapped[str] = mapped_column(Text, default="")
    dtmf: Mapped[str | None] = mapped_column(String(16), nullable=True)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # asr, nlu, tts, turn

    call: Mapped[Call] = relationship(back_populates="turns")
