"""Session fixtures for the Rasa bot tests: .venv-rasa (scripts/setup-rasa.sh), the cached model, a real
`rasa run --enable-api` on a free port with Redis tracker/lock stores in test databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotline.services import rasa
from tests import services

# rasa_model and rasa_server are session fixtures of tests/conftest.py (one Rasa per test session, with the
# action server wired in); re-exported for conftests that import them from here.
from tests.conftest import rasa_model, rasa_server  # noqa: E402,F401


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
