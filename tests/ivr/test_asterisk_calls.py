"""Real calls through the real Asterisk: SIP caller -> 12345 -> Stasis(hotline) -> our ARI client,
externalMedia RTP both ways, DTMF, hangups, dialplan fallback to the seats, events reconnect."""

from __future__ import annotations

import asyncio
import subprocess
import time

import numpy as np
import pytest

from hotline.services.asterisk import SETUP_SCRIPT, AsteriskService
from telephony.ari import AriClient, ChannelDtmfReceived, StasisStart, hand_back_orphans
from ivr.media.rtp import SLIN8_PT, SLIN16_PT, RtpEndpoint
from tests.support.g711 import dominant_frequency, rms, tone
from tests.support.sip_caller import SipCaller, SipPhone

from .conftest import next_event


def test_setup_is_cached(asterisk: AsteriskService) -> None:
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, capture_output=True, text=True).stdout
    assert time.monotonic() - t0 < 2.0
    assert "cached" in out


async def test_ari_answers(ari: AriClient, asterisk: AsteriskService) -> None:
    info = await ari.info()
    assert info.system and info.system["version"].startswith("22.")
    app = await ari.application()
    assert app["name"] == "hotline"
    assert asterisk.is_running()
    assert "hotline-humans" in asterisk.cli("queue show hotline-humans")


async def _answered_call(ari: AriClient, caller: SipCaller, q) -> tuple:  # type: ignore[no-untyped-def]
    dial = asyncio.create_task(caller.dial("12345"))
    start = await next_event(q, "StasisStart")
    assert isinstance(start, StasisStart)
    await ari.answer(start.channel.id)
    call = await asyncio.wait_for(dial, 10)
    return start, call


async def test_call_reaches_stasis_and_caller_hangs_up(ari: AriClient) -> None:
    q = ari.events.subscribe()
    async with SipCaller(user="13800138000") as caller:
        start, call = await _answered_call(ari, caller, q)
        assert start.channel.caller.number == "13800138000"
        assert start.channel.dialplan and start.channel.dialplan.exten == "12345"
        assert start.channel.name.startswith("PJSIP/caller-")
        await call.hangup()
        assert call.end_reason == "local-bye"
        await next_event(q, "ChannelHangupRequest", channel_id=start.channel.id)
        await next_event(q, "StasisEnd", channel_id=start.channel.id)  # last event for this channel


async def test_hangup_from_asterisk_side(ari: AriClient) -> None:
    q = ari.events.subscribe()
    async with SipCaller() as caller:
        start, call = await _answered_call(ari, caller, q)
        await ari.hangup(start.channel.id)
        assert await call.wait_hangup(5) == "remote-bye"


async def _media_bridge(ari: AriClient, q, channel_id: str, ep: RtpEndpoint) -> str:  # type: ignore[no-untyped-def]
    bridge = await ari.create_bridge("mixing")
    fmt = "slin16" if ep.sample_rate == 16000 else "slin"
    em = await ari.external_media(f"127.0.0.1:{ep.port}", fmt=fmt)
    # the UnicastRTP channel must be in Stasis before it can join a bridge (else 422)
    await next_event(q, "StasisStart", channel_id=em.id)
    host = await ari.get_variable(em.id, "UNICASTRTP_LOCAL_ADDRESS")
    port = await ari.get_variable(em.id, "UNICASTRTP_LOCAL_PORT")
    assert host == "127.0.0.1" and 10000 <= int(port) <= 10999
    ep.set_remote(host, int(port))
    await ari.add_channel(bridge.id, [channel_id, em.id])
    return em.id


