"""Dialogue tests run the real Rasa server (trained model cached by the hash of nlu/) and the real action
server on the session's PostgreSQL database, with the KB and the city seeded for each test."""

from __future__ import annotations

import uuid

import httpx
import pytest

from config.settings import Settings
from hotline.container import Container
from hotline.seed import seed_all
from hotline.services.rasa import RasaServer
from tests.conftest import make_settings


@pytest.fixture
def settings(pg_url: str, redis_url: str, rasa_server: RasaServer) -> Settings:
    return make_settings(pg_url, redis_url, rasa_url=rasa_server.url)


@pytest.fixture
async def seeded(container: Container) -> Container:
    await seed_all(container)
    return container


@pytest.fixture
def say(client: httpx.AsyncClient, headers: dict, seeded: Container):  # type: ignore[no-untyped-def]
    """say(text, caller=None, session=None) → the /v1/dialogue turn as JSON (one new session per test)."""
    session_id = f"t-{uuid.uuid4().hex[:12]}"

    async def _say(text: str, caller: str | None = None) -> dict:
        body = {"text": text} | ({"caller": caller} if caller else {})
        r = await client.post(f"/v1/dialogue/{session_id}", json=body, headers=headers["agent"])
        assert r.status_code == 200, r.text
        return r.json()

    _say.session_id = session_id  # type: ignore[attr-defined]
    return _say
