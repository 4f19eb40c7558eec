"""The controller process is killed mid-call: the caller must reach a human seat, the restarted
controller must not handle the call a second time, and the call record must be finalised."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.container import Container
from telephony.calls import CallRecords
from telephony.models import CallOutcome
from ivr.speech.base import REPO_ROOT
from tests.support.sip_caller import SipCaller, SipPhone
from tests.ivr.controller.conftest import DEAD_RASA, ControllerFactory, Speech, until


@pytest.fixture
def controller_process(ivr_container: Container, speech: Speech,
                       tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    s = ivr_container.settings
    env = dict(os.environ, HOTLINE_ENV="test", DATABASE_URL=s.database_url, REDIS_URL=s.redis_url,
               HOTLINE_SECRET_KEY=s.secret_key, HOTLINE_ADMIN_PASSWORD=s.admin_password,
               HOTLINE_ARI_URL=s.ari_url, HOTLINE_ARI_USER=s.ari_user, HOTLINE_ARI_PASSWORD=s.ari_password,
               HOTLINE_RASA_URL=DEAD_RASA, HOTLINE_TTS_CACHE_DIR=str(s.tts_cache_dir))
    log = tmp_path / "controller.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "ivr", "--lazy-models"], cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def test_killed_controller_caller_reaches_seat_and_restart_does_not_double_handle(
    controller_process: subprocess.Popen[bytes], start_controller: ControllerFactory, ivr_container: Container,
) -> None:
    log: Path = controller_process.log  # type: ignore[attr-defined]
    await until(lambda: "serving app" in log.read_text(errors="replace"), 90, step=0.5)  # the process is up

    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138009") as caller:
        call = await caller.dial("12345")
        await until(lambda: call.first_audio_after(0), 15)  # the greeting is playing: the call is live

        async def in_progress() -> list[str]:
            return [c.id for c in await ivr_container.calls.in_progress() if c.caller == "13800138009"]

        call_id = (await until(in_progress, 5))[0]
        os.killpg(controller_process.pid, signal.SIGKILL)  # the controller dies mid-call
        controller_process.wait(10)
        with pytest.raises(asyncio.TimeoutError):
            await seat.wait_call(timeout=1.0)  # nothing happens by itself (Asterisk keeps it in Stasis)

        ctl = await start_controller(rasa_url=DEAD_RASA)  # the restart hands the orphan to the seats
        agent = await seat.wait_call(timeout=15)
        await agent.wait_answered(5)
        assert ctl.recovered == [call_id]
        assert call_id not in ctl.active and call_id not in ctl.finished  # not handled a second time
        assert not call.ended.is_set()
        await call.hangup()

    async with ivr_container.db.session() as session:
        record = await CallRecords.get(session, call_id)
    assert record.outcome == CallOutcome.transferred.value
    assert record.ended_at is not None and record.context.get("fallback") == "orphaned"
    assert await ctl.live.get(call_id) == {}
