"""Call records: written turn by turn as the call happens (each write its own small transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database, utcnow
from core.errors import BadRequest, NotFound
from telephony.models import Call, CallOutcome, Turn


class CallRecords:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def start(self, call_id: str, caller: str, *, direction: str = "in", node: str = "", controller: str = "") -> Call:
        """Idempotent: a controller that restarts and sees the same channel again gets the same record."""
        async with self.db.session() as session:
            call = await session.get(Call, call_id)
            if call is None:
                call = Call(
                    id=call_id, caller=caller, direction=direction, started_at=self.clock(),
                    node=node, controller=controller, context={},
                )
                session.add(call)
                await session.commit()
            return call

    async def update(self, call_id: str, **fields: Any) -> Call:
        async with self.db.session() as session:
            call = await session.get(Call, call_id)
            if call is None:
                raise NotFound(f"call {call_id} not found")
            for name, value in fields.items():
                if name == "context":
                    value = dict(call.context or {}) | value
                setattr(call, name, value)
            await session.commit()
            return call

    async def answered(self, call_id: str) -> None:
        await self.update(call_id, answered_at=self.clock())

    async def add_turn(self, call_id: str, **fields: Any) -> Turn:
        async with self.db.session() as session:
            seq = await session.scalar(select(func.coalesce(func.max(Turn.seq), 0)).where(Turn.call_id == call_id))
            turn = Turn(call_id=call_id, seq=int(seq or 0) + 1, at=self.clock(), **fields)
            session.add(turn)
            await session.commit()
            return turn

    async def finish(self, call_id: str, outcome: CallOutcome, ticket: str | None = None) -> Call:
        """Set the final outcome once; a second finish (e.g. after a controller restart) keeps the first."""
        async with self.db.session() as session:
            call = await session.get(Call, call_id)
            if call is None:
                raise NotFound(f"call {call_id} not found")
            if call.outcome != CallOutcome.in_progress.value:
                return call
            call.outcome = outcome.value
            call.ended_at = self.clock()
            if ticket:
                call.ticket = ticket
            await session.commit()
            return call

    async def in_progress(self, controller: str | None = None) -> list[Call]:
        async with self.db.session() as session:
            q = select(Call).where(Call.outcome == CallOutcome.in_progress.value)
            if controller is not None:
                q = q.where(Call.controller == controller)
            return list((await session.scalars(q)).all())

    @staticmethod
    async def containment_rate(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> float | None:
        """Bot containment: inbound calls settled by the bot alone (outcome `answered`: no human, no order)
        ÷ inbound calls that ended, started in [start, end). Calls that failed on our side are left out."""
        finished = (CallOutcome.answered, CallOutcome.work_order, CallOutcome.transferred, CallOutcome.abandoned)
        row = (
            await session.execute(
                select(
                    func.count(Call.id),
                    func.count(Call.id).filter(Call.outcome == CallOutcome.answered.value),
                ).where(
                    Call.direction == "in",
                    Call.started_at >= start,
                    Call.started_at < end,
                    Call.outcome.in_([o.value for o in finished]),
                )
            )
        ).one()
        return round(row[1] / row[0], 4) if row[0] else None

    # -- reading (API) --------------------------------------------------------------------------
    @staticmethod
    async def get(session: AsyncSession, call_id: str) -> Call:
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id} not found")
        return call

    @staticmethod
    async def list(
        session: AsyncSession,
        *,
        caller: str | None = None,
        since: dt.datetime | None = None,
        outcome: CallOutcome | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[tuple[Call, int]], int]:
        q = select(Call)
        if caller:
            q = q.where(Call.caller == caller)
        if since:
            if since.tzinfo is None:
                raise BadRequest("since needs a timezone, e.g. 2026-11-25T08:00:00+08:00")
            q = q.where(Call.started_at >= since)
        if outcome:
            q = q.where(Call.outcome == outcome.value)
        total = await session.scalar(select(func.count()).select_from(q.subquery()))
        n_turns = select(func.count(Turn.id)).where(Turn.call_id == Call.id).scalar_subquery()
        rows = await session.execute(
            q.add_columns(n_turns).order_by(Call.started_at.desc(), Call.id).limit(limit).offset(offset)
        )
        return [(call, n) for call, n in rows.all()], int(total or 0)
