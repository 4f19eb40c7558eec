"""Audio helpers: PCM16 conversions, resampling, G.711, framing, levels.

G.711 is implemented with numpy lookup tables (``audioop`` is deprecated and
gone in Python 3.13).  All PCM is mono signed 16-bit; "LE" is what Python,
WAV files and the engines use, "BE" is network order (RTP ``slin``).
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

# --------------------------------------------------------------------------- PCM16


def pcm16_to_array(pcm16: bytes) -> np.ndarray:
    """PCM16-LE bytes -> int16 array (a copy-free view where possible)."""
    return np.frombuffer(pcm16, dtype="<i2")


def array_to_pcm16(samples: np.ndarray) -> bytes:
    """int16 array, or float array in [-1, 1], -> PCM16-LE bytes (clipped)."""
    if samples.dtype.kind == "f":
        samples = np.clip(np.round(samples * 32767.0), -32768, 32767)
    return np.asarray(samples).astype("<i2").tobytes()


def pcm16_to_float(pcm16: bytes) -> np.ndarray:
    """PCM16-LE bytes -> float32 array in [-1, 1)."""
    return pcm16_to_array(pcm16).astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    return array_to_pcm16(np.asarray(samples, dtype=np.float32))


def le_to_be(pcm16: bytes) -> bytes:
    """Swap byte order (LE <-> BE; the operation is its own inverse)."""
    return np.frombuffer(pcm16, dtype="<i2").astype(">i2").tobytes()


be_to_le = le_to_be


# --------------------------------------------------------------------------- resampling


def resample(pcm16: bytes, src_rate: int, dst_rate: int) -> bytes:
    """One-shot polyphase resampling of a whole clip (8k/16k/24k/48k...)."""
    if src_rate == dst_rate or not pcm16:
        return pcm16
    g = math.gcd(src_rate, dst_rate)
    out = resample_poly(pcm16_to_float(pcm16), dst_rate // g, src_rate // g)
    return float_to_pcm16(out)


class StreamResampler:
    """Stateful resampler for 20 ms frames (no clicks at frame borders).

    Uses soxr's streaming resampler when installed, else per-chunk
    ``resample_poly`` (fine for whole utterances, slightly edgy per frame).
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._soxr = None
        if src_rate != dst_rate:
            try:
                import soxr

                self._soxr = soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality="HQ")
            except ImportError:  # pragma: no cover - soxr is in requirements/speech.txt
                self._soxr = None

    def process(self, pcm16: bytes, last: bool = False) -> bytes:
        if self.src_rate == self.dst_rate:
            return pcm16
        if self._soxr is not None:
            out = self._soxr.resample_chunk(pcm16_to_array(pcm16), last=last)
            return np.asarray(out, dtype="<i2").tobytes()
        return resample(pcm16, self.src_rate, self.dst_rate)


# --------------------------------------------------------------------------- G.711


