"""The media leg of one call: a mixing bridge with the caller and an externalMedia (slin16) channel
whose RTP ends in our :class:`RtpEndpoint`. Set up after answering; torn down before a handoff
(the seats need the caller out of any bridge) or at hang-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ivr.ari import AriClient, AriError
from ivr.media.rtp import RtpEndpoint

log = logging.getLogger(__name__)

#: Wait for the externalMedia channel's own StasisStart (it must be in Stasis before bridging).
WaitStasis = Callable[[str], Awaitable[None]]


class CallMedia:
    def __init__(self, ari: AriClient, channel_id: str, wait_stasis: WaitStasis, *, host: str = "127.0.0.1") -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.wait_stasis = wait_stasis
        self.host = host
        self.rtp = RtpEndpoint(host, 0, sample_rate=16000)
        self.bridge_id: str | None = None
        self.em_id = f"{channel_id}-em"

    async def setup(self, timeout: float = 5.0) -> None:
        await self.rtp.start()
        bridge = await self.ari.create_bridge("mixing", bridge_id=f"{self.channel_id}-br")
        self.bridge_id = bridge.id
        waiter = asyncio.ensure_future(self.wait_stasis(self.em_id))
        try:
            await self.ari.external_media(f"{self.host}:{self.rtp.port}", fmt="slin16", channel_id=self.em_id)
            await asyncio.wait_for(waiter, timeout)
        finally:
            waiter.cancel()
        host = await self.ari.get_variable(self.em_id, "UNICASTRTP_LOCAL_ADDRESS")
        port = await self.ari.get_variable(self.em_id, "UNICASTRTP_LOCAL_PORT")
        self.rtp.set_remote(host, int(port))
        await self.ari.add_channel(self.bridge_id, [self.channel_id, self.em_id])

    async def teardown(self) -> None:
        """Idempotent; leaves the caller's channel alone (out of any bridge)."""
        self.rtp.stop_sending()
        for coro in (self.ari.hangup(self.em_id), ):
            try:
                await coro
            except (AriError, OSError) as exc:
                log.debug("media teardown: %s", exc)
        if self.bridge_id is not None:
            bridge_id, self.bridge_id = self.bridge_id, None
            try:
                await self.ari.destroy_bridge(bridge_id)
            except (AriError, OSError) as exc:
                log.debug("bridge teardown: %s", exc)
        await self.rtp.close()
