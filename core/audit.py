"""Audit log: who did what to which object, written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(
    session: AsyncSession,
    actor: Any,
    action: str,
    object_type: str,
    object_id: object,
    **detail: Any,
) -> None:
    """Add an audit row to the caller's transaction (committed or rolled back with it)."""
    session.add(
        AuditLog(
            user_id=getattr(actor, "id", None),
            username=getattr(actor, "username", str(actor)),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            detail=detail,
        )
    )


async def list_entries(
    session: AsyncSession, object_type: str | None = None, limit: int = 100, offset: int = 0
) -> list[AuditLog]:
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit).offset(offset)
    if object_type:
        q = q.where(AuditLog.object_type == object_type)
    return list((await session.scalars(q)).all())
