"""`hotline` — the one command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from config.settings import get_settings
from core.logging import setup_logging

log = logging.getLogger("hotline")


def _container():  # type: ignore[no-untyped-def]
    from hotline.container import Container

    return Container.build(get_settings())


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    from hotline.migrate import upgrade

    settings = get_settings()
    upgrade(settings.effective_database_url)
    print(f"database at head ({settings.effective_database_url.split('@')[-1]})")
    return 0


def cmd_seed(_: argparse.Namespace) -> int:
    from hotline.seed import seed_all

    async def run() -> dict[str, int]:
        container = _container()
        try:
            return await seed_all(container)
        finally:
            await container.close()

    counts = asyncio.run(run())
    print("seeded: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_kb(args: argparse.Namespace) -> int:
    from knowledge_base import io as kb_io
    from hotline.seed import SYSTEM

    path = Path(args.file)
    fmt = "csv" if path.suffix.lower() == ".csv" else "yaml"

    async def run() -> int:
        container = _container()
        try:
            async with container.db.session() as session:
                if args.action == "export":
                    rows = await container.kb.export(session)
                    path.write_text(kb_io.render(rows, fmt), encoding="utf-8")
                    print(f"exported {len(rows)} entries to {path}")
                    return 0
                report = await container.kb.import_rows(session, SYSTEM, kb_io.parse(path.read_bytes(), fmt))
                print(f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}")
                for bad in report.rejected:
                    print(f"  row {bad.row} ({bad.key}): {'; '.join(bad.errors)}")
                return 1 if report.rejected else 0
        finally:
            await container.close()

    return asyncio.run(run())


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    port = args.port or settings.api_port
    workers = args.workers or settings.api_workers
    if workers > 1:  # worker processes import the app factory and set up logging themselves
        uvicorn.run("hotline.cli:api_app", factory=True, host=settings.api_host, port=port,
                    log_config=LOG_CONFIG, workers=workers, access_log=args.access_log)
    else:
        uvicorn.run(api_app(), host=settings.api_host, port=port, log_config=None, access_log=args.access_log)
    return 0


def api_app():  # type: ignore[no-untyped-def]
    """The API app for `hotline api` (also uvicorn's factory in each worker process). What start-up allocated
    (≈ 250,000 objects: every imported module, the app) is frozen out of the cyclic garbage collector's reach;
    otherwise each full collection walks all of it, a ≈ 0.25 s pause of the process every few thousand
    requests, which alone set the p99 of the busiest endpoints."""
    import gc

    from hotline.app import create_app

    app = create_app(get_settings())
    gc.collect()
    gc.freeze()
    return app


# setup_logging() as a dictConfig, for uvicorn's worker processes (they start fresh, without the parent's set-up)
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask": {"()": "core.logging.MaskingFilter"}},
    "formatters": {"std": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "std", "filters": ["mask"]}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


def cmd_kpi_rollup(args: argparse.Namespace) -> int:
    from work_orders import kpi_rollup

    async def run() -> int:
        container = _container()
        try:
            tz = container.work_orders.tz
            if args.rebuild:
                return await kpi_rollup.rebuild(container.db, tz)
            return await kpi_rollup.compact(container.db, tz)
        finally:
            await container.close()

    n = asyncio.run(run())
    print(f"KPI rollup {'rebuilt from' if args.rebuild else 'updated with'} {n} rows")
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    from hotline.workers import run_workers

    asyncio.run(run_workers(get_settings()))
    return 0


def cmd_ivr(args: argparse.Namespace) -> int:
    from hotline.ivr_runner import run_ivr

    return asyncio.run(run_ivr(get_settings(), start_asterisk=args.start_asterisk, lazy_models=args.lazy_models))


def cmd_run(args: argparse.Namespace) -> int:
    from hotline.supervisor import run_all

    return asyncio.run(run_all(get_settings(), api_port=args.port))


def cmd_edge(args: argparse.Namespace) -> int:
    from hotline.services.edge import run_dev

    return run_dev(args.nodes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 citizen-service hotline")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="every service in the foreground (Ctrl-C stops all)")
    run.add_argument("--port", type=int, default=None, help="API port (default 8000)")
    run.set_defaults(func=cmd_run)

    api = sub.add_parser("api", help="the HTTP API alone")
    api.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=None,
                     help="uvicorn worker processes (default HOTLINE_API_WORKERS, 2; sizing: "
                          "benchmarks/work_orders_create.py)")
    api.add_argument("--no-access-log", dest="access_log", action="store_false", help="no per-request log line")
    api.set_defaults(func=cmd_api)

    sub.add_parser("worker", help="background jobs (escalation, callbacks)").set_defaults(func=cmd_worker)

    ivr = sub.add_parser("ivr", help="the IVR call controller (answers 12345 through Asterisk ARI)")
    ivr.add_argument("--start-asterisk", action="store_true",
                     help="start the dev Asterisk (chroot) if it is not running")
    ivr.add_argument("--lazy-models", action="store_true",
                     help="load the speech models on first use, not at start-up")
    ivr.set_defaults(func=cmd_ivr)

    edge = sub.add_parser("edge", help="Asterisk nodes b, c, ... behind the Kamailio SIP edge on 127.0.0.1:5080 "
                                       "(with `hotline run` for the API and the bot; docs/scaling.md)")
    edge.add_argument("--nodes", type=int, default=2, help="how many Asterisk nodes (2-8, default 2)")
    edge.set_defaults(func=cmd_edge)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate to the latest schema").set_defaults(func=cmd_db_upgrade)

    rollup = sub.add_parser("kpi-rollup", help="fold the work-order KPI change log into the daily rollup now")
    rollup.add_argument("--rebuild", action="store_true", help="recompute the rollup from work_orders")
    rollup.set_defaults(func=cmd_kpi_rollup)

    sub.add_parser("seed", help="create the first admin and seed content (idempotent)").set_defaults(func=cmd_seed)

    kb = sub.add_parser("kb", help="knowledge-base import/export (YAML or CSV by file extension)")
    kb.add_argument("action", choices=["import", "export"])
    kb.add_argument("file")
    kb.set_defaults(func=cmd_kb)

    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands() -> list:  # type: ignore[type-arg]
    """Sub-commands contributed by the domain packages (chat, …)."""
    from dialogue.cli import add_commands as dialogue_commands

    return [dialogue_commands]


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
