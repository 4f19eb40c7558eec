"""Live seat state in Redis: agents, queue entries, recent handle times, pub/sub to consoles.

Keys (prefix ``ah:``):
  agent:{id}      hash   live agent (state, reason, since, idle_since, call_id, wrap_until, endpoint, skills)
  agents          set    logged-in agent ids
  queue           zset   waiting call ids, score = priority rank * 1e13 + queued_at ms (one global order)
  entry:{call}    string JSON of a QueueEntry (waiting, offered, connected, held ...); removed when the call ends
  chan:{channel}  string "role:call_id" for every seat-side channel (agent legs, departments, outbound)
  aht:{queue}     list   recent handle times (seconds), newest first
  ev:agent:{id}   pubsub screen pops and live transcript for one agent
  ev:supervisor   pubsub queue/agent changes for dashboards
  node:{node}     pubsub requests for one node's seats runtime from other processes (a call back in the queue)
  alive:{node}    string set by a node's seats runtime: missing means Redis came back empty (see mark_alive)

Shared by every process of every node. An agent's seat phone and a queued call each belong to one Asterisk
node (`node`, "" with a single node): a node's dispatcher only offers its own calls to its own agents.

Everything here may be lost: agent history and call records are in the database, and
``HandoffService.rebuild()`` (run at start, and by a running runtime that finds Redis emptied) restores queue
entries from the calls still marked as queued.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from agent_handoff.models import PRIORITY_RANK, AgentState, Priority

P = "ah:"

# available -> ringing, atomically, so two dispatchers (or a pause racing a dispatch) can't double-book.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'available' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'reason', '', 'call_id', ARGV[1], 'since', ARGV[2])
return 1
"""


@dataclass
class AgentLive:
    id: int
    username: str
    name: str
    endpoint: str
    skills: dict[str, int]
    state: str = AgentState.paused.value
    reason: str = ""
    since: float = 0.0
    idle_since: float = 0.0
    call_id: str = ""
    wrap_until: float = 0.0
    node: str = ""  # the Asterisk node the seat phone is on

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> "AgentLive":
        return cls(
            id=int(h["id"]), username=h.get("username", ""), name=h.get("name", ""),
            endpoint=h.get("endpoint", ""), skills=json.loads(h.get("skills") or "{}"),
            state=h.get("state", AgentState.paused.value), reason=h.get("reason", ""),
            since=float(h.get("since") or 0), idle_since=float(h.get("idle_since") or 0),
            call_id=h.get("call_id", ""), wrap_until=float(h.get("wrap_until") or 0), node=h.get("node", ""),
        )

    def to_hash(self) -> dict[str, str]:
        d = asdict(self)
        d["skills"] = json.dumps(self.skills, ensure_ascii=False)
        return {k: str(v) for k, v in d.items()}

    def has_skill(self, skill: str | None) -> bool:
        return not skill or self.skills.get(skill, 0) > 0


@dataclass
class QueueEntry:
    call_id: str
    channel_id: str
    caller: str
    queue: str
    priority: str = Priority.normal.value
    skill: str | None = None
    queued_at: float = field(default_factory=time.time)
    state: str = "entering"  # entering | waiting | offered | connected | held | ended
    kind: str = "inbound"  # inbound | callback
    callback_id: int | None = None
    agent_id: int | None = None
    agent_channel: str | None = None
    bridge_id: str | None = None
    transfer_channel: str | None = None  # a department being consulted (warm transfer)
    tried: list[int] = field(default_factory=list)  # agents that let it ring out
    offered_at: float | None = None
    answered_at: float | None = None
    announced_at: float | None = None
    callback_offered: bool = False  # the last announcement offered "press 1 for a callback"
    transferred_to: str | None = None  # department code after a completed warm transfer
    node: str = ""  # the Asterisk node holding the caller's channel (agents of that node only)

    @property
    def score(self) -> float:
        return PRIORITY_RANK[Priority(self.priority)] * 1e13 + self.queued_at * 1000

    def waited(self, now: float) -> float:
        return max(0.0, now - self.queued_at)


class SeatStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.r = redis
        self._claim = redis.register_script(_CLAIM)

    # ------------------------------------------------------------------ agents
    async def put_agent(self, agent: AgentLive) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.delete(f"{P}agent:{agent.id}")
            p.hset(f"{P}agent:{agent.id}", mapping=agent.to_hash())
            p.sadd(f"{P}agents", agent.id)
            await p.execute()

    async def get_agent(self, agent_id: int) -> AgentLive | None:
        h = await self.r.hgetall(f"{P}agent:{agent_id}")
        return AgentLive.from_hash(h) if h else None

    async def agents(self) -> list[AgentLive]:
        ids = await self.r.smembers(f"{P}agents")
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as p:
            for i in sorted(ids, key=int):
                p.hgetall(f"{P}agent:{i}")
            hashes = await p.execute()
        return [AgentLive.from_hash(h) for h in hashes if h]

    async def update_agent(self, agent_id: int, **fields: Any) -> None:
        await self.r.hset(f"{P}agent:{agent_id}", mapping={k: "" if v is None else str(v) for k, v in fields.items()})

    async def remove_agent(self, agent_id: int) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.delete(f"{P}agent:{agent_id}")
            p.srem(f"{P}agents", agent_id)
            await p.execute()

    async def claim(self, agent_id: int, call_id: str, now: float) -> bool:
        return bool(await self._claim(keys=[f"{P}agent:{agent_id}"], args=[call_id, now]))

    async def mark_alive(self, node: str) -> None:
        """Leave a mark that lasts as long as Redis keeps its data (set once the queue is complete)."""
        await self.r.set(f"{P}alive:{node}", "1")

    async def marked_alive(self, node: str) -> bool:
        """False when the mark is gone: Redis is fresh (restarted without persistence, flushed), so whatever it
        held - the queue - has to be rebuilt."""
        return bool(await self.r.exists(f"{P}alive:{node}"))

    # ------------------------------------------------------------------ queue entries
    async def save_entry(self, e: QueueEntry) -> None:
        await self.r.set(f"{P}entry:{e.call_id}", json.dumps(asdict(e), ensure_ascii=False))

    async def add_waiting(self, e: QueueEntry) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.set(f"{P}entry:{e.call_id}", json.dumps(asdict(e), ensure_ascii=False))
            p.zadd(f"{P}queue", {e.call_id: e.score})
            await p.execute()

    async def entry(self, call_id: str) -> QueueEntry | None:
        raw = await self.r.get(f"{P}entry:{call_id}")
        return QueueEntry(**json.loads(raw)) if raw else None

    async def leave_queue(self, call_id: str) -> None:
        await self.r.zrem(f"{P}queue", call_id)

    async def requeue(self, e: QueueEntry) -> None:
        await self.r.zadd(f"{P}queue", {e.call_id: e.score})

    async def drop_entry(self, call_id: str) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.delete(f"{P}entry:{call_id}")
            p.zrem(f"{P}queue", call_id)
            await p.execute()

    async def queued_ids(self) -> list[str]:
        return list(await self.r.zrange(f"{P}queue", 0, -1))

    async def entries(self, call_ids: list[str] | None = None) -> list[QueueEntry]:
        """Given ids in order, or every live entry (waiting first, in queue order)."""
        if call_ids is None:
            waiting = await self.queued_ids()
            others = [k.removeprefix(f"{P}entry:") async for k in self.r.scan_iter(f"{P}entry:*", count=500)]
            call_ids = waiting + sorted(set(others) - set(waiting))
        if not call_ids:
            return []
        raws = await self.r.mget([f"{P}entry:{c}" for c in call_ids])
        return [QueueEntry(**json.loads(r)) for r in raws if r]

    async def position(self, call_id: str) -> int | None:
        rank = await self.r.zrank(f"{P}queue", call_id)
        return None if rank is None else int(rank) + 1

    # ------------------------------------------------------------------ channels
    async def map_channel(self, channel_id: str, role: str, call_id: str) -> None:
        await self.r.set(f"{P}chan:{channel_id}", f"{role}:{call_id}", ex=24 * 3600)

    async def channel(self, channel_id: str) -> tuple[str, str] | None:
        v = await self.r.get(f"{P}chan:{channel_id}")
        if not v:
            return None
        role, _, call_id = v.partition(":")
        return role, call_id

    async def unmap_channel(self, channel_id: str) -> None:
        await self.r.delete(f"{P}chan:{channel_id}")

    async def take_channel(self, channel_id: str) -> tuple[str, str] | None:
        """Get and forget (StasisEnd and ChannelDestroyed both arrive: only the first one acts)."""
        v = await self.r.getdel(f"{P}chan:{channel_id}")
        if not v:
            return None
        role, _, call_id = v.partition(":")
        return role, call_id

    # ------------------------------------------------------------------ what callers were told
    async def note_announcement(self, call_id: str, text: str, at: float) -> None:
        async with self.r.pipeline(transaction=False) as p:
            p.rpush(f"{P}ann:{call_id}", json.dumps({"at": at, "text": text}, ensure_ascii=False))
            p.expire(f"{P}ann:{call_id}", 24 * 3600)
            await p.execute()

    async def announcements(self, call_id: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in await self.r.lrange(f"{P}ann:{call_id}", 0, -1)]

    async def set_pop(self, agent_id: int, pop: dict[str, Any] | None) -> None:
        if pop is None:
            await self.r.delete(f"{P}pop:{agent_id}")
        else:
            await self.r.set(f"{P}pop:{agent_id}", json.dumps(pop, ensure_ascii=False, default=str), ex=12 * 3600)

    async def pop(self, agent_id: int) -> dict[str, Any] | None:
        raw = await self.r.get(f"{P}pop:{agent_id}")
        return json.loads(raw) if raw else None

    # ------------------------------------------------------------------ handle times
    async def push_handle_time(self, queue: str, seconds: float) -> None:
        async with self.r.pipeline(transaction=False) as p:
            p.lpush(f"{P}aht:{queue}", f"{seconds:.1f}")
            p.ltrim(f"{P}aht:{queue}", 0, 49)
            await p.execute()

    async def handle_time(self, queue: str, default: float) -> float:
        vals = [float(v) for v in await self.r.lrange(f"{P}aht:{queue}", 0, 49)]
        return sum(vals) / len(vals) if vals else default

    # ------------------------------------------------------------------ pub/sub
    async def publish_agent(self, agent_id: int, message: dict[str, Any]) -> None:
        await self.r.publish(f"{P}ev:agent:{agent_id}", json.dumps(message, ensure_ascii=False, default=str))

    async def publish_supervisors(self, message: dict[str, Any]) -> None:
        await self.r.publish(f"{P}ev:supervisor", json.dumps(message, ensure_ascii=False, default=str))

    @staticmethod
    def agent_channel_name(agent_id: int) -> str:
        return f"{P}ev:agent:{agent_id}"

    @staticmethod
    def supervisor_channel_name() -> str:
        return f"{P}ev:supervisor"

    async def tell_node(self, node: str, message: dict[str, Any]) -> None:
        await self.r.publish(self.node_channel_name(node), json.dumps(message, ensure_ascii=False))

    @staticmethod
    def node_channel_name(node: str) -> str:
        return f"{P}node:{node}"
