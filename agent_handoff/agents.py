"""Agent seats: login/logout, state changes (live in Redis, every change also a row in the database)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import update

from agent_handoff.models import AgentState, AgentStateEvent
from agent_handoff.store import AgentLive, SeatStore
from core.auth.models import User
from core.db import Database, utcnow
from core.errors import BadRequest, Conflict, NotFound
from telephony.models import Call

log = logging.getLogger(__name__)

# What an agent may switch to by hand, from which states. ringing/on_call are set by the call flow.
MANUAL = {
    AgentState.available: {AgentState.paused, AgentState.wrap_up, AgentState.available},
    AgentState.paused: {AgentState.available, AgentState.wrap_up, AgentState.paused},
}


def parse_skills(text: str) -> dict[str, int]:
    """"综合:3,劳动保障" -> {"综合": 3, "劳动保障": 1} (level 1..9, default 1)."""
    out: dict[str, int] = {}
    for part in (text or "").replace("，", ",").split(","):
        name, _, level = part.strip().partition(":")
        if not name:
            continue
        try:
            out[name.strip()] = max(1, min(9, int(level))) if level else 1
        except ValueError:
            raise BadRequest(f"skill level must be a number 1-9: {part!r}") from None
    return out


class AgentService:
    def __init__(self, db: Database, store: SeatStore, *, wrap_up_seconds: float,
                 clock: Callable[[], dt.datetime] = utcnow, node: str = "") -> None:
        self.db = db
        self.node = node  # where seats log in unless told otherwise (this process's Asterisk node)
        self.store = store
        self.wrap_up_seconds = wrap_up_seconds
        self.clock = clock
        # Called after any change that may let a waiting call be routed (the dispatcher's wake-up).
        self.on_change: list[Callable[[AgentLive], Awaitable[None] | None]] = []

    def now(self) -> float:
        return self.clock().timestamp()

    async def _record(self, agent_id: int, state: AgentState, previous: str | None, reason: str = "",
                      call_id: str | None = None) -> None:
        async with self.db.session() as session:
            session.add(AgentStateEvent(agent_id=agent_id, at=self.clock(), state=state.value,
                                        previous=previous, reason=reason[:64], call_id=call_id))
            await session.commit()

    async def _changed(self, agent: AgentLive) -> None:
        await self.store.publish_agent(agent.id, {"type": "state", "state": agent.state, "reason": agent.reason,
                                                  "call_id": agent.call_id or None})
        await self.store.publish_supervisors({"type": "agent", "id": agent.id, "state": agent.state,
                                              "reason": agent.reason})
        for cb in self.on_change:
            res = cb(agent)
            if res is not None:
                await res

    async def get(self, agent_id: int) -> AgentLive:
        agent = await self.store.get_agent(agent_id)
        if agent is None:
            raise NotFound("agent is not logged in to a seat")
        return agent

    async def login(self, user: User, *, endpoint: str | None = None, ready: bool = True,
                    node: str | None = None) -> AgentLive:
        """`node`: the Asterisk node the seat phone is on (every node has its own PJSIP/agent1 …)."""
        node = self.node if node is None else node
        endpoint = endpoint or user.sip_endpoint
        if not endpoint or "/" not in endpoint:
            raise BadRequest("no seat phone: give a SIP endpoint such as PJSIP/agent1")
        for other in await self.store.agents():
            if other.endpoint == endpoint and other.node == node and other.id != user.id:
                raise Conflict(f"seat {endpoint}{f' on node {node}' if node else ''} is taken by {other.username}")
        current = await self.store.get_agent(user.id)
        if current and current.state in (AgentState.ringing.value, AgentState.on_call.value):
            raise Conflict("cannot change seats during a call")
        now = self.now()
        state = AgentState.available if ready else AgentState.paused
        agent = AgentLive(id=user.id, username=user.username, name=user.display_name or user.username,
                          endpoint=endpoint, skills=parse_skills(user.skills), state=state.value,
                          reason="" if ready else "登录", since=now, idle_since=now, node=node)
        await self._record(user.id, state, current.state if current else AgentState.logged_out.value,
                           "login")
        await self.store.put_agent(agent)
        await self._changed(agent)
        return agent

    async def logout(self, agent_id: int) -> None:
        agent = await self.get(agent_id)
        if agent.state in (AgentState.ringing.value, AgentState.on_call.value):
            raise Conflict(f"cannot log out while {agent.state}; finish the call first")
        await self._record(agent_id, AgentState.logged_out, agent.state, "logout")
        await self.store.remove_agent(agent_id)
        agent.state = AgentState.logged_out.value
        await self._changed(agent)

    async def request(self, agent_id: int, state: AgentState, reason: str = "") -> AgentLive:
        """A state the agent asks for in the console (available, paused with a reason, wrap_up)."""
        agent = await self.get(agent_id)
        current = AgentState(agent.state)
        if current == AgentState.wrap_up and state == AgentState.available:
            return await self.end_wrap_up(agent_id)
        if state not in MANUAL or current not in MANUAL.get(state, set()) | {AgentState.wrap_up}:
            raise Conflict(f"cannot go from {current.value} to {state.value} by hand",
                           allowed=sorted(s.value for s, src in MANUAL.items() if current in src))
        if state == AgentState.paused and not reason:
            raise BadRequest("a pause needs a reason (e.g. 休息, 培训, 会议)")
        return await self.set_state(agent_id, state, reason=reason)

    async def set_state(self, agent_id: int, state: AgentState, *, reason: str = "", call_id: str | None = None,
                        wrap_seconds: float | None = None) -> AgentLive:
        agent = await self.get(agent_id)
        previous = agent.state
        now = self.now()
        if call_id is None:  # wrap-up and calls keep the call they belong to; idle states have none
            keep = state in (AgentState.wrap_up, AgentState.ringing, AgentState.on_call)
            call_id = agent.call_id if keep else ""
        fields: dict[str, object] = {"state": state.value, "reason": reason, "since": now, "call_id": call_id}
        if state == AgentState.available:
            fields["idle_since"] = now
        if state == AgentState.wrap_up:
            fields["wrap_until"] = now + (self.wrap_up_seconds if wrap_seconds is None else wrap_seconds)
        await self._record(agent_id, state, previous, reason, call_id or None)
        await self.store.update_agent(agent_id, **fields)
        agent = await self.get(agent_id)
        await self._changed(agent)
        return agent

    async def end_wrap_up(self, agent_id: int) -> AgentLive:
        agent = await self.get(agent_id)
        if agent.state != AgentState.wrap_up.value:
            raise Conflict(f"not in wrap-up (state {agent.state})")
        if agent.call_id:
            spent = max(0.0, self.now() - agent.since)
            async with self.db.session() as session:
                await session.execute(update(Call).where(Call.id == agent.call_id, Call.wrap_up_seconds.is_(None))
                                      .values(wrap_up_seconds=round(spent, 1)))
                await session.commit()
        return await self.set_state(agent_id, AgentState.available, reason="")

    async def expire_wrap_ups(self) -> int:
        """Wrap-up over → available (runs every dispatcher tick; survives restarts: wrap_until is in Redis)."""
        n, now = 0, self.now()
        for agent in await self.store.agents():
            if agent.state == AgentState.wrap_up.value and agent.wrap_until and agent.wrap_until <= now:
                try:
                    await self.end_wrap_up(agent.id)
                    n += 1
                except Conflict:
                    pass
        return n
