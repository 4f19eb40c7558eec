"""A real, minimal SIP user agent over UDP (RFC 3261 subset) with G.711 RTP, for tests and benchmarks.

Caller role:
    async with SipCaller(local_port=0) as caller:          # SIP socket on 127.0.0.1
        call = await caller.dial("12345")                   # INVITE -> 100/180/200 -> ACK
        await call.play(pcm8k)                              # int16 @ 8 kHz, paced at ptime
        await call.send_dtmf("0")                           # RFC 2833 / 4733 telephone-event
        audio = call.received_audio()                       # int16 @ 8 kHz as received
        await call.hangup()                                 # BYE (or: await call.wait_hangup())
    (`caller.play(...)`, `caller.send_dtmf(...)`, ... act on the last dialled call.)

Agent-phone role (listen and answer, e.g. as seat agent1 on 127.0.0.1:5071):
    async with SipPhone(local_port=5071, answer_after=0.5) as phone:   # answer_after=None: never
        call = await phone.wait_call(timeout=10)            # returned when the INVITE arrives
        await call.wait_answered(); ...

Hostile media for robustness tests (on a call): ``call.audio_burst(pcm, shuffle=True, duplicates=2)`` (the
stream's next packets all at once, out of order, duplicated), ``call.dtmf_burst("456789*" * 20)`` (an RFC 4733
flood), ``call.send_datagrams([rtp_packet(pt=96, ...), b"junk"])`` (anything, e.g. wrong payload types).

Every received RTP packet is kept with its arrival time (time.monotonic()), so a test can measure
"caller stopped speaking -> first bot audio": ``call.first_audio_after(t)``. While a call is up the
UA sends RTP continuously (silence when idle), like a real phone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import struct
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from tests.support.g711 import alaw_decode, alaw_encode, rms, ulaw_decode, ulaw_encode

log = logging.getLogger(__name__)

T1 = 0.5
CODECS = {"PCMU": 0, "PCMA": 8}
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type"}


class SipError(RuntimeError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"SIP {code} {reason}")
        self.code = code


# ---------------------------------------------------------------------------------------------- messages
@dataclass
class SipMessage:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.start.split()[0] if self.is_request else self.cseq[1]

    @property
    def code(self) -> int:
        return int(self.start.split()[1]) if not self.is_request else 0

    @property
    def reason(self) -> str:
        return self.start.split(None, 2)[2] if not self.is_request else ""

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        n, m = self.get("cseq", "0 X").split()
        return int(n), m.upper()

    @staticmethod
    def tag(value: str) -> str:
        m = re.search(r";\s*tag=([^;>\s]+)", value)
        return m.group(1) if m else ""

    @classmethod
    def parse(cls, data: bytes) -> "SipMessage | None":
        try:
            text = data.decode("utf-8", "replace")
            head, _, body = text.partition("\r\n\r\n")
            lines = head.split("\r\n")
            headers = []
            for line in lines[1:]:
                if ":" not in line:
                    continue
                k, v = line.split(":", 1)
                k = k.strip().lower()
                headers.append((_COMPACT.get(k, k), v.strip()))
            return cls(lines[0].strip(), headers, body)
        except (ValueError, IndexError):
            return None

    def encode(self) -> bytes:
        body = self.body.encode()
        lines = [self.start] + [f"{_canon(k)}: {v}" for k, v in self.headers if k != "content-length"]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _canon(name: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(name, "-".join(p.capitalize() for p in name.split("-")))


def _uri_addr(uri: str, default: tuple[str, int]) -> tuple[str, int]:
    m = re.search(r"sips?:(?:[^@;>]*@)?([^:;>]+)(?::(\d+))?", uri)
    if not m:
        return default
    return m.group(1), int(m.group(2) or 5060)


def _sdp(rtp_port: int, codecs: list[str], ptime: int, ip: str = "127.0.0.1") -> str:
    pts = [CODECS[c] for c in codecs] + [101]
    lines = ["v=0", f"o=- {random.getrandbits(30)} 1 IN IP4 {ip}", "s=hotline-test-ua", f"c=IN IP4 {ip}",
             "t=0 0", f"m=audio {rtp_port} RTP/AVP {' '.join(map(str, pts))}"]
    lines += [f"a=rtpmap:{CODECS[c]} {c}/8000" for c in codecs]
    lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", f"a=ptime:{ptime}", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def _parse_sdp(body: str) -> tuple[tuple[str, int], list[int], int | None]:
    ip, port, pts, dtmf_pt = "127.0.0.1", 0, [], None
    for line in body.splitlines():
        if line.startswith("c=IN IP4 "):
            ip = line.split()[2]
        elif line.startswith("m=audio "):
            parts = line.split()
            port, pts = int(parts[1]), [int(p) for p in parts[3:]]
        elif "telephone-event" in line and line.startswith("a=rtpmap:"):
            dtmf_pt = int(line.split(":")[1].split()[0])
    return (ip, port), pts, dtmf_pt


# ---------------------------------------------------------------------------------------------- RTP
@dataclass(slots=True)
class ReceivedPacket:
    arrival: float  # time.monotonic()
    seq: int
    ts: int
    pt: int
    pcm: np.ndarray  # int16 @ 8 kHz (empty for telephone-event)


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, *, marker: bool = False) -> bytes:
    """An RTP datagram (version 2, no CSRC/extension/padding): payload type, sequence number, timestamp and
    SSRC as given (wrapped to their field widths) - any of them may be wrong on purpose."""
    hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F), seq & 0xFFFF, ts & 0xFFFFFFFF,
                      ssrc & 0xFFFFFFFF)
    return hdr + payload


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handler(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class SipCall:
    """One dialog with its RTP session (either role)."""

    def __init__(self, ua: "_UserAgent", call_id: str, *, outgoing: bool) -> None:
        self.ua, self.call_id, self.outgoing = ua, call_id, outgoing
        self.local_tag = uuid.uuid4().hex[:10]
        self.remote_tag = ""
        self.local_uri = self.remote_uri = self.remote_target = ""
        self.cseq = random.randint(1, 1000)
        self.invite: SipMessage | None = None  # the INVITE (sent or received)
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.codec = "PCMU"
        self.pt = 0
        self.dtmf_pt = 101
        self.remote_rtp: tuple[str, int] | None = None
        self.received: list[ReceivedPacket] = []
        self.received_dtmf: list[tuple[float, int]] = []
        self._rtp: asyncio.DatagramTransport | None = None
        self.rtp_port = 0
        self._tx: asyncio.Queue[bytes | tuple[str, int]] = asyncio.Queue()
        self._tx_task: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._acked = asyncio.Event()
        self._stop_play = False
        self.last_play_end: float | None = None
        # the outgoing RTP stream (shared by the paced sender and the bursts)
        self.tx_ssrc, self.tx_seq, self.tx_ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)

    # ---------------------------------------------------------------- RTP plumbing
    async def _open_rtp(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._on_rtp),
                                                           local_addr=(self.ua.host, 0))
        self._rtp = transport  # type: ignore[assignment]
        self.rtp_port = transport.get_extra_info("sockname")[1]

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        now = time.monotonic()
        pt = data[1] & 0x7F
        seq, ts = struct.unpack_from("!HI", data, 2)
        payload = data[12 + 4 * (data[0] & 0x0F):]
        if pt == self.dtmf_pt and len(payload) >= 4:
            if payload[1] & 0x80 and (not self.received_dtmf or now - self.received_dtmf[-1][0] > 0.05):
                self.received_dtmf.append((now, payload[0]))
            return
        if pt == 0:
            pcm = ulaw_decode(payload)
        elif pt == 8:
            pcm = alaw_decode(payload)
        else:
            return
        self.received.append(ReceivedPacket(now, seq, ts, pt, pcm))

    def _start_media(self) -> None:
        if self._tx_task is None:
            self._tx_task = asyncio.create_task(self._tx_loop())

    async def _tx_loop(self) -> None:
        ptime = self.ua.ptime
        spf = 8 * ptime
        silence = (ulaw_encode if self.pt == 0 else alaw_encode)(np.zeros(spf, np.int16))
        t_next = time.monotonic()
        marker = True
        while not self.ended.is_set():
            item: bytes | tuple[str, int] | None = None
            if not self._tx.empty():
                item = self._tx.get_nowait()
            if isinstance(item, tuple):  # DTMF event: (digit, duration_ms)
                ev = DTMF_EVENTS[item[0].upper()]
                steps = max(1, item[1] // ptime)
                for i in range(steps + 3):  # updates every ptime, then the end packet three times
                    end = i >= steps
                    dur = min(i + 1, steps) * spf
                    pay = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur)
                    self._send_rtp(self.dtmf_pt, i == 0, self.tx_seq, self.tx_ts, self.tx_ssrc, pay)
                    self.tx_seq += 1
                    t_next += ptime / 1000
                    await asyncio.sleep(max(0.0, t_next - time.monotonic()))
                self.tx_ts += (steps + 3) * spf
                marker = True
                continue
            payload = item if item is not None else (silence if self.ua.send_silence else None)
            if payload is not None:
                self._send_rtp(self.pt, marker, self.tx_seq, self.tx_ts, self.tx_ssrc, payload)
                self.tx_seq, marker = self.tx_seq + 1, False
            self.tx_ts += spf
            t_next += ptime / 1000
            delay = t_next - time.monotonic()
            if delay < -0.2:
                t_next = time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    def _send_rtp(self, pt: int, marker: bool, seq: int, ts: int, ssrc: int, payload: bytes) -> None:
        if self._rtp and self.remote_rtp:
            self._rtp.sendto(rtp_packet(pt, seq, ts, ssrc, payload, marker=marker), self.remote_rtp)

    # ---------------------------------------------------------------- hostile media (robustness tests)
    def send_datagrams(self, datagrams: list[bytes]) -> None:
        """Put raw datagrams on the RTP socket towards the far end at once: no pacing, nothing checked."""
        if self._rtp and self.remote_rtp:
            for data in datagrams:
                self._rtp.sendto(data, self.remote_rtp)

    def audio_burst(self, pcm: np.ndarray, *, shuffle: bool = True, duplicates: int = 1) -> int:
        """Send `pcm` as one burst of packets of the running stream (its SSRC, its next sequence numbers and
        timestamps) all at once instead of one per ptime, each packet `duplicates` times, in random order when
        `shuffle`. Returns the number of datagrams sent."""
        spf = 8 * self.ua.ptime
        pcm = np.asarray(pcm, dtype=np.int16)
        enc = ulaw_encode if self.pt == 0 else alaw_encode
        packets = []
        for i in range(0, len(pcm) - spf + 1, spf):
            packets += [rtp_packet(self.pt, self.tx_seq, self.tx_ts, self.tx_ssrc, enc(pcm[i:i + spf]))] * duplicates
            self.tx_seq, self.tx_ts = self.tx_seq + 1, self.tx_ts + spf
        if shuffle:
            random.shuffle(packets)
        self.send_datagrams(packets)
        return len(packets)

    def dtmf_burst(self, digits: str, duration_ms: int = 40) -> int:
        """RFC 4733 events for every digit, sent back to back in one burst (a flood, not a keypad); each digit is
        a start packet and three end packets with its own timestamp, as a phone sends them."""
        spf = 8 * self.ua.ptime
        dur = 8 * duration_ms
        packets = []
        for d in digits:
            ev = DTMF_EVENTS[d.upper()]
            packets.append(rtp_packet(self.dtmf_pt, self.tx_seq, self.tx_ts, self.tx_ssrc,
                                      struct.pack("!BBH", ev, 10, spf), marker=True))
            self.tx_seq += 1
            for _ in range(3):
                packets.append(rtp_packet(self.dtmf_pt, self.tx_seq, self.tx_ts, self.tx_ssrc,
                                          struct.pack("!BBH", ev, 0x80 | 10, dur)))
                self.tx_seq += 1
            self.tx_ts += dur + spf
        self.send_datagrams(packets)
        return len(packets)

    # ---------------------------------------------------------------- media API
    async def play(self, pcm: np.ndarray) -> float:
        """Send int16 8 kHz audio paced at ptime; returns time.monotonic() when the last frame left."""
        spf = 8 * self.ua.ptime
        pcm = np.asarray(pcm, dtype=np.int16)
        n = -(-len(pcm) // spf)
        buf = np.zeros(n * spf, np.int16)
        buf[: len(pcm)] = pcm
        enc = ulaw_encode if self.pt == 0 else alaw_encode
        self._stop_play = False
        for i in range(n):
            self._tx.put_nowait(enc(buf[i * spf:(i + 1) * spf]))
        while not self._tx.empty() and not self.ended.is_set():
            if self._stop_play:
                while not self._tx.empty():
                    self._tx.get_nowait()
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(self.ua.ptime / 1000)  # the last queued frame is on the wire now
        self.last_play_end = time.monotonic()
        return self.last_play_end

    def stop_playing(self) -> None:
        self._stop_play = True

    async def send_dtmf(self, digits: str, duration_ms: int = 160, gap_ms: int = 100) -> None:
        for d in digits:
            self._tx.put_nowait((d, duration_ms))
            await self.play(np.zeros(8 * gap_ms, np.int16))

    def received_audio(self, since: float | None = None) -> np.ndarray:
        pk = [p.pcm for p in self.received if since is None or p.arrival >= since]
        return np.concatenate(pk) if pk else np.zeros(0, np.int16)

    def first_audio_after(self, t: float, threshold: float = 300.0) -> float | None:
        """Arrival time of the first received packet after t whose RMS exceeds threshold."""
        for p in self.received:
            if p.arrival >= t and rms(p.pcm) > threshold:
                return p.arrival
        return None

    # ---------------------------------------------------------------- signalling
    def _request(self, method: str, body: str = "", ctype: str = "") -> SipMessage:
        if method != "ACK":
            self.cseq += 1
        headers = [("via", f"SIP/2.0/UDP {self.ua.host}:{self.ua.port};rport;branch=z9hG4bK{uuid.uuid4().hex}"),
                   ("max-forwards", "70"),
                   ("from", f"{self.local_uri};tag={self.local_tag}"),
                   ("to", self.remote_uri + (f";tag={self.remote_tag}" if self.remote_tag else "")),
                   ("call-id", self.call_id), ("cseq", f"{self.cseq} {method}"),
                   ("contact", f"<sip:{self.ua.user}@{self.ua.host}:{self.ua.port}>"),
                   ("user-agent", "HotlineTestUA/1.0")]
        if ctype:
            headers.append(("content-type", ctype))
        return SipMessage(f"{method} {self.remote_target} SIP/2.0", headers, body)

    async def _transact(self, req: SipMessage, timeout: float = 8.0) -> SipMessage:
        """Send a non-INVITE request with retransmissions; return the final response."""
        deadline, interval = time.monotonic() + timeout, T1
        self.ua.send(req)
        while True:
            try:
                resp = await asyncio.wait_for(self._responses.get(), min(interval, max(0.01, deadline - time.monotonic())))
                if resp.cseq == req.cseq and resp.code >= 200:
                    return resp
            except asyncio.TimeoutError:
                if time.monotonic() >= deadline:
                    raise SipError(408, f"no response to {req.method}") from None
                self.ua.send(req)
                interval = min(interval * 2, 4.0)

    async def hangup(self) -> None:
        """BYE when answered; CANCEL an unanswered outgoing call; decline an unanswered incoming one."""
        if self.ended.is_set():
            return
        if not self.answered.is_set():
            if self.outgoing and self.invite is not None:
                inv = self.invite
                cancel = SipMessage(inv.start.replace("INVITE", "CANCEL", 1),
                                    [(k, f"{inv.cseq[0]} CANCEL" if k == "cseq" else v) for k, v in inv.headers
                                     if k in ("via", "from", "to", "call-id", "cseq", "max-forwards")])
                self.ua.send(cancel)
            elif self.invite is not None:
                self.ua.respond(self.invite, 603, "Decline", to_tag=self.local_tag)
            self._end("cancel" if self.outgoing else "declined")
            return
        bye = self._request("BYE")
        self._end("local-bye")
        try:
            await self._transact(bye)
        except SipError:
            pass

    def _send_ack(self) -> None:
        assert self.invite is not None
        ack = self._request("ACK")
        ack.headers = [(k, f"{self.invite.cseq[0]} ACK" if k == "cseq" else v) for k, v in ack.headers]
        self.ua.send(ack)

    async def wait_hangup(self, timeout: float | None = None) -> str:
        await asyncio.wait_for(self.ended.wait(), timeout)
        return self.end_reason

    async def wait_answered(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.answered.wait(), timeout)

    def _end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            if self._rtp:
                asyncio.get_running_loop().call_later(0.2, self._rtp.close)

    def _answer_sdp(self, offer: str) -> str:
        self.remote_rtp, pts, dtmf = _parse_sdp(offer)
        self.dtmf_pt = dtmf or 101
        prefs = [CODECS[c] for c in self.ua.codecs]
        self.pt = next((p for p in pts if p in prefs), prefs[0])
        self.codec = {0: "PCMU", 8: "PCMA"}[self.pt]
        return _sdp(self.rtp_port, [self.codec], self.ua.ptime)

    def _on_message(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        if not msg.is_request:
            if msg.cseq[1] == "INVITE" and msg.code == 200 and self.outgoing and self.answered.is_set():
                self._send_ack()  # retransmitted 200 OK: our ACK was lost
                return
            self._responses.put_nowait(msg)
            return
        method = msg.method
        if method == "BYE":
            self.ua.respond(msg, 200, "OK", to_tag=self.local_tag)
            self._end("remote-bye")
        elif method == "ACK":
            self._acked.set()
        elif method == "CANCEL":
            self.ua.respond(msg, 200, "OK", to_tag=self.local_tag)
            if self.invite is not None and not self.answered.is_set():
                self.ua.respond(self.invite, 487, "Request Terminated", to_tag=self.local_tag)
            self._end("remote-cancel")
        elif method in ("INVITE", "UPDATE") and self.answered.is_set():  # re-INVITE / session refresh
            body = self._answer_sdp(msg.body) if msg.body else _sdp(self.rtp_port, [self.codec], self.ua.ptime)
            self.ua.respond(msg, 200, "OK", to_tag=self.local_tag, body=body,
                            contact=f"<sip:{self.ua.user}@{self.ua.host}:{self.ua.port}>")
        else:
            self.ua.respond(msg, 200, "OK", to_tag=self.local_tag)


# ---------------------------------------------------------------------------------------------- UAs
class _UserAgent:
    def __init__(self, host: str = "127.0.0.1", local_port: int = 0, *, user: str = "caller",
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), ptime: int = 20,
                 send_silence: bool = True) -> None:
        self.host, self.port, self.user = host, local_port, user
        self.codecs, self.ptime, self.send_silence = list(codecs), ptime, send_silence
        self.calls: dict[str, SipCall] = {}
        self._sip: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] = ("127.0.0.1", 5060)

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._on_sip),
                                                           local_addr=(self.host, self.port))
        self._sip = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for call in list(self.calls.values()):
            if not call.ended.is_set():
                try:
                    await asyncio.wait_for(call.hangup(), 3)
                except (asyncio.TimeoutError, SipError):
                    call._end("closed")
            if call._tx_task:
                call._tx_task.cancel()
        await asyncio.sleep(0)
        if self._sip:
            self._sip.close()

    def send(self, msg: SipMessage, addr: tuple[str, int] | None = None) -> None:
        if self._sip:
            self._sip.sendto(msg.encode(), addr or self.peer)

    def respond(self, req: SipMessage, code: int, reason: str, *, to_tag: str = "", body: str = "",
                contact: str = "") -> None:
        headers = [("via", v) for v in req.get_all("via")]
        to = req.get("to")
        if to_tag and not SipMessage.tag(to):
            to = f"{to};tag={to_tag}"
        headers += [("from", req.get("from")), ("to", to), ("call-id", req.call_id), ("cseq", req.get("cseq"))]
        if contact:
            headers.append(("contact", contact))
        if body:
            headers.append(("content-type", "application/sdp"))
        via = req.get("via")
        m = re.search(r"SIP/2.0/UDP ([^;:\s]+)(?::(\d+))?", via)
        addr = (m.group(1), int(m.group(2) or 5060)) if m else self.peer
        rport = re.search(r";rport=(\d+)", via)
        if rport:
            addr = (addr[0], int(rport.group(1)))
        self.send(SipMessage(f"SIP/2.0 {code} {reason}", headers, body), addr)

    def _on_sip(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = SipMessage.parse(data)
        if msg is None or not msg.call_id:
            return
        call = self.calls.get(msg.call_id)
        if call is not None:
            call._on_message(msg, addr)
        elif msg.is_request and msg.method == "INVITE":
            self._on_new_invite(msg, addr)
        elif msg.is_request and msg.method == "OPTIONS":
            self.respond(msg, 200, "OK", to_tag=uuid.uuid4().hex[:8])
        elif msg.is_request and msg.method != "ACK":
            self.respond(msg, 481, "Call/Transaction Does Not Exist", to_tag=uuid.uuid4().hex[:8])

    def _on_new_invite(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        self.respond(msg, 486, "Busy Here", to_tag=uuid.uuid4().hex[:8])


class SipCaller(_UserAgent):
    """Places calls to the hotline (default sip:NUMBER@127.0.0.1:5060)."""

    def __init__(self, host: str = "127.0.0.1", local_port: int = 0, *, server: tuple[str, int] = ("127.0.0.1", 5060),
                 user: str = "13800138000", display_name: str = "", **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, local_port, user=user, **kw)
        self.peer = server
        self.display_name = display_name
        self.call: SipCall | None = None

    async def dial(self, number: str = "12345", timeout: float = 15.0) -> SipCall:
        call = SipCall(self, f"{uuid.uuid4().hex}@{self.host}", outgoing=True)
        self.calls[call.call_id] = call
        self.call = call
        await call._open_rtp()
        name = f'"{self.display_name}" ' if self.display_name else ""
        call.local_uri = f"{name}<sip:{self.user}@{self.host}>"
        call.remote_target = f"sip:{number}@{self.peer[0]}:{self.peer[1]}"
        call.remote_uri = f"<{call.remote_target}>"
        inv = call._request("INVITE", _sdp(call.rtp_port, self.codecs, self.ptime), "application/sdp")
        call.invite = inv
        deadline, interval, provisional = time.monotonic() + timeout, T1, False
        self.send(inv)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                await call.hangup()
                raise SipError(408, "INVITE timed out")
            try:
                resp = await asyncio.wait_for(call._responses.get(), left if provisional else min(interval, left))
            except asyncio.TimeoutError:
                if not provisional:
                    self.send(inv)
                    interval = min(interval * 2, 4.0)
                continue
            if resp.cseq[1] != "INVITE":
                continue
            if resp.code < 200:
                provisional = True
                continue
            call.remote_tag = SipMessage.tag(resp.get("to"))
            if resp.code >= 300:
                ack = call._request("ACK")
                ack.headers = [(k, v) for k, v in ack.headers if k != "via"]
                ack.headers.insert(0, ("via", inv.get("via")))
                ack.headers = [(k, f"{inv.cseq[0]} ACK" if k == "cseq" else v) for k, v in ack.headers]
                self.send(ack)
                call._end(f"rejected-{resp.code}")
                raise SipError(resp.code, resp.reason)
            break
        contact = resp.get("contact")
        if contact:
            call.remote_target = re.sub(r"^.*<|>.*$", "", contact) if "<" in contact else contact.split(";")[0]
        call.remote_rtp, pts, dtmf = _parse_sdp(resp.body)
        call.pt = next((p for p in pts if p in (0, 8)), 0)
        call.codec = {0: "PCMU", 8: "PCMA"}[call.pt]
        call.dtmf_pt = dtmf or 101
        call.answered.set()
        call._send_ack()
        call._start_media()
        return call

    # convenience: act on the last dialled call
    async def play(self, pcm: np.ndarray) -> float:
        assert self.call, "dial first"
        return await self.call.play(pcm)

    async def send_dtmf(self, digits: str, duration_ms: int = 160) -> None:
        assert self.call, "dial first"
        await self.call.send_dtmf(digits, duration_ms)

    def received_audio(self) -> np.ndarray:
        return self.call.received_audio() if self.call else np.zeros(0, np.int16)

    async def hangup(self) -> None:
        if self.call:
            await self.call.hangup()


class SipPhone(_UserAgent):
    """Listens for INVITEs (an agent's phone); answers after `answer_after` seconds, or never (None)."""

    def __init__(self, host: str = "127.0.0.1", local_port: int = 5071, *, answer_after: float | None = 0.0,
                 user: str = "agent", **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, local_port, user=user, **kw)
        self.answer_after = answer_after
        self.incoming: asyncio.Queue[SipCall] = asyncio.Queue()

    async def wait_call(self, timeout: float | None = None) -> SipCall:
        return await asyncio.wait_for(self.incoming.get(), timeout)

    def _on_new_invite(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        call = SipCall(self, msg.call_id, outgoing=False)
        call.invite = msg
        call.remote_tag = SipMessage.tag(msg.get("from"))
        call.remote_uri = msg.get("from").split(";tag=")[0]
        call.local_uri = msg.get("to")
        contact = msg.get("contact")
        call.remote_target = re.sub(r"^.*<|>.*$", "", contact) if contact else msg.start.split()[1]
        self.calls[call.call_id] = call
        self.peer = addr
        self.respond(msg, 100, "Trying")
        asyncio.create_task(self._answer(call, msg))

    async def _answer(self, call: SipCall, inv: SipMessage) -> None:
        await call._open_rtp()
        self.respond(inv, 180, "Ringing", to_tag=call.local_tag)
        self.incoming.put_nowait(call)
        if self.answer_after is None:
            return
        await asyncio.sleep(self.answer_after)
        if call.ended.is_set():
            return
        body = call._answer_sdp(inv.body)
        call.answered.set()
        call._start_media()
        interval = T1
        for _ in range(7):  # retransmit 200 until ACK
            self.respond(inv, 200, "OK", to_tag=call.local_tag, body=body,
                         contact=f"<sip:{self.user}@{self.host}:{self.port}>")
            try:
                await asyncio.wait_for(call._acked.wait(), interval)
                return
            except asyncio.TimeoutError:
                interval = min(interval * 2, 4.0)
        call._end("no-ack")
