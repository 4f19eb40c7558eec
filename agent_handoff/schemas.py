"""API shapes for seats, queues, callbacks and contact-centre statistics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_handoff.models import Priority

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]+/[\w.@:-]{1,60}$")] | None = None
    ready: bool = True
    # The Asterisk node the seat phone is on (several nodes: each has its own PJSIP/agent1 …); default: the API's own.
    node: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{0,16}$")] | None = None


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["available", "paused", "wrap_up"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] = ""


class AgentOut(BaseModel):
    id: int
    username: str
    name: str
    endpoint: str
    skills: dict[str, int]
    state: str
    reason: str
    since: dt.datetime
    idle_since: dt.datetime | None = None
    call_id: str | None = None
    wrap_until: dt.datetime | None = None
    node: str = ""


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    queue: Short | None = None
    skill: Short | None = None
    priority: Priority | None = None


class WrapUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    call_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    end: bool = True  # wrap-up done: back to available now


class QueueEntryOut(BaseModel):
    call_id: str
    caller: str
    queue: str
    priority: str
    skill: str | None
    state: str
    kind: str
    position: int | None
    waited_seconds: float
    agent_id: int | None = None
    node: str = ""  # the Asterisk node holding the caller


class QueueOut(BaseModel):
    queue: str
    waiting: int
    longest_wait_seconds: float
    entries: list[QueueEntryOut]


class SeatsOverview(BaseModel):
    queues: list[QueueOut]
    agents_by_state: dict[str, list[AgentOut]]
    calls_in_progress: list[QueueEntryOut]


class CallbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    phone: str
    reason: str
    queue: str
    skill: str | None
    priority: str
    status: str
    queued_at: dt.datetime
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    attempts: int
    max_attempts: int
    last_result: str
    agent_id: int | None
    completed_at: dt.datetime | None


class DepartmentLine(BaseModel):
    code: str
    name: str
    hotline: str
    skill: str


class StatsBucket(BaseModel):
    start: dt.datetime
    offered: int = Field(description="calls that reached the hotline (inbound)")
    bot_contained: int
    transferred: int = Field(description="calls the bot handed to the seats (entered the queue)")
    answered: int = Field(description="queued calls a person answered")
    abandoned: int
    callback_requested: int
    abandon_rate: float | None
    average_speed_of_answer_s: float | None
    service_level: float | None
    average_handle_s: float | None
    average_after_call_work_s: float | None
    transfer_to_human_rate: float | None
    bot_containment_rate: float | None
    repeat_caller_rate: float | None


class CallStats(BaseModel):
    bucket: Literal["hour", "day"]
    timezone: str
    start: dt.datetime
    end: dt.datetime
    total: StatsBucket
    buckets: list[StatsBucket]
    definitions: dict[str, Any] = {}
