"""Background jobs: periodic tasks contributed by the domain packages, run until cancelled."""

from __future__ import annotations

import asyncio
import logging

from config.settings import Settings
from core.tasks import PeriodicJob
from hotline.container import Container

log = logging.getLogger(__name__)


async def _loop(job: PeriodicJob) -> None:
    while True:
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failing run is logged and retried next interval
            log.exception("job %s failed", job.name)
        await asyncio.sleep(job.interval_seconds)


async def run_jobs(jobs: list[PeriodicJob]) -> None:
    log.info("workers running: %s", ", ".join(j.name for j in jobs) or "none")
    if not jobs:
        await asyncio.Event().wait()
    await asyncio.gather(*(_loop(j) for j in jobs))


async def run_workers(settings: Settings, container: Container | None = None) -> None:
    owned = container is None
    container = container or Container.build(settings)
    try:
        await run_jobs(container.periodic_jobs())
    finally:
        if owned:
            await container.close()
