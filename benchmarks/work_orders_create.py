"""Create-order latency at a paced 200 req/s against a real uvicorn API on PostgreSQL (loopback only).

Run by hand: `.venv/bin/python benchmarks/work_orders_create.py [--rate 200] [--seconds 15]`.
A throw-away database is created, migrated and seeded, the API is started as a subprocess on a free loopback
port, requests are sent on a fixed schedule (open loop: a slow reply does not delay the next send) and the
p50/p95/p99 of each request's latency are printed. Goal: p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from tests import services  # noqa: E402
from tests.conftest import PASSWORD, make_settings  # noqa: E402

PLACES = ["东河区滨河路", "青山区人民路", "云湖区望湖路", "金川区冶金路", "北岭县县前街"]
CATS = [("road.damage", "路面有个大坑"), ("lighting.streetlight", "路灯不亮"), ("environment.noise", "工地夜间施工噪音"),
        ("utilities.water", "停水了"), ("sanitation.garbage", "垃圾没人清运"), ("traffic.parking", "车辆占用消防通道")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("API did not start")


async def main(rate: float, seconds: float) -> None:
    services.ensure_postgres()
    services.ensure_redis()
    url, name = await services.create_pg_database("hotline_bench_wo")
    port = free_port()
    proc = None
    try:
        await asyncio.to_thread(upgrade, url)
        settings = make_settings(url, f"redis://127.0.0.1:{services.REDIS_PORT}/8")
        container = Container.build(settings)
        await container.start()
        for seeder in container.seeders:
            await seeder(container)
        await container.close()
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.redis_url, "HOTLINE_ENV": "test",
               "HOTLINE_SECRET_KEY": settings.secret_key, "HOTLINE_ADMIN_PASSWORD": PASSWORD,
               "HOTLINE_ARI_PASSWORD": "bench", "HOTLINE_API_HOST": "127.0.0.1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "hotline.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
            tok = (await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})).json()
            h = {"Authorization": f"Bearer {tok['access_token']}"}
            rng = random.Random(7)

            def body(i: int) -> dict:
                cat, text = rng.choice(CATS)
                return {"category": cat, "description": f"{text}（压测{i}）", "address": f"{rng.choice(PLACES)}{i}号",
                        "caller_phone": f"139{i:08d}", "channel": "bench"}

            for i in range(20):  # warm-up: connections, caches
                await client.post("/v1/work-orders", json=body(10_000_000 + i), headers=h)
            n = int(rate * seconds)
            latencies: list[float] = []
            errors: dict[object, int] = {}

            async def one(i: int, at: float) -> None:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/work-orders", json=body(i), headers=h)
                    code = r.status_code
                except httpx.HTTPError:
                    code = -1
                latencies.append((time.perf_counter() - t0) * 1000)
                if code != 201:
                    errors[code] = errors.get(code, 0) + 1

            start = time.perf_counter() + 0.5
            t0 = time.perf_counter()
            tasks = [asyncio.create_task(one(i, start + i / rate)) for i in range(n)]
            _, pending = await asyncio.wait(tasks, timeout=seconds + 30)
            for t in pending:  # bounded in time: whatever has not answered by then is reported, not awaited
                t.cancel()
            if pending:
                errors["unanswered"] = len(pending)
            wall = time.perf_counter() - t0 - 0.5
        q = statistics.quantiles(latencies, n=100)
        print(f"create order over HTTP (uvicorn, 1 worker, PostgreSQL): {n} requests at {rate:.0f}/s "
              f"(achieved {n / wall:.0f}/s)")
        print(f"  p50 {q[49]:.1f} ms   p95 {q[94]:.1f} ms   p99 {q[98]:.1f} ms   max {max(latencies):.1f} ms   "
              f"errors {errors or 0}")
        print(f"  goal p99 <= 50 ms: {'met' if q[98] <= 50 else 'NOT met'}  (cpu cores: {os.cpu_count()})")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        await services.drop_pg_database(name)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=15.0)
    a = p.parse_args()
    asyncio.run(main(a.rate, min(a.seconds, 120.0)))
