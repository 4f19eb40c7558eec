"""Speakable ticket numbers YYYYMMDD-NNNN from a per-day counter row (upsert, safe under concurrency)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from work_orders.models import TicketCounter

TICKET_RE = re.compile(r"^\d{8}-\d{4,6}$")
_DIGITS = "零一二三四五六七八九"


async def next_ticket(session: AsyncSession, now: dt.datetime, tz: ZoneInfo) -> str:
    """Increment today's counter in the caller's transaction. On PostgreSQL the row lock is held until commit,
    so concurrent creators queue for the next number; a rolled-back number was never told to anyone."""
    day = now.astimezone(tz).strftime("%Y%m%d")
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(TicketCounter).values(day=day, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TicketCounter.day], set_={"last": TicketCounter.last + 1}
    ).returning(TicketCounter.last)
    number = (await session.execute(stmt)).scalar_one()
    return f"{day}-{number:04d}"


def speakable(ticket: str) -> str:
    """20261125-0042 → 二零二六一一二五 杠 零零四二 (read digit by digit)."""
    return " 杠 ".join("".join(_DIGITS[int(c)] for c in part) for part in ticket.split("-"))


def parse_ticket(text: str) -> str | None:
    """Accept 20261125-0042, 202611250042 or digits spoken in Chinese (二零二六一一二五零零四二)."""
    digits = "".join(str(_DIGITS.index(c)) if c in _DIGITS else c for c in text.replace("幺", "一"))
    digits = re.sub(r"[^\d]", "", digits)
    if len(digits) < 12 or len(digits) > 14:
        return None
    return f"{digits[:8]}-{digits[8:]}"
