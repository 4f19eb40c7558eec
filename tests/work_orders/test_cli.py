"""The command-line options added for the work-order speed goals."""

from __future__ import annotations

import logging
import logging.config


def test_api_command_takes_workers() -> None:
    """`hotline api --workers N` (uvicorn worker processes) and their logging set-up (masking filter included)."""
    from hotline.cli import LOG_CONFIG, build_parser

    args = build_parser().parse_args(["api", "--workers", "3", "--no-access-log"])
    assert (args.workers, args.access_log) == (3, False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(LOG_CONFIG)
        assert any(type(f).__name__ == "MaskingFilter" for h in root.handlers for f in h.filters)
    finally:
        root.handlers[:], root.level = handlers, level


def test_api_workers_default_from_settings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without --workers, `hotline api` starts HOTLINE_API_WORKERS processes (2 by default)."""
    import uvicorn

    from config.settings import Settings
    from hotline import cli

    runs: list[tuple[object, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append((app, kw)))
    for argv, env_workers, expected in ((["api"], None, 2), (["api"], 4, 4), (["api", "--workers", "3"], 4, 3)):
        extra = {} if env_workers is None else {"api_workers": env_workers}
        monkeypatch.setattr(cli, "get_settings", lambda extra=extra: Settings(env="test", **extra))
        assert cli.cmd_api(cli.build_parser().parse_args(argv)) == 0
        app, kw = runs[-1]
        assert (app, kw["factory"], kw["workers"]) == ("hotline.cli:api_app", True, expected), (argv, kw)


def test_api_app_freezes_start_up_objects(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Start-up objects are moved out of the cyclic GC's reach (a full collection of them paused the API ~0.25 s)."""
    import gc

    from hotline import cli

    monkeypatch.setenv("HOTLINE_ENV", "test")
    gc.unfreeze()
    try:
        app = cli.api_app()
        assert app.title and gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