@pytest.mark.parametrize(("ptime", "rate"), [(20, 16000), (30, 16000), (20, 8000)])
async def test_audio_flows_both_ways(ari: AriClient, ptime: int, rate: int) -> None:
    """slin16 (16 kHz in, 8 kHz PT 10 out - see ivr/media/rtp.py) and slin (8 kHz both ways)."""
    q = ari.events.subscribe()
    async with SipCaller(ptime=ptime) as caller, RtpEndpoint(sample_rate=rate) as ep:
        start, call = await _answered_call(ari, caller, q)
        await _media_bridge(ari, q, start.channel.id, ep)

        # caller -> controller: 440 Hz at 8 kHz arrives as slin16/slin (big-endian on the wire)
        ep.read_nowait()
        await call.play(tone(440, 1.5, 8000))
        await asyncio.sleep(0.2)
        got = np.frombuffer(b"".join(ep.read_nowait()), "<i2")
        assert ep.payload_type == (SLIN16_PT if rate == 16000 else SLIN8_PT)
        assert len(got) > rate  # > 1 s of audio
        assert abs(dominant_frequency(got[rate // 4:], rate) - 440) < 10, "byte order or rate wrong"
        assert rms(got[rate // 4:]) > 2000
        assert ep.stats.wrong_pt == ep.stats.malformed == ep.stats.late == 0

        # controller -> caller: 1 kHz, 20 ms pacing on a monotonic schedule
        t0 = time.monotonic()
        job = ep.send(tone(1000, 1.0, rate))
        assert await job is True
        took = time.monotonic() - t0
        assert 0.95 < took < 1.1, took
        assert ep.stats.send_late_ms_mean < 3 and ep.stats.send_late_ms_max < 40
        await asyncio.sleep(0.3)
        heard = call.received_audio(since=t0)
        voiced = [p for p in call.received if p.arrival >= t0 and rms(p.pcm) > 1000]
        # Asterisk sends its own framing (20 ms) whatever ptime the caller offered; it accepts the
        # caller's 30 ms packets (checked above), so neither side may assume the other's frame size.
        sizes = {len(p.pcm) for p in voiced}
        assert len(sizes) == 1, sizes
        frame_s = sizes.pop() / 8000
        assert len(voiced) * frame_s >= 0.9  # ~1 s of tone arrived
        assert abs(dominant_frequency(heard, 8000) - 1000) < 10
        arrivals = np.diff([p.arrival for p in voiced])
        assert abs(float(np.median(arrivals)) - frame_s) < 0.005
        await call.hangup()


async def test_stop_sending_is_immediate(ari: AriClient) -> None:
    q = ari.events.subscribe()
    async with SipCaller() as caller, RtpEndpoint() as ep:
        start, call = await _answered_call(ari, caller, q)
        await _media_bridge(ari, q, start.channel.id, ep)
        job = ep.send(tone(800, 5.0, 16000))
        await asyncio.sleep(0.5)
        sent_before = ep.stats.sent
        t_stop = time.monotonic()
        dropped = ep.stop_sending()
        assert await job is False and dropped > 150
        assert ep.stats.sent - sent_before <= 1
        await asyncio.sleep(0.5)
        late = [p for p in call.received if p.arrival > t_stop + 0.15 and rms(p.pcm) > 1000]
        assert not late, "audio kept arriving after barge-in stop"
        await call.hangup()


async def test_dtmf_from_caller(ari: AriClient) -> None:
    q = ari.events.subscribe()
    async with SipCaller() as caller:
        start, call = await _answered_call(ari, caller, q)
        await call.send_dtmf("0#5")
        digits = []
        for _ in range(3):
            ev = await next_event(q, "ChannelDtmfReceived", channel_id=start.channel.id)
            assert isinstance(ev, ChannelDtmfReceived)
            digits.append(ev.digit)
        assert digits == ["0", "#", "5"]
        await call.hangup()


async def test_no_controller_falls_through_to_seats(asterisk: AsteriskService) -> None:
    """No Stasis app registered -> Stasis() fails -> the queue rings the seats (agent1 answers)."""
    async with SipPhone(local_port=5071, answer_after=0.3, user="agent1") as phone, SipCaller() as caller:
        dial = asyncio.create_task(caller.dial("12345", timeout=20))
        agent_call = await phone.wait_call(timeout=15)
        assert agent_call.invite is not None
        assert agent_call.invite.start.startswith("INVITE sip:agent1@127.0.0.1:5071")
        call = await asyncio.wait_for(dial, 15)
        await agent_call.wait_answered(5)
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        await agent_call.play(tone(600, 1.0, 8000))  # the seat talks to the citizen
        await asyncio.sleep(0.3)
        assert abs(dominant_frequency(call.received_audio(since=t0), 8000) - 600) < 10
        await call.hangup()
        assert await agent_call.wait_hangup(5) == "remote-bye"


async def test_controller_hands_back_to_dialplan(ari: AriClient) -> None:
    """continue_in_dialplan -> the seats; HOTLINE_DONE=1 -> plain hangup."""
    q = ari.events.subscribe()
    async with SipPhone(local_port=5072, answer_after=0.2, user="agent2") as phone, SipCaller() as caller:
        start, call = await _answered_call(ari, caller, q)
        await ari.continue_in_dialplan(start.channel.id)
        agent_call = await phone.wait_call(timeout=10)
        await agent_call.wait_answered(5)
        await call.hangup()
        await agent_call.wait_hangup(5)

    async with SipCaller() as caller:
        start, call = await _answered_call(ari, caller, q)
        await ari.set_variable(start.channel.id, "HOTLINE_DONE", "1")
        await ari.continue_in_dialplan(start.channel.id)
        assert await call.wait_hangup(5) == "remote-bye"


async def test_events_reconnect_after_asterisk_restart(asterisk: AsteriskService) -> None:
    async with AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password) as ari:
        await ari.events.wait_connected(10)
        first = ari.events.connections
        reconnects: list[int] = []
        ari.events.on_connect(reconnects.append)
        await asyncio.to_thread(asterisk.restart)
        await asyncio.wait_for(_until(lambda: ari.events.connections > first), 20)
        assert reconnects and ari.events.connected.is_set()
        q = ari.events.subscribe()
        async with SipCaller() as caller:
            start, call = await _answered_call(ari, caller, q)
            await call.hangup()


async def _until(cond) -> None:  # type: ignore[no-untyped-def]
    while not cond():
        await asyncio.sleep(0.05)


async def test_controller_death_mid_call_reaches_seats(asterisk: AsteriskService) -> None:
    """Asterisk keeps the channel in the inactive app when the controller dies; the watchdog hands it
    back to the dialplan, which queues it to the seats (agent3 answers)."""
    async with SipPhone(local_port=5073, answer_after=0.2, user="agent3") as phone, SipCaller() as caller:
        controller = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password)
        await controller.__aenter__()
        await controller.events.wait_connected(10)
        q = controller.events.subscribe()
        async with RtpEndpoint() as ep:
            start, call = await _answered_call(controller, caller, q)
            em_id = await _media_bridge(controller, q, start.channel.id, ep)
            await controller.close()  # the controller dies mid-call
        with pytest.raises(asyncio.TimeoutError):
            await phone.wait_call(timeout=1.0)  # nothing happens by itself
        watchdog = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, start_events=False)
        async with watchdog:
            assert await hand_back_orphans(watchdog) == [start.channel.id]
            assert em_id not in {c.id for c in await watchdog.list_channels()}
        agent_call = await phone.wait_call(timeout=10)
        await agent_call.wait_answered(5)
        await call.hangup()
        await agent_call.wait_hangup(5)
