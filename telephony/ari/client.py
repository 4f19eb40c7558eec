"""Asyncio ARI REST client (httpx) with the events socket attached (`client.events`).

    async with AriClient("http://127.0.0.1:8088", "hotline", password, app="hotline") as ari:
        ari.events.on("StasisStart", on_start)
        await ari.events.wait_connected(5)
        await ari.answer(channel_id)
"""

from __future__ import annotations

from typing import Any

import httpx

from .events import AriEvents
from .models import AsteriskInfo, Bridge, Channel, LiveRecording, Playback


class AriError(RuntimeError):
    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {message}")
        self.status = status
        self.message = message


def _params(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = str(v).lower()
        elif isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        out[k] = v
    return out


class AriClient:
    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str = "hotline",
        *,
        timeout: float = 5.0,
        start_events: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._http = httpx.AsyncClient(
            base_url=f"{self.base_url}/ari", auth=(user, password), timeout=timeout,
        )
        self.events = AriEvents(self.base_url, (user, password), app)
        self._start_events = start_events

    async def __aenter__(self) -> "AriClient":
        if self._start_events:
            await self.events.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.events.stop()
        await self._http.aclose()

    # ------------------------------------------------------------------ plumbing
    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> Any:
        r = await self._http.request(method, path, params=params, json=json)
        if r.status_code >= 400:
            try:
                msg = r.json().get("message", r.text)
            except ValueError:
                msg = r.text
            raise AriError(r.status_code, msg, method, path)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # ------------------------------------------------------------------ asterisk
    async def info(self) -> AsteriskInfo:
        return AsteriskInfo.model_validate(await self.request("GET", "/asterisk/info"))

    async def application(self, name: str | None = None) -> dict[str, Any]:
        return await self.request("GET", f"/applications/{name or self.app}")

    # ------------------------------------------------------------------ channels
    async def list_channels(self) -> list[Channel]:
        return [Channel.model_validate(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/ring")

    async def moh_start(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params=_params(mohClass=moh_class))

    async def moh_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def send_dtmf(self, channel_id: str, dtmf: str, *, between_ms: int = 100,
                        duration_ms: int = 100) -> None:
        await self.request("POST", f"/channels/{channel_id}/dtmf",
                           params=_params(dtmf=dtmf, between=between_ms, duration=duration_ms))

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable",
                           params={"variable": name, "value": value})

    async def continue_in_dialplan(self, channel_id: str, *, context: str | None = None,
                                   extension: str | None = None, priority: int | None = None,
                                   label: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue",
                           params=_params(context=context, extension=extension, priority=priority,
                                          label=label))

    async def originate(
        self, endpoint: str, *, app: str | None = None, app_args: str | None = None,
        context: str | None = None, extension: str | None = None, priority: int | None = None,
        caller_id: str | None = None, timeout: int = 30, channel_id: str | None = None,
        originator: str | None = None, formats: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """POST /channels. Give `app` (Stasis) or `context`/`extension`/`priority` (dialplan)."""
        if context is None and app is None:
            app = self.app
        params = _params(endpoint=endpoint, app=app, appArgs=app_args, context=context,
                         extension=extension, priority=priority, callerId=caller_id, timeout=timeout,
                         channelId=channel_id, originator=originator, formats=formats)
        data = await self.request("POST", "/channels", params=params,
                                  json={"variables": variables} if variables else None)
        return Channel.model_validate(data)

    async def create_channel(self, endpoint: str, *, app: str | None = None,
                             app_args: str | None = None, channel_id: str | None = None,
                             originator: str | None = None, formats: str | None = None,
                             variables: dict[str, str] | None = None) -> Channel:
        """POST /channels/create (not dialled yet; call `dial`) - for early bridging to agents."""
        params = _params(endpoint=endpoint, app=app or self.app, appArgs=app_args,
                         channelId=channel_id, originator=originator, formats=formats)
        data = await self.request("POST", "/channels/create", params=params,
                                  json={"variables": variables} if variables else None)
        return Channel.model_validate(data)

    async def dial(self, channel_id: str, *, caller: str | None = None, timeout: int = 30) -> None:
        await self.request("POST", f"/channels/{channel_id}/dial",
                           params=_params(caller=caller, timeout=timeout))

    async def external_media(
        self, external_host: str, *, fmt: str = "slin16", channel_id: str | None = None,
        app: str | None = None, encapsulation: str = "rtp", transport: str = "udp",
        direction: str = "both", variables: dict[str, str] | None = None, data: str | None = None,
    ) -> Channel:
        """POST /channels/externalMedia: a UnicastRTP channel sending/receiving RTP to external_host
        (host:port). It enters Stasis (its own StasisStart) shortly *after* this returns."""
        params = _params(app=app or self.app, external_host=external_host, format=fmt,
                         channelId=channel_id, encapsulation=encapsulation, transport=transport,
                         connection_type="client", direction=direction, data=data)
        body = {"variables": variables} if variables else None
        return Channel.model_validate(
            await self.request("POST", "/channels/externalMedia", params=params, json=body))

    async def snoop(self, channel_id: str, *, spy: str = "in", whisper: str = "none",
                    app: str | None = None, app_args: str | None = None,
                    snoop_id: str | None = None) -> Channel:
        params = _params(spy=spy, whisper=whisper, app=app or self.app, appArgs=app_args,
                         snoopId=snoop_id)
        return Channel.model_validate(
            await self.request("POST", f"/channels/{channel_id}/snoop", params=params))

    async def record(self, channel_id: str, name: str, *, fmt: str = "wav",
                     max_duration_s: int = 0, if_exists: str = "overwrite",
                     beep: bool = False) -> LiveRecording:
        params = _params(name=name, format=fmt, maxDurationSeconds=max_duration_s,
                         ifExists=if_exists, beep=beep)
        return LiveRecording.model_validate(
            await self.request("POST", f"/channels/{channel_id}/record", params=params))

    # ------------------------------------------------------------------ playback
    async def play(self, channel_id: str, media: str | list[str], *, playback_id: str | None = None,
                   lang: str | None = None) -> Playback:
        """Play `sound:...`, `recording:...`, `tone:...`, `digits:...` on a channel."""
        params = _params(media=media, lang=lang, playbackId=playback_id)
        return Playback.model_validate(
            await self.request("POST", f"/channels/{channel_id}/play", params=params))

    async def play_on_bridge(self, bridge_id: str, media: str | list[str], *,
                             playback_id: str | None = None) -> Playback:
        params = _params(media=media, playbackId=playback_id)
        return Playback.model_validate(
            await self.request("POST", f"/bridges/{bridge_id}/play", params=params))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    # ------------------------------------------------------------------ bridges
    async def create_bridge(self, bridge_type: str = "mixing", *, bridge_id: str | None = None,
                            name: str | None = None) -> Bridge:
        params = _params(type=bridge_type, bridgeId=bridge_id, name=name)
        return Bridge.model_validate(await self.request("POST", "/bridges", params=params))

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.model_validate(await self.request("GET", f"/bridges/{bridge_id}"))

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.model_validate(b) for b in await self.request("GET", "/bridges")]

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_channel(self, bridge_id: str, channel_ids: str | list[str], *,
                          role: str | None = None) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel",
                           params=_params(channel=channel_ids, role=role))

    async def remove_channel(self, bridge_id: str, channel_ids: str | list[str]) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel",
                           params=_params(channel=channel_ids))

    async def bridge_moh_start(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", params=_params(mohClass=moh_class))

    async def bridge_moh_stop(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}/moh")
