"""KPI formulas on a small dataset whose figures were worked out by hand (see work_orders/KPIS.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
import pytest

from hotline.container import Container
from telephony.models import CallOutcome
from tests.work_orders.conftest import START, Clock, act, create

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True),
    pytest.mark.usefixtures("city"),
]


async def build(client: httpx.AsyncClient, headers: dict, clock: Clock) -> dict[str, dict]:
    ag, sup, a, b = headers["agent"], headers["supervisor"], headers["dept_a"], headers["dept_b"]
    manhole = {"category": "road.manhole_cover"}  # urgent: respond 1 h, resolve 48 h; donghe → municipal (dept_a)
    water = {"category": "utilities.water", "description": "水管漏水"}  # urgent; → water (dept_b)
    o = {
        "O1": await create(client, ag, address="东河区滨河花园", caller_phone="13800000001", **manhole),
        "O2": await create(client, ag, address="东河区胜利小区", caller_phone="13800000002", **manhole),
        "O3": await create(client, ag, address="东河区锦绣家园", caller_phone="13800000003", **manhole),
        "O4": await create(client, ag, address="云湖区望湖苑", caller_phone="13800000004", **water),
        "O5": await create(client, ag, address="云湖区学府华庭", caller_phone="13800000005", **water),
        "O7": await create(client, ag, category="other", description="咨询社保卡办理地点", address="青山区人民路",
                           caller_phone="13800000007", answer="到各区政务服务中心社保窗口办理"),
        "O8": await create(client, ag, address="东河区河畔人家", caller_phone="13800000008", **manhole),
    }
    steps = [
        (5, sup, "O8", "merge", {"into": o["O1"]["ticket"]}),
        (10, b, "O4", "accept", {}),
        (20, sup, "O5", "withdraw", {}),
        (30, a, "O1", "accept", {}),
        (40, a, "O3", "return", {"note": "非本单位管养"}),
        (45, sup, "O3", "dispatch", {"department": "municipal"}),
        (50, b, "O4", "resolve", {"note": "已修复"}),
        (60, a, "O1", "resolve", {"note": "已更换"}),
        (120, a, "O2", "accept", {}),  # an hour late
        (150, ag, "O2", "urge", {}),
        (180, ag, "O1", "callback", {"result": "satisfied"}),
        (180, ag, "O4", "callback", {"result": "basically_satisfied", "solved": False}),
        (60 * 72, a, "O2", "resolve", {"note": "已处理"}),  # 11-28 09:00, a day late
        (60 * 73, ag, "O2", "callback", {"result": "dissatisfied"}),  # → reopened
    ]
    for minutes, h, key, action, body in steps:
        clock.now = START + dt.timedelta(minutes=minutes)
        await act(client, h, o[key]["id"], action, **body)
    clock.now = START + dt.timedelta(minutes=60 * 73 + 30)
    await create(client, ag, address="东河区纺织厂家属院", caller_phone="13800000009", **manhole)  # outside range
    clock.now = START + dt.timedelta(hours=75)
    return o


async def add_calls(container: Container) -> None:
    """Five inbound calls on the day: 2 settled by the bot, 1 order, 1 transferred, 1 failed (left out)
    → containment 2/4 = 0.5; an outbound survey call and a next-day call don't count."""
    calls = container.calls
    outcomes = [CallOutcome.answered, CallOutcome.answered, CallOutcome.work_order, CallOutcome.transferred,
                CallOutcome.failed]
    for i, outcome in enumerate(outcomes):
        await calls.start(f"k{i}", f"1390000000{i}")
        await calls.finish(f"k{i}", outcome)
    await calls.start("out", "13900000009", direction="out")
    await calls.finish("out", CallOutcome.answered)
    await calls.update("out", started_at=START)
    await calls.start("late", "13900000008")
    await calls.finish("late", CallOutcome.answered)
    await calls.update("late", started_at=START + dt.timedelta(days=3))
    for i in range(5):
        await calls.update(f"k{i}", started_at=START + dt.timedelta(minutes=i))


