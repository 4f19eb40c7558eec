"""Speakable ticket numbers YYYYMMDD-NNNN, unique per local day.

PostgreSQL: one sequence per day (`wo_ticket_YYYYMMDD`, created on first use), read by the order's own INSERT
(`ticket_sql`). A sequence never makes concurrent creators wait for each other's commit, unlike a counter row,
whose lock would be held until commit (the commit's disk flush included) and so queue every order of the day
behind the one before it. A number taken by a transaction that then fails is not reused: numbers are unique
and increasing per day, with a gap where a write failed (never told to anyone).

SQLite (development, tests; one writer at a time anyway): a per-day counter row incremented by an upsert in the
order's transaction (`next_ticket`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from work_orders.models import TicketCounter, WorkOrder

log = logging.getLogger(__name__)
KEEP_SEQUENCE_DAYS = 3  # older days' sequences are dropped (recreated, continuing, if a late order needs one)

TICKET_RE = re.compile(r"^\d{8}-\d{4,6}$")
_DIGITS = "零一二三四五六七八九"
_SPOKEN = str.maketrans({**{c: str(i) for i, c in enumerate(_DIGITS)}, **{chr(0xFF10 + i): str(i) for i in range(10)},
                         "〇": "0", "幺": "1"})
_DIGIT_CHARS = "0-9０-９零〇幺一二三四五六七八九"
_DIGIT_RUN = re.compile(rf"[{_DIGIT_CHARS}]+(?:[\s\-－—_杠]*[{_DIGIT_CHARS}]+)*")


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


def ticket_day(now: dt.datetime, tz: ZoneInfo) -> str:
    return now.astimezone(tz).strftime("%Y%m%d")


def sequence_name(day: str) -> str:
    assert day.isdigit() and len(day) == 8
    return f"wo_ticket_{day}"


def ticket_sql(day: str) -> str:
    """SQL expression for the next ticket of `day` (PostgreSQL; the day's sequence must exist)."""
    return (f"(SELECT '{day}-' || lpad(n::text, greatest(4, length(n::text)), '0') "
            f"FROM nextval('{sequence_name(day)}') AS n)")


class TicketSequences:
    """Makes sure the day's sequence exists (once per day and process). The DDL runs on a connection of its own,
    outside the pool (the caller holds a pooled connection already: a burst of first orders must not wait for
    the pool they fill themselves) and is committed at once, so a failed order never takes the sequence away
    again. One coroutine per process checks; the others wait for it. A new day's sequence continues after any
    ticket of that day already issued (by the counter row before this scheme, or before a cleanup)."""

    def __init__(self) -> None:
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        self._ready.clear()

    async def ensure(self, url: str, day: str, tz: ZoneInfo) -> None:
        if day in self._ready:
            return
        async with self._lock:
            if day not in self._ready:
                engine = create_async_engine(url, poolclass=NullPool)
                try:
                    await self._create(engine, day, tz)
                finally:
                    await engine.dispose()
                self._ready.add(day)

    async def _create(self, engine: AsyncEngine, day: str, tz: ZoneInfo) -> None:
        name = sequence_name(day)
        async with engine.connect() as conn:
            if await conn.scalar(text("SELECT to_regclass(:n) IS NULL"), {"n": name}):
                start = dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=tz)
                issued = await conn.scalar(
                    select(func.max(func.split_part(WorkOrder.ticket, "-", 2).cast(WorkOrder.urge_count.type)))
                    .where(WorkOrder.created_at >= start, WorkOrder.created_at < start + dt.timedelta(days=1),
                           WorkOrder.ticket.like(f"{day}-%"))
                )
                counted = await conn.scalar(select(TicketCounter.last).where(TicketCounter.day == day))
                await conn.commit()
                try:
                    async with conn.begin():
                        # Owned by work_orders.ticket: dropped with it, restarted by TRUNCATE … RESTART IDENTITY.
                        await conn.execute(text(f"CREATE SEQUENCE {name} START WITH 1 OWNED BY work_orders.ticket"))
                        await conn.execute(text("SELECT setval(:n, :v, false)"),
                                           {"n": name, "v": max(issued or 0, counted or 0) + 1})
                except DBAPIError:  # created by another process at the same moment: it exists now
                    log.debug("ticket sequence %s created concurrently", name)
                async with conn.begin():
                    await self._drop_old(conn, day)

    @staticmethod
    async def _drop_old(conn, day: str) -> None:  # type: ignore[no-untyped-def]
        oldest = (dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=KEEP_SEQUENCE_DAYS)).strftime("%Y%m%d")
        names = (await conn.scalars(text(
            "SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE 'wo\\_ticket\\_%'"))).all()
        for old in names:
            suffix = old.rsplit("_", 1)[-1]
            if suffix.isdigit() and len(suffix) == 8 and suffix < oldest:
                await conn.execute(text(f"DROP SEQUENCE IF EXISTS {old}"))


def speakable(ticket: str) -> str:
    """20261125-0042 → 二零二六一一二五 杠 零零四二 (read digit by digit)."""
    return " 杠 ".join("".join(_DIGITS[int(c)] for c in part) for part in ticket.split("-"))


def parse_ticket(text: str) -> str | None:
    """The ticket in a sentence: 20261125-0042, 202611250042 or digits spoken in Chinese (二零二六一一二五 杠
    零零四二, 〇 and 幺 too). Only a run of digits (with spaces, dashes or 杠 inside) counts: the 一 of 查一下 or
    一个 elsewhere in the sentence is not part of it."""
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"\D", "", run.translate(_SPOKEN))
        if 12 <= len(digits) <= 14:
            return f"{digits[:8]}-{digits[8:]}"
    return None