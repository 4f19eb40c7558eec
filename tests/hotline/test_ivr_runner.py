"""The IVR controller's wiring (hotline/ivr_runner.py): settings reach the controller it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.container import Container
from hotline.ivr_runner import build_controller
from ivr.controller.session import CallTimeouts
from ivr.speech.base import Audio, Recognizer, RecognizerStream, Synthesizer
from tests.conftest import make_settings
from understanding.expect import Expect


class NoRecognizer(Recognizer):
    def open_stream(self, sample_rate: int = 16000, *, expect: Expect = Expect.FREE) -> RecognizerStream:
        raise AssertionError("no call in these tests")


class NoSynthesizer(Synthesizer):
    async def synthesize(self, text: str) -> Audio:
        raise AssertionError("no call in these tests")


async def _max_call(tmp_path: Path, redis_url: str, timeouts: CallTimeouts | None = None) -> float:
    container = Container.build(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'runner.db'}", redis_url))
    try:
        controller = build_controller(container, recognizer=NoRecognizer(), synthesizer=NoSynthesizer(),
                                      timeouts=timeouts, use_seats=False)
        await controller.ari.close()
        return controller.timeouts.max_call
    finally:
        await container.close()


async def test_max_call_length_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    redis_url: str) -> None:
    monkeypatch.delenv("HOTLINE_IVR_MAX_CALL_SECONDS", raising=False)
    assert await _max_call(tmp_path, redis_url) == 600.0  # the default
    monkeypatch.setenv("HOTLINE_IVR_MAX_CALL_SECONDS", "42")
    assert await _max_call(tmp_path, redis_url) == 42.0
    # Timeouts given explicitly (the controller tests) are used as they are.
    assert await _max_call(tmp_path, redis_url, CallTimeouts(max_call=7.0)) == 7.0


def test_max_call_length_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_IVR_MAX_CALL_SECONDS", "0")
    with pytest.raises(ValueError, match="ivr_max_call_seconds"):
        make_settings("sqlite+aiosqlite://", "redis://127.0.0.1:6379/0")
