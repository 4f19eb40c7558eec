"""Small typed asyncio client for the Asterisk REST Interface (REST via httpx, events via websockets)."""

from .client import AriClient, AriError
from .events import AriEvents
from .watchdog import hand_back_orphans
from .models import (
    Bridge, BridgeDestroyed, CallerID, Channel, ChannelDestroyed, ChannelDtmfReceived,
    ChannelEnteredBridge, ChannelHangupRequest, ChannelLeftBridge, ChannelStateChange,
    ChannelVarset, Dial, Event, Playback, PlaybackFinished, PlaybackStarted, StasisEnd,
    StasisStart, parse_event,
)

__all__ = [
    "AriClient", "AriError", "AriEvents", "Bridge", "BridgeDestroyed", "CallerID", "Channel",
    "ChannelDestroyed", "ChannelDtmfReceived", "ChannelEnteredBridge", "ChannelHangupRequest",
    "ChannelLeftBridge", "ChannelStateChange", "ChannelVarset", "Dial", "Event", "Playback",
    "PlaybackFinished", "PlaybackStarted", "StasisEnd", "StasisStart", "hand_back_orphans", "parse_event",
]
