"""VAD on real synthesised speech, silence and noise."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech import audio as A
from ivr.speech.base import Audio
from ivr.speech.vad import SpeechDiscarded, SpeechEnded, SpeechStarted, VoiceActivityDetector

from .conftest import HOTLINE_SENTENCES

RATE = 16000
ENGINES = [pytest.param(True, id="webrtc"), pytest.param(False, id="energy")]


def noise(seconds: float, level_dbfs: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 10 ** (level_dbfs / 20), int(RATE * seconds))


def speech_bounds(pcm16: bytes) -> tuple[float, float]:
    """(onset, end) in ms of a clean clip: first/last sample above -30 dBFS."""
    x = np.abs(A.pcm16_to_array(pcm16).astype(np.int32))
    loud = np.flatnonzero(x > 1000)
    return loud[0] / 16, loud[-1] / 16


def padded(speech: bytes, lead_s: float, tail_s: float, noise_db: float, seed: int = 1) -> bytes:
    s = A.pcm16_to_float(speech)
    mix = np.concatenate([noise(lead_s, noise_db, seed), s + noise(len(s) / RATE, noise_db, seed + 1),
                          noise(tail_s, noise_db, seed + 2)])
    return A.float_to_pcm16(mix)


def feed_in_packets(vad: VoiceActivityDetector, pcm: bytes, packet_ms: int = 30) -> list:
    size = RATE * packet_ms // 1000 * 2
    events = []
    for i in range(0, len(pcm), size):
        events += vad.feed(pcm[i : i + size])
    return events


@pytest.mark.parametrize("webrtc", ENGINES)
@pytest.mark.parametrize("noise_db", [-70.0, -45.0, -38.0])
def test_detects_start_and_end_of_utterance(webrtc: bool, noise_db: float, hotline_audio: dict[str, Audio]) -> None:
    speech = hotline_audio[HOTLINE_SENTENCES[2]].pcm16
    onset, end = speech_bounds(speech)
    lead = 1.0
    vad = VoiceActivityDetector(use_webrtc=webrtc, end_silence_ms=600)
    events = feed_in_packets(vad, padded(speech, lead, 2.0, noise_db))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechEnded], events
    started, ended = events
    true_onset, true_end = lead * 1000 + onset, lead * 1000 + end
    assert abs(started.at_ms - true_onset) <= 100
    assert started.detected_ms - true_onset <= 200  # fast enough for barge-in
    assert 600 <= ended.at_ms - true_end <= 800  # end-of-utterance silence
    assert not ended.truncated
    # The utterance holds the whole sentence (pre-roll before, ~200 ms tail after).
    assert abs(ended.duration_ms - (end - onset) - 300) <= 250
    assert len(ended.pcm16) == ended.duration_ms * 32


@pytest.mark.parametrize("webrtc", ENGINES)
@pytest.mark.parametrize("noise_db", [-60.0, -50.0, -45.0])
def test_no_trigger_on_low_noise(webrtc: bool, noise_db: float) -> None:
    vad = VoiceActivityDetector(use_webrtc=webrtc)
    assert vad.feed(A.float_to_pcm16(noise(6.0, noise_db, seed=3))) == []
    assert not vad.in_speech


@pytest.mark.parametrize("webrtc", ENGINES)
def test_barge_in_triggers_within_200ms(webrtc: bool, hotline_audio: dict[str, Audio]) -> None:
    for sentence in HOTLINE_SENTENCES[:4]:
        speech = hotline_audio[sentence].pcm16
        onset, _ = speech_bounds(speech)
        vad = VoiceActivityDetector(use_webrtc=webrtc)
        vad.feed(A.float_to_pcm16(noise(0.5, -55)))
        t0 = vad.t_ms
        started = None
        for frame in A.split_frames(speech, RATE, 20):
            events = vad.feed(frame)
            if events:
                started = events[0]
                break
        assert isinstance(started, SpeechStarted), sentence
        assert started.detected_ms - (t0 + onset) <= 200, (sentence, started, onset)


def test_max_utterance_length(hotline_audio: dict[str, Audio]) -> None:
    speech = b"".join(a.pcm16 for a in hotline_audio.values()) * 2  # ~45 s, short pauses only
    vad = VoiceActivityDetector(max_utterance_ms=15000, end_silence_ms=600)
    events = vad.feed(speech)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert ended and ended[0].truncated
    assert ended[0].duration_ms <= 15000
    assert all(e.duration_ms <= 15000 for e in ended)


def test_short_burst_is_discarded() -> None:
    t = np.arange(int(RATE * 0.16)) / RATE
    click = 0.5 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)
    pcm = A.float_to_pcm16(np.concatenate([noise(0.5, -60), click, noise(1.5, -60)]))
    events = VoiceActivityDetector(use_webrtc=False).feed(pcm)
    assert not any(isinstance(e, SpeechEnded) for e in events)
    if events:
        assert [type(e) for e in events] == [SpeechStarted, SpeechDiscarded]


def test_flush_closes_utterance_on_hangup(hotline_audio: dict[str, Audio]) -> None:
    vad = VoiceActivityDetector()
    speech = hotline_audio[HOTLINE_SENTENCES[1]].pcm16
    events = vad.feed(A.silence(300, RATE) + speech[: len(speech) // 2])
    assert [type(e) for e in events] == [SpeechStarted]
    (ended,) = vad.flush()
    assert isinstance(ended, SpeechEnded) and ended.truncated
    assert vad.flush() == []


def test_two_utterances_and_reset(hotline_audio: dict[str, Audio]) -> None:
    a, b = (hotline_audio[s].pcm16 for s in HOTLINE_SENTENCES[1:3])
    vad = VoiceActivityDetector()
    events = vad.feed(A.silence(500, RATE) + a + A.silence(1000, RATE) + b + A.silence(1000, RATE))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    vad.feed(A.silence(200, RATE) + a[:16000])
    assert vad.in_speech
    vad.reset()
    assert not vad.in_speech and vad.feed(A.silence(700, RATE)) == []
