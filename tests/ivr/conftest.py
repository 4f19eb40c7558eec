"""Real Asterisk for the IVR tests: installed (cached chroot) and started once per session."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.services.asterisk import SETUP_SCRIPT, AsteriskService
from telephony.ari import AriClient, Event

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskService]:
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)  # ~0.02 s when cached
    svc = AsteriskService.from_settings()
    already = svc.ari_ready()
    svc.start()
    yield svc
    if not already:
        svc.stop()


@pytest.fixture
async def ari(asterisk: AsteriskService) -> AsyncIterator[AriClient]:
    """ARI client registered as the `hotline` Stasis app (events socket connected)."""
    client = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app=asterisk.ari_app)
    async with client:
        await client.events.wait_connected(10)
        yield client
        for ch in await client.list_channels():  # leave Asterisk clean for the next test
            try:
                await client.hangup(ch.id)
            except Exception:
                pass
        for br in await client.list_bridges():
            try:
                await client.destroy_bridge(br.id)
            except Exception:
                pass


async def next_event(q: "asyncio.Queue[Event]", etype: str, timeout: float = 10.0, **match: str) -> Event:
    """Wait for the next event of `etype` (optionally channel id / name prefix match)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ev = await asyncio.wait_for(q.get(), max(0.01, deadline - loop.time()))
        if ev.type != etype:
            continue
        ch = getattr(ev, "channel", None)
        if "channel_id" in match and (ch is None or ch.id != match["channel_id"]):
            continue
        if "name_prefix" in match and (ch is None or not ch.name.startswith(match["name_prefix"])):
            continue
        return ev
