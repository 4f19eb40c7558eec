from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from telephony.models import CallOutcome


class TurnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: dt.datetime
    speaker: str
    transcript: str
    dtmf: str | None
    intent: str | None
    confidence: float | None
    action: str | None
    category: str | None
    reply: str
    latency_ms: dict[str, Any]


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    caller: str
    direction: str
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    outcome: CallOutcome
    ticket: str | None
    node: str  # the Asterisk node the call is pinned to ("" = the single default node)
    controller: str  # the IVR controller instance that handled it
    queue: str | None
    priority: str | None
    queued_at: dt.datetime | None
    agent_id: int | None
    agent_answered_at: dt.datetime | None
    wrap_up_code: str | None
    context: dict[str, Any]
    turns: list[TurnOut] = Field(default_factory=list)


class CallSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    caller: str
    direction: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: CallOutcome
    ticket: str | None
    node: str = ""
    controller: str = ""
    n_turns: int = 0


class CallPage(BaseModel):
    items: list[CallSummary]
    total: int
    limit: int
    offset: int
