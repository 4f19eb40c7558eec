"""PostgreSQL crashes while orders are being created (issue #7): no acknowledged order is lost, a retry with the
same Idempotency-Key never makes a second order, the API answers 503 with a message while the database is away
and recovers by itself, ticket numbers stay unique, the KPI rollup stays exact.

A private cluster (tests.services.PrivatePostgres) is crashed (immediate stop: backends killed, no checkpoint,
crash recovery on start) under a real `hotline api` process; the shared server on :5432 is never touched.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text

from config.settings import Settings
from hotline.app import create_app
from core.audit import AuditLog
from hotline.container import Container
from core.db import Database
from tests.conftest import PASSWORD, REPO_ROOT, make_settings, prepare_database
from tests.pg_proxy import CommitCutProxy
from tests.services import PrivatePostgres, free_port
from work_orders import kpi_rollup, kpis
from work_orders.models import WorkOrder, WorkOrderEvent
from work_orders.routing import TaxonomyCache
from work_orders.tickets import sequence_name

CREATORS = 12  # concurrent clients
ORDERS_EACH = 14
HOTSPOT = "青山区人民路馨苑小区东门"  # a gazetteer place: later reports there become hotspot children
CATEGORIES = ("road.manhole_cover", "utilities.water", "road.damage")
UNAVAILABLE = "database temporarily unavailable"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
async def database(cluster: PrivatePostgres, redis_url: str) -> AsyncIterator[Database]:
    """The hotline database on the private cluster, migrated and seeded, the KPI rollup built; and a connection
    pool of the test's own (it lives through the crashes too)."""
    url = await cluster.create_database("hotline")
    await prepare_database(url, redis_url)
    db = Database(url)
    await kpi_rollup.compact(db, ZoneInfo(make_settings(url, redis_url).timezone))
    yield db
    await db.dispose()


