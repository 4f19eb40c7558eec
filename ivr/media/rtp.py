"""Asyncio RTP endpoint for the controller side of Asterisk externalMedia (slin16 over RTP/UDP).

Wire format (measured against Asterisk 22.10.1): Asterisk sends signed linear audio in RTP in network
byte order (big-endian L16). ``slin16``: 16 kHz, 20 ms = 320 samples = 640 bytes, payload type 118;
``slin``: 8 kHz, 160 samples, payload type 10. This endpoint converts to/from little-endian PCM16.

Asterisk 22's UnicastRTP channel has no *receive* mapping for the dynamic payload type 118, so slin16
packets sent *to* Asterisk are silently dropped. Static payload type 10 (slin, 8 kHz) is accepted and
transcoded. Therefore with ``sample_rate=16000`` the endpoint receives 16 kHz but sends 8 kHz PT 10
(``send()`` still takes 16 kHz audio and low-pass/decimates it). Nothing is lost: the caller's leg is
G.711 at 8 kHz anyway. With ``sample_rate=8000`` (externalMedia ``format=slin``) both ways are 8 kHz.

    ep = RtpEndpoint(port=0)                   # 127.0.0.1, ephemeral port
    await ep.start()
    ari.external_media(f"127.0.0.1:{ep.port}")
    frame = await ep.read()                     # 20 ms of PCM16 LE @ 16 kHz, in sequence order
    job = ep.send(pcm_bytes)                    # paced at 20 ms on a monotonic schedule
    ep.stop_sending()                           # barge-in: nothing more leaves after this call
    await job                                   # True if fully sent, False if stopped

Receiver: reorders by sequence number within a small window (``jitter_depth`` packets or ``max_delay``
seconds), drops late and duplicate packets, conceals short losses with silence, ignores packets with
another payload type / SSRC-less garbage / other sources, and resynchronises on an SSRC change or a big
sequence jump. The remote address is learned from the first valid packet unless set explicitly
(``set_remote``, e.g. from the channel's UNICASTRTP_LOCAL_ADDRESS / UNICASTRTP_LOCAL_PORT variables).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

SLIN16_PT = 118  # Asterisk: slin16 -> payload type 118 (only Asterisk -> us works)
SLIN8_PT = 10  # Asterisk: slin (8 kHz) <-> payload type 10 (both directions)


def _lowpass_taps(cutoff: float, n: int = 63) -> np.ndarray:
    """Windowed-sinc FIR (cutoff as a fraction of the input sample rate)."""
    k = np.arange(n) - (n - 1) / 2
    taps = np.sinc(2 * cutoff * k) * np.hamming(n)
    return taps / taps.sum()


_DECIMATE_TAPS = _lowpass_taps(3700 / 16000)


def downsample_16k_to_8k(pcm: np.ndarray) -> np.ndarray:
    x = np.convolve(np.asarray(pcm, dtype=np.float64), _DECIMATE_TAPS, mode="same")[::2]
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
_HDR = struct.Struct("!BBHII")


@dataclass(slots=True)
class RtpPacket:
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket | None":
        if len(data) < 12:
            return None
        b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
        if b0 >> 6 != 2:
            return None
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < offset + 4:
                return None
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data)
        if b0 & 0x20:  # padding
            end -= data[-1]
        if end < offset:
            return None
        return cls(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), data[offset:end])

    def build(self) -> bytes:
        return _HDR.pack(0x80, (0x80 if self.marker else 0) | self.pt, self.seq & 0xFFFF,
                         self.ts & 0xFFFFFFFF, self.ssrc) + self.payload


@dataclass
class RtpStats:
    received: int = 0
    delivered: int = 0
    late: int = 0
    duplicates: int = 0
    lost: int = 0
    wrong_pt: int = 0
    malformed: int = 0
    foreign: int = 0
    resyncs: int = 0
    sent: int = 0
    send_late_ms_max: float = 0.0  # worst lateness of a packet vs its scheduled time
    send_late_ms_total: float = 0.0

    @property
    def send_late_ms_mean(self) -> float:
        return self.send_late_ms_total / self.sent if self.sent else 0.0


class JitterBuffer:
    """Reorders packets by (extended) sequence number; releases in order."""

    def __init__(self, depth: int = 3, max_delay: float = 0.06, stats: RtpStats | None = None) -> None:
        self.depth = depth
        self.max_delay = max_delay
        self.stats = stats or RtpStats()
        self.next_ext: int | None = None
        self._buf: dict[int, tuple[float, RtpPacket]] = {}

    def reset(self) -> None:
        self.next_ext = None
        self._buf.clear()

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, pkt: RtpPacket, now: float) -> list[RtpPacket | int]:
        """Add a packet; return released items in order (an int n = n lost packets before the next)."""
        if self.next_ext is None:
            self.next_ext = pkt.seq
        diff = (pkt.seq - self.next_ext) & 0xFFFF
        if diff >= 0x8000:
            diff -= 0x10000
        if diff < 0:
            if diff < -1000:  # the far end restarted its sequence
                self.stats.resyncs += 1
                out = self.flush_all()
                self.next_ext = pkt.seq
                return out + self.push(pkt, now)
            self.stats.late += 1
            return []
        if diff > 1000:
            self.stats.resyncs += 1
            out = self.flush_all()
            self.next_ext = pkt.seq
            return out + self.push(pkt, now)
        ext = self.next_ext + diff
        if ext in self._buf:
            self.stats.duplicates += 1
            return []
        self._buf[ext] = (now, pkt)
        return self.release(now)

    def release(self, now: float) -> list[RtpPacket | int]:
        out: list[RtpPacket | int] = []
        assert self.next_ext is not None or not self._buf
        while self._buf:
            assert self.next_ext is not None
            item = self._buf.pop(self.next_ext, None)
            if item is not None:
                out.append(item[1])
                self.next_ext += 1
                continue
            oldest = min(self._buf)
            if len(self._buf) > self.depth or now - self._buf[oldest][0] >= self.max_delay:
                gap = oldest - self.next_ext
                self.stats.lost += gap
                out.append(gap)
                self.next_ext = oldest
                continue
            break
        return out

    def flush_all(self) -> list[RtpPacket | int]:
        out: list[RtpPacket | int] = [p for _, (_, p) in sorted(self._buf.items())]
        self._buf.clear()
        return out


class SendJob:
    """Handle for queued outgoing audio; awaitable (True = fully sent, False = stopped)."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.sent = 0
        self.first_sent_at: float | None = None  # time.monotonic() of its first packet
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.future.__await__()

    @property
    def done(self) -> bool:
        return self.future.done()


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, ep: "RtpEndpoint") -> None:
        self.ep = ep

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.ep._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        log.debug("rtp socket error: %s", exc)


