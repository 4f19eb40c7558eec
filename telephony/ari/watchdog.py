"""Rescue calls left in Stasis when the controller dies.

Asterisk 22 keeps a channel in ``Stasis(hotline)`` when the application's websocket goes away (the app
just becomes inactive), so the dialplan fallback after ``Stasis()`` is *not* reached by itself. Whoever
supervises the controller (process manager hook, `make run`, a watchdog loop) calls
``hand_back_orphans`` once it knows the controller is gone: every caller channel still in the app is
sent back to the dialplan (-> the human queue, marked HOTLINE_ORPHANED=1), and our own media helper
channels (externalMedia / snoop) are hung up. Plain REST: it does not register as the app itself.
"""

from __future__ import annotations

import logging

from .client import AriClient, AriError

log = logging.getLogger(__name__)

HELPER_PREFIXES = ("UnicastRTP/", "Snoop/", "Announcer/", "Recorder/")


async def hand_back_orphans(client: AriClient, app: str | None = None) -> list[str]:
    """Continue every caller channel of `app` in the dialplan; return their ids."""
    try:
        info = await client.application(app)
    except AriError as exc:
        if exc.status == 404:  # the app was never registered (fresh Asterisk): nothing to rescue
            return []
        raise
    ids = set(info.get("channel_ids", []))
    handed: list[str] = []
    for ch in await client.list_channels():
        if ch.id not in ids:
            continue
        try:
            if ch.name.startswith(HELPER_PREFIXES):
                await client.hangup(ch.id)
                continue
            await client.set_variable(ch.id, "HOTLINE_ORPHANED", "1")
            await client.continue_in_dialplan(ch.id)
            handed.append(ch.id)
        except AriError as exc:  # hung up meanwhile
            log.info("orphan %s: %s", ch.name, exc)
    if handed:
        log.warning("handed %d orphaned call(s) of app %s back to the dialplan", len(handed), app or client.app)
    return handed
