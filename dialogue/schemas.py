from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from understanding.expect import Expect

BotAction = Literal[
    "kb_answer", "work_order", "collecting", "status_query", "urge", "withdraw",
    "human", "emergency", "chitchat", "fallback", "clarify",
]

SESSION_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
PHONE = r"^\+?[0-9]{3,20}$"


class TurnIn(BaseModel):
    text: str = Field(max_length=500, description="what the citizen said (transcript) or typed; '/silence' for no input")
    caller: str | None = Field(default=None, pattern=PHONE, description="caller number, on the first turn")


class WorkOrderRef(BaseModel):
    ticket: str
    department: str | None = None
    response_deadline: str | None = None


class Handoff(BaseModel):
    queue: str
    priority: Literal["normal", "urgent", "emergency"]
    reason: str


class TurnOut(BaseModel):
    replies: list[str]
    intent: str | None
    confidence: float | None
    action: BotAction
    category: str | None = None
    kb_entry_id: int | None = None
    work_order: WorkOrderRef | None = None
    handoff: Handoff | None = None
    slots: dict[str, object] = Field(default_factory=dict, description="what the bot has collected so far")
    degraded: bool = Field(default=False, description="true when the bot service was down or too slow")
    menu: dict[str, str] | None = Field(default=None, description="keypad menu offered when degraded")
    expect: Expect = Field(default=Expect.FREE, description="the answer the bot's last question expects "
                                                          "(the IVR listens for it: yes/no, address, phone...)")


class EndOut(BaseModel):
    session_id: str
    ended: bool
