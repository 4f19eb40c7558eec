"""`hotline run`: every process of the hotline in the foreground; Ctrl-C stops all cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from config.settings import Settings
from hotline.app import create_app
from hotline.container import Container
from hotline.workers import run_jobs
from ivr.controller.runner import ivr_service

log = logging.getLogger(__name__)


async def run_all(settings: Settings, api_port: int | None = None) -> int:
    port = api_port or settings.api_port
    container = Container.build(settings)
    await container.start()
    app = create_app(settings, container=container)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.api_host, port=port, log_config=None))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

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
    await container.close()
    for task in failed:
        log.error("%s stopped: %s", task.get_name(), task.exception())
    print("hotline stopped.", flush=True)
    return 1 if failed else 0
