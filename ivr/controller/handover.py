"""Where a call goes when the bot lets go of it: the human seats (agent_handoff API), the dialplan
queue `hotline-humans` as the fallback, or a hang-up.

After `HandoffService.enqueue` the seat side owns the channel *and its call record* (it finishes the
record when an agent is done or the caller gives up). After `to_dialplan` nobody else tracks the call,
so the controller finishes the record itself (outcome transferred).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from telephony.ari import AriClient, AriError

log = logging.getLogger(__name__)
ARI_ERRORS = (AriError, httpx.HTTPError, OSError)


class Info(Protocol):
    call_id: str
    caller: str | None


class Handover:
    def __init__(self, ari: AriClient, handoff: Any | None, *, seats_app: str = "hotline-seats",
                 queue: str | None = None) -> None:
        self.ari = ari
        self.handoff = handoff  # agent_handoff.service.HandoffService (or None: dialplan queue only)
        self.seats_app = seats_app
        self.queue = queue

    async def seats_online(self) -> bool:
        """The seats runtime (any process) has its Stasis app registered on this Asterisk."""
        if self.handoff is None:
            return False
        try:
            await self.ari.application(self.seats_app)
            return True
        except ARI_ERRORS:
            return False

    async def hand_over(self, info: Info, priority: str, context: dict[str, Any], *,
                        via_seats: bool = True) -> str | None:
        """Returns "seats", "dialplan" or None (the channel is gone)."""
        if via_seats and await self.seats_online():
            try:
                await self.handoff.enqueue(info.call_id, info.call_id, queue=self.queue, priority=priority,
                                           context=context, caller=info.caller or "")
                return "seats"
            except Exception as exc:  # noqa: BLE001 - NotFound (caller gone), Redis down, ...
                log.warning("seats handover of %s failed (%s); using the dialplan queue", info.call_id, exc)
        return await self.to_dialplan(info)

    async def to_dialplan(self, info: Info) -> str | None:
        """Leave Stasis: the dialplan after Stasis() queues the caller to the seats (hotline-humans)."""
        try:
            await self.ari.set_variable(info.call_id, "HOTLINE_TRANSFER", "1")
            await self.ari.continue_in_dialplan(info.call_id)
            return "dialplan"
        except ARI_ERRORS as exc:
            log.info("dialplan handover of %s failed: %s", info.call_id, exc)
            return None

    async def hang_up(self, info: Info) -> None:
        try:
            await self.ari.hangup(info.call_id)
        except ARI_ERRORS as exc:
            log.debug("hangup %s: %s", info.call_id, exc)
