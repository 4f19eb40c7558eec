"""`hotline ivr`: the IVR call controller alone (the `hotline` Stasis app on the configured Asterisk)."""

from __future__ import annotations

import argparse
import asyncio

from config.settings import get_settings


def cmd_ivr(args: argparse.Namespace) -> int:
    from ivr.controller.runner import run_ivr

    return asyncio.run(run_ivr(get_settings(), start_asterisk=args.start_asterisk, lazy_models=args.lazy_models))


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ivr", help="the IVR call controller (answers 12345 through Asterisk ARI)")
    p.add_argument("--start-asterisk", action="store_true", help="start the dev Asterisk (chroot) if it is not running")
    p.add_argument("--lazy-models", action="store_true", help="load the speech models on first use, not at start-up")
    p.set_defaults(func=cmd_ivr)
