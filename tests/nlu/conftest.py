"""Session fixtures for the Rasa bot tests: .venv-rasa (scripts/setup-rasa.sh), the cached model, a real
`rasa run --enable-api` on a free port with Redis tracker/lock stores in test databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotline.services import rasa
from tests import services

RASA_TRACKER_TEST_DB = 10
RASA_LOCK_TEST_DB = 11


@pytest.fixture(scope="session")
def rasa_model() -> Path:
    rasa.ensure_installed()
    return rasa.ensure_model()


@pytest.fixture(scope="session")
def rasa_server(rasa_model: Path) -> Iterator[rasa.RasaServer]:
    services.ensure_redis()
    server = rasa.start_server(
        port=rasa.free_port(),
        model=rasa_model,
        env={"REDIS_PORT": services.REDIS_PORT, "RASA_TRACKER_DB": RASA_TRACKER_TEST_DB,
             "RASA_LOCK_DB": RASA_LOCK_TEST_DB},
    )
    try:
        yield server
    finally:
        rasa.stop_server()


@pytest.fixture(scope="session")
def rasa_client(rasa_server: rasa.RasaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rasa_server.url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def parse(rasa_client: httpx.Client):  # type: ignore[no-untyped-def]
    def _parse(text: str) -> dict:
        r = rasa_client.post("/model/parse", json={"text": text})
        assert r.status_code == 200, r.text
        return r.json()

    return _parse
