"""RtpEndpoint over real UDP sockets (no Asterisk needed): reordering, late/duplicate/foreign/wrong-PT
packets, bursts, pacing and immediate stop; plus G.711 round trips."""

from __future__ import annotations

import asyncio
import socket
import time

import numpy as np

from ivr.media.rtp import SLIN8_PT, SLIN16_PT, RtpEndpoint, RtpPacket
from tests.support.g711 import alaw_decode, alaw_encode, dominant_frequency, tone, ulaw_decode, ulaw_encode


def _frame(i: int, spf: int = 320) -> bytes:
    return np.full(spf, i, dtype=">i2").tobytes()


def _pkt(seq: int, payload: bytes, pt: int = SLIN16_PT, ssrc: int = 1234) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, seq * 320, ssrc, False, payload).build()


async def test_receiver_reorders_and_drops_bad_packets() -> None:
    async with RtpEndpoint(jitter_depth=3, max_delay=0.05) as ep:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        dst = ("127.0.0.1", ep.port)
        base = 65530  # crosses the 16-bit sequence wrap
        order = [0, 2, 1, 3, 5, 4, 6, 6, 7]  # reordered + a duplicate
        for i in order:
            sock.sendto(_pkt(base + i, _frame(i)), dst)
        sock.sendto(_pkt(base + 8, _frame(8), pt=0), dst)  # wrong payload type
        sock.sendto(b"\x00garbage", dst)  # not RTP
        await asyncio.sleep(0.15)
        sock.sendto(_pkt(base + 1, _frame(1)), dst)  # late
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.sendto(_pkt(base + 9, _frame(9)), dst)  # from another source
        await asyncio.sleep(0.1)
        frames = ep.read_nowait()
        values = [int(np.frombuffer(f, "<i2")[0]) for f in frames]
        assert values == list(range(8))
        assert ep.stats.wrong_pt == 1 and ep.stats.malformed == 1 and ep.stats.foreign == 1
        # the duplicate 6 arrived after 6 was delivered, so it counts as late like the old 1
        assert ep.stats.late + ep.stats.duplicates == 2
        assert ep.remote == sock.getsockname()
        sock.close()
        other.close()


async def test_receiver_conceals_loss_and_tolerates_bursts() -> None:
    async with RtpEndpoint(jitter_depth=2, max_delay=0.04) as ep:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst = ("127.0.0.1", ep.port)
        for i in [0, 1, 3, 4]:  # 2 lost
            sock.sendto(_pkt(i, _frame(i + 1)), dst)
        for i in range(5, 105):  # a 2-second burst at once
            sock.sendto(_pkt(i, _frame(7)), dst)
        await asyncio.sleep(0.3)
        frames = ep.read_nowait()
        assert ep.stats.lost == 1
        first = [int(np.frombuffer(f, "<i2")[0]) for f in frames[:5]]
        assert first == [1, 2, 0, 4, 5]  # the lost frame became silence
        assert len(frames) == 105
        sock.close()


async def test_sender_paces_and_stops_immediately() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    loop = asyncio.get_running_loop()
    async with RtpEndpoint(remote=rx.getsockname()) as ep:  # 16 kHz in, 8 kHz PT 10 out
        job = ep.send(tone(1000, 1.0, 16000))
        arrivals: list[float] = []
        pkts: list[RtpPacket] = []
        while len(pkts) < 50:
            data = await asyncio.wait_for(loop.sock_recv(rx, 2048), 2)
            arrivals.append(time.monotonic())
            p = RtpPacket.parse(data)
            assert p is not None
            pkts.append(p)
        assert await job is True
        assert all(p.pt == SLIN8_PT and len(p.payload) == 320 for p in pkts)
        assert [(p.seq - pkts[0].seq) & 0xFFFF for p in pkts] == list(range(50))
        assert [(p.ts - pkts[0].ts) & 0xFFFFFFFF for p in pkts] == [160 * i for i in range(50)]
        assert pkts[0].marker and not any(p.marker for p in pkts[1:])
        span = arrivals[-1] - arrivals[0]
        assert abs(span - 49 * 0.020) < 0.03, span  # no drift over 1 s
        pcm = np.frombuffer(b"".join(p.payload for p in pkts), ">i2")
        assert abs(dominant_frequency(pcm, 8000) - 1000) < 10

        job = ep.send(tone(500, 5.0, 16000))
        await asyncio.sleep(0.2)
        dropped = ep.stop_sending()
        assert dropped > 200 and await job is False and not ep.is_sending
        sent = ep.stats.sent
        await asyncio.sleep(0.1)
        assert ep.stats.sent == sent
    rx.close()


def test_g711_round_trip() -> None:
    x = tone(700, 0.5, 8000, amplitude=12000)
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        y = dec(enc(x))
        assert np.max(np.abs(y.astype(int) - x.astype(int))) < 700
        assert abs(dominant_frequency(y, 8000) - 700) < 5
    assert ulaw_encode(np.zeros(1, np.int16)) == b"\xff" and alaw_encode(np.zeros(1, np.int16)) == b"\xd5"
