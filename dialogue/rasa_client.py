"""A small async client for the Rasa server's HTTP API (REST channel + tracker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


class BotUnavailable(Exception):
    """Rasa is down, too slow or answered garbage."""


@dataclass(frozen=True)
class Parse:
    """What Rasa's NLU made of a text alone (`/model/parse`): no dialogue state is touched."""

    intent: str | None
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)  # best first
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BotTurn:
    messages: list[dict[str, Any]]
    intent: str | None = None
    confidence: float | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None


class RasaClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=min(timeout, 0.5)))

    async def turn(self, sender: str, text: str, metadata: dict[str, Any],
                   parse: dict[str, Any] | None = None) -> BotTurn:
        """One request: the hotline channel (nlu/hotline_channel.py) answers messages, intent, slots, form.

        `parse` ({"intent": name, "entities": [...]}) is the understanding already decided for this text (the
        answer to the question asked, a confirmed clarification): Rasa's NLU is skipped and the text kept."""
        body: dict[str, Any] = {"sender": sender, "message": text, "metadata": metadata}
        if parse is not None:
            body["parse"] = parse
        try:
            r = await self._http.post("/webhooks/hotline/webhook", json=body)
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BotUnavailable(str(exc) or exc.__class__.__name__) from exc
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise BotUnavailable("unexpected reply from the bot")
        intent = body.get("intent") or {}
        return BotTurn(
            messages=body["messages"],
            intent=intent.get("name"),
            confidence=intent.get("confidence"),
            slots=body.get("slots") or {},
            active_loop=body.get("active_loop"),
        )

    async def parse(self, text: str) -> Parse:
        try:
            r = await self._http.post("/model/parse", json={"text": text})
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BotUnavailable(str(exc) or exc.__class__.__name__) from exc
        intent = body.get("intent") or {}
        ranking = [(str(i.get("name")), float(i.get("confidence") or 0.0)) for i in body.get("intent_ranking") or []]
        return Parse(intent.get("name"), float(intent.get("confidence") or 0.0), ranking, body.get("entities") or [])

    async def set_slots(self, sender: str, slots: dict[str, Any]) -> None:
        """Set slots of the conversation (a correction the caller made to the read-back)."""
        events = [{"event": "slot", "name": k, "value": v} for k, v in slots.items()]
        try:
            r = await self._http.post(f"/conversations/{sender}/tracker/events", json=events,
                                      params={"include_events": "NONE"})
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise BotUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def restart(self, sender: str) -> None:
        try:
            r = await self._http.post(
                f"/conversations/{sender}/tracker/events", json=[{"event": "restart"}], params={"include_events": "NONE"}
            )
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise BotUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def ready(self) -> bool:
        try:
            r = await self._http.get("/status")
            return r.status_code == 200 and bool(r.json().get("model_file"))
        except (httpx.HTTPError, ValueError):
            return False

    async def close(self) -> None:
        await self._http.aclose()