_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_encode_table() -> np.ndarray:
    """µ-law of every int16 (ITU-T G.711 / Sun g711.c, 14-bit variant)."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    pcm = np.minimum(np.abs(pcm), 8159) + 0x21
    seg = np.searchsorted(_ULAW_SEG_END, pcm, side="left")
    uval = (seg << 4) | ((pcm >> (seg + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    """A-law of every int16 (ITU-T G.711 / Sun g711.c)."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, pcm, side="left")
    shift = np.where(seg < 2, 1, seg)
    aval = (seg << 4) | ((pcm >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return (aval ^ mask).astype(np.uint8)


def _ulaw_decode_one(u: int) -> int:
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def _alaw_decode_one(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if (a & 0x80) else -t


@lru_cache(maxsize=None)
def _tables() -> dict[str, np.ndarray]:
    return {
        "ulaw_enc": _ulaw_encode_table(),
        "alaw_enc": _alaw_encode_table(),
        "ulaw_dec": np.array([_ulaw_decode_one(u) for u in range(256)], dtype="<i2"),
        "alaw_dec": np.array([_alaw_decode_one(a) for a in range(256)], dtype="<i2"),
    }


def _encode(pcm16: bytes, table: str) -> bytes:
    idx = pcm16_to_array(pcm16).astype(np.int32) + 32768
    return _tables()[table][idx].tobytes()


def _decode(data: bytes, table: str) -> bytes:
    return _tables()[table][np.frombuffer(data, dtype=np.uint8)].tobytes()


def ulaw_encode(pcm16: bytes) -> bytes:
    """PCM16-LE -> G.711 µ-law (PCMU), one byte per sample."""
    return _encode(pcm16, "ulaw_enc")


def ulaw_decode(data: bytes) -> bytes:
    """G.711 µ-law -> PCM16-LE."""
    return _decode(data, "ulaw_dec")


def alaw_encode(pcm16: bytes) -> bytes:
    """PCM16-LE -> G.711 A-law (PCMA)."""
    return _encode(pcm16, "alaw_enc")


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law -> PCM16-LE."""
    return _decode(data, "alaw_dec")


# --------------------------------------------------------------------------- framing


def frame_bytes(sample_rate: int, frame_ms: int = 20) -> int:
    return sample_rate * frame_ms // 1000 * 2


def split_frames(
    pcm16: bytes, sample_rate: int, frame_ms: int = 20, pad_last: bool = True
) -> Iterator[bytes]:
    """Cut a clip into fixed frames; the last one is zero-padded (or dropped)."""
    size = frame_bytes(sample_rate, frame_ms)
    for start in range(0, len(pcm16), size):
        frame = pcm16[start : start + size]
        if len(frame) < size:
            if not pad_last:
                return
            frame = frame + b"\x00" * (size - len(frame))
        yield frame


class FrameBuffer:
    """Re-frames arbitrary chunks (e.g. 30 ms SIP packets) into fixed frames."""

    def __init__(self, sample_rate: int, frame_ms: int = 20) -> None:
        self.size = frame_bytes(sample_rate, frame_ms)
        self._buf = bytearray()

    def push(self, pcm16: bytes) -> list[bytes]:
        self._buf.extend(pcm16)
        n = len(self._buf) // self.size
        frames = [bytes(self._buf[i * self.size : (i + 1) * self.size]) for i in range(n)]
        del self._buf[: n * self.size]
        return frames

    def flush(self) -> bytes:
        rest, self._buf = bytes(self._buf), bytearray()
        return rest


def silence(duration_ms: int, sample_rate: int) -> bytes:
    return b"\x00\x00" * (sample_rate * duration_ms // 1000)


# --------------------------------------------------------------------------- levels


def rms(pcm16: bytes) -> float:
    """Root mean square on the int16 scale (0..32768)."""
    if len(pcm16) < 2:
        return 0.0
    x = pcm16_to_array(pcm16).astype(np.float32)
    return float(np.sqrt(np.dot(x, x) / len(x)))


def dbfs(pcm16: bytes) -> float:
    """Level relative to full scale; -inf-safe (floor at -120 dBFS)."""
    r = rms(pcm16)
    return 20.0 * math.log10(max(r, 1e-6) / 32768.0) if r > 0 else -120.0


def zero_crossing_rate(pcm16: bytes) -> float:
    x = pcm16_to_array(pcm16)
    if len(x) < 2:
        return 0.0
    signs = np.signbit(x)
    return float(np.count_nonzero(signs[1:] != signs[:-1])) / (len(x) - 1)


# --------------------------------------------------------------------------- WAV


def wav_bytes(audio_pcm16: bytes, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(audio_pcm16)
    return buf.getvalue()


def write_wav(path: str | Path, pcm16: bytes, sample_rate: int) -> None:
    Path(path).write_bytes(wav_bytes(pcm16, sample_rate))


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Read a mono 16-bit WAV -> (PCM16-LE, sample_rate)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit WAV")
        return w.readframes(w.getnframes()), w.getframerate()


def voiced_ms(samples: np.ndarray, sample_rate: int = 16000, frame_ms: int = 20) -> int:
    """Milliseconds of float samples that carry voice: 20 ms frames clearly above the quietest tenth (the line's
    floor, digital silence aside) and within 30 dB of the loudest. Cheap, for telling a bare word from a sentence."""
    n = sample_rate * frame_ms // 1000
    frames = len(samples) // n
    if frames == 0:
        return 0
    x = np.asarray(samples[: frames * n], np.float64).reshape(frames, n)
    level = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    live = level[level > -90.0]  # digital silence (padding, a muted line) is no measure of the line's floor
    if live.size == 0:
        return 0
    floor, peak = float(np.percentile(live, 10)), float(live.max())
    gate = max(floor + 12.0, peak - 30.0, -55.0)
    return int(np.count_nonzero(level > gate)) * frame_ms
