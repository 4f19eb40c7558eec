"""CPU the API app spends per request, measured in-process (no HTTP server, no network, no load generator).

Run by hand: `HOTLINE_TEST_REDIS_DB=12 .venv/bin/python benchmarks/api_request_cpu.py [--requests 2000]
[--only work-orders]`.

The real app (`create_app`, PostgreSQL over TCP, Redis) is called as an ASGI application, one request at a time,
for a few requests: the create-order intake (`POST /v1/work-orders`), an authenticated read that does almost
nothing itself (`GET /v1/auth/me`: auth, the session and the framework) and `GET /healthz` (no auth, no
database; the last route the router tries). Requests run one after another, so waiting for PostgreSQL costs no
CPU. Printed per request:
- the process CPU time, least of 5 rounds (other processes on a shared machine only ever add to it) and the
  median round; it still varies with the machine's load (caches, the reference loop shows how fast the machine
  was), so compare runs made close together;
- the number of function calls (Python and C, coroutine resumptions included) the interpreter made: the same
  on every run, whatever the machine is doing, so it shows what a change removed even on a busy machine.
The HTTP server's own share (uvicorn, httptools) is not in either: `work_orders_create.py` measures the whole
process under load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from hotline.app import create_app  # noqa: E402
from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from benchmarks.work_orders_create import calibration_ms  # noqa: E402 - the same reference loop
from tests import services  # noqa: E402
from tests.conftest import PASSWORD, TEST_REDIS_DB, make_settings  # noqa: E402

CLOSED = "http://127.0.0.1:9"  # Rasa/ARI are not needed here
ONLY = ""  # --only: measure just the requests whose label contains this


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
            "state": {}}


async def call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:  # type: ignore[no-untyped-def]
    """One request straight through the ASGI app; returns the status code."""
    sent = False
    status = 0

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope(method, path, headers), receive, send)
    return status


async def measure(app, label: str, n: int, make, rounds: int = 5) -> None:  # type: ignore[no-untyped-def]
    """make(i) -> (method, path, headers, body, expected statuses). n requests in `rounds` rounds: the least CPU
    of a round is printed (other processes on a shared machine only ever add to it), and the median."""
    if ONLY and ONLY not in label:
        return
    for i in range(min(200, n)):  # warm-up: caches, pool connections, prepared statements
        method, path, headers, body, ok = make(-1 - i)
        status = await call(app, method, path, headers, body)
        assert status in ok, (label, status)
    per_round = max(1, n // rounds)
    results = []
    for r in range(rounds):
        requests = [make(r * per_round + i) for i in range(per_round)]
        before, cpu, wall = os.times(), time.process_time(), time.perf_counter()
        for method, path, headers, body, ok in requests:
            status = await call(app, method, path, headers, body)
            if status not in ok:
                raise RuntimeError(f"{label}: HTTP {status}")
        after, cpu, wall = os.times(), time.process_time() - cpu, time.perf_counter() - wall
        # process_time is exact; the user/system split (clock ticks) is approximate
        user, system = after.user - before.user, after.system - before.system
        share = system / (user + system) if user + system else 0.0
        cpu_us = cpu / per_round * 1e6
        results.append((cpu_us, cpu_us * (1 - share), cpu_us * share, wall / per_round * 1e3))
    best, median = min(results), sorted(results)[len(results) // 2]
    calls = await function_calls(app, [make(10_000_000 + i) for i in range(50)])
    print(f"  {label:<24} {best[0]:6.0f} µs CPU per request (user ≈ {best[1]:.0f}, system ≈ {best[2]:.0f}, "
          f"{best[3]:.2f} ms wall; median round {median[0]:.0f} µs; {rounds} x {per_round} requests); "
          f"{calls:.0f} function calls per request", flush=True)


async def function_calls(app, requests: list[tuple]) -> float:  # type: ignore[no-untyped-def]
    """Function calls (Python and C, coroutine resumptions included) per request: a count of the interpreter's
    work that, unlike CPU time, does not depend on what else the machine is doing."""
    count = 0

    def profiler(frame, event: str, arg) -> None:  # type: ignore[no-untyped-def]
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    for method, path, headers, body, _ in requests:
        sys.setprofile(profiler)
        try:
            await call(app, method, path, headers, body)
        finally:
            sys.setprofile(None)
    return count / len(requests)


async def main(n: int) -> None:
    services.ensure_postgres()
    services.ensure_redis()
    url, name = await services.create_pg_database("hotline_bench_cpu")
    try:
        await asyncio.to_thread(upgrade, url)
        settings = make_settings(url, f"redis://127.0.0.1:{services.REDIS_PORT}/{TEST_REDIS_DB}",
                                 rasa_url=CLOSED, ari_url=CLOSED)
        container = Container.build(settings)
        await container.start()
        for seeder in container.seeders:
            await seeder(container)
        app = create_app(settings, container)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            login = await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
            token = login.json()["access_token"]
        auth = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"api")]
        json_auth = auth + [(b"content-type", b"application/json")]
        gc.collect()
        gc.freeze()  # as `hotline api` does

        def create(i: int) -> tuple:
            body = json.dumps({"category": "road.damage", "description": f"路面有个大坑（压测{i}）",
                               "address": f"东河区滨河路{i + 1000}号", "caller_phone": f"139{i + 1000:08d}",
                               "channel": "bench"}, ensure_ascii=False).encode()
            return "POST", "/v1/work-orders", json_auth + [(b"content-length", str(len(body)).encode())], body, (201,)

        print(f"API CPU per request, in-process (PostgreSQL over TCP, reference loop {calibration_ms():.0f} ms):")
        await measure(app, "GET /healthz", n, lambda i: ("GET", "/healthz", [], b"", (200,)))
        await measure(app, "GET /v1/auth/me", n, lambda i: ("GET", "/v1/auth/me", auth, b"", (200,)))
        await measure(app, "POST /v1/work-orders", n, create)
        await container.close()
    finally:
        await services.drop_pg_database(name)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--only", default="", help="just the requests whose label contains this (e.g. healthz)")
    a = p.parse_args()
    ONLY = a.only
    import uvloop

    uvloop.install()
    asyncio.run(main(a.requests))
