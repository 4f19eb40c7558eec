"""One call's state machine. Read it top to bottom: `State`, the timeouts, then `handle()`.

    GREETING ──playback done──▶ LISTENING ──utterance──▶ THINKING ──bot decision──▶ SPEAKING ─┐
        │  ▲                       │  ▲                     │                                │
        │  └──────── barge-in ─────┼──┼─────────────────────┼────── (caller speaks) ◀────────┤
        │                          │  └──── playback done ──┼────────────────────────────────┘
        │                no input ×2 / no match ×2          ├─ order created ─▶ READBACK ─▶ LISTENING
        │                          ▼                        ├─ human/emergency ─▶ TRANSFER
        │                        MENU ◀──── bot degraded ───┘  goodbye ─▶ GOODBYE
        │                 1/2/3 ─▶ THINKING (bot up) or TRANSFER (bot down); 0 ─▶ TRANSFER
        ▼
    keypad at any time: 0 ─▶ TRANSFER, # ─▶ repeat the last prompt
    TRANSFER ─prompt done─▶ hand over (seats API, else the dialplan queue) ─▶ WAITING_AGENT ─left─▶ ENDED
    GOODBYE ─prompt done─▶ hang up ─▶ ENDED;   caller hangs up anywhere ─▶ ENDED
    max call length ─▶ TRANSFER;  every state has a timeout (CallTimeouts) with a way out.

Inputs arrive on one queue (events.py); stage work (ASR + bot: turn_jobs.py; TTS: stages.py) runs as tasks
that post their results back, tagged with a token so a stale result (after barge-in, say) is ignored.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from dialogue import replies
from dialogue.schemas import TurnOut
from core.tasks import QueueTimeout, queue_get
from ivr.controller import metrics, prompts
from ivr.controller.events import (
    BotDone, BurstHeard, CallEvent, Counters, Dtmf, Hangup, MaxDuration, PartialText, Pause, PlaybackDone, Shutdown,
    SpeechDiscarded, SpeechLong, SpeechStart, Timeout, Utterance,
)
from ivr.controller.handover import Handover
from ivr.controller.media import CallMedia
from ivr.controller.stages import AudioInput, Speaker, TurnResult, Understanding
from ivr.controller.turn_jobs import TurnJobs
from ivr.controller.turn_record import PendingTurn, turn_fields
from telephony.calls import CallRecords
from telephony.models import CallOutcome
from understanding.expect import Expect

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    GREETING = "greeting"  # greeting prompt playing; barge-in allowed
    LISTENING = "listening"  # waiting for the caller (VAD)
    THINKING = "thinking"  # ASR + bot on the last utterance
    SPEAKING = "speaking"  # bot reply playing; barge-in allowed
    READBACK = "readback"  # ticket read back; no barge-in
    MENU = "menu"  # keypad menu (prompt, then waiting for a key)
    TRANSFER = "transfer"  # "正在为您转接" playing, then the handover
    WAITING_AGENT = "waiting_agent"  # handed over: the seats (or the dialplan queue) own the channel
    GOODBYE = "goodbye"  # goodbye prompt, then hang up
    ENDED = "ended"


BARGE_IN = {State.GREETING, State.SPEAKING}
SPEECH_ACCEPTED = {State.GREETING, State.LISTENING, State.SPEAKING}
KEYPAD_IGNORED = {State.TRANSFER, State.WAITING_AGENT, State.GOODBYE, State.ENDED}
SETTLING_ACTIONS = {"kb_answer", "status_query", "urge", "withdraw"}
NUMBER_EXPECTS = {Expect.PHONE, Expect.TICKET}
NUMBER_KEYS = set("0123456789")
MAX_DIGITS = {Expect.PHONE: 12, Expect.TICKET: 12}
KEY_YES, KEY_AGAIN = "1", "2"  # replies.YES_NO_KEYPAD: 正确请按1，重新说请按2
ASTERISK_GONE = "asterisk_gone"  # Hangup reason: Asterisk stopped or crashed under the call, not the caller


@dataclass(frozen=True)
class CallTimeouts:
    prompt: float = 45.0  # any prompt/reply playing longer than this is cut short
    no_input: float = 8.0  # LISTENING: silence this long → re-prompt (×2 → MENU)
    utterance: float = 17.0  # LISTENING while the caller speaks (VAD cuts at 15 s)
    thinking: float = 10.0  # ASR + bot
    menu_key: float = 10.0  # MENU: after the prompt, wait this long for a key (×2 → GOODBYE)
    handover: float = 10.0  # WAITING_AGENT: the channel must leave our app by then
    max_call: float = 600.0  # whole call → TRANSFER to a person


@dataclass
class CallInfo:
    call_id: str  # = the caller's channel id = the calls row id = the dialogue session id
    caller: str | None
    controller_id: str = ""


class CallSession:
    def __init__(self, info: CallInfo, *, media: CallMedia, understanding: Understanding, speaker_factory: Any,
                 calls: CallRecords, handover: Handover, timeouts: CallTimeouts = CallTimeouts(),
                 on_state: Any = None, record_dir: Any = None,
                 events: asyncio.Queue[CallEvent] | None = None) -> None:
        self.info = info
        self.media = media
        self.understanding = understanding
        self.calls = calls
        self.handover = handover
        self.t = timeouts
        self.on_state = on_state  # async callback(state) (Redis mirror)
        self.events: asyncio.Queue[CallEvent] = events if events is not None else asyncio.Queue()
        self.speaker: Speaker = speaker_factory(media.rtp, self.post)
        self.audio_in = AudioInput(media.rtp.read, self.post, record_dir=record_dir, turn_end="default")
        self.state = State.GREETING
        self.n = Counters()
        self.token = 0  # current playback / understanding job; older results are stale
        self.serial = 0  # current state timer
        self.deadline = 0.0
        self.then = State.LISTENING  # where a finished prompt leads
        self.degraded = False
        self.ticket: str | None = None
        self.handed_to: str | None = None  # "seats" | "dialplan"
        self.last_bot: TurnOut | None = None
        self.last_prompt = prompts.GREETING
        self.pending: PendingTurn | None = None
        self.outcome: CallOutcome | None = None
        self.history: list[str] = []  # states visited (tests, logs)
        self.end_reason: str | None = None  # why the channel went away (events.Hangup.reason)
        self._tasks: set[asyncio.Task[Any]] = set()  # record writes: awaited at the end
        self._work: set[asyncio.Task[Any]] = set()  # audio input, timers, ASR/bot: cancelled at the end
        self.hold_since: float | None = None  # the bot's voice is paused: the caller made a sound over it
        self._burst: Pause | None = None  # that sound, once it paused (being classified)
        self.digits = ""  # a number being keyed in (the bot asked for a phone or ticket number)
        # understanding work (speculative ASR, ASR + bot, keyed text to the bot, barge-in words) as tasks
        self.jobs = TurnJobs(info.call_id, info.caller, understanding=understanding, audio_in=self.audio_in,
                             post=self.post, spawn=self._spawn, work=self._work)

    # ================================================================== plumbing
    def post(self, ev: CallEvent) -> None:
        self.events.put_nowait(ev)

    def _spawn(self, coro: Any, name: str, *, work: bool = False) -> None:
        task = asyncio.create_task(coro, name=f"{name}-{self.info.call_id}")
        bucket = self._work if work else self._tasks
        bucket.add(task)
        task.add_done_callback(bucket.discard)

    def _go(self, state: State, timeout: float) -> None:
        if state is not self.state:
            log.info("call %s: %s -> %s", self.info.call_id, self.state.value, state.value)
            metrics.TRANSITIONS.labels(state.value).inc()
            if self.on_state is not None:
                self._spawn(self.on_state(state.value), "state")
        self.state = state
        self.history.append(state.value)
        self.serial += 1
        self.deadline = time.monotonic() + timeout

    # ================================================================== run
    async def run(self) -> CallOutcome:
        """Answered call with media up → until the caller is gone or handed over."""
        self._spawn(self.audio_in.run(), "audio-in", work=True)
        self._spawn(self.media.watch(), "media-watch", work=True)
        self._spawn(self._max_duration(), "max-duration", work=True)
        self.say(State.GREETING, prompts.GREETING, then=State.LISTENING)
        try:
            while self.state is not State.ENDED:
                try:
                    ev = await queue_get(self.events, max(0.0, self.deadline - time.monotonic()))
                except QueueTimeout:
                    ev = Timeout(self.state.value, self.serial)
                await self.handle(ev)
        finally:
            await self._cleanup()
        return self.outcome or CallOutcome.abandoned

    async def _max_duration(self) -> None:
        await asyncio.sleep(self.t.max_call)
        self.post(MaxDuration())

    # ================================================================== the state machine
    async def handle(self, ev: CallEvent) -> None:
        s = self.state
        # ---- events that mean the same in every state
        if isinstance(ev, Hangup):
            await self._ended_by_caller(ev.reason)
            return
        if isinstance(ev, Shutdown):
            self.speaker.stop()
            await self._hand_over("controller_shutdown", "normal", via_seats=False)
            return
        if isinstance(ev, MaxDuration):
            if s not in KEYPAD_IGNORED:
                self.transfer("max_call_length", prompt=prompts.MAX_DURATION)
            return
        if isinstance(ev, Dtmf):
            await self._keypad(ev.digit)
            return
        if isinstance(ev, Timeout):
            if ev.serial == self.serial:
                await self._timeout()
            return
        # ---- caller audio
        if isinstance(ev, SpeechStart):
            if s in BARGE_IN or (s is State.MENU and not self.degraded and self.speaker.speaking):
                self._hold()  # paused at once; what the sound was decides between going on and barge-in
            elif s is State.LISTENING:
                self.deadline = time.monotonic() + self.t.utterance
            return
        if isinstance(ev, SpeechLong):
            if self._holding():
                self._barge_in("long")  # more than any backchannel: the caller is saying something
            return
        if isinstance(ev, Pause):
            if self._holding():
                self._classify_burst(ev)
            elif s in SPEECH_ACCEPTED or s is State.MENU:
                self.jobs.speculate(ev, self.expect())
            return
        if isinstance(ev, PartialText):
            self.audio_in.partial(ev.pause_id, ev.text, self.expect().value)
            return
        if isinstance(ev, BurstHeard):
            if self._holding() and self._burst is not None and ev.pause_id == self._burst.pause_id:
                v = ev.verdict
                log.info("call %s: barge-in verdict %s", self.info.call_id, v)
                if v is None or v.interrupt:
                    burst = self._burst
                    self._barge_in(f"word {v.word}" if v else "unclassified")
                    self.jobs.speculate(burst, self.expect())  # the turn-end policy judges the interruption's words
                else:
                    self._resume(f"backchannel {v.word} {v.score}")
            return
        if isinstance(ev, SpeechDiscarded):
            if self._holding():
                self._resume("too short")
            elif s is State.LISTENING:
                self.deadline = time.monotonic() + self.t.no_input
            return
        if isinstance(ev, Utterance):
            log.info("call %s: utterance of %d ms ended (%s) in %s", self.info.call_id, ev.duration_ms, ev.end, s.value)
            if self._holding():
                self._barge_in("ended before a verdict")
            if s in SPEECH_ACCEPTED or s is State.MENU:  # in a degraded menu too: the bot may be back
                self.speaker.stop()
                self._think(ev)
            return
        # ---- stage results
        if isinstance(ev, PlaybackDone):
            if ev.token == self.token:
                await self._playback_done(ev)
            elif self.pending is not None and self.pending.token == ev.token:
                self._record_pending(ev)  # a reply the caller talked over
            return
        if isinstance(ev, BotDone):
            if ev.token == self.token and s is State.THINKING:
                await self._decide(ev.result)

    # ------------------------------------------------------------------ barge-in (a sound over the bot's voice)
    def _holding(self) -> bool:
        """The bot's voice is paused for a sound the caller made (False once anything else stopped or moved it)."""
        if self.hold_since is None:
            return False
        if self.media.rtp.held and self.speaker.speaking and self.state in BARGE_IN | {State.MENU}:
            return True
        self.hold_since = self._burst = None
        return False

    def _hold(self) -> None:
        """Pause the bot's voice at once (a real interruption must stop it within 300 ms); a backchannel or noise
        resumes it where it paused, anything else barges in."""
        if self.hold_since is None or not self.media.rtp.held:
            self.hold_since, self._burst = time.monotonic(), None
            self.n.holds += 1
            self.media.rtp.hold()

    def _resume(self, why: str) -> None:
        log.info("call %s: bot resumes after %.0f ms (%s)", self.info.call_id,
                 (time.monotonic() - (self.hold_since or time.monotonic())) * 1000, why)
        self.hold_since = self._burst = None
        self.n.resumes += 1
        self.media.rtp.release()
        self.audio_in.discard()

    def _barge_in(self, why: str) -> None:
        log.info("call %s: barge-in (%s)", self.info.call_id, why)
        self.hold_since = self._burst = None
        self.n.barge_ins += 1
        metrics.BARGE_INS.inc()
        self.speaker.stop()  # its PlaybackDone (now stale) still records the interrupted turn
        self.token += 1
        self._go(State.LISTENING, self.t.utterance)

    def _classify_burst(self, ev: Pause) -> None:
        """A short burst over the bot paused: backchannel or interruption? (a BurstHeard tells)"""
        self._burst = ev
        self.jobs.classify_burst(ev)

    # ------------------------------------------------------------------ keypad (any time)
    def expect(self) -> Expect:
        """The answer the bot's last question expects (the recogniser listens for it, the keypad takes it)."""
        return self.last_bot.expect if self.last_bot is not None and not self.degraded else Expect.FREE

    async def _keypad(self, digit: str) -> None:
        if self.state in KEYPAD_IGNORED:
            return
        expect = self.expect()
        if self.state is not State.MENU and expect in NUMBER_EXPECTS and (digit in NUMBER_KEYS or
                                                                        (digit == "#" and self.digits)):
            self._key_number(digit, expect)
            return
        if self.state in (State.LISTENING, State.SPEAKING) and expect is Expect.YES_NO \
                and digit in (KEY_YES, KEY_AGAIN):
            self.speaker.stop()
            if digit == KEY_YES:
                self._ask_bot_text("对", dtmf=digit)
            else:
                self.say(State.SPEAKING, "好的，请您再说一遍。" + (self.last_bot_question() or ""),
                         then=State.LISTENING)
            return
        if digit == "0":
            self.transfer("dtmf_0")
        elif digit == "#" and self.state is not State.THINKING:
            self.say(State.MENU if self.state is State.MENU else State.SPEAKING,
                     self.last_prompt or prompts.NOTHING_TO_REPEAT, then=self.then)
        elif self.state is State.MENU and digit in prompts.MENU_TEXT:
            self.speaker.stop()
            if self.degraded:  # the bot is down: a person takes the chosen topic
                self.transfer(f"menu_{digit}", skill_topic=prompts.MENU_TOPIC[digit])
            else:
                self._ask_bot_text(prompts.MENU_TEXT[digit], dtmf=digit)
        elif self.state is State.MENU:
            self.n.menu_invalid += 1
            self.say(State.MENU, prompts.MENU_INVALID + prompts.MENU, then=State.MENU)

    def _key_number(self, digit: str, expect: Expect) -> None:
        """Digits keyed for a phone or ticket number: sent to the bot as said digits on '#' or when complete."""
        self.speaker.stop()
        if digit != "#":
            self.digits += digit
        if digit == "#" or len(self.digits) >= MAX_DIGITS[expect]:
            number, self.digits = self.digits, ""
            self._ask_bot_text(number, dtmf="#")
        elif self.state is not State.LISTENING:
            self._go(State.LISTENING, self.t.no_input)

    def last_bot_question(self) -> str | None:
        if self.last_bot is None or not self.last_bot.replies:
            return None
        return self.last_bot.replies[-1]

    # ------------------------------------------------------------------ timeouts
    async def _timeout(self) -> None:
        s = self.state
        if s in (State.GREETING, State.SPEAKING, State.READBACK, State.GOODBYE, State.TRANSFER) \
                or (s is State.MENU and self.speaker.speaking):
            self.speaker.stop()  # a prompt that never finished: carry on as if it had
            self.token += 1  # the stopped speaker's own PlaybackDone, still to come, is stale: not a second ending
            await self._playback_done(PlaybackDone(self.token - 1, False))
        elif s is State.LISTENING and self.digits:
            number, self.digits = self.digits, ""
            self._ask_bot_text(number, dtmf="#")
        elif s is State.LISTENING:
            self.n.no_input += 1
            if self.n.no_input >= 2:
                self.menu(prompts.MENU)
            else:
                self.say(State.SPEAKING, prompts.NO_INPUT, then=State.LISTENING)
        elif s is State.THINKING:
            self.token += 1  # drop the late result
            self.menu(prompts.THINKING_TIMEOUT + prompts.MENU)
        elif s is State.MENU:
            self.n.menu_no_input += 1
            if self.n.menu_no_input >= 2:
                self.outcome = self._settled_outcome(abandoned=True)  # nobody there: not a call the bot settled
                self.goodbye()
            else:
                self.menu(prompts.MENU)
        elif s is State.WAITING_AGENT:
            await self._handover_stuck()

    # ------------------------------------------------------------------ prompts
    def say(self, state: State, text: str, *, then: State) -> None:
        """Speak `text` in `state`; when it has been played, go to `then`."""
        self.token += 1
        self.then = then
        if state not in (State.TRANSFER, State.GOODBYE):
            self.last_prompt = text
        self._go(state, self.t.prompt)
        self.audio_in.listen_for(self.expect())  # a yes/no question keeps bursts as short as a bare "对"
        self.speaker.say(text, self.token)

    def menu(self, prompt: str) -> None:
        self.say(State.MENU, prompt, then=State.MENU)

    def goodbye(self, text: str = prompts.GOODBYE) -> None:
        self.say(State.GOODBYE, text, then=State.ENDED)

    def transfer(self, reason: str, *, priority: str = "normal", prompt: str | None = None,
                 skill_topic: str | None = None) -> None:
        self.transfer_reason, self.transfer_priority, self.skill_topic = reason, priority, skill_topic
        text = prompt or (prompts.TRANSFER_EMERGENCY if priority == "emergency" else prompts.TRANSFER)
        self.say(State.TRANSFER, text, then=State.WAITING_AGENT)

    async def _playback_done(self, ev: PlaybackDone) -> None:
        self._record_pending(ev)
        nxt = self.then
        if nxt is State.LISTENING:
            self._go(State.LISTENING, self.t.no_input)
        elif nxt is State.MENU:
            self._go(State.MENU, self.t.menu_key)
        elif nxt is State.WAITING_AGENT:
            await self._hand_over(getattr(self, "transfer_reason", "human"),
                                  getattr(self, "transfer_priority", "normal"))
        elif nxt is State.ENDED:
            await self._hang_up()

    # ------------------------------------------------------------------ understanding (turn_jobs.py does the work)
    def _think(self, utt: Utterance) -> None:
        self.token += 1
        self._go(State.THINKING, self.t.thinking)
        self.jobs.think(utt, self.token, self.expect())

    def _ask_bot_text(self, text: str, dtmf: str | None = None) -> None:
        """A keypad choice sent to the bot as the sentence it stands for."""
        self.token += 1
        self._go(State.THINKING, self.t.thinking)
        self.jobs.ask(text, self.token, dtmf)

    async def _decide(self, payload: tuple[TurnResult, float]) -> None:
        """The bot's decision → what the caller hears next and where the call goes."""
        result, speech_end = payload
        out = result.bot
        self.n.turns += 1
        if out is None:  # nothing recognised (no match): the same question again, in other words
            reply = replies.repair(self.expect(), self.n.no_match) if self.expect() is not Expect.FREE \
                else prompts.NO_MATCH
            self._pend(PendingTurn(result, speech_end, reply))
            self._no_match(reply)
            return
        self.last_bot = out
        reply = "".join(out.replies).strip()
        if out.degraded:
            self.degraded = True
            self._pend(PendingTurn(result, speech_end, reply or prompts.MENU))
            self.menu(reply or prompts.MENU)
            return
        self.degraded = False
        if out.action in ("human", "emergency") or out.handoff is not None:
            priority = out.handoff.priority if out.handoff else ("emergency" if out.action == "emergency" else "normal")
            if out.action == "emergency":
                priority = "emergency"
            self._pend(PendingTurn(result, speech_end, reply))
            self.transfer(out.handoff.reason if out.handoff else out.action, priority=priority,
                          prompt=(reply + (prompts.TRANSFER_EMERGENCY if priority == "emergency" else prompts.TRANSFER)))
            return
        if out.work_order is not None and out.work_order.ticket:
            self.ticket = out.work_order.ticket
            text = reply
            deadline = prompts.deadline_text(out.work_order.response_deadline)
            if self.ticket not in reply:
                text += prompts.ticket_readback(self.ticket, deadline, out.work_order.department)
            elif "响应" not in reply:  # the bot read the ticket; the promised response time is ours to add
                text += prompts.promised_response(deadline, out.work_order.department)
            self._pend(PendingTurn(result, speech_end, text))
            self.n.no_match = 0
            self.say(State.READBACK, text + prompts.ANYTHING_ELSE, then=State.LISTENING)
            return
        if out.action == "fallback":
            self._pend(PendingTurn(result, speech_end, reply or prompts.NO_MATCH))
            self._no_match(reply or prompts.NO_MATCH)
            return
        self.n.no_match = 0
        self.n.no_input = 0
        if out.action in SETTLING_ACTIONS:
            self.n.settled.add(out.action)
        self._pend(PendingTurn(result, speech_end, reply))
        if out.intent == "goodbye":
            self.goodbye(reply or prompts.GOODBYE)
        else:
            self.say(State.SPEAKING, reply or prompts.NO_MATCH, then=State.LISTENING)

    def _pend(self, turn: PendingTurn) -> None:
        self._record_pending()  # never lose an earlier turn that is still unwritten
        turn.token = self.token + 1  # say() is called next and takes this token
        self.pending = turn

    def _no_match(self, reply: str) -> None:
        self.n.no_match += 1
        if self.expect() is not Expect.FREE and self.n.no_match < 3:
            # A question of the bot's (address, yes/no, number): asked again with an example and the keypad,
            # the order in progress kept; a third miss goes to a person with it.
            self.say(State.SPEAKING, reply, then=State.LISTENING)
            return
        if self.expect() is not Expect.FREE:
            self.transfer("not_understood")
            return
        if self.n.no_match >= 2:
            self.menu(prompts.NO_MATCH.split("，")[0] + "。" + prompts.MENU)
        else:
            self.say(State.SPEAKING, reply, then=State.LISTENING)

    # ------------------------------------------------------------------ call records
    def _record_pending(self, ev: PlaybackDone | None = None) -> None:
        """Write the turn whose reply is (or was) playing, with its latencies."""
        p, self.pending = self.pending, None
        if p is None:
            return
        fields = turn_fields(p, ev)
        metrics.observe_turn(fields["latency_ms"])
        self._spawn(self._write_turn(fields), "turn")

    async def _write_turn(self, fields: dict[str, Any]) -> None:
        try:
            await self.calls.add_turn(self.info.call_id, **fields)
        except Exception:  # noqa: BLE001 - a record write must never break the call
            log.exception("could not write turn of call %s", self.info.call_id)

    # ------------------------------------------------------------------ endings
    async def _hand_over(self, reason: str, priority: str, *, via_seats: bool = True) -> None:
        self._record_pending()
        self.token += 1  # a prompt cut short here (controller shutdown) must not lead anywhere when its end comes in
        await self.media.teardown()
        context = {"handoff_reason": reason, "degraded": self.degraded, "skill_topic": getattr(self, "skill_topic", None)}
        if self.last_bot is not None:
            context |= {"intent": self.last_bot.intent, "category": self.last_bot.category,
                        "slots": self.last_bot.slots}
        self.handed_to = await self.handover.hand_over(self.info, priority, context, via_seats=via_seats)
        self.outcome = CallOutcome.transferred
        self._go(State.WAITING_AGENT, self.t.handover)
        if self.handed_to is None:  # neither worked: the channel is gone
            self._go(State.ENDED, 0)

    async def _handover_stuck(self) -> None:
        """The channel never left our app after the handover: push it to the dialplan queue."""
        log.warning("call %s: handover did not complete; sending it to the dialplan queue", self.info.call_id)
        if self.handed_to != "dialplan":
            self.handed_to = await self.handover.to_dialplan(self.info)
        self._go(State.ENDED, 0)

    async def _hang_up(self) -> None:
        self.outcome = self.outcome or self._settled_outcome()
        await self.media.teardown()
        await self.handover.hang_up(self.info)
        self._go(State.ENDED, 0)

    async def _ended_by_caller(self, reason: str) -> None:
        self.speaker.stop()
        self.end_reason = reason
        if self.state is State.WAITING_AGENT or self.handed_to:
            self.outcome = CallOutcome.transferred
        elif reason == ASTERISK_GONE and not (self.ticket or self.n.settled):
            self.outcome = CallOutcome.failed  # our side failed: the caller did not give up
        elif self.outcome is None:
            self.outcome = self._settled_outcome(abandoned=True)
        self._go(State.ENDED, 0)

    def _settled_outcome(self, abandoned: bool = False) -> CallOutcome:
        if self.ticket:
            return CallOutcome.work_order
        if self.n.settled:
            return CallOutcome.answered
        return CallOutcome.abandoned if abandoned else CallOutcome.answered

    async def _cleanup(self) -> None:
        self._record_pending()
        self.speaker.stop()
        for task in list(self._work):
            task.cancel()
        await self.media.teardown()
        pending = [t for t in self._tasks if not t.done()]
        if pending:  # let record writes finish
            await asyncio.wait(pending, timeout=5)

