"""What the dialogue service remembers between two turns of a conversation (beside Rasa's own tracker).

The question the bot asked last (what answer it expects), a clarification waiting for the caller's yes/no or
choice, and how often the caller was not understood in a row. Kept in Redis so that any API process can
serve the next turn; in this process's memory while Redis is unreachable.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from understanding.expect import Expect

log = logging.getLogger(__name__)

STATE_TTL_SECONDS = 4 * 3600


@dataclass
class Pending:
    """A question of ours the caller must answer before the bot goes on.

    kind: "intent" (confirm one reading: `intents[0]`), "choice" (which of `intents`), "kb" (offer KB entry
    `kb_title` for the question `text`), "category_change" (an order in progress: change to `intents[0]`?),
    "district" (which district the road `road` is in), "correction" (which part of the read-back is wrong).
    """

    kind: str
    text: str = ""  # what the caller said that led to the question
    intents: list[str] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    kb_title: str | None = None
    road: str | None = None


@dataclass
class DialogueState:
    expect: str = Expect.FREE.value
    requested_slot: str | None = None  # the form slot the bot asked for last
    pending: Pending | None = None
    misses: int = 0  # answers to the same question we could not read, in a row
    clarifications: int = 0  # clarifications in a row that did not settle it
    readback: str | None = None  # the read-back question last asked (said again after a correction)
    asked_more: bool = False  # the bot's last words asked whether there is anything else
    slots: dict[str, Any] = field(default_factory=dict)  # the order in progress as the bot last reported it

    @property
    def expecting(self) -> Expect:
        try:
            return Expect(self.expect)
        except ValueError:
            return Expect.FREE

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str | bytes | None) -> "DialogueState":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            pending = data.pop("pending", None)
            state = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
            state.pending = Pending(**pending) if isinstance(pending, dict) else None
            return state
        except (ValueError, TypeError):
            log.warning("unreadable dialogue state dropped")
            return cls()


class DialogueStates:
    """Per-session state in Redis (`dialogue:state:<session>`), in memory while Redis is down."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._local: dict[str, str] = {}

    async def load(self, session_id: str) -> DialogueState:
        try:
            raw = await self.redis.get(f"dialogue:state:{session_id}")
        except Exception:  # noqa: BLE001 - Redis down: this process's copy
            raw = self._local.get(session_id)
        return DialogueState.loads(raw)

    async def save(self, session_id: str, state: DialogueState) -> None:
        raw = state.dumps()
        self._local[session_id] = raw
        try:
            await self.redis.set(f"dialogue:state:{session_id}", raw, ex=STATE_TTL_SECONDS)
            self._local.pop(session_id, None)
        except Exception:  # noqa: BLE001
            pass

    async def drop(self, session_id: str) -> None:
        self._local.pop(session_id, None)
        try:
            await self.redis.delete(f"dialogue:state:{session_id}")
        except Exception:  # noqa: BLE001
            pass