@dataclass
class ApiProcess:
    """`hotline api` as a process of its own, as deployed."""

    settings: Settings
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.settings.database_url, "REDIS_URL": self.settings.redis_url,
               "HOTLINE_ENV": "test", "HOTLINE_SECRET_KEY": self.settings.secret_key,
               "HOTLINE_ADMIN_PASSWORD": PASSWORD, "HOTLINE_ARI_PASSWORD": "test-ari",
               "HOTLINE_RASA_URL": f"http://127.0.0.1:{free_port()}"}  # no bot here: a closed port
        log = open(REPO_ROOT / "var" / "log" / f"api-pg-restart-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "api", "--port", str(self.port),
                                      "--no-access-log"], cwd=REPO_ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(300):
                assert self.proc.poll() is None, f"hotline api exited; see {log.name}"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("hotline api did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)


@pytest.fixture(scope="module")
async def api(database: Database, redis_url: str) -> AsyncIterator[ApiProcess]:
    (REPO_ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    server = ApiProcess(make_settings(database.url, redis_url))
    await server.start()
    yield server
    server.stop()


@pytest.fixture
async def http(api: ApiProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=15) as client:
        r = await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


def order_body(creator: int, n: int) -> dict:
    """A unique caller per order (no repeat-call linking); every third report at the hotspot place."""
    return {"category": CATEGORIES[(creator + n) % len(CATEGORIES)],
            "description": f"第{creator}号来电人反映第{n}个问题，路面井盖松动",
            "address": HOTSPOT if n % 3 == 0 else f"东河区幸福里{creator}栋{n}号",
            "caller_phone": f"139{creator:04d}{n:04d}", "channel": "phone"}


@dataclass
class Outcomes:
    acks: dict[str, list[dict]] = field(default_factory=lambda: collections.defaultdict(list))  # key → 2xx bodies
    statuses: collections.Counter = field(default_factory=collections.Counter)
    bad: list[str] = field(default_factory=list)  # anything but 2xx or a proper 503
    first_ack_after: dict[float, float] = field(default_factory=dict)  # restart time → first 2xx after it

    @property
    def acked(self) -> int:
        return len(self.acks)


async def create_until_acknowledged(http: httpx.AsyncClient, key: str, body: dict, out: Outcomes,
                                    deadline: float) -> None:
    """What a well-behaved client does: on 503 (or a lost connection) send the same request, same key, again."""
    while time.monotonic() < deadline:
        try:
            r = await http.post("/v1/work-orders", json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            out.bad.append(f"{key}: {type(exc).__name__} {exc}")
            await asyncio.sleep(0.2)
            continue
        out.statuses[r.status_code] += 1
        if r.status_code in (200, 201):
            out.acks[key].append(r.json())
            now = time.monotonic()
            for restarted in out.first_ack_after:
                if restarted <= now and not out.first_ack_after[restarted]:
                    out.first_ack_after[restarted] = now - restarted
            return
        if r.status_code != 503 or UNAVAILABLE not in r.json().get("detail", "") or "Retry-After" not in r.headers:
            out.bad.append(f"{key}: {r.status_code} {r.text[:200]}")
        await asyncio.sleep(0.15)
    out.bad.append(f"{key}: never acknowledged")


async def wait_for(condition, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_orders_survive_postgres_crashes(http: httpx.AsyncClient, api: ApiProcess, cluster: PrivatePostgres,
                                               database: Database) -> None:
    out = Outcomes()
    deadline = time.monotonic() + 180
    api_pid = api.proc.pid if api.proc else None

    async def creator(c: int) -> None:
        for n in range(ORDERS_EACH):
            await create_until_acknowledged(http, f"crash-test-{c:02d}-{n:03d}", order_body(c, n), out, deadline)

    async def crasher() -> None:
        total = CREATORS * ORDERS_EACH
        await wait_for(lambda: out.acked >= total // 4)
        # 1: crash, stay down a while (clients must get 503s), come back.
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.start)
        out.first_ack_after[time.monotonic()] = 0.0
        await wait_for(lambda: out.acked >= total // 2)
        # 2: crash and restart at once, cutting whatever is in flight.
        await asyncio.to_thread(cluster.restart, "immediate")
        out.first_ack_after[time.monotonic()] = 0.0

    await asyncio.gather(crasher(), *(creator(c) for c in range(CREATORS)))
    print(f"\nresponses {dict(out.statuses)}; first order acknowledged "
          f"{', '.join(f'{s:.2f}' for s in out.first_ack_after.values())} s after each restart")

    assert out.bad == [], out.bad[:10]
    assert out.statuses[503] > 0, "the clients never saw the outage"
    assert api.proc is not None and api.proc.poll() is None and api.proc.pid == api_pid, "the API was restarted"
    assert all(0 < s < 30 for s in out.first_ack_after.values()), out.first_ack_after  # recovered by itself

    keys = [f"crash-test-{c:02d}-{n:03d}" for c in range(CREATORS) for n in range(ORDERS_EACH)]
    assert sorted(out.acks) == sorted(keys)
    phones = {order_body(c, n)["caller_phone"] for c in range(CREATORS) for n in range(ORDERS_EACH)}
    async with database.session() as session:
        every = (await session.scalars(select(WorkOrder))).all()
        storm = [o for o in every if o.caller_phone in phones]
        stored = {o.idempotency_key: o for o in storm}
        creates = collections.Counter((await session.scalars(
            select(WorkOrderEvent.order_id).where(WorkOrderEvent.action == "create"))).all())
        audits = collections.Counter((await session.scalars(
            select(AuditLog.object_id).where(AuditLog.action == "work_order.create"))).all())
    # Exactly one order per request (none without its key, none twice), the one every acknowledgement named.
    assert len(storm) == len(keys) and sorted(stored, key=str) == sorted(keys), sorted(stored, key=str)[:5]
    for key, answers in out.acks.items():
        order = stored[key]
        assert {(a["id"], a["ticket"]) for a in answers} == {(order.id, order.ticket)}, key
        assert creates[order.id] == 1 and audits[order.ticket] == 1, f"{key}: history/audit not with the order"
    tickets = [o.ticket for o in every]
    assert len(set(tickets)) == len(tickets)
    assert all(re.fullmatch(r"\d{8}-\d{4,6}", t) for t in tickets)
    replays = sum(1 for answers in out.acks.values() if answers[-1]["outcome"] == "replayed")
    print(f"{len(stored)} orders, {replays} acknowledged only on a retry (committed before the crash cut the answer)")

    await after_crash_sequences_continue(http, database, tickets)
    await kpis_match_reference(database)


async def after_crash_sequences_continue(http: httpx.AsyncClient, database: Database, tickets: list[str]) -> None:
    """The day's sequence is logged ahead in the WAL: after crash recovery it continues past every ticket issued
    (with a gap), never handing out a number again."""
    r = await http.post("/v1/work-orders", json=order_body(99, 1), headers={"Idempotency-Key": "after-the-crashes"})
    assert r.status_code == 201, r.text
    day, number = r.json()["ticket"].split("-")
    same_day = [int(t.split("-")[1]) for t in tickets if t.startswith(day + "-")]
    assert int(number) > max(same_day, default=0)
    async with database.session() as session:
        last = await session.scalar(text(f"SELECT last_value FROM {sequence_name(day)}"))
    assert last >= int(number)
    print(f"ticket numbers of the day: {len(same_day)} issued up to {max(same_day, default=0)}, next {int(number)}")


async def kpis_match_reference(database: Database) -> None:
    """The trigger-maintained KPI rollup (change log written in each order's transaction, folded into daily rows)
    equals the reference query over work_orders after the crashes, folded or not."""
    tz = ZoneInfo(make_settings(database.url, "redis://unused").timezone)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(days=2), now + dt.timedelta(days=2)
    start = dt.datetime.combine(start.astimezone(tz).date(), dt.time(), tz)
    end = dt.datetime.combine(end.astimezone(tz).date(), dt.time(), tz)
    for fold in (False, True):
        if fold:
            await kpi_rollup.compact(database, tz)
        async with database.session() as session:
            tax = await TaxonomyCache().get(session)
            total = await session.scalar(select(func.count()).select_from(WorkOrder))
            for group_by in (None, "department", "category"):
                fast = await kpis.compute(session, tax, start, end, group_by, now, tz=tz)
                assert fast == await kpis.compute_raw(session, tax, start, end, group_by, now), (fold, group_by)
            assert (await kpis.compute(session, tax, start, end, None, now, tz=tz))["total"]["orders"] == total


async def test_outage_is_a_clear_503_and_the_api_recovers(http: httpx.AsyncClient, api: ApiProcess,
                                                         cluster: PrivatePostgres) -> None:
    body = order_body(98, 1)
    assert (await http.get("/v1/work-orders?limit=1")).status_code == 200
    await asyncio.to_thread(cluster.stop, "immediate")
    try:
        create = {"json": body, "headers": {"Idempotency-Key": "outage-1"}}
        for method, path, kw in (("POST", "/v1/work-orders", create), ("GET", "/v1/work-orders?limit=1", {}),
                                 ("GET", "/v1/work-orders/1", {})):
            r = await http.request(method, path, **kw)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert UNAVAILABLE in r.json()["detail"] and "数据库" in r.json()["detail"]
            assert int(r.headers["Retry-After"]) > 0
        assert (await http.get("/healthz")).status_code == 200  # alive: nothing to gain from restarting it
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    finally:
        await asyncio.to_thread(cluster.start)
    r = await http.post("/v1/work-orders", json=body, headers={"Idempotency-Key": "outage-1"})
    assert r.status_code == 201, r.text  # the same process, its pool reconnected
    assert (await http.get("/readyz")).json()["checks"]["database"] is True


async def test_commit_answer_lost_then_retry_gives_the_same_order(cluster: PrivatePostgres, database: Database,
                                                                  redis_url: str) -> None:
    """The one ambiguous failure: the server commits, the answer never arrives. The API cannot know, says 503; the
    client's retry with the same key gets the stored order (200 replayed), not a second one."""
    proxy = CommitCutProxy(cluster.port)
    port = await proxy.start()
    settings = make_settings(database.url.replace(f":{cluster.port}/", f":{port}/"), redis_url)
    container = Container.build(settings)
    try:
        app = create_app(settings, container=container)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as client:
            token = (await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})).json()
            h = {"Authorization": f"Bearer {token['access_token']}"}
            warm = await client.post("/v1/work-orders", json=order_body(97, 1), headers=h)
            assert warm.status_code == 201, warm.text  # the day's sequence exists: the next COMMIT is the order's
            h["Idempotency-Key"] = "commit-answer-lost"
            proxy.cut_next_order()
            first = await client.post("/v1/work-orders", json=order_body(97, 2), headers=h)
            assert proxy.commits_cut == 1
            assert first.status_code == 503 and UNAVAILABLE in first.json()["detail"], first.text
            retry = await client.post("/v1/work-orders", json=order_body(97, 2), headers=h)
            assert retry.status_code == 200 and retry.json()["outcome"] == "replayed", retry.text
        async with database.session() as session:
            stored = (await session.scalars(
                select(WorkOrder).where(WorkOrder.caller_phone == order_body(97, 2)["caller_phone"]))).all()
        assert [(o.id, o.ticket) for o in stored] == [(retry.json()["id"], retry.json()["ticket"])]
    finally:
        await container.close()
        await proxy.close()
