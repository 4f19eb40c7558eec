"""Redis for live state only. Every caller must tolerate Redis being down (degrade, never lose records)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def make_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=10,
        retry_on_timeout=False,
    )


async def redis_ok(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("redis unavailable: %s", exc)
        return False
