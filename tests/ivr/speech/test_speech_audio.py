"""G.711, resampling, byte order, framing and levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ivr.speech import audio as A

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # reference implementation only (gone in Python 3.13)

ALL_INT16 = np.arange(-32768, 32768, dtype="<i2").tobytes()


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return A.float_to_pcm16(amp * np.sin(2 * np.pi * freq * t))


def peak_hz(pcm16: bytes, rate: int) -> float:
    x = A.pcm16_to_float(pcm16) * np.hanning(len(pcm16) // 2)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def band_db(pcm16: bytes, rate: int, freq: float, width: float = 50.0) -> float:
    x = A.pcm16_to_float(pcm16) * np.hanning(len(pcm16) // 2)
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = spectrum[(freqs > freq - width) & (freqs < freq + width)]
    return 20 * np.log10(float(band.max()) + 1e-12)


@pytest.mark.parametrize(
    ("encode", "decode", "ref_encode", "ref_decode"),
    [
        (A.ulaw_encode, A.ulaw_decode, audioop.lin2ulaw, audioop.ulaw2lin),
        (A.alaw_encode, A.alaw_decode, audioop.lin2alaw, audioop.alaw2lin),
    ],
    ids=["ulaw", "alaw"],
)
def test_g711_matches_reference_bit_exact(encode, decode, ref_encode, ref_decode) -> None:  # noqa: ANN001
    assert encode(ALL_INT16) == ref_encode(ALL_INT16, 2)
    codes = bytes(range(256))
    assert decode(codes) == ref_decode(codes, 2)


@pytest.mark.parametrize(("encode", "decode"), [(A.ulaw_encode, A.ulaw_decode), (A.alaw_encode, A.alaw_decode)])
def test_g711_round_trip_error_bounds(encode, decode) -> None:  # noqa: ANN001
    x = A.pcm16_to_array(ALL_INT16).astype(np.int64)
    y = A.pcm16_to_array(decode(encode(ALL_INT16))).astype(np.int64)
    err = np.abs(y - x)
    # Logarithmic companding: error at most ~1/32 of the magnitude (half a
    # quantisation step of the segment) plus a small floor near zero.
    assert np.all(err <= np.abs(x) / 32 + 16), int(err.max())
    # Small signals are kept fine-grained.
    assert err[np.abs(x) < 64].max() <= 8
    # Monotonic: a larger input never decodes to a smaller value.
    assert np.all(np.diff(y) >= 0)


@pytest.mark.parametrize(("encode", "decode"), [(A.ulaw_encode, A.ulaw_decode), (A.alaw_encode, A.alaw_decode)])
def test_g711_speech_band_snr(encode, decode) -> None:  # noqa: ANN001
    clean = tone(1000, 8000, amp=0.3)
    coded = decode(encode(clean))
    x, y = A.pcm16_to_float(clean), A.pcm16_to_float(coded)
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 35, snr
    assert len(encode(clean)) == len(clean) // 2  # one byte per sample


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (16000, 24000), (24000, 16000), (24000, 8000)])
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_resample_preserves_frequency_and_length(src: int, dst: int, freq: float) -> None:
    x = tone(freq, src)
    y = A.resample(x, src, dst)
    assert len(y) // 2 == dst  # one second
    assert abs(peak_hz(y, dst) - freq) <= 2.0
    assert abs(A.dbfs(y) - A.dbfs(x)) < 0.5


def test_downsampling_removes_content_above_new_nyquist() -> None:
    x = A.pcm16_to_array(tone(1000, 24000)).astype(np.int32) + A.pcm16_to_array(tone(6000, 24000))
    y = A.resample(A.array_to_pcm16(np.clip(x, -32768, 32767)), 24000, 8000)
    # 6 kHz would alias to 2 kHz at 8 kHz: must be strongly attenuated.
    assert band_db(y, 8000, 1000) - band_db(y, 8000, 2000) > 40


def test_stream_resampler_frames_match_one_shot() -> None:
    x = tone(700, 8000, seconds=2.0)
    rs = A.StreamResampler(8000, 16000)
    chunks = [rs.process(f) for f in A.split_frames(x, 8000, 20)]
    chunks.append(rs.process(b"", last=True))
    y = b"".join(chunks)
    assert abs(len(y) // 2 - 32000) <= 2
    assert abs(peak_hz(y, 16000) - 700) <= 2
    ref = A.pcm16_to_float(A.resample(x, 8000, 16000))[1000:30000]
    got = A.pcm16_to_float(y)[1000:30000]
    # Same signal up to the resampler's group delay: strong correlation at some lag.
    corr = max(float(np.dot(ref, np.roll(got, -lag))) for lag in range(0, 64))
    assert corr / float(np.dot(ref, ref)) > 0.98


def test_byte_order_and_framing() -> None:
    x = tone(300, 16000, seconds=0.1)
    be = A.le_to_be(x)
    assert be != x and A.be_to_le(be) == x
    assert np.array_equal(np.frombuffer(be, ">i2"), A.pcm16_to_array(x))
    frames = list(A.split_frames(x, 16000, 20))
    assert len(frames) == 5 and all(len(f) == 640 for f in frames)
    fb = A.FrameBuffer(16000, 20)
    out = []
    for start in range(0, len(x), 960):  # 30 ms SIP packets
        out += fb.push(x[start : start + 960])
    assert b"".join(out) + fb.flush() == x
    assert all(len(f) == 640 for f in out)


def test_levels() -> None:
    full = tone(1000, 16000, amp=1.0)
    assert abs(A.dbfs(full) + 3.01) < 0.1
    assert abs(A.dbfs(tone(1000, 16000, amp=0.1)) + 23.01) < 0.1
    assert A.dbfs(A.silence(20, 16000)) <= -100
    assert A.zero_crossing_rate(tone(1000, 16000)) == pytest.approx(2000 / 16000, rel=0.02)


def test_wav_round_trip(tmp_path) -> None:  # noqa: ANN001
    x = tone(500, 24000, seconds=0.2)
    A.write_wav(tmp_path / "a.wav", x, 24000)
    assert A.read_wav(tmp_path / "a.wav") == (x, 24000)
