"""The media leg of one call: a mixing bridge with the caller and an externalMedia (slin16) channel
whose RTP ends in our :class:`RtpEndpoint`. Set up after answering; torn down before a handoff
(the seats need the caller out of any bridge) or at hang-up.

`watch()` keeps the caller's audio coming: Asterisk 22 stops passing it on for good after some packets a
phone may send - one RFC 3389 comfort-noise packet breaks the externalMedia channel, one empty or oversized
voice packet the caller's translation path (measured in tests/ivr/controller/test_hostile_media.py). A
phone sends all the time, silence included, so a gap means a broken path: the leg is repaired in place
(a fresh externalMedia channel to the same RtpEndpoint, the caller re-joined to the bridge).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from telephony.ari import AriClient, AriError
from ivr.media.rtp import RtpEndpoint

log = logging.getLogger(__name__)

#: Wait for the externalMedia channel's own StasisStart (it must be in Stasis before bridging).
WaitStasis = Callable[[str], Awaitable[None]]
ARI_FAILURES = (AriError, httpx.HTTPError, OSError, asyncio.TimeoutError)  # Asterisk may be gone as well

STALL_SECONDS = 2.0  # no audio from the caller's side for this long: the path is broken
REPAIR_BACKOFF_MAX = 30.0  # a path that stays silent after a repair is retried less and less often


class CallMedia:
    def __init__(self, ari: AriClient, channel_id: str, wait_stasis: WaitStasis, *, host: str = "127.0.0.1") -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.wait_stasis = wait_stasis
        self.host = host
        self.rtp = RtpEndpoint(host, 0, sample_rate=16000)
        self.bridge_id: str | None = None
        self.em_id = f"{channel_id}-em"
        self.repairs = 0
        self._ems: list[str] = []  # externalMedia channels made and not hung up yet (the current one last)
        self._lock = asyncio.Lock()  # a repair and the teardown never interleave

    async def setup(self, timeout: float = 5.0) -> None:
        await self.rtp.start()
        bridge = await self.ari.create_bridge("mixing", bridge_id=f"{self.channel_id}-br")
        self.bridge_id = bridge.id
        await self._external_media(self.em_id, timeout)
        await self.ari.add_channel(self.bridge_id, [self.channel_id, self.em_id])

    async def _external_media(self, em_id: str, timeout: float) -> None:
        """An externalMedia channel sending to (and receiving from) our RtpEndpoint, in Stasis."""
        self._ems.append(em_id)
        waiter = asyncio.ensure_future(self.wait_stasis(em_id))
        try:
            await self.ari.external_media(f"{self.host}:{self.rtp.port}", fmt="slin16", channel_id=em_id)
            await asyncio.wait_for(waiter, timeout)
        finally:
            waiter.cancel()
        host = await self.ari.get_variable(em_id, "UNICASTRTP_LOCAL_ADDRESS")
        port = await self.ari.get_variable(em_id, "UNICASTRTP_LOCAL_PORT")
        self.rtp.set_remote(host, int(port))

    async def _hang_up(self, em_id: str) -> None:
        try:
            await self.ari.hangup(em_id)
        except ARI_FAILURES as exc:
            log.debug("externalMedia channel %s: %s", em_id, exc)
        if em_id in self._ems:
            self._ems.remove(em_id)

    async def repair(self, timeout: float = 5.0) -> None:
        """Rebuild the path of the caller's audio without dropping the call: a fresh externalMedia channel
        into the bridge, the old one hung up, and the caller taken out of the bridge and put back."""
        async with self._lock:
            if self.bridge_id is None:
                return
            self.repairs += 1
            old, new = self.em_id, f"{self.channel_id}-em{self.repairs}"
            await self._external_media(new, timeout)
            self.em_id = new
            await self.ari.add_channel(self.bridge_id, [new])
            await self._hang_up(old)
            await self.ari.remove_channel(self.bridge_id, [self.channel_id])
            await self.ari.add_channel(self.bridge_id, [self.channel_id])

    async def watch(self, stall: float = STALL_SECONDS) -> None:
        """Repair the leg whenever the caller's audio has stopped for `stall` seconds (until torn down)."""
        allowed = stall
        built_at = time.monotonic()
        while self.bridge_id is not None:
            await asyncio.sleep(stall / 4)
            heard = self.rtp.last_packet_at
            if heard is not None and heard > built_at:
                allowed = stall  # audio came through since the leg was (re)built
            silent = time.monotonic() - max(heard or 0.0, built_at)
            if silent < allowed or self.bridge_id is None:
                continue
            log.warning("call %s: no audio from the caller's side for %.1f s; repairing the media leg (#%d)",
                        self.channel_id, silent, self.repairs + 1)
            try:
                await self.repair()
            except ARI_FAILURES as exc:
                log.warning("call %s: media repair failed: %s", self.channel_id, exc)
            built_at = time.monotonic()
            allowed = min(allowed * 2, REPAIR_BACKOFF_MAX)

    async def teardown(self) -> None:
        """Idempotent; leaves the caller's channel alone (out of any bridge)."""
        self.rtp.stop_sending()
        async with self._lock:
            for em_id in list(self._ems) or [self.em_id]:
                await self._hang_up(em_id)
            if self.bridge_id is not None:
                bridge_id, self.bridge_id = self.bridge_id, None
                try:
                    await self.ari.destroy_bridge(bridge_id)
                except ARI_FAILURES as exc:
                    log.debug("bridge teardown: %s", exc)
        await self.rtp.close()
