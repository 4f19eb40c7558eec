"""A call's understanding work, run as tasks that post their results back to the session's queue (session.py):
speculative transcripts at the caller's pauses, a finished utterance through ASR and the bot, a keypad choice
through the bot, and the barge-in word check of a short sound over the bot's voice. The session decides when;
this starts the work and remembers what is running."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ivr.controller.events import BotDone, BurstHeard, CallEvent, PartialText, Pause, Utterance
from ivr.controller.stages import AudioInput, TurnResult, Understanding
from ivr.speech.barge_words import BargeWords
from understanding.expect import Expect

log = logging.getLogger(__name__)


class Spawn(Protocol):
    def __call__(self, coro: Coroutine[Any, Any, None], name: str, *, work: bool = False) -> None: ...


class TurnJobs:
    def __init__(self, call_id: str, caller: str | None, *, understanding: Understanding, audio_in: AudioInput,
                 post: Callable[[CallEvent], None], spawn: Spawn, work: set[asyncio.Task[Any]]) -> None:
        self.call_id = call_id
        self.caller = caller
        self.understanding = understanding
        self.audio_in = audio_in
        self.post = post
        self.spawn = spawn  # a named task of the session's (cancelled at its end)
        self.work = work  # the session's running work, cancelled at its end
        self._caller_sent = False
        self._spec: tuple[int, asyncio.Future[tuple[str, float, int]]] | None = None  # speculative ASR
        self._spec_next: Pause | None = None  # a pause that came while a speculation ran: transcribed after it
        self._specs_running = 0

    def speculate(self, ev: Pause, expect: Expect) -> None:
        """Transcribe what the caller has said so far while waiting to know the utterance has ended. One at a
        time: on talk without end (a crowd, a television) pauses come faster than long audio is decoded, and
        look-aheads would pile up behind each other, each longer than the last."""
        if self._spec is not None and not self._spec[1].done() and (
                self._specs_running >= 2 or self._spec[0] == self.audio_in.current_pause):
            self._spec_next = ev  # the latest pause only: transcribed when this one is done
            return
        # (a running one whose pause the caller has talked past is of no use: this one starts beside it, two at most)
        task = asyncio.ensure_future(self.understanding.transcribe(ev.pcm16, expect=expect))
        self._specs_running += 1
        self.work.add(task)
        task.add_done_callback(self.work.discard)
        task.add_done_callback(lambda t, pause_id=ev.pause_id: self._speculated(pause_id, t))
        self._spec = (ev.pause_id, task)

    def _speculated(self, pause_id: int, task: asyncio.Future[tuple[str, float, int]]) -> None:
        """A speculative transcript is in: the end-of-turn policy judges it; a pause that waited is next."""
        self._specs_running -= 1
        if not task.cancelled() and task.exception() is None:
            self.post(PartialText(pause_id, task.result()[0]))
        nxt, self._spec_next = self._spec_next, None
        if nxt is not None and nxt.pause_id > pause_id:
            self.post(nxt)

    def think(self, utt: Utterance, token: int, expect: Expect) -> None:
        """The utterance through ASR (the look-ahead at its last pause, if that has it) and the bot: BotDone."""
        spec, self._spec = self._spec, None
        early = spec[1] if spec is not None and utt.pause_id == spec[0] else None
        if spec is not None and early is None:
            spec[1].cancel()  # the caller went on after that pause: its transcript is of no use

        async def work() -> None:
            t0 = time.perf_counter()
            try:
                text, confidence, decode_ms = await (
                    early or self.understanding.transcribe(utt.pcm16, expect=expect))
                asr_ms = int((time.perf_counter() - t0) * 1000)  # what the turn waited for ASR
                if text:
                    out, nlu_ms = await self.understanding.ask(self.call_id, text, self.first_caller())
                    result = TurnResult(text, confidence, out, asr_ms, nlu_ms, decode_ms)
                else:
                    result = TurnResult("", 0.0, None, asr_ms, 0, decode_ms)
            except Exception:  # noqa: BLE001 - treated like a bot that is down
                log.exception("understanding failed on call %s", self.call_id)
                result = TurnResult("", 0.0, None, 0, 0)
            self.post(BotDone(token, (result, utt.speech_end)))

        self.spawn(work(), "understand", work=True)

    def ask(self, text: str, token: int, dtmf: str | None) -> None:
        """A keypad choice sent to the bot as the sentence it stands for: BotDone."""
        caller = self.first_caller()
        pressed = time.monotonic()

        async def work() -> None:
            try:
                out, nlu_ms = await self.understanding.ask(self.call_id, text, caller)
                result = TurnResult(text, 1.0, out, 0, nlu_ms, dtmf=dtmf)
            except Exception:  # noqa: BLE001
                log.exception("bot failed on call %s", self.call_id)
                result = TurnResult(text, 1.0, None, 0, 0, dtmf=dtmf)
            self.post(BotDone(token, (result, pressed)))

        self.spawn(work(), "ask", work=True)

    def first_caller(self) -> str | None:
        """The caller's number, with the first turn only."""
        if self._caller_sent:
            return None
        self._caller_sent = True
        return self.caller

    def classify_burst(self, ev: Pause) -> None:
        """A short burst over the bot paused: backchannel or interruption? (ivr.speech.barge_words): BurstHeard."""
        words = BargeWords.for_recognizer(self.understanding.recognizer)
        if words is None:
            self.post(BurstHeard(ev.pause_id, None))
            return

        def done(task: asyncio.Future[Any]) -> None:
            ok = not task.cancelled() and task.exception() is None
            self.post(BurstHeard(ev.pause_id, task.result() if ok else None))

        task = asyncio.ensure_future(words.classify(ev.pcm16))
        self.work.add(task)
        task.add_done_callback(self.work.discard)
        task.add_done_callback(done)
