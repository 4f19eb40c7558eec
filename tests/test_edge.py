"""The SIP edge (Kamailio, config/kamailio/) in front of two Asterisk nodes, on the real stack.

Nodes b (SIP 5160) and c (SIP 5260), each with its IVR controller and seats runtime, as in tests/test_scale_out.py,
started by hotline/services/edge.py (what `make edge` runs); the edge listens on 127.0.0.1:5080. The bot is down
(dead Rasa port): callers hear the greeting and the keypad menu, which is all these tests need.

* `kamailio -c` accepts config/kamailio/kamailio.cfg, which listens on loopback only in development;
* 20 SIPp calls through the edge land on both nodes, and every call record is finalised;
* node b's Asterisk killed mid-run: the edge marks it down (printed: how fast), every new call goes to node c and
  is answered, the calls already on c go on and end normally; b restarted: it takes calls again.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from config.settings import Settings
from hotline.container import Container
from hotline.seed import seed_all
from hotline.services.edge import EdgeStack
from hotline.services.kamailio import CONFIG, EdgeError, EdgeNode, KamailioEdge
from tests.support.g711 import ulaw_encode
from tests.support.sip_caller import SipCall, SipCaller
from tests.conftest import REPO_ROOT, make_settings, reset_database
from tests.test_scale_out import http_ok, process_env

EDGE_PORT = 5080
SCENARIO = REPO_ROOT / "benchmarks" / "sipp" / "hotline_caller.xml"
MARK_DOWN_LIMIT = 5.0  # seconds from the kill to the edge taking the node out


# ------------------------------------------------------------------------------------------ configuration
def test_config_is_accepted_by_kamailio(tmp_path: Path) -> None:
    edge = KamailioEdge([EdgeNode("b", 5160), EdgeNode("c", 5260)], port=EDGE_PORT, run_dir=tmp_path)
    assert "config file ok" in edge.check()
    assert (tmp_path / "dispatcher.list").read_text().splitlines()[1:] == [
        "1 sip:127.0.0.1:5160 0 0 duid=b", "1 sip:127.0.0.1:5260 0 0 duid=c"]
    # The check can fail: one broken line is refused.
    broken = tmp_path / "broken.cfg"
    broken.write_text(CONFIG.read_text().replace("ds_select_dst(DS_SET, \"10\")", "ds_select_dest(DS_SET, \"10\")"))
    with pytest.raises(EdgeError):
        KamailioEdge([EdgeNode("b", 5160)], config=broken, run_dir=tmp_path).check()


def test_dev_config_listens_on_loopback_only() -> None:
    cfg = CONFIG.read_text()
    assert re.findall(r"^listen\s*=\s*(\S+)", cfg, re.M) == ["LISTEN"]
    assert re.search(r"^#!define LISTEN udp:127\.0\.0\.1:5080$", cfg, re.M)
    assert 'modparam("jsonrpcs", "transport", 0)' in cfg  # RPC on the unix control socket only


# ------------------------------------------------------------------------------------------ the stack
@pytest.fixture(scope="module")
async def edge_settings(pg_url: str, redis_url: str) -> AsyncIterator[Settings]:
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup-speech.sh")], check=True,
                   stdout=subprocess.DEVNULL)  # the controllers' models (cached)
    settings = make_settings(pg_url, redis_url)
    container = Container.build(settings)
    try:
        await container.redis.flushdb()
        await reset_database(container.db)
        await seed_all(container)
    finally:
        await container.close()
    yield settings


@pytest.fixture(scope="module")
def edge_stack(edge_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    stack = EdgeStack(count=2, ari_password="test-ari", env=process_env(edge_settings), edge_port=EDGE_PORT,
                      log_dir=tmp_path_factory.mktemp("edge"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        for name in ("kamailio", "controller-b", "controller-c"):
            log = stack.log_dir / (f"kamailio-{EDGE_PORT}.log" if name == "kamailio" else f"{name}.log")
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            print(f"----- {name} (last lines)\n{tail}")


async def calls_of(settings: Settings, caller_like: str) -> list[dict[str, Any]]:
    container = Container.build(settings)
    try:
        async with container.db.session() as session:
            rows = (await session.execute(text(
                "select id, caller, node, outcome, ended_at from calls where caller like :c order by started_at"),
                {"c": caller_like})).mappings().all()
        return [dict(r) for r in rows]
    finally:
        await container.close()


async def wait_until(what: str, cond: Any, timeout: float, stack: EdgeStack, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sipp_calls(tmp: Path, prefix: str, n: int, rate: int, call_ms: int, port: int = EDGE_PORT) -> tuple[int, int]:
    """n SIPp calls to 12345 through host port `port` (each `call_ms` of silence from the caller, then BYE);
    returns (successful, failed) from SIPp's statistics."""
    audio = tmp / f"silence-{call_ms}.ulaw"
    audio.write_bytes(ulaw_encode(np.zeros(8 * call_ms, dtype=np.int16)))
    scenario = tmp / "edge_caller.xml"
    scenario.write_text(string.Template(SCENARIO.read_text()).substitute(audio=audio, audio_ms=call_ms))
    callers = tmp / f"callers-{prefix}.csv"
    callers.write_text("SEQUENTIAL\n" + "".join(f"{prefix}{i:04d}\n" for i in range(n)))
    stats = tmp / f"stats-{prefix}.csv"
    cmd = [shutil.which("sipp") or "sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "12345",
           "-inf", str(callers), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
           "-mp", str(free_udp_port()), "-l", str(n), "-m", str(n), "-r", str(rate), "-nostdin", "-trace_stat",
           "-stf", str(stats), "-timeout", "120s", "-timeout_error"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    rows = [r.split(";") for r in stats.read_text().splitlines() if r.strip()] if stats.exists() else []
    assert rows, f"sipp wrote no statistics (exit {proc.returncode}): {proc.stderr[-2000:]}"
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


def finalised(record: dict[str, Any]) -> bool:
    return record["ended_at"] is not None and record["outcome"] not in ("in_progress", "failed")


async def test_twenty_sipp_calls_spread_over_both_nodes(edge_stack: EdgeStack, edge_settings: Settings,
                                                        tmp_path: Path) -> None:
    ok, failed = await asyncio.to_thread(sipp_calls, tmp_path, "1397700", 20, 10, 8000)
    assert (ok, failed) == (20, 0)

    async def all_finalised() -> list[dict[str, Any]] | None:
        records = await calls_of(edge_settings, "1397700%")
        return records if len(records) == 20 and all(finalised(r) for r in records) else None

    records = await wait_until("20 finalised records", all_finalised, 30, edge_stack)
    spread = {node: sum(r["node"] == node for r in records) for node in ("b", "c")}
    print(f"20 calls through the edge: node b {spread['b']}, node c {spread['c']}")
    assert spread["b"] + spread["c"] == 20 and min(spread.values()) >= 5, spread
    assert all(r["id"].startswith(f"{r['node']}-") for r in records)


async def dial(number: str, port: int = EDGE_PORT) -> tuple[SipCaller, SipCall]:
    caller = SipCaller(user=number, server=("127.0.0.1", port))
    await caller.__aenter__()
    return caller, await caller.dial("12345")


async def close(caller: SipCaller, call: SipCall) -> None:
    try:
        await asyncio.wait_for(call.hangup(), 10)
    except (asyncio.TimeoutError, OSError):
        pass
    await caller.__aexit__(None, None, None)


def heard_since(call: SipCall, t: float, threshold: float = 300.0) -> bool:
    return call.first_audio_after(t, threshold) is not None


async def test_node_killed_mid_run_and_back(edge_stack: EdgeStack, edge_settings: Settings) -> None:
    stack, s = edge_stack, edge_settings
    # Four calls in progress, two per node (fewest calls first).
    first = [await dial(f"1397800{i:04d}") for i in range(4)]
    for _, call in first:
        await wait_until("greeting", lambda call=call: heard_since(call, 0), 20, stack)
    records = await wait_until("4 records", lambda: _n_records(s, "1397800%", 4), 10, stack)
    node_of = {r["caller"]: r["node"] for r in records}
    assert sorted(node_of.values()) == ["b", "b", "c", "c"], node_of
    on_b = [(c, call) for c, call in first if node_of[c.user] == "b"]
    on_c = [(c, call) for c, call in first if node_of[c.user] == "c"]

    # Node b's Asterisk dies (SIGKILL: no goodbye to anyone).
    b = stack.asterisk["b"]
    pid = b._proc.pid if b._proc else None
    assert pid, "node b's Asterisk was started by the stack"
    t_kill, t_kill_mono = time.time(), time.monotonic()
    os.kill(pid, signal.SIGKILL)
    down = await wait_until("edge marks b down",
                            lambda: [t for node, what, t in stack.edge.events() if node == "b" and what == "down"
                                     and t >= t_kill], 15, stack, step=0.05)
    mark_down = down[0] - t_kill
    print(f"node b killed: the edge marked it down after {mark_down:.2f} s")
    assert mark_down < MARK_DOWN_LIMIT and stack.edge.states()["b"] == "down"

    # New calls: all on node c, all answered.
    second = [await dial(f"1397801{i:04d}") for i in range(4)]
    for _, call in second:
        await wait_until("greeting on a new call", lambda call=call: heard_since(call, 0), 20, stack)
    new = await wait_until("4 new records", lambda: _n_records(s, "1397801%", 4), 10, stack)
    assert {r["node"] for r in new} == {"c"}, new

    # The calls on node c were untouched: still hearing their node, and they end normally.
    for _, call in on_c:
        assert call.received and call.received[-1].arrival > t_kill_mono + 1.0, "node c stopped sending audio"
        assert not call.ended.is_set()
    for caller, call in [*on_c, *second]:
        await close(caller, call)
    # The calls on node b are lost with it; their callers hang up (the BYE goes nowhere).
    for caller, call in on_b:
        await close(caller, call)

    async def survivors_done() -> list[dict[str, Any]] | None:
        rows = [r for r in await calls_of(s, "139780%") if r["node"] == "c"]
        return rows if len(rows) == 6 and all(finalised(r) for r in rows) else None

    await wait_until("the 6 calls of node c finalised", survivors_done, 30, stack)

    # Node b comes back: the edge puts it back, and it takes calls again.
    t_up = time.time()
    await asyncio.to_thread(b.start)
    await wait_until("edge marks b up", lambda: [t for node, what, t in stack.edge.events()
                                                 if node == "b" and what == "up" and t >= t_up], 15, stack)
    await wait_until("controller b back on its node", lambda: http_ok(
        f"{stack.nodes['b'].ari_url}/ari/applications/hotline", ("hotline", "test-ari")), 60, stack)
    third = [await dial(f"1397802{i:04d}") for i in range(2)]  # two at once: one per node (fewest calls)
    for _, call in third:
        await wait_until("greeting after b's return", lambda call=call: heard_since(call, 0), 20, stack)
    back = await wait_until("2 records", lambda: _n_records(s, "1397802%", 2), 10, stack)
    assert sorted(r["node"] for r in back) == ["b", "c"], back
    for caller, call in third:
        await close(caller, call)

    # The two calls that were on b when it died: their records end `failed` once b's controller has its node back.
    async def lost_ended() -> list[dict[str, Any]] | None:
        rows = [r for r in await calls_of(s, "1397800%") if r["node"] == "b"]
        return rows if len(rows) == 2 and all(r["ended_at"] is not None for r in rows) else None

    lost = await wait_until("the records of the calls lost with b", lost_ended, 60, stack)
    print(f"calls on node b when it died: {[r['outcome'] for r in lost]}")
    assert {r["outcome"] for r in lost} == {"failed"}, lost


async def test_what_the_edge_adds_per_call(edge_stack: EdgeStack) -> None:
    """INVITE → 200 OK through the edge against the same node directly, and the edge's CPU per call
    (printed for docs/scaling.md; the bounds are loose: this is a shared 2-core machine)."""
    stack = edge_stack
    node_c = stack.nodes["c"].sip_port

    async def setup_time(port: int, number: str) -> float:
        t0 = time.monotonic()
        caller, call = await dial(number, port)
        took = time.monotonic() - t0
        await close(caller, call)
        return took

    direct, edge = [], []
    cpu0 = stack.edge.cpu_seconds()
    for i in range(10):
        direct.append(await setup_time(node_c, f"1397900{i:04d}"))
        edge.append(await setup_time(EDGE_PORT, f"1397901{i:04d}"))
        await asyncio.sleep(0.3)
    cpu = (stack.edge.cpu_seconds() - cpu0) / 10  # the direct calls cost the edge only its probes
    d, e = float(np.median(direct)) * 1000, float(np.median(edge)) * 1000
    print(f"INVITE -> 200 OK median: direct {d:.1f} ms, through the edge {e:.1f} ms (+{e - d:.1f} ms); "
          f"edge CPU {cpu * 1000:.1f} ms per call (INVITE, ACK, BYE; probes included)")
    assert e - d < 250 and cpu < 0.25


async def _n_records(settings: Settings, like: str, n: int) -> list[dict[str, Any]] | None:
    rows = await calls_of(settings, like)
    return rows if len(rows) >= n else None