async def test_kpis_match_hand_computed_figures(
    client: httpx.AsyncClient, headers: dict, clock: Clock, container: Container
) -> None:
    await build(client, headers, clock)
    await add_calls(container)
    sup = headers["supervisor"]
    r = await client.get("/v1/stats/kpis?from=2026-11-25&to=2026-11-26&group_by=department", headers=sup)
    assert r.status_code == 200, r.text
    body = r.json()
    total = body["total"]
    assert {k: total[k] for k in ("orders", "dispatched", "response_due", "responded_on_time", "resolved",
                                  "resolved_on_time", "completion_base", "completed", "returned", "rated",
                                  "solved", "satisfied", "repeat")} == {
        "orders": 6, "dispatched": 5, "response_due": 4, "responded_on_time": 2, "resolved": 3,
        "resolved_on_time": 3, "completion_base": 5, "completed": 3, "returned": 1, "rated": 3, "solved": 1,
        "satisfied": 2, "repeat": 1,
    }
    assert {k: total[k] for k in ("response_rate", "resolution_rate", "on_time_rate", "completion_rate",
                                  "return_rate", "satisfaction_rate", "repeat_call_rate",
                                  "bot_containment_rate")} == {
        "response_rate": 0.5, "resolution_rate": 0.3333, "on_time_rate": 1.0, "completion_rate": 0.6,
        "return_rate": 0.2, "satisfaction_rate": 0.6667, "repeat_call_rate": 0.1667, "bot_containment_rate": 0.5,
    }
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"municipal", "water", "district.qingshan"}
    m, w, q = groups["municipal"], groups["water"], groups["district.qingshan"]
    assert m["name"] == "市市政设施管理处" and m["orders"] == 3
    assert (m["response_rate"], m["on_time_rate"], m["completion_rate"], m["return_rate"], m["resolution_rate"],
            m["satisfaction_rate"], m["repeat_call_rate"]) == (0.3333, 1.0, 0.3333, 0.3333, 0.5, 0.5, 0.3333)
    assert (w["orders"], w["response_rate"], w["completion_rate"], w["return_rate"], w["resolution_rate"],
            w["satisfaction_rate"]) == (2, 1.0, 1.0, 0.0, 0.0, 1.0)
    assert (q["orders"], q["response_rate"], q["return_rate"], q["on_time_rate"], q["completion_rate"],
            q["satisfaction_rate"]) == (1, None, None, 1.0, 1.0, None)

    by_cat = (await client.get("/v1/stats/kpis?from=2026-11-25&to=2026-11-26&group_by=category", headers=sup)).json()
    assert {g["key"]: g["orders"] for g in by_cat["groups"]} == {"other": 1, "road.manhole_cover": 3,
                                                                 "utilities.water": 2}
    by_district = (await client.get("/v1/stats/kpis?from=2026-11-25&to=2026-11-26&group_by=district",
                                    headers=sup)).json()
    assert {g["name"]: g["orders"] for g in by_district["groups"]} == {"东河区": 3, "云湖区": 2, "青山区": 1}
    everything = (await client.get("/v1/stats/kpis?from=2026-11-25&to=2026-11-28", headers=sup)).json()
    assert everything["total"]["orders"] == 7 and everything["groups"] == []
    csv_r = await client.get("/v1/stats/kpis?from=2026-11-25&to=2026-11-26&group_by=department&format=csv",
                             headers=sup)
    assert csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert rows[-1]["key"] == "TOTAL" and rows[-1]["response_rate"] == "0.5" and rows[-1]["orders"] == "6"
    assert {r["key"] for r in rows[:-1]} == {"municipal", "water", "district.qingshan"}
    for q_ in ("from=2026-11-26&to=2026-11-25", "group_by=street", "from=25.11.2026", "format=xml"):
        assert (await client.get(f"/v1/stats/kpis?{q_}", headers=sup)).status_code in (400, 422), q_
