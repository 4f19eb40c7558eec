"""One long hostile call on the real stack: what it costs the controller, and whether the call is still healthy.

    .venv/bin/python benchmarks/hostile_media.py                                  # 10 min noise, 4 min silence
    .venv/bin/python benchmarks/hostile_media.py --noise-minutes 1 --silence-minutes 0.5 --rasa-url dead

The stack is benchmarks/ivr_stack.py's (dev Asterisk, throw-away SQLite database, Rasa + action servers unless
--rasa-url), the controller in its own process so its figures are its own. One caller then, in real time:
300 malformed RTP datagrams (payload types nobody negotiated, headers that lie about their length, comfort
noise, empty and oversized packets, junk), bursts of 1200 audio packets at once (shuffled, duplicated), a flood
of 210 RFC 4733 digits in one burst and 21 more at keypad speed, N minutes of noise (30 s each, in turn: a
crowd talking - speech played backwards -, speech breaking up every 300 ms, steady hiss), the malformed
packets, bursts and flood again, M minutes of silence, and finally a question from the knowledge base.
Printed per phase and for the whole call: the controller's CPU seconds and RSS (sampled every second).
Healthy = the question got its knowledge-base answer, spoken (without a bot: the keypad menu).

The controller runs the production call flow, but with the no-input / menu / maximum-length timeouts raised:
with the real ones the call would end long before the abuse does (a silent caller is hung up on after about a
minute, any call is handed to a person after 10 minutes; tests/ivr/controller/test_hostile_media.py checks
those endings).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.ivr_stack import DEAD_RASA, caller_speech, ivr_stack, wait_quiet  # noqa: E402
from tests.support.hostile_media import babble, malformed_rtp, steady_noise, stutter  # noqa: E402
from tests.support.process_meter import ProcessMeter  # noqa: E402
from tests.support.sip_caller import SipCall, SipCaller  # noqa: E402

QUESTION = "社保卡丢了怎么办"
CROWD = ["青山区人民路上的路灯坏了，晚上一片漆黑", "请问办理居住证需要带哪些材料", "我想查询一下公积金的提取流程", "我要投诉小区噪音扰民"]
LONG = 24 * 3600.0  # "never", for the timeouts that would end the call


# ------------------------------------------------------------------------------------------ the controller
async def serve_controller() -> int:
    """The controller as `hotline ivr` builds it (settings from the environment), with long call timeouts."""
    from config.settings import get_settings
    from hotline.container import Container
    from hotline.ivr_runner import build_controller, build_speech, prepare_speech
    from ivr.controller.session import CallTimeouts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    container = Container.build(settings)
    recognizer, synthesizer = build_speech(settings)
    await prepare_speech(container, recognizer, synthesizer)
    ctl = build_controller(container, recognizer=recognizer, synthesizer=synthesizer,
                           timeouts=CallTimeouts(no_input=LONG, menu_key=LONG, max_call=LONG))
    await ctl.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await ctl.stop()
    await ctl.ari.close()
    await container.close()
    return 0


# ------------------------------------------------------------------------------------------ the caller
async def abuse(call: SipCall) -> None:
    call.send_datagrams(malformed_rtp(call))
    for seed in range(3):
        call.audio_burst(steady_noise(4.0, -30, seed=seed), duplicates=2)
        await asyncio.sleep(0.5)
    call.dtmf_burst("456789*" * 30)  # no 0, 1-3 or #: those mean something
    await call.send_dtmf("456789*" * 3, duration_ms=40, gap_ms=0)


async def noise(call: SipCall, minutes: float, voices: list[np.ndarray]) -> None:
    """Half a minute each, in turn: a crowd talking (backwards), speech breaking up every 300 ms, hiss."""
    kinds = [lambda i: babble(voices, 30.0, seed=i), lambda i: stutter(voices[i % len(voices)], 30.0),
             lambda i: steady_noise(30.0, -25, seed=i)]
    await call.play(np.concatenate([kinds[i % 3](i) for i in range(max(1, round(minutes * 2)))]))


async def silence(call: SipCall, minutes: float) -> None:
    # The phone keeps sending silent frames, as a real one does. At least 30 s: Asterisk mutes the caller
    # while it plays out the flood's digits, and a question asked meanwhile is not heard.
    await asyncio.sleep(max(minutes * 60, 30.0))


async def main_async(args: argparse.Namespace) -> int:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-controller"]
    async with ivr_stack(args.rasa_url, redis_db=args.redis_db, controller_cmd=cmd) as stack:
        speech = await caller_speech([QUESTION, *CROWD])
        question, voices = speech[QUESTION], [speech[t] for t in CROWD]
        pid = stack.controller.pid
        print(f"bot: {stack.rasa_url}; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
              f"controller pid {pid}", flush=True)
        caller_number = "13900000666"
        async with SipCaller(user=caller_number) as ua:
            call = await ua.dial("12345", timeout=30)
            await wait_quiet(call, 0, quiet=1.5)
            call_id = stack.call_ids(caller_number)[-1]
            meter = ProcessMeter(pid)

            async def sample() -> None:
                minute = 0
                while True:
                    meter.sample()
                    if meter.elapsed >= 60 * (minute + 1):
                        minute += 1
                        print(f"    minute {minute:>2}: controller RSS {meter.last_rss_mb:.0f} MB, CPU so far "
                              f"{meter.cpu_used:.1f} s", flush=True)
                    await asyncio.sleep(1.0)

            sampler = asyncio.create_task(sample())
            header = f"{'phase':<34}{'wall s':>8}{'CPU s':>8}{'% core':>8}{'RSS MB':>8}{'peak':>8}{'turns':>7}"
            print(header, flush=True)
            phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("malformed RTP, bursts, DTMF flood", lambda: abuse(call)),
                (f"noise, {args.noise_minutes:g} min", lambda: noise(call, args.noise_minutes, voices)),
                ("malformed RTP, bursts, DTMF again", lambda: abuse(call)),
                (f"silence, {args.silence_minutes:g} min", lambda: silence(call, args.silence_minutes)),
            ]
            for name, phase in phases:
                t0, c0 = time.monotonic(), meter.cpu_used
                await phase()
                wall, cpu = time.monotonic() - t0, meter.cpu_used - c0
                meter.sample()
                print(f"{name:<34}{wall:>8.0f}{cpu:>8.1f}{100 * cpu / wall:>8.1f}{meter.last_rss_mb:>8.0f}"
                      f"{meter.peak_rss_mb:>8.0f}{len(stack.call_turns(call_id)):>7}", flush=True)
                if call.ended.is_set():
                    print(f"the call ended during '{name}' ({call.end_reason})")
                    break
                outcome, ended_at = stack.call_outcome(call_id)
                if outcome != "in_progress":  # handed over: the controller no longer has the call
                    last = stack.call_turns(call_id)[-1:]
                    print(f"the controller let go of the call during '{name}': {outcome} at {ended_at}; last turn "
                          f"{[(a, t[:30], r[:30]) for a, t, r in last]}")
                    break
            healthy = False
            if not call.ended.is_set() and stack.call_outcome(call_id)[0] == "in_progress":
                before = len(stack.call_turns(call_id))
                said = await call.play(question)
                first = await wait_quiet(call, said, quiet=2.0, timeout=60)
                await asyncio.sleep(1.0)  # the turn is written when its reply has been played
                new = stack.call_turns(call_id)[before:]
                expected = "fallback" if stack.rasa_url == DEAD_RASA else "kb_answer"  # without a bot: the menu
                healthy = first is not None and any(action == expected for action, _, _ in new)
                latency = f"{1000 * (first - said):.0f} ms" if first else "no answer"
                print(f"question after the abuse: {latency}; turns {[(a, t) for a, t, _ in new]}")
                await call.hangup()
            sampler.cancel()
            meter.sample()
        turns = stack.call_turns(call_id)
        actions = {a: sum(1 for x, _, _ in turns if x == a) for a in sorted({a for a, _, _ in turns})}
        print(f"whole call: {meter.elapsed:.0f} s, controller CPU {meter.cpu_used:.1f} s "
              f"({100 * meter.cpu_used / meter.elapsed:.1f}% of a core), RSS {meter.rss_start_mb:.0f} MB at the "
              f"start, peak {meter.peak_rss_mb:.0f} MB, {meter.last_rss_mb:.0f} MB at the end; "
              f"{len(turns)} turns {actions}")
        log = (stack.tmp / "controller.log").read_text(errors="replace")
        repairs = log.count("repairing the media leg")
        print(f"media leg repairs (the caller's audio had stopped coming through): {repairs}")
        print(f"healthy at the end: {'yes' if healthy else 'NO'}")
    return 0 if healthy else 1


def main() -> int:
    if "--serve-controller" in sys.argv:
        return asyncio.run(serve_controller())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--noise-minutes", type=float, default=10.0)
    ap.add_argument("--silence-minutes", type=float, default=4.0)
    ap.add_argument("--rasa-url", default="", help="use this Rasa server ('dead' = no bot); default: start one")
    ap.add_argument("--redis-db", type=int, default=4, help="database number on the local Redis (flushed)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
