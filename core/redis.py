"""Redis for live state only. Every caller must tolerate Redis being down (degrade, never lose records)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)


def make_redis(url: str) -> aioredis.Redis:
    # One immediate retry on a fresh connection when a pooled one turns out dead: after a Redis restart every
    # idle pooled connection fails its next command ("Connection closed by server") although Redis is back.
    # No retry on timeouts: a hung Redis costs one socket_timeout per command, not several.
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


async def redis_ok(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("redis unavailable: %s", exc)
        return False
