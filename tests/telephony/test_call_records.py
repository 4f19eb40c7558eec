"""Call records and GET /v1/calls on both backends."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from hotline.container import Container
from telephony.models import CallOutcome

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


async def test_call_record_lifecycle_and_api(client: httpx.AsyncClient, container: Container, headers: dict) -> None:
    calls = container.calls
    await calls.start("chan-1", "13812345678", node="ast1", controller="c1")
    again = await calls.start("chan-1", "13812345678")  # idempotent (controller restart)
    assert again.controller == "c1"
    await calls.answered("chan-1")
    await calls.add_turn(
        "chan-1", transcript="社保卡丢了怎么办", intent="ask_info", confidence=0.93, action="kb_answer",
        reply="请带身份证到社保网点补办。", latency_ms={"asr": 310, "nlu": 40, "tts": 120, "turn": 620},
    )
    await calls.add_turn("chan-1", transcript="谢谢", intent="thanks", action="chitchat", reply="不客气。")
    await calls.finish("chan-1", CallOutcome.answered)
    await calls.finish("chan-1", CallOutcome.failed)  # the first outcome stays
    await calls.start("chan-2", "13900001111")
    await calls.finish("chan-2", CallOutcome.work_order, ticket="20261125-0001")

    r = await client.get("/v1/calls/chan-1", headers=headers["supervisor"])
    assert r.status_code == 200
    body = r.json()
    assert body["caller"] == "13812345678" and body["outcome"] == "answered" and body["ended_at"]
    assert [t["seq"] for t in body["turns"]] == [1, 2]
    assert body["turns"][0]["latency_ms"]["turn"] == 620 and body["turns"][0]["action"] == "kb_answer"

    r = await client.get("/v1/calls", params={"outcome": "work_order"}, headers=headers["supervisor"])
    assert [c["ticket"] for c in r.json()["items"]] == ["20261125-0001"]
    r = await client.get("/v1/calls", params={"caller": "13812345678"}, headers=headers["agent"])
    item = r.json()["items"][0]
    assert item["caller"] == "138****5678" and item["n_turns"] == 2
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    r = await client.get("/v1/calls", params={"since": future}, headers=headers["admin"])
    assert r.json()["total"] == 0
    assert (await client.get("/v1/calls", headers=headers["dept_a"])).status_code == 403
    assert (await client.get("/v1/calls/nope", headers=headers["admin"])).status_code == 404
    assert (await client.get("/v1/calls", params={"outcome": "bogus"}, headers=headers["admin"])).status_code == 422
    assert (await client.get("/v1/calls", params={"caller": "abc"}, headers=headers["admin"])).status_code == 422
