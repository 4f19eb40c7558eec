"""Several Asterisk nodes behind the Kamailio edge, on one host: `hotline edge --nodes 2` (`make edge`) and the
edge tests.

Node i (b, c, d, ...) is an Asterisk in the shared chroot (hotline/services/asterisk.py, `AsteriskNode`) with its
own IVR controller (`hotline ivr`) and seats runtime (`hotline worker`) as child processes, all on the settings'
database and Redis; the edge (hotline/services/kamailio.py) dispatches calls for 12345 to them. The API and the
bot are not started here: `make run` (or `hotline api`) serves them, and the nodes' controllers use its Rasa.

    stack = EdgeStack(count=2, ari_password=..., env=...)
    stack.start()        # nodes, their processes, the edge; returns when the edge sees every node up
    stack.edge.port      # 5080: sip:12345@127.0.0.1:5080
    stack.stop()         # all of it, the chroot mounts released once no node runs
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hotline.services.asterisk import AsteriskNode, AsteriskService
from hotline.services.kamailio import DEFAULT_PORT, EdgeNode, KamailioEdge

REPO_ROOT = Path(__file__).resolve().parents[2]


def dev_node(i: int) -> AsteriskNode:
    """The i-th extra node (0 → "b": SIP 5160, ARI 8098, RTP 11100-11499, seats 5171-5174; 1 → "c": 5260, ...),
    the same places tests/test_scale_out.py uses. Up to 8 nodes."""
    if not 0 <= i < 8:
        raise ValueError("1 to 8 nodes")
    step = 100 * i
    return AsteriskNode(chr(ord("b") + i), sip_port=5160 + step, ari_port=8098 + step,
                        rtp_ports=(11100 + 400 * i, 11499 + 400 * i),
                        seat_ports=tuple(5171 + step + k for k in range(4)))


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)  # a controller hands its live calls over

    def wait(self, timeout: float = 15.0) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


@dataclass
class EdgeStack:
    count: int = 2
    ari_user: str = "hotline"
    ari_password: str = ""
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))  # the processes' environment
    edge_port: int = DEFAULT_PORT
    log_dir: Path = REPO_ROOT / "var" / "log" / "edge"
    nodes: dict[str, AsteriskNode] = field(init=False)
    asterisk: dict[str, AsteriskService] = field(init=False)
    children: dict[str, Child] = field(default_factory=dict, init=False)
    edge: KamailioEdge = field(init=False)

    def __post_init__(self) -> None:
        if self.count < 2:
            raise ValueError("the edge needs at least 2 nodes")
        self.nodes = {n.name: n for n in (dev_node(i) for i in range(self.count))}
        self.asterisk = {name: AsteriskService(ari_user=self.ari_user, ari_password=self.ari_password,
                                               ari_url=node.ari_url, node=node,
                                               log_file=self.log_dir / f"asterisk-{name}.out")
                         for name, node in self.nodes.items()}
        self.edge = KamailioEdge([EdgeNode(name, node.sip_port) for name, node in self.nodes.items()],
                                 port=self.edge_port, log_file=self.log_dir / f"kamailio-{self.edge_port}.log")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return Child(name, popen, log)

    def start(self, timeout: float = 180.0, progress: bool = False) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        say = (lambda msg: print(f"[edge] {msg}", flush=True)) if progress else (lambda msg: None)
        try:
            for name, svc in self.asterisk.items():
                say(f"Asterisk node {name} (SIP 127.0.0.1:{self.nodes[name].sip_port}) ...")
                svc.restart()  # a node left over from an interrupted run holds calls nobody knows of
            for name, node in self.nodes.items():
                env = dict(self.env, HOTLINE_NODE=name, HOTLINE_ARI_URL=node.ari_url,
                           HOTLINE_ARI_USER=self.ari_user, HOTLINE_ARI_PASSWORD=self.ari_password)
                self.children[f"worker-{name}"] = self._spawn(f"worker-{name}", ["-m", "hotline.cli", "worker"], env)
                self.children[f"controller-{name}"] = self._spawn(
                    f"controller-{name}", ["-m", "hotline.cli", "ivr", "--lazy-models"], env)
            say("IVR controllers and seats runtimes ...")
            deadline = time.monotonic() + timeout
            for name in self.nodes:
                child = self.children[f"controller-{name}"]
                while "serving app" not in child.output():
                    self.check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"controller of node {name} not serving within {timeout:.0f} s")
                    time.sleep(0.2)
            say(f"Kamailio edge on udp:127.0.0.1:{self.edge_port} ...")
            self.edge.start()
            while set(self.edge.states().values()) != {"up"}:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the edge does not see every node up: {self.edge.states()}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    def check_alive(self) -> None:
        for child in self.children.values():
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{child.output()[-3000:]}")

    def stop(self) -> None:
        self.edge.stop()
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            child.wait()
        for svc in self.asterisk.values():
            svc.stop()


def run_dev(count: int) -> int:
    """`hotline edge --nodes N`: the nodes and the edge in the foreground until Ctrl-C."""
    from config.settings import get_settings

    s = get_settings()
    stack = EdgeStack(count=count, ari_user=s.ari_user, ari_password=s.ari_password)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack.start(progress=True)
    names = ", ".join(f"{n} (SIP {node.sip_port})" for n, node in stack.nodes.items())
    print(f"\nSIP edge running: sip:12345@127.0.0.1:{stack.edge_port} -> nodes {names}\n"
          f"  calls go to the node with the fewest calls in progress; a node that stops answering OPTIONS is out\n"
          f"  within about 2 s. The API and the bot come from `make run`. Logs: {stack.log_dir}. Ctrl-C stops it.\n",
          flush=True)
    try:
        while not stop:
            stack.check_alive()
            time.sleep(0.5)
    finally:
        print("stopping the edge and its nodes ...", flush=True)
        stack.stop()
        print("edge stopped.", flush=True)
    return 0
