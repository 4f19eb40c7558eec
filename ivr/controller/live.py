"""Live call state in Redis: which controller owns which channel, and which controllers are alive.

    ivr:ctl:<controller_id>      "1" with a short TTL, refreshed by the controller's heartbeat
    ivr:call:<channel_id>        hash {owner, state, caller, started}   (claimed with HSETNX on owner)

A controller only handles a channel it could claim (or whose owner is dead), so two controllers - or
one that restarts and sees the same channel again - never handle a call twice. Redis is live state
only: if it is unreachable, calls proceed (logged), the database keeps the records.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

HEARTBEAT_TTL = 15
CALL_TTL = 4 * 3600


class LiveCalls:
    def __init__(self, redis: aioredis.Redis, controller_id: str) -> None:
        self.r = redis
        self.controller_id = controller_id

    async def heartbeat(self) -> None:
        try:
            await self.r.set(f"ivr:ctl:{self.controller_id}", "1", ex=HEARTBEAT_TTL)
        except (RedisError, OSError) as exc:
            log.warning("ivr heartbeat failed: %s", exc)

    async def alive(self, controller_id: str) -> bool:
        try:
            return bool(await self.r.exists(f"ivr:ctl:{controller_id}"))
        except (RedisError, OSError):
            return False

    async def claim(self, channel_id: str, caller: str) -> bool:
        """True when this controller may handle the channel."""
        key = f"ivr:call:{channel_id}"
        try:
            if await self.r.hsetnx(key, "owner", self.controller_id):
                await self.r.hset(key, mapping={"caller": caller, "state": "new", "started": str(time.time())})
                await self.r.expire(key, CALL_TTL)
                return True
            owner = await self.r.hget(key, "owner")
            if owner == self.controller_id:
                return True
            if owner and await self.alive(owner):
                log.info("channel %s is handled by live controller %s", channel_id, owner)
                return False
            await self.r.hset(key, "owner", self.controller_id)  # its owner is dead: take it over
            return True
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, handling %s without a claim: %s", channel_id, exc)
            return True

    async def set_state(self, channel_id: str, state: str) -> None:
        try:
            await self.r.hset(f"ivr:call:{channel_id}", "state", state)
        except (RedisError, OSError):
            pass

    async def get(self, channel_id: str) -> dict[str, Any]:
        try:
            return dict(await self.r.hgetall(f"ivr:call:{channel_id}"))
        except (RedisError, OSError):
            return {}

    async def release(self, channel_id: str) -> None:
        try:
            await self.r.delete(f"ivr:call:{channel_id}")
        except (RedisError, OSError):
            pass
