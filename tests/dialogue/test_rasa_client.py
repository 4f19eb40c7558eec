"""The hotline's HTTP client to Rasa, against the real Rasa server."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec

from dialogue.rasa_client import RasaClient
from hotline.services.rasa import RasaServer


class ImportSpy:
    """A meta-path finder that only records which modules Python searched for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        self.names.append(name)
        return None


async def test_requests_import_nothing(rasa_server: RasaServer) -> None:
    # httpcore imports sniffio for each lock it sets up; while sniffio was not installed, every request
    # repeated failed imports that searched all of sys.path (~0.1 ms each, several per request).
    client = RasaClient(rasa_server.url, 5.0)
    spy = ImportSpy()
    try:
        assert await client.ready()
        sys.meta_path.insert(0, spy)
        for _ in range(3):
            assert await client.ready()
    finally:
        if spy in sys.meta_path:
            sys.meta_path.remove(spy)
        await client.close()
    assert spy.names == []
