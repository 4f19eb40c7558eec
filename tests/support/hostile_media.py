"""What a broken or hostile phone sends, for robustness tests and benchmarks (8 kHz, as the SIP leg carries it).

    crowd = babble([pcm1, pcm2, ...], 60.0)       # several people talking at once, backwards: speech, no words
    broken = stutter(pcm1, 15.0)                  # speech in 250 ms pieces: pause after pause, no end
    hiss = steady_noise(60.0, level_dbfs=-25)     # constant wide-band noise
    call.send_datagrams(malformed_rtp(call))      # wrong payload types, broken headers, junk
"""

from __future__ import annotations

import random
import struct

import numpy as np

from tests.support.sip_caller import SipCall, rtp_packet

RATE = 8000


def steady_noise(seconds: float, level_dbfs: float = -25.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amplitude = 32768 * 10 ** (level_dbfs / 20)
    return np.clip(rng.normal(0, amplitude, int(seconds * RATE)), -32768, 32767).astype(np.int16)


def babble(voices: list[np.ndarray], seconds: float, *, talkers: int = 3, level_dbfs: float = -20.0,
           seed: int = 2) -> np.ndarray:
    """A crowd talking at once (a market, a television): `talkers` streams of the given speech clips, each
    played backwards (speech to a voice activity detector, words to nobody) at random gains with short gaps,
    mixed and scaled to `level_dbfs`. Gaps rarely line up, so "utterances" run on until a cap cuts them."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    mix = np.zeros(n)
    for _ in range(talkers):
        i = int(rng.uniform(0, 0.5) * RATE)
        while i < n:
            clip = voices[int(rng.integers(len(voices)))][::-1].astype(np.float64) * 10 ** (rng.uniform(-6, 0) / 20)
            take = min(len(clip), n - i)
            mix[i:i + take] += clip[:take]
            i += take + int(rng.uniform(0.0, 0.3) * RATE)
    rms = float(np.sqrt(np.mean(mix ** 2))) or 1.0
    mix *= 32768 * 10 ** (level_dbfs / 20) / rms
    return np.clip(mix, -32768, 32767).astype(np.int16)


def stutter(voice: np.ndarray, seconds: float, *, on: float = 0.25, off: float = 0.3) -> np.ndarray:
    """Speech chopped into `on`-second pieces with `off` seconds of silence between them (a breaking-up line,
    a caller who keeps hesitating): every gap is a pause in the middle of one long utterance, never its end."""
    n_on, n_off = int(on * RATE), int(off * RATE)
    out, i = [], 0
    while sum(len(x) for x in out) < seconds * RATE:
        out += [np.resize(voice[i:i + n_on], n_on), np.zeros(n_off, np.int16)]
        i = (i + n_on) % max(1, len(voice) - n_on)
    return np.concatenate(out)[: int(seconds * RATE)].astype(np.int16)


def malformed_rtp(call: SipCall, copies: int = 20) -> list[bytes]:
    """Datagrams a sane RTP stack must drop or survive: payload types nobody negotiated (dynamic, comfort noise,
    G.729, the other G.711 law), telephone-events with nonsense fields, and headers that lie about their
    length - each `copies` times, with the call's own SSRC so they look like part of its stream."""
    ssrc, spf = call.tx_ssrc, 160
    seq, ts = call.tx_seq + 5000, call.tx_ts
    junk = random.Random(3)
    payload = bytes(junk.getrandbits(8) for _ in range(spf))
    other_law = 8 if call.pt == 0 else 0
    packets = [
        rtp_packet(96, seq, ts, ssrc, payload),  # a dynamic type that was never offered
        rtp_packet(127, seq + 1, ts, ssrc, payload),
        rtp_packet(13, seq + 2, ts, ssrc, b"\x7f" * 11),  # comfort noise, oversized
        rtp_packet(18, seq + 3, ts, ssrc, payload[:20]),  # G.729, not negotiated
        rtp_packet(other_law, seq + 4, ts, ssrc, payload),
        rtp_packet(call.dtmf_pt, seq + 5, ts, ssrc, struct.pack("!BBH", 250, 0xBF, 0xFFFF)),  # event 250
        # A telephone-event too short to parse: Asterisk still takes its first byte as the key (C here; a digit
        # would mean something in the keypad menu).
        rtp_packet(call.dtmf_pt, seq + 6, ts, ssrc, b"\x0e"),
        rtp_packet(call.pt, seq + 7, ts, ssrc, b""),  # no payload at all
        rtp_packet(call.pt, seq + 8, ts, ssrc, payload * 9),  # 1440 bytes of audio in one packet
        b"\x80",  # shorter than an RTP header
        bytes([0x8F]) + rtp_packet(call.pt, seq + 9, ts, ssrc, payload)[1:12],  # 15 CSRCs announced, none there
        bytes([0x90]) + rtp_packet(call.pt, seq + 10, ts, ssrc, b"")[1:] + b"\xbe\xde\xff\xff",  # extension overrun
        bytes([0xA0]) + rtp_packet(call.pt, seq + 11, ts, ssrc, payload[:10] + b"\xff")[1:],  # padding > packet
        bytes([0x40]) + rtp_packet(call.pt, seq + 12, ts, ssrc, payload)[1:],  # RTP version 1
        bytes(junk.getrandbits(8) for _ in range(200)),  # random bytes
    ]
    return packets * copies
