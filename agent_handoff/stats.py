"""Contact-centre statistics from the call records (definitions: agent_handoff/STATS.md)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_handoff.schemas import CallStats, StatsBucket
from telephony.models import Call, CallOutcome

REPEAT_WINDOW = dt.timedelta(days=7)


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def bucket_stats(start: dt.datetime, calls: list[Call], earlier: dict[str, list[dt.datetime]],
                 service_level_s: float) -> StatsBucket:
    inbound = [c for c in calls if c.direction == "in" and c.outcome != CallOutcome.in_progress.value]
    queued = [c for c in inbound if c.queued_at is not None]
    answered = [c for c in queued if c.agent_answered_at is not None]
    callback = [c for c in queued if (c.context or {}).get("queue_result") == "callback_requested"]
    abandoned = [c for c in queued if c.agent_answered_at is None and c not in callback]
    contained = [c for c in inbound if c.queued_at is None and c.outcome == CallOutcome.answered.value]
    asa = [(c.agent_answered_at - c.queued_at).total_seconds() for c in answered]  # type: ignore[operator]
    in_sl = [s for s in asa if s <= service_level_s]
    handle = [(c.ended_at - c.agent_answered_at).total_seconds() for c in answered if c.ended_at]  # type: ignore[operator]
    acw = [c.wrap_up_seconds for c in answered if c.wrap_up_seconds is not None]
    repeat = 0
    for c in inbound:
        if any(c.started_at - REPEAT_WINDOW <= t < c.started_at for t in earlier.get(c.caller, [])):
            repeat += 1
    return StatsBucket(
        start=start, offered=len(inbound), bot_contained=len(contained), transferred=len(queued),
        answered=len(answered), abandoned=len(abandoned), callback_requested=len(callback),
        abandon_rate=_ratio(len(abandoned), len(queued)),
        average_speed_of_answer_s=_mean(asa),
        service_level=_ratio(len(in_sl), len(queued) - len(callback)),
        average_handle_s=_mean(handle), average_after_call_work_s=_mean(acw),  # type: ignore[arg-type]
        transfer_to_human_rate=_ratio(len(queued), len(inbound)),
        bot_containment_rate=_ratio(len(contained), len(inbound)),
        repeat_caller_rate=_ratio(repeat, len(inbound)),
    )


async def call_stats(session: AsyncSession, start: dt.datetime, end: dt.datetime, bucket: str, tz: str,
                     service_level_s: float = 20.0) -> CallStats:
    zone = ZoneInfo(tz)
    rows = list((await session.scalars(
        select(Call).where(Call.started_at >= start - REPEAT_WINDOW, Call.started_at < end))).all())
    history: dict[str, list[dt.datetime]] = defaultdict(list)
    for c in rows:
        if c.direction == "in" and c.caller:
            history[c.caller].append(c.started_at)
    period = [c for c in rows if c.started_at >= start]
    groups: dict[dt.datetime, list[Call]] = defaultdict(list)
    for c in period:
        local = c.started_at.astimezone(zone)
        key = local.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            key = key.replace(hour=0)
        groups[key].append(c)
    buckets = [bucket_stats(k, groups[k], history, service_level_s) for k in sorted(groups)]
    return CallStats(bucket=bucket, timezone=tz, start=start, end=end,  # type: ignore[arg-type]
                     total=bucket_stats(start.astimezone(zone), period, history, service_level_s),
                     buckets=buckets,
                     definitions={"service_level_seconds": service_level_s, "repeat_window_days": 7,
                                  "see": "agent_handoff/STATS.md"})
