"""Typed ARI resources and events (the subset the hotline uses; unknown fields are kept as extras)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CallerID(_Model):
    name: str = ""
    number: str = ""


class DialplanCEP(_Model):
    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str | None = None
    app_data: str | None = None


class Channel(_Model):
    id: str
    name: str = ""
    state: str = ""  # Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy, ...
    caller: CallerID = Field(default_factory=CallerID)
    connected: CallerID = Field(default_factory=CallerID)
    accountcode: str = ""
    dialplan: DialplanCEP | None = None
    creationtime: str = ""
    language: str = ""
    channelvars: dict[str, Any] | None = None
    protocol_id: str | None = None
    tenantid: str | None = None

    @property
    def is_external_media(self) -> bool:
        return self.name.startswith("UnicastRTP/")


class Bridge(_Model):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)


class Playback(_Model):
    id: str
    media_uri: str = ""
    target_uri: str = ""
    language: str | None = None
    state: str = ""  # queued, playing, continuing, done, failed


class LiveRecording(_Model):
    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""


class AsteriskInfo(_Model):
    build: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


class Variable(_Model):
    value: str = ""


# ---------------------------------------------------------------------------------------- events
class Event(_Model):
    type: str
    application: str = ""
    timestamp: str = ""
    asterisk_id: str | None = None


class StasisStart(Event):
    channel: Channel
    args: list[str] = Field(default_factory=list)
    replace_channel: Channel | None = None


class StasisEnd(Event):
    channel: Channel


class ChannelDtmfReceived(Event):
    channel: Channel
    digit: str
    duration_ms: int = 0


class ChannelHangupRequest(Event):
    channel: Channel
    cause: int | None = None
    soft: bool | None = None


class ChannelDestroyed(Event):
    channel: Channel
    cause: int = 0
    cause_txt: str = ""


class ChannelStateChange(Event):
    channel: Channel


class ChannelVarset(Event):
    variable: str
    value: str = ""
    channel: Channel | None = None


class ChannelTalkingStarted(Event):
    channel: Channel


class ChannelTalkingFinished(Event):
    channel: Channel
    duration: int = 0


class PlaybackStarted(Event):
    playback: Playback


class PlaybackContinuing(Event):
    playback: Playback


class PlaybackFinished(Event):
    playback: Playback


class ChannelEnteredBridge(Event):
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(Event):
    bridge: Bridge
    channel: Channel


class BridgeDestroyed(Event):
    bridge: Bridge


class Dial(Event):
    peer: Channel
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str | None = None


class RecordingFinished(Event):
    recording: LiveRecording


class RecordingFailed(Event):
    recording: LiveRecording


class ApplicationReplaced(Event):
    pass


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StasisStart, StasisEnd, ChannelDtmfReceived, ChannelHangupRequest, ChannelDestroyed,
        ChannelStateChange, ChannelVarset, ChannelTalkingStarted, ChannelTalkingFinished,
        PlaybackStarted, PlaybackContinuing, PlaybackFinished, ChannelEnteredBridge,
        ChannelLeftBridge, BridgeDestroyed, Dial, RecordingFinished, RecordingFailed,
        ApplicationReplaced,
    )
}


def parse_event(data: dict[str, Any]) -> Event:
    """Parse one event JSON object; unknown types become a plain `Event` with the raw fields as extras."""
    cls = EVENT_TYPES.get(str(data.get("type", "")), Event)
    try:
        return cls.model_validate(data)
    except ValueError:
        return Event.model_validate(data)
