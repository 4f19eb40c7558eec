"""The lifecycle on both backends: every action from every status (allowed → new status, refused → 409 with the
allowed ones), roles, history, tickets, idempotency keys, bad input."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from sqlalchemy import func, select

from hotline.container import Container
from work_orders.lifecycle import TRANSITIONS, allowed_actions
from work_orders.models import Status, WorkOrder
from tests.work_orders.conftest import act, create

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True),
    pytest.mark.usefixtures("city", "clock"),
]

_phones = (f"1390000{n:04d}" for n in itertools.count(1))
PLAIN = "东河区幸福里12号"  # names a district but no gazetteer place: no hotspot grouping


async def new(client: httpx.AsyncClient, h: dict, **kw: object) -> dict:
    kw.setdefault("address", PLAIN)
    kw.setdefault("caller_phone", next(_phones))
    return await create(client, h, **kw)


async def in_state(client: httpx.AsyncClient, headers: dict, state: Status) -> dict:
    """An order brought to `state` through the API, the way people would."""
    sup, agent = headers["supervisor"], headers["agent"]
    if state is Status.created:
        return await new(client, agent, dispatch=False)
    o = await new(client, agent)
    steps = {
        Status.dispatched: [],
        Status.accepted: [("accept", {})],
        Status.in_progress: [("accept", {}), ("start", {})],
        Status.resolved: [("accept", {}), ("resolve", {"note": "已更换新井盖"})],
        Status.closed: [("accept", {}), ("resolve", {"note": "已更换新井盖"}), ("callback", {"result": "satisfied"})],
        Status.reopened: [("accept", {}), ("resolve", {"note": "已处理"}), ("callback", {"result": "dissatisfied"})],
        Status.returned: [("return", {"note": "该井盖属燃气公司"})],
        Status.withdrawn: [("withdraw", {})],
    }
    if state is Status.merged:
        target = await new(client, agent)
        return await act(client, sup, o["id"], "merge", into=target["ticket"])
    for action, body in steps[state]:
        o = await act(client, sup, o["id"], action, **body)
    assert o["status"] == state.value
    return o


BODIES = {
    "dispatch": {}, "accept": {}, "start": {}, "return": {"note": "不属于本单位职责"}, "resolve": {"note": "已修复"},
    "withdraw": {}, "urge": {}, "reopen": {"note": "群众反映仍未修好"}, "callback": {"result": "satisfied"},
    "close": {"note": "三次回访未接通"},
}


async def test_every_action_from_every_status(client: httpx.AsyncClient, headers: dict) -> None:
    sup = headers["supervisor"]  # may do every action: only the status decides
    for state in Status:
        for action, t in TRANSITIONS.items():
            o = await in_state(client, headers, state)
            body = dict(BODIES.get(action, {}))
            if action == "merge":
                body = {"into": (await new(client, headers["agent"]))["ticket"]}
            r = await client.post(f"/v1/work-orders/{o['id']}/{action}", json=body, headers=sup)
            if state in t.sources:
                assert r.status_code == 200, (state, action, r.text)
                expected = t.target or (Status.closed if action == "callback" else state)
                assert r.json()["status"] == expected.value, (state, action)
            else:
                assert r.status_code == 409, (state, action, r.text)
                assert r.json()["allowed"] == allowed_actions(state, "supervisor"), (state, action)
                assert r.json()["status"] == state.value
                assert f"cannot {action}" in r.json()["detail"]


async def test_full_loop_with_history(client: httpx.AsyncClient, headers: dict, container: Container) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路胜利小区3号楼")
    assert o["status"] == "dispatched" and o["department_code"] == "municipal"
    assert o["department_name"] == "市市政设施管理处" and o["urgency"] == "urgent"
    dept = headers["dept_a"]
    o = await act(client, dept, o["id"], "accept", note="已签收")
    assert o["accepted_at"] and o["status"] == "accepted"
    o = await act(client, dept, o["id"], "start")
    o = await act(client, dept, o["id"], "resolve", note="已更换球墨铸铁井盖", public_note="井盖已更换")
    assert o["status"] == "resolved" and o["result_note"] == "已更换球墨铸铁井盖"
    queue = (await client.get("/v1/work-orders/callbacks", headers=headers["agent"])).json()
    assert [c["ticket"] for c in queue] == [o["ticket"]]
    o = await act(client, headers["agent"], o["ticket"], "callback", result="basically_satisfied", comment="还行")
    assert o["status"] == "closed" and o["satisfaction"] == "basically_satisfied" and o["solved"] is True
    assert (await client.get("/v1/work-orders/callbacks", headers=headers["agent"])).json() == []
    d = (await client.get(f"/v1/work-orders/{o['ticket']}", headers=headers["supervisor"])).json()
    assert [(e["action"], e["actor"], e["to_status"]) for e in d["history"]] == [
        ("create", "agent", "created"), ("dispatch", "agent", "dispatched"), ("accept", "dept_a", "accepted"),
        ("start", "dept_a", "in_progress"), ("resolve", "dept_a", "resolved"), ("callback", "agent", "closed"),
    ]
    assert d["history"][2]["note"] == "已签收" and all(e["at"] for e in d["history"])
    audit = (await client.get("/v1/audit?object_type=work_order", headers=headers["admin"])).json()
    assert [a["action"] for a in audit][:2] == ["work_order.callback", "work_order.resolve"]


async def test_dissatisfied_callback_reopens_then_return_and_redispatch(client: httpx.AsyncClient, headers: dict) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路胜利小区3号楼")
    await act(client, headers["dept_a"], o["id"], "accept")
    await act(client, headers["dept_a"], o["id"], "resolve", note="已处理")
    o = await act(client, headers["agent"], o["id"], "callback", result="dissatisfied", comment="井盖还是晃")
    assert o["status"] == "reopened" and o["reopen_count"] == 1 and o["resolved_at"] is None
    assert o["solved"] is False
    o = await act(client, headers["dept_a"], o["id"], "return", note="经核实为燃气井盖，不属本单位")
    assert o["status"] == "returned" and o["return_count"] == 1
    # once returned, the department can no longer act; the hotline re-dispatches
    r = await client.post(f"/v1/work-orders/{o['id']}/accept", json={}, headers=headers["dept_a"])
    assert r.status_code == 409 and r.json()["allowed"] == ["withdraw", "urge", "merge"] or r.status_code == 409
    o = await act(client, headers["supervisor"], o["id"], "dispatch", department="gas", note="转燃气集团")
    assert o["status"] == "dispatched" and o["department_code"] == "gas"
    # the old department no longer sees it
    assert (await client.get(f"/v1/work-orders/{o['id']}", headers=headers["dept_a"])).status_code == 404


async def test_role_refusals(client: httpx.AsyncClient, headers: dict) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路胜利小区3号楼")  # → municipal (dept_a)
    dept = headers["dept_a"]
    for action in ("dispatch", "withdraw", "urge", "merge", "reopen", "callback", "close"):
        body = {"into": o["ticket"]} if action == "merge" else BODIES[action]
        r = await client.post(f"/v1/work-orders/{o['id']}/{action}", json=body, headers=dept)
        assert r.status_code == 403, (action, r.text)
    for action in ("accept", "start", "resolve", "return", "reopen", "close"):
        r = await client.post(f"/v1/work-orders/{o['id']}/{action}", json=BODIES[action], headers=headers["agent"])
        assert r.status_code == 403, (action, r.text)
    # another department: not even visible
    for action in ("accept", "resolve"):
        r = await client.post(f"/v1/work-orders/{o['id']}/{action}", json=BODIES[action], headers=headers["dept_b"])
        assert r.status_code == 404
    r = await client.post("/v1/work-orders", json={"category": "other", "description": "测试一下"}, headers=dept)
    assert r.status_code == 403
    assert (await client.get(f"/v1/work-orders/{o['id']}")).status_code == 401


async def test_easy_item_closed_on_the_call(client: httpx.AsyncClient, headers: dict) -> None:
    o = await create(client, headers["agent"], category="other", description="问政务服务中心几点下班",
                     complexity="easy", answer="政务服务中心工作日下午五点半下班")
    assert o["status"] == "closed" and o["outcome"] == "closed_on_call" and o["department_code"] == "district.qingshan"
    assert o["closed_at"] and o["result_note"].startswith("政务服务中心")
    # 易 by default but not answered on the call → an ordinary order
    o = await create(client, headers["agent"], category="other", description="反映小区门口的报刊亭占道",
                     caller_phone="13900001111")
    assert o["status"] == "dispatched" and o["complexity"] == "simple"


async def test_merge_rules(client: httpx.AsyncClient, headers: dict) -> None:
    a = await new(client, headers["agent"])
    b = await new(client, headers["agent"])
    r = await client.post(f"/v1/work-orders/{a['id']}/merge", json={"into": a["ticket"]}, headers=headers["agent"])
    assert r.status_code == 400 and "itself" in r.json()["detail"]
    closed = await in_state(client, headers, Status.withdrawn)
    r = await client.post(f"/v1/work-orders/{a['id']}/merge", json={"into": closed["ticket"]}, headers=headers["agent"])
    assert r.status_code == 409
    r = await client.post(f"/v1/work-orders/{a['id']}/merge", json={"into": "20991231-9999"}, headers=headers["agent"])
    assert r.status_code == 404
    m = await act(client, headers["agent"], a["id"], "merge", into=b["ticket"])
    assert m["status"] == "merged" and m["merged_into_id"] == b["id"]
    hist = (await client.get(f"/v1/work-orders/{b['id']}", headers=headers["agent"])).json()["history"]
    assert hist[-1]["action"] == "merge_in" and a["ticket"] in hist[-1]["note"]


async def test_tickets_speakable_unique_per_day_under_concurrency(
    client: httpx.AsyncClient, headers: dict, clock, container: Container
) -> None:
    results = await asyncio.gather(*(new(client, headers["agent"]) for _ in range(12)))
    tickets = sorted(o["ticket"] for o in results)
    assert tickets == [f"20261125-{n:04d}" for n in range(1, 13)]
    clock.advance(hours=15)  # 2026-11-26 00:00 in 青山 (UTC+8)
    o = await new(client, headers["agent"])
    assert o["ticket"] == "20261126-0001"
    clock.advance(hours=-1)  # still the 25th locally: the sequence continues, never reuses
    assert (await new(client, headers["agent"]))["ticket"] == "20261125-0013"


async def test_idempotency_key_even_on_concurrent_retries(client: httpx.AsyncClient, headers: dict,
                                                          container: Container) -> None:
    h = {**headers["agent"], "Idempotency-Key": "ivr-call-7f3a9c-order"}
    body = {"category": "utilities.water", "description": "家里停水一整天了", "address": "云湖区望湖苑5栋",
            "caller_phone": "13700001234"}
    rs = await asyncio.gather(*(client.post("/v1/work-orders", json=body, headers=h) for _ in range(6)))
    assert sorted(r.status_code for r in rs) == [200] * 5 + [201]
    assert len({r.json()["ticket"] for r in rs}) == 1
    again = await client.post("/v1/work-orders", json=body, headers=h)
    assert again.status_code == 200 and again.json()["outcome"] == "replayed"
    async with container.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(WorkOrder)) == 1
    r = await client.post("/v1/work-orders", json=body, headers={**headers["agent"], "Idempotency-Key": "short"})
    assert r.status_code == 422


async def test_bad_input_is_4xx(client: httpx.AsyncClient, headers: dict) -> None:
    agent = headers["agent"]
    cases = [
        ({"category": "no.such", "description": "井盖坏了"}, 400, "unknown category"),
        ({"category": "road.damage", "description": "路坏了", "district": "atlantis"}, 400, "unknown district"),
        ({"category": "road.damage", "description": "路坏了", "department": "nobody"}, 400, "unknown department"),
        ({"category": "road.damage"}, 422, "description"),
        ({"category": "road.damage", "description": "路" * 2001}, 422, "description"),
        ({"category": "road.damage", "description": "路坏了", "caller_phone": "12345"}, 422, "phone"),
        ({"category": "road.damage", "description": "路坏了", "urgency": "asap"}, 422, "urgency"),
        ({"category": "road.damage", "description": "路坏了", "surprise": 1}, 422, "surprise"),
        ({"category": "Road Damage!", "description": "路坏了"}, 422, "category"),
    ]
    for body, code, word in cases:
        r = await client.post("/v1/work-orders", json=body, headers=agent)
        assert r.status_code == code, (body, r.text)
        assert word in r.text
    r = await client.post("/v1/work-orders", content=b"{not json", headers={**agent, "content-type": "application/json"})
    assert r.status_code == 422
    o = await new(client, agent, dispatch=False, category="environment.noise")
    for path, body, code in [
        (f"{o['id']}/dispatch", {"department": "nobody"}, 400),
        (f"{o['id']}/return", {}, 422),
        (f"{o['id']}/return", {"note": "   "}, 422),
        (f"{o['id']}/callback", {"result": "great"}, 409),
        (f"{o['id']}/resolve", {"note": "x" * 1001}, 422),
        ("999999/accept", {}, 404),
        ("not-a-ticket/accept", {}, 404),
    ]:
        r = await client.post(f"/v1/work-orders/{path}", json=body, headers=headers["supervisor"])
        assert r.status_code in (code, 422) if code == 409 else r.status_code == code, (path, r.text)
    for query in ("status=nope", "limit=0", "limit=1000", "from=yesterday", "from=2026-11-25T00:00:00"):
        r = await client.get(f"/v1/work-orders?{query}", headers=agent)
        assert r.status_code in (400, 422), (query, r.text)


async def test_reference_with_other_unicode_digits_is_not_found(client: httpx.AsyncClient, headers: dict,
                                                                container: Container) -> None:
    """'¹'.isdigit() is True but int('¹') raises: such a reference is a 404 (it was a 500), on reads and actions."""
    for ref in ("¹", "²³", "1²"):
        r = await client.get(f"/v1/work-orders/{ref}", headers=headers["supervisor"])
        assert r.status_code == 404, (ref, r.text)
        r = await client.post(f"/v1/work-orders/{ref}/accept", json={}, headers=headers["supervisor"])
        assert r.status_code == 404, (ref, r.text)
