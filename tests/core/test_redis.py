"""The hotline's Redis client against a real redis-server of the test's own that is restarted and frozen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis import make_redis
from tests.services import PrivateRedis


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as r:
        yield r


async def test_commands_work_again_at_once_after_a_restart(private_redis: PrivateRedis) -> None:
    """Pooled connections die with the server; the first command on each must not fail once Redis is back."""
    client = make_redis(private_redis.url())
    try:
        await asyncio.gather(*(client.blpop(["nothing"], timeout=0.1) for _ in range(3)))  # 3 pooled connections
        assert await client.set("k", "1")
        private_redis.restart()
        results = await asyncio.gather(*(client.get("k") for _ in range(3)), return_exceptions=True)
        assert results == [None] * 3  # Redis came back empty; no "Connection closed by server" on stale ones
    finally:
        await client.aclose()


async def test_down_or_hung_redis_fails_fast(private_redis: PrivateRedis) -> None:
    """Callers degrade on errors, so an error must come quickly: no retry loop against a dead or hung server."""
    client = make_redis(private_redis.url())
    try:
        await client.set("k", "1")
        private_redis.freeze()
        t0 = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await client.get("k")
        hung = time.monotonic() - t0
        private_redis.stop()
        t0 = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        down = time.monotonic() - t0
        print(f"hung Redis: error after {hung:.2f} s; stopped Redis: after {down:.3f} s")
        assert hung < 2.5 and down < 0.5  # one socket timeout (1 s); a refused connection at once
        private_redis.start()
        assert await client.set("k", "2") and await client.get("k") == "2"
    finally:
        await client.aclose()