class RtpEndpoint:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sample_rate: int = 16000,
        frame_ms: int = 20,
        payload_type: int | None = None,
        send_rate: int | None = None,
        send_payload_type: int | None = None,
        remote: tuple[str, int] | None = None,
        jitter_depth: int = 3,
        max_delay: float = 0.06,
        conceal_max: int = 5,
        queue_frames: int = 500,
        on_audio: Callable[[bytes], None] | None = None,
    ) -> None:
        self.host, self._port = host, port
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.samples_per_frame = sample_rate * frame_ms // 1000
        self.frame_bytes = self.samples_per_frame * 2
        self.payload_type = payload_type  # expected on receive; None: learn from the first packet
        self.send_rate = send_rate or (8000 if sample_rate == 16000 else sample_rate)
        self.send_payload_type = send_payload_type if send_payload_type is not None else (
            SLIN8_PT if self.send_rate == 8000 else SLIN16_PT)
        self.send_samples_per_frame = self.send_rate * frame_ms // 1000
        self.remote = remote
        self.remote_learned = asyncio.Event()
        if remote:
            self.remote_learned.set()
        self.stats = RtpStats()
        self.jitter = JitterBuffer(jitter_depth, max_delay, self.stats)
        self.conceal_max = conceal_max
        self.on_audio = on_audio
        self.first_packet_at: float | None = None
        self.last_packet_at: float | None = None
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(queue_frames)
        self._rx_ssrc: int | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._transport: asyncio.DatagramTransport | None = None
        # sending
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._pending: deque[tuple[bytes, SendJob]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._last_sent_at: float | None = None
        self._held = False  # hold(): queued audio waits (a caller may be barging in), release() goes on

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "RtpEndpoint":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self), local_addr=(self.host, self._port))
        self._transport = transport  # type: ignore[assignment]
        self._port = transport.get_extra_info("sockname")[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # room for bursts (capped by net.core.rmem_max)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sender = asyncio.create_task(self._send_loop(), name=f"rtp-send-{self._port}")
        return self

    async def close(self) -> None:
        self.stop_sending()
        if self._sender:
            self._sender.cancel()
            try:
                await self._sender
            except asyncio.CancelledError:
                pass
        if self._flush_handle:
            self._flush_handle.cancel()
        if self._transport:
            self._transport.close()

    async def __aenter__(self) -> "RtpEndpoint":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def local_address(self) -> str:
        return f"{self.host}:{self._port}"

    def set_remote(self, host: str, port: int) -> None:
        self.remote = (host, int(port))
        self.remote_learned.set()

    # ------------------------------------------------------------------ receiving
    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = RtpPacket.parse(data)
        if pkt is None:
            self.stats.malformed += 1
            return
        if self.remote is None:
            self.set_remote(addr[0], addr[1])
        elif (addr[0], addr[1]) != self.remote:
            self.stats.foreign += 1
            return
        if self.payload_type is None:
            self.payload_type = pkt.pt
        if pkt.pt != self.payload_type:
            self.stats.wrong_pt += 1
            return
        now = time.monotonic()
        self.stats.received += 1
        if self.first_packet_at is None:
            self.first_packet_at = now
        self.last_packet_at = now
        if self._rx_ssrc != pkt.ssrc:
            if self._rx_ssrc is not None:
                self.stats.resyncs += 1
                self._deliver(self.jitter.flush_all())
                self.jitter.reset()
            self._rx_ssrc = pkt.ssrc
        self._deliver(self.jitter.push(pkt, now))
        if len(self.jitter) and self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(
                self.jitter.max_delay, self._flush_due)

    def _flush_due(self) -> None:
        self._flush_handle = None
        self._deliver(self.jitter.release(time.monotonic()))
        if len(self.jitter):
            self._flush_handle = asyncio.get_running_loop().call_later(
                self.jitter.max_delay / 2, self._flush_due)

    def _deliver(self, items: list[RtpPacket | int]) -> None:
        for item in items:
            if isinstance(item, int):
                if item <= self.conceal_max:
                    for _ in range(item):
                        self._push_frame(bytes(self.frame_bytes))
                continue
            payload = item.payload
            if len(payload) % 2:
                payload = payload[:-1]
            self._push_frame(np.frombuffer(payload, ">i2").astype("<i2").tobytes())

    def _push_frame(self, frame: bytes) -> None:
        self.stats.delivered += 1
        if self.on_audio is not None:
            self.on_audio(frame)
        if self._frames.full():
            self._frames.get_nowait()  # keep the newest audio
        self._frames.put_nowait(frame)

    async def read(self, timeout: float | None = None) -> bytes:
        """Next received frame (PCM16 little-endian); raises TimeoutError."""
        return await asyncio.wait_for(self._frames.get(), timeout)

    def read_nowait(self) -> list[bytes]:
        out = []
        while not self._frames.empty():
            out.append(self._frames.get_nowait())
        return out

    # ------------------------------------------------------------------ sending
    def send(self, pcm: bytes | np.ndarray) -> SendJob:
        """Queue PCM16 (little-endian bytes or an int16 array) at `sample_rate` for paced sending."""
        arr = np.asarray(pcm, dtype=np.int16) if isinstance(pcm, np.ndarray) else np.frombuffer(pcm, "<i2")
        if self.send_rate != self.sample_rate:
            if (self.sample_rate, self.send_rate) != (16000, 8000):
                raise ValueError("only 16 kHz -> 8 kHz send conversion is supported")
            arr = downsample_16k_to_8k(arr)
        spf = self.send_samples_per_frame
        n = -(-len(arr) // spf) if len(arr) else 0
        padded = np.zeros(n * spf, dtype=">i2")
        padded[: len(arr)] = arr
        job = SendJob(n)
        if n == 0:
            job.future.set_result(True)
            return job
        raw = padded.tobytes()
        fb = spf * 2
        for i in range(n):
            self._pending.append((raw[i * fb:(i + 1) * fb], job))
        self._wake.set()
        return job

    def hold(self) -> None:
        """Pause sending at once, keeping what is queued (and what is queued later) for release()."""
        self._held = True

    def release(self) -> None:
        """Go on sending where hold() paused."""
        if self._held:
            self._held = False
            self._wake.set()

    @property
    def held(self) -> bool:
        return self._held

    def stop_sending(self) -> int:
        """Drop all queued audio at once (barge-in). Returns the number of frames discarded."""
        self._held = False
        dropped = len(self._pending)
        jobs = {id(j): j for _, j in self._pending}
        self._pending.clear()
        for job in jobs.values():
            if not job.future.done():
                job.future.set_result(False)
        return dropped

    @property
    def is_sending(self) -> bool:
        return bool(self._pending)

    @property
    def queued_ms(self) -> int:
        return len(self._pending) * self.frame_ms

    async def _send_loop(self) -> None:
        frame_s = self.frame_ms / 1000
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending or self._held:
                continue
            await self.remote_learned.wait()
            now = time.monotonic()
            if self._last_sent_at is not None:  # timestamp follows wall time across idle gaps
                idle_frames = max(0, round((now - self._last_sent_at) / frame_s) - 1)
                self._ts += idle_frames * self.send_samples_per_frame
            marker = True
            t_next = now
            while self._pending and not self._held:
                payload, job = self._pending.popleft()
                self._send_packet(payload, marker)
                marker = False
                sent_at = time.monotonic()
                late_ms = max(0.0, (sent_at - t_next) * 1000)
                self.stats.send_late_ms_max = max(self.stats.send_late_ms_max, late_ms)
                self.stats.send_late_ms_total += late_ms
                if job.first_sent_at is None:
                    job.first_sent_at = sent_at
                job.sent += 1
                if job.sent >= job.frames and not job.future.done():
                    job.future.set_result(True)
                t_next += frame_s
                delay = t_next - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.2:  # stalled far behind schedule: resync instead of bursting
                    t_next = time.monotonic()

    def _send_packet(self, payload: bytes, marker: bool) -> None:
        if self._transport is None or self.remote is None:
            return
        pt = self.send_payload_type
        self._transport.sendto(RtpPacket(pt, self._seq, self._ts, self._ssrc, marker, payload).build(),
                               self.remote)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + self.send_samples_per_frame) & 0xFFFFFFFF
        self._last_sent_at = time.monotonic()
        self.stats.sent += 1
