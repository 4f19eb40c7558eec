"""The command-line options added for the work-order speed goals."""

from __future__ import annotations

import logging
import logging.config


def test_api_command_takes_workers() -> None:
    """`hotline api --workers N` (uvicorn worker processes) and their logging set-up (masking filter included)."""
    from hotline.cli import LOG_CONFIG, build_parser

    args = build_parser().parse_args(["api", "--workers", "3", "--no-access-log"])
    assert (args.workers, args.access_log) == (3, False)
    assert build_parser().parse_args(["api"]).workers == 1
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(LOG_CONFIG)
        assert any(type(f).__name__ == "MaskingFilter" for h in root.handlers for f in h.filters)
    finally:
        root.handlers[:], root.level = handlers, level
