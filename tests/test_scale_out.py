"""Scale-out: two Asterisk nodes, each with its own IVR controller and seats runtime (`hotline worker`), and two
API processes (`hotline api`), all real processes on one PostgreSQL database and one Redis.

Node b (SIP 5160, ARI 8098) and node c (SIP 5260, ARI 8198) run in the shared Asterisk chroot next to the default
node (which other test runs use and restart: nothing here touches it). The API processes have no node of their
own; they reach both through HOTLINE_ARI_NODES. The bot is down (dead Rasa port): callers use the keypad.

    node b: asterisk-b ── controller B ── worker B (seats runtime of b)      API 1 ─┐
    node c: asterisk-c ── controller C ── worker C (seats runtime of c)      API 2 ─┴─ PostgreSQL, Redis
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from config.settings import Settings
from core.auth.models import Role
from hotline.container import Container
from hotline.seed import seed_all
from hotline.services.asterisk import SETUP_SCRIPT, AsteriskNode, AsteriskService
from tests.support.g711 import rms
from tests.support.sip_caller import SipCall, SipCaller, SipPhone
from tests.conftest import PASSWORD, REPO_ROOT, add_user, make_settings, reset_database

DEAD_RASA = "http://127.0.0.1:9"  # nothing listens: the dialogue degrades to the keypad menu at once
CLOSED_ARI = "http://127.0.0.1:9"  # an API process has no Asterisk node of its own
NODES = {
    "b": AsteriskNode("b", sip_port=5160, ari_port=8098, rtp_ports=(11100, 11499), seat_ports=(5171, 5172, 5173, 5174)),
    "c": AsteriskNode("c", sip_port=5260, ari_port=8198, rtp_ports=(11500, 11999), seat_ports=(5271, 5272, 5273, 5274)),
}


# ------------------------------------------------------------------------------------------ processes
@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")

    def terminate(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)  # controllers hand live calls over, workers stop cleanly

    def wait(self) -> None:
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, popen, log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    settings: Settings
    container: Container  # the test's own view of the shared database and Redis
    asterisk: dict[str, AsteriskService]
    controllers: dict[str, Process]
    workers: dict[str, Process]
    apis: list[str]  # base URLs of API 1 and API 2
    processes: list[Process] = field(default_factory=list)

    def controller_id(self, node: str) -> str:
        return f"ivr-{socket.gethostname()}-{self.controllers[node].popen.pid}"

    def check_alive(self) -> None:
        for p in self.processes:
            p.check_alive()


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    s = settings
    return dict(
        os.environ, HOTLINE_ENV="test", DATABASE_URL=s.database_url, REDIS_URL=s.redis_url,
        HOTLINE_SECRET_KEY=s.secret_key, HOTLINE_ADMIN_PASSWORD=s.admin_password, HOTLINE_ARI_USER=s.ari_user,
        HOTLINE_ARI_PASSWORD=s.ari_password, HOTLINE_RASA_URL=DEAD_RASA,
        HOTLINE_HANDOFF_RING_SECONDS="10", HOTLINE_HANDOFF_WRAP_UP_SECONDS="1",
        HOTLINE_HANDOFF_ANNOUNCE_SECONDS="60", HOTLINE_HANDOFF_CALLBACK_OFFER_SECONDS="3600",
        # No outbound calls: a caller who gives up must not make a node dial a port some other test listens on.
        HOTLINE_HANDOFF_QUIET_HOURS=json.dumps(["00:00", "23:59"]),
        HOTLINE_HANDOFF_OUTBOUND_DIAL="PJSIP/caller/sip:{number}@127.0.0.1:9",
        HOTLINE_ESCALATION_INTERVAL_SECONDS="3600", **extra,
    )


async def wait_for(what: str, cond: Callable[[], Any], timeout: float, cluster_check: Callable[[], None],
                   step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster_check()
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


async def http_ok(url: str, auth: tuple[str, str] | None = None) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as c:
            return (await c.get(url, auth=auth)).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def asterisk_nodes() -> Iterator[dict[str, AsteriskService]]:
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)  # ~0.02 s when cached
    nodes = {name: AsteriskService(ari_user="hotline", ari_password="test-ari", ari_url=node.ari_url, node=node,
                                   log_file=REPO_ROOT / "var" / "log" / f"asterisk-{name}.out")
             for name, node in NODES.items()}
    started: list[AsteriskService] = []
    try:
        for svc in nodes.values():
            svc.restart()  # a node left over from an interrupted run holds calls we know nothing of
            started.append(svc)
        yield nodes
    finally:
        for svc in started:
            svc.stop()


@pytest.fixture(scope="module")
async def cluster(pg_url: str, redis_url: str, asterisk_nodes: dict[str, AsteriskService],
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup-speech.sh")], check=True,
                   stdout=subprocess.DEVNULL)  # the controllers' models (cached)
    settings = make_settings(pg_url, redis_url)
    container = Container.build(settings)
    await container.redis.flushdb()
    await reset_database(container.db)
    await seed_all(container)
    for username, role in (("super", Role.supervisor), ("clerk", Role.agent), ("seat_b", Role.agent),
                           ("seat_c", Role.agent), ("spare", Role.agent)):
        await add_user(container, username, role)

    logs = tmp_path_factory.mktemp("scale-out")
    processes: list[Process] = []
    controllers, workers = {}, {}
    ari_nodes = json.dumps({name: node.ari_url for name, node in NODES.items()})
    for name, node in NODES.items():
        env = process_env(settings, HOTLINE_NODE=name, HOTLINE_ARI_URL=node.ari_url)
        workers[name] = spawn(f"worker-{name}", ["-m", "hotline.cli", "worker"], env, logs)
        controllers[name] = spawn(f"controller-{name}", ["-m", "hotline.cli", "ivr", "--lazy-models"], env, logs)
        processes += [workers[name], controllers[name]]
    apis = []
    for i in (1, 2):
        port = free_port()
        env = process_env(settings, HOTLINE_ARI_URL=CLOSED_ARI, HOTLINE_ARI_NODES=ari_nodes)
        processes.append(spawn(f"api-{i}", ["-m", "hotline.cli", "api", "--port", str(port), "--workers", "1",
                                                "--no-access-log"],
                               env, logs))
        apis.append(f"http://127.0.0.1:{port}")
    c = Cluster(settings, container, asterisk_nodes, controllers, workers, apis, processes)
    try:
        auth = ("hotline", "test-ari")
        for name, node in NODES.items():
            await wait_for(f"seats runtime of node {name}",
                           lambda url=node.ari_url: http_ok(f"{url}/ari/applications/hotline-seats", auth),
                           120, c.check_alive)
            await wait_for(f"controller of node {name}", lambda p=controllers[name]: "serving app" in p.output(),
                           120, c.check_alive)
        for url in apis:
            await wait_for(f"API {url}", lambda url=url: http_ok(f"{url}/healthz"), 60, c.check_alive)
        yield c
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait()
        for p in processes:
            print(f"----- {p.name} (last lines)\n{p.output()[-1500:]}")
        await container.close()


async def token(api: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as c:
        r = await c.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# ------------------------------------------------------------------------------------------ work orders
async def test_work_orders_are_shared_by_the_api_processes(cluster: Cluster) -> None:
    api1, api2 = (httpx.AsyncClient(base_url=u, timeout=20) for u in cluster.apis)
    async with api1, api2:
        clerk1 = await token(cluster.apis[0], "clerk")
        clerk2 = await token(cluster.apis[1], "clerk")
        key = f"scale-out-{uuid.uuid4().hex}"
        body = {"category": "road.damage", "description": "人民路中段路面塌了一个大坑，车辆经过很危险",
                "address": "人民路中段", "caller_phone": "13911112222", "channel": "phone"}
        # The same Idempotency-Key sent to both processes at once: one order.
        r1, r2 = await asyncio.gather(
            api1.post("/v1/work-orders", json=body, headers={**clerk1, "Idempotency-Key": key}),
            api2.post("/v1/work-orders", json=body, headers={**clerk2, "Idempotency-Key": key}))
        assert {r1.status_code, r2.status_code} == {200, 201}, (r1.text, r2.text)
        order = r1.json()
        assert r2.json()["id"] == order["id"] and r2.json()["ticket"] == order["ticket"]
        again = await api2.post("/v1/work-orders", json=body, headers={**clerk2, "Idempotency-Key": key})
        assert again.status_code == 200 and again.json()["id"] == order["id"]
        listed = (await api1.get("/v1/work-orders", params={"phone": "13911112222"}, headers=clerk1)).json()
        assert listed["total"] == 1

        # A department user made through API 1 accepts the order through API 2; API 1 reads the result.
        admin1 = await token(cluster.apis[0], cluster.settings.admin_user)
        dept = order["department_code"]
        r = await api1.post("/v1/users", headers=admin1, json={
            "username": "dept_scale", "password": PASSWORD, "role": "department", "department_code": dept})
        assert r.status_code == 201, r.text
        dept2 = await token(cluster.apis[1], "dept_scale")
        seen = await api2.get(f"/v1/work-orders/{order['ticket']}", headers=dept2)
        assert seen.status_code == 200 and seen.json()["id"] == order["id"], seen.text
        r = await api2.post(f"/v1/work-orders/{order['id']}/accept", json={"note": "已签收"}, headers=dept2)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        detail = (await api1.get(f"/v1/work-orders/{order['id']}", headers=clerk1)).json()
        assert detail["status"] == "accepted"
        assert [(e["action"], e["actor"]) for e in detail["history"]][-1] == ("accept", "dept_scale")
        # The transition is refused the same way by either process (state lives in the database only).
        twice = await api1.post(f"/v1/work-orders/{order['id']}/accept", json={}, headers=await token(
            cluster.apis[0], "dept_scale"))
        assert twice.status_code == 409, twice.text


# ------------------------------------------------------------------------------------------ calls
def heard_between(call: SipCall, t0: float, t1: float, threshold: float = 300.0) -> bool:
    pk = [p.pcm for p in call.received if t0 <= p.arrival <= t1]
    return bool(pk) and rms(np.concatenate(pk)) > threshold


async def test_calls_stay_on_their_node_and_seats_are_shared(cluster: Cluster) -> None:
    c = cluster
    api1, api2 = (httpx.AsyncClient(base_url=u, timeout=20) for u in c.apis)
    async with api1, api2, \
            SipPhone(local_port=5171, answer_after=0.3, user="agent1") as seat_b_phone, \
            SipPhone(local_port=5272, answer_after=0.3, user="agent2") as seat_c_phone, \
            SipPhone(local_port=5172, answer_after=None, user="agent2") as wrong_b_phone, \
            SipPhone(local_port=5271, answer_after=None, user="agent1") as wrong_c_phone, \
            SipCaller(user="13911110001", server=("127.0.0.1", NODES["b"].sip_port)) as caller_b, \
            SipCaller(user="13911110002", server=("127.0.0.1", NODES["c"].sip_port)) as caller_c:
        sup1, sup2 = await token(c.apis[0], "super"), await token(c.apis[1], "super")
        seat_b1, seat_b2 = await token(c.apis[0], "seat_b"), await token(c.apis[1], "seat_b")
        seat_c1, seat_c2 = await token(c.apis[0], "seat_c"), await token(c.apis[1], "seat_c")

        # Seats log in through the API process of the *other* side, paused; node b's agent1 and node c's agent2.
        r = await api2.post("/v1/agents/me/login", headers=seat_b2, json={"endpoint": "PJSIP/agent1", "ready": False})
        assert r.status_code == 400, r.text  # an API process with several nodes must be told the seat's node
        r = await api2.post("/v1/agents/me/login", headers=seat_b2,
                            json={"endpoint": "PJSIP/agent1", "ready": False, "node": "b"})
        assert r.status_code == 200 and r.json()["node"] == "b", r.text
        r = await api1.post("/v1/agents/me/login", headers=seat_c1,
                            json={"endpoint": "PJSIP/agent2", "ready": False, "node": "c"})
        assert r.status_code == 200 and r.json()["node"] == "c", r.text
        # A seat is a phone on a node: node b's agent1 is taken, node c's agent1 is another seat.
        spare = await token(c.apis[0], "spare")
        r = await api1.post("/v1/agents/me/login", headers=spare, json={"endpoint": "PJSIP/agent1", "node": "b"})
        assert r.status_code == 409, r.text
        r = await api1.post("/v1/agents/me/login", headers=spare,
                            json={"endpoint": "PJSIP/agent1", "node": "c", "ready": False})
        assert r.status_code == 200, r.text
        assert (await api2.post("/v1/agents/me/logout", headers=spare)).status_code == 204

        # One call on each node: only that node's controller takes it.
        call_b = await caller_b.dial("12345")
        call_c = await caller_c.dial("12345")
        await wait_for("greetings", lambda: call_b.first_audio_after(0) and call_c.first_audio_after(0), 20,
                       c.check_alive)

        async def record(api: httpx.AsyncClient, headers: dict[str, str], caller: str) -> dict[str, Any] | None:
            items = (await api.get("/v1/calls", params={"caller": caller}, headers=headers)).json()["items"]
            return items[0] if items else None

        rec_b = await wait_for("call record b", lambda: record(api2, sup2, "13911110001"), 10, c.check_alive)
        rec_c = await wait_for("call record c", lambda: record(api1, sup1, "13911110002"), 10, c.check_alive)
        assert rec_b["node"] == "b" and rec_b["id"].startswith("b-") and rec_b["controller"] == c.controller_id("b")
        assert rec_c["node"] == "c" and rec_c["id"].startswith("c-") and rec_c["controller"] == c.controller_id("c")
        assert rec_b == await record(api1, sup1, "13911110001")  # the same record through either process
        assert rec_c == await record(api2, sup2, "13911110002")
        owners = {k: (await c.container.redis.hgetall(f"ivr:call:{r['id']}"))["owner"]
                  for k, r in (("b", rec_b), ("c", rec_c))}
        assert owners == {"b": c.controller_id("b"), "c": c.controller_id("c")}

        # Keypad 0: each controller hands its caller to the seats (queued in the shared Redis).
        await call_b.send_dtmf("0")
        await call_c.send_dtmf("0")

        async def queued(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
            overview = (await api.get("/v1/seats", headers=headers)).json()
            entries = [e for q in overview["queues"] for e in q["entries"]]
            return {e["call_id"]: e for e in entries if e["state"] == "waiting"}

        both = {rec_b["id"], rec_c["id"]}
        waiting = await wait_for("both calls queued", lambda: _all_in(queued(api1, sup1), both), 20, c.check_alive)
        assert waiting[rec_b["id"]]["node"] == "b" and waiting[rec_c["id"]]["node"] == "c"
        assert set(await queued(api2, sup2)) >= both  # controller B's entry seen through API 2 and vice versa
        for rec, node in ((rec_b, "b"), (rec_c, "c")):
            detail = (await api1.get(f"/v1/calls/{rec['id']}", headers=sup1)).json()
            assert detail["queue"] and detail["outcome"] == "in_progress"  # the seat side owns it now
            assert detail["controller"] == c.controller_id(node)
        # No seat is available yet: nothing rings anywhere.
        await asyncio.sleep(1.0)
        assert not (seat_b_phone.calls or seat_c_phone.calls or wrong_b_phone.calls or wrong_c_phone.calls)

        # Seats made available through the other API process; each node offers its call to its own seat.
        r = await api1.post("/v1/agents/me/state", headers=seat_b1, json={"state": "available"})
        assert r.status_code == 200, r.text
        r = await api2.post("/v1/agents/me/state", headers=seat_c2, json={"state": "available"})
        assert r.status_code == 200, r.text
        agent_leg_b = await seat_b_phone.wait_call(timeout=15)
        agent_leg_c = await seat_c_phone.wait_call(timeout=15)
        await agent_leg_b.wait_answered(5)
        await agent_leg_c.wait_answered(5)

        async def connected(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any] | None:
            r = await api.get("/v1/agents/me/call", headers=headers)
            return r.json() if r.status_code == 200 and r.json().get("state") == "connected" else None

        pop_b = await wait_for("seat b connected", lambda: connected(api2, seat_b2), 10, c.check_alive)
        pop_c = await wait_for("seat c connected", lambda: connected(api1, seat_c1), 10, c.check_alive)
        assert pop_b["call_id"] == rec_b["id"] and pop_c["call_id"] == rec_c["id"]
        assert not (wrong_b_phone.calls or wrong_c_phone.calls)  # no node rang a seat of the other node

        # Seat b puts its caller back in the queue through API 1 (no node of its own): node b's seats runtime
        # plays hold music to it and offers it again.
        t_transfer = time.monotonic()
        r = await api1.post("/v1/agents/me/call/transfer", headers=seat_b1, json={"queue": "hotline"})
        assert r.status_code == 202 and r.json()["state"] == "waiting", r.text
        again = await seat_b_phone.wait_call(timeout=15)  # after the 1 s wrap-up
        assert heard_between(call_b, t_transfer + 0.3, time.monotonic()), "no hold music while back in the queue"
        await again.wait_answered(5)
        await wait_for("seat b connected again", lambda: connected(api1, seat_b1), 10, c.check_alive)

        await call_b.hangup()
        await call_c.hangup()

        async def finished(api: httpx.AsyncClient, call_id: str) -> dict[str, Any] | None:
            d = (await api.get(f"/v1/calls/{call_id}", headers=sup2)).json()
            return d if d["outcome"] != "in_progress" else None

        seat_ids = {u: (await api1.get("/v1/agents/me", headers=h)).json()["id"]
                    for u, h in (("b", seat_b1), ("c", seat_c1))}
        for rec, node in ((rec_b, "b"), (rec_c, "c")):
            done = await wait_for(f"call {node} finished", lambda i=rec["id"]: finished(api2, i), 15, c.check_alive)
            assert done["outcome"] == "transferred" and done["agent_id"] == seat_ids[node]
            assert done["node"] == node and done["controller"] == c.controller_id(node)
        assert not (wrong_b_phone.calls or wrong_c_phone.calls)
    # Each controller saw only its own node's call.
    assert rec_c["id"] not in c.controllers["b"].output() and rec_b["id"] not in c.controllers["c"].output()


async def _all_in(entries: Any, wanted: set[str]) -> dict[str, dict[str, Any]] | None:
    got = await entries
    return got if wanted <= set(got) else None
