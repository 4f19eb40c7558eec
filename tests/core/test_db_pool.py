"""The connection pool after the server has closed its connections (what a restart or a crash does to them):
the next requests get new connections and succeed; nothing reaches the caller. The server itself is never
restarted here (tests/work_orders/test_postgres_restart.py crashes a private cluster); its backends that serve
this test's pool are terminated instead."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from sqlalchemy import text

from hotline.container import Container
from core.db import Database
from tests.services import PG_HOST, PG_PORT


async def terminate_backends(database: str) -> set[int]:
    """Ends every server process connected to `database` (but the one doing it) and waits until they are gone."""
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        pids = {r["pid"] for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database)}
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        for _ in range(100):
            alive = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids))
            if not alive:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"backends {pids} still running")
    finally:
        await admin.close()
    await asyncio.sleep(0.1)  # the end of each stream reaches the pool's connections
    return pids


async def test_pool_replaces_connections_the_server_closed(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        async with db.session() as session:  # two connections in the pool
            async with db.session() as other:
                before = {await session.scalar(text("SELECT pg_backend_pid()")),
                          await other.scalar(text("SELECT pg_backend_pid()"))}
        assert db.engine.pool.checkedin() == 2
        assert before <= await terminate_backends(pg_url.rsplit("/", 1)[1])
        for _ in range(3):
            async with db.session() as session:
                pid = await session.scalar(text("SELECT pg_backend_pid()"))
            assert pid not in before
    finally:
        await db.dispose()


async def test_requests_succeed_after_the_server_closed_the_pools_connections(
    client: httpx.AsyncClient, container: Container, headers: dict[str, dict[str, str]]
) -> None:
    me = [client.get("/v1/auth/me", headers=headers[role]) for role in ("admin", "agent", "supervisor")]
    assert [r.status_code for r in await asyncio.gather(*me)] == [200, 200, 200]  # several pooled connections
    assert container.db.engine.pool.checkedin() >= 1
    await terminate_backends(container.settings.database_url.rsplit("/", 1)[1])
    for key, username in (("admin", "admin"), ("agent", "agent"), ("supervisor", "super"), ("dept_a", "dept_a")):
        r = await client.get("/v1/auth/me", headers=headers[key])
        assert r.status_code == 200, r.text
        assert r.json()["username"] == username
