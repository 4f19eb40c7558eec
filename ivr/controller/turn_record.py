"""A bot turn as the call record keeps it (telephony/calls.py, `CallRecords.add_turn`): what was heard and decided,
the reply, and the latencies of each stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ivr.controller.events import PlaybackDone
from ivr.controller.stages import TurnResult


@dataclass
class PendingTurn:
    """A bot turn whose reply is playing: written to the call record once we know its latencies."""

    result: TurnResult
    speech_end: float
    reply: str
    token: int = 0  # the playback that speaks the reply
    decided_at: float = field(default_factory=time.monotonic)  # the bot's answer was in


def turn_fields(p: PendingTurn, ev: PlaybackDone | None) -> dict[str, Any]:
    """The turn's row (`add_turn` keywords); `ev`: the playback of its reply, when it has started."""
    r, out = p.result, p.result.bot
    first = ev.first_packet_at if ev else None
    turn_ms = int((first - p.speech_end) * 1000) if first else None
    latency = {"asr": r.asr_ms, "asr_decode": r.decode_ms, "nlu": r.nlu_ms, "tts": ev.tts_ms if ev else None, "turn": turn_ms,
               "decided": int((p.decided_at - p.speech_end) * 1000)}
    return dict(transcript=r.transcript, dtmf=r.dtmf, confidence=(out.confidence if out else None),
                intent=out.intent if out else None, action=(out.action if out else "no_match"),
                category=out.category if out else None, reply=p.reply, latency_ms=latency)
