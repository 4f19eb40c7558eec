"""`hotline run`: every process of the hotline in the foreground; Ctrl-C stops all cleanly.

The banner ("12345 hotline is running") comes once a call can be answered by the bot: the API serves, Rasa and its
action server answer (model from the cache `make setup` filled, warmed up), Asterisk and the IVR controller take
calls - or once it is clear why one of them cannot (then the banner says so). Ctrl-C stops the processes this
started: the IVR (live calls handed to the human queue), the Asterisk it started (its chroot mounts released; one
it found running is left, and it says so), Rasa and the action server."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import uvicorn

from config.settings import Settings
from hotline.app import create_app
from hotline.container import Container
from hotline.services import actions, rasa
from hotline.workers import run_jobs
from hotline.ivr_runner import IvrStartup, ivr_service

log = logging.getLogger(__name__)


class BotProcesses:
    """The Rasa server and its action server: subprocesses in their own virtualenvs, started in a thread.
    The model comes from the cache `make setup` filled (training here only when nlu/ changed since)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rasa: rasa.RasaServer | None = None
        self.actions: actions.ActionServer | None = None
        self.problem: str | None = "starting"  # None once Rasa answers (warmed up)
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        """The action server and Rasa start side by side (Rasa needs the actions only at its first turn);
        then one warm-up turn through both."""
        s = self.settings
        redis = urlsplit(s.redis_url)
        print("[bot] starting the action server and Rasa ...", flush=True)
        with ThreadPoolExecutor(1, thread_name_prefix="actions") as pool:
            starting = pool.submit(actions.start_server, s.action_server_port,
                                   env={"DATABASE_URL": s.effective_database_url, "REDIS_URL": s.redis_url})
            try:
                print("[bot] Rasa model (cached by `make setup`; trained here only when nlu/ changed since) ...",
                      flush=True)
                model = rasa.ensure_model(progress=True)
                if not self._stopping:
                    self.rasa = rasa.start_server(
                        port=urlsplit(s.rasa_url).port or 5005,
                        model=model,
                        env={"REDIS_HOST": redis.hostname or "127.0.0.1", "REDIS_PORT": redis.port or 6379,
                             "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{s.action_server_port}/webhook"},
                    )
            finally:
                server = starting.result()
                with self._lock:
                    self.actions = server
                    stopping = self._stopping
                if stopping:
                    server.stop()
        if self._stopping or self.rasa is None:
            return
        rasa.warm_up(self.rasa.url)
        self.problem = None
        print(f"[bot] ready: Rasa {self.rasa.url}, actions {server.url}", flush=True)

    def start_logged(self) -> None:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 - without the bot the hotline still runs: keypad menu and humans
            if self._stopping:
                return  # stopped while starting: not a failure
            self.problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            log.exception("the bot did not start; dialogue runs degraded (keypad menu, human seats)")

    def stop(self) -> None:
        """Stop what was started (also while `start` is still under way in its thread)."""
        with self._lock:
            self._stopping = True
            server = self.actions
        rasa.stop_server()  # the Rasa process, even while start_server still waits for it
        if server:
            server.stop()


def _process_age() -> float:
    """Seconds since this process was created (its imports included), from /proc."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


async def run_all(settings: Settings, api_port: int | None = None) -> int:
    started = time.monotonic() - _process_age()
    port = api_port or settings.api_port
    container = Container.build(settings)
    await container.start()
    app = create_app(settings, container=container)
    gc.collect()
    gc.freeze()  # start-up objects out of the cyclic GC's reach (see hotline.cli.api_app)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.api_host, port=port, log_config=None))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    bot = BotProcesses(settings)
    bot_task = asyncio.create_task(asyncio.to_thread(bot.start_logged), name="bot")
    bot_settled = asyncio.Event()  # the KB pre-render waits for it: Rasa's start gets the CPU first
    bot_task.add_done_callback(lambda _: bot_settled.set())
    ivr = IvrStartup(prerender_after=bot_settled)
    tasks = [
        asyncio.create_task(server.serve(), name="api"),
        asyncio.create_task(run_jobs(container.periodic_jobs()), name="workers"),
        asyncio.create_task(ivr_service(container, startup=ivr), name="ivr"),  # starts Asterisk if not running
    ]
    waiter = asyncio.create_task(stop.wait())
    # The banner only once a call can be answered by the bot (or it is clear why not): Ctrl-C still works meanwhile.
    settling = asyncio.create_task(_settled(bot_task, ivr, server))
    await asyncio.wait([waiter, settling, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if settling.done() and not stop.is_set():
        await _banner(settings, port, bot, ivr, time.monotonic() - started)
    else:
        settling.cancel()
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not waiter and t.exception()]
    print("stopping ...", flush=True)
    server.should_exit = True
    for task in tasks:
        if task.get_name() != "api":
            task.cancel()  # the IVR hands live calls over, then stops the Asterisk it started
    stopping_bot = asyncio.create_task(asyncio.to_thread(bot.stop))
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(bot_task, stopping_bot, return_exceptions=True)
    print("[bot] Rasa and the action server stopped", flush=True)
    await container.close()
    for task in failed:
        log.error("%s stopped: %s", task.get_name(), task.exception())
    print("hotline stopped.", flush=True)
    return 1 if failed else 0


async def _settled(bot_task: asyncio.Task[None], ivr: IvrStartup, server: uvicorn.Server) -> None:
    await asyncio.wait([bot_task])
    await ivr.settled.wait()
    while not server.started:
        await asyncio.sleep(0.05)


async def _readiness(base: str) -> str:
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(f"{base}/readyz")
        failing = [name for name, ok in r.json().get("checks", {}).items() if not ok]
        return "ready (/readyz 200)" if r.status_code == 200 else f"NOT ready: {', '.join(failing) or r.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        return f"readiness unknown ({type(exc).__name__})"


async def _banner(settings: Settings, port: int, bot: BotProcesses, ivr: IvrStartup, elapsed: float) -> None:
    base = f"http://{settings.api_host}:{port}"
    bot_line = "answers calls (Rasa + actions up, warmed)" if bot.problem is None else \
        f"NOT available ({bot.problem}): calls get the keypad menu and the human seats"
    phone = "sip:12345@127.0.0.1:5060 (IVR controller; see README 'Placing a test call')" if ivr.problem is None \
        else f"not yet: {ivr.problem}"
    print(
        f"\n12345 hotline is running ({await _readiness(base)}, {elapsed:.0f} s after `hotline run` started):\n"
        f"  API            {base}/v1   (OpenAPI docs: {base}/docs)\n"
        f"  consoles       {base}/console/  (agent /console/agent, supervisor /console/supervisor, admin /console/admin)\n"
        f"  health         {base}/healthz  {base}/readyz  metrics: {base}/metrics\n"
        f"  hotline phone  {phone}\n"
        f"  bot            {bot_line}\n"
        f"  admin login    user {settings.admin_user!r} (password from HOTLINE_ADMIN_PASSWORD or var/secrets/admin_password)\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
