"""`hotline run`: every process of the hotline in the foreground; Ctrl-C stops all cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from urllib.parse import urlsplit

import uvicorn

from config.settings import Settings
from hotline.app import create_app
from hotline.container import Container
from hotline.services import actions, rasa
from hotline.workers import run_jobs
from ivr.controller.runner import ivr_service

log = logging.getLogger(__name__)


class BotProcesses:
    """The Rasa server and its action server: subprocesses in their own virtualenvs, started in a thread
    (training on first run takes minutes; the API answers meanwhile and dialogue degrades to the keypad)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rasa: rasa.RasaServer | None = None
        self.actions: actions.ActionServer | None = None

    def start(self) -> None:
        s = self.settings
        redis = urlsplit(s.redis_url)
        print("[bot] starting the action server ...", flush=True)
        self.actions = actions.start_server(
            s.action_server_port, env={"DATABASE_URL": s.effective_database_url, "REDIS_URL": s.redis_url}
        )
        print("[bot] Rasa model (trained only when nlu/ changed) ...", flush=True)
        model = rasa.ensure_model()
        self.rasa = rasa.start_server(
            port=urlsplit(s.rasa_url).port or 5005,
            model=model,
            env={"REDIS_HOST": redis.hostname or "127.0.0.1", "REDIS_PORT": redis.port or 6379,
                 "ACTION_ENDPOINT_URL": self.actions.webhook},
        )
        rasa.warm_up(self.rasa.url)
        print(f"[bot] ready: Rasa {self.rasa.url}, actions {self.actions.url}", flush=True)

    def start_logged(self) -> None:
        try:
            self.start()
        except Exception:  # noqa: BLE001 - without the bot the hotline still runs: keypad menu and humans
            log.exception("the bot did not start; dialogue runs degraded (keypad menu, human seats)")

    def stop(self) -> None:
        if self.rasa:
            rasa.stop_server()
        if self.actions:
            self.actions.stop()


async def run_all(settings: Settings, api_port: int | None = None) -> int:
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
    tasks = [
        asyncio.create_task(server.serve(), name="api"),
        asyncio.create_task(run_jobs(container.periodic_jobs()), name="workers"),
        asyncio.create_task(ivr_service(container), name="ivr"),  # starts Asterisk if it isn't running
    ]
    base = f"http://{settings.api_host}:{port}"
    print(
        "\n12345 hotline is running:\n"
        f"  API            {base}/v1   (OpenAPI docs: {base}/docs)\n"
        f"  consoles       {base}/console/  (agent /console/agent, supervisor /console/supervisor, admin /console/admin)\n"
        f"  health         {base}/healthz  {base}/readyz  metrics: {base}/metrics\n"
        "  hotline phone  sip:12345@127.0.0.1:5060 (IVR controller; see README 'Placing a test call')\n"
        f"  admin login    user {settings.admin_user!r} (password from HOTLINE_ADMIN_PASSWORD or var/secrets/admin_password)\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not waiter and t.exception()]
    server.should_exit = True
    for task in tasks:
        if task.get_name() != "api":
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(bot_task, return_exceptions=True)
    await asyncio.to_thread(bot.stop)
    await container.close()
    for task in failed:
        log.error("%s stopped: %s", task.get_name(), task.exception())
    print("hotline stopped.", flush=True)
    return 1 if failed else 0
