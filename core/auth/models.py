from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class Role(str, enum.Enum):
    admin = "admin"
    supervisor = "supervisor"
    agent = "agent"
    department = "department"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Set for role=department: the department code whose orders this user may see.
    department_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # SIP endpoint of an agent's phone (e.g. PJSIP/agent1).
    sip_endpoint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    skills: Mapped[str] = mapped_column(String(255), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
