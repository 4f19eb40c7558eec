"""Department isolation, personal data per role, public tracking, Open311 round trip."""

from __future__ import annotations

import httpx
import pytest

from hotline.container import Container
from tests.work_orders.conftest import act, create

pytestmark = pytest.mark.usefixtures("city", "clock")


async def test_department_isolation_and_masking(client: httpx.AsyncClient, headers: dict) -> None:
    agent = headers["agent"]
    mine = await create(client, agent, address="东河区滨河路胜利小区")  # → municipal (dept_a)
    water = await create(client, agent, category="utilities.water", description="水管爆了，水流了一地",
                         address="云湖区望湖苑", caller_phone="13911112222")  # → water (dept_b)
    a, b = headers["dept_a"], headers["dept_b"]
    page = (await client.get("/v1/work-orders", headers=a)).json()
    assert [o["ticket"] for o in page["items"]] == [mine["ticket"]] and page["total"] == 1
    # asking for another department's orders by filter still only shows one's own
    assert (await client.get("/v1/work-orders?department=water", headers=a)).json()["total"] == 0
    for ref in (water["id"], water["ticket"]):
        r = await client.get(f"/v1/work-orders/{ref}", headers=a)
        assert r.status_code == 404 and r.json()["detail"] == f"work order {ref} not found"
    assert (await client.get(f"/v1/work-orders/{water['id']}", headers=b)).status_code == 200
    assert (await client.get("/v1/work-orders?phone=13812345678", headers=a)).status_code == 400
    seen = (await client.get(f"/v1/work-orders/{mine['id']}", headers=a)).json()
    assert seen["caller_phone"] == "138****5678" and seen["caller_name"] == "王**"
    assert seen["allowed_actions"] == ["accept", "return"]
    full = (await client.get(f"/v1/work-orders/{mine['id']}", headers=agent)).json()
    assert full["caller_phone"] == "13812345678" and full["caller_name"] == "王先生"
    found = (await client.get("/v1/work-orders?phone=13812345678", headers=agent)).json()
    assert [o["id"] for o in found["items"]] == [mine["id"]]
    # filters and pagination
    sup = headers["supervisor"]
    assert (await client.get("/v1/work-orders?category=utilities", headers=sup)).json()["total"] == 1
    assert (await client.get("/v1/work-orders?district=donghe", headers=sup)).json()["total"] == 1
    assert (await client.get("/v1/work-orders?status=dispatched&status=closed", headers=sup)).json()["total"] == 2
    p = (await client.get("/v1/work-orders?limit=1&offset=1", headers=sup)).json()
    assert p["total"] == 2 and [o["id"] for o in p["items"]] == [mine["id"]]
    assert (await client.get("/v1/work-orders?overdue=true", headers=sup)).json()["total"] == 0
    assert (await client.get("/v1/work-orders?from=2026-11-26T00:00:00%2B08:00", headers=sup)).json()["total"] == 0
    # KPIs are for the hotline's supervisors
    assert (await client.get("/v1/stats/kpis", headers=a)).status_code == 403


async def test_public_tracking(client: httpx.AsyncClient, headers: dict, container: Container) -> None:
    o = await create(client, headers["agent"], address="东河区滨河路胜利小区")
    await act(client, headers["dept_a"], o["id"], "accept")
    await act(client, headers["dept_a"], o["id"], "resolve", note="内部：班组张工13900000000处理",
              public_note="井盖已更换，感谢您的反映")
    r = await client.get(f"/v1/public/orders/{o['ticket']}?phone_last4=5678")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "resolved" and body["department"] == "市市政设施管理处"
    assert [n["note"] for n in body["notes"]] == ["您的诉求已受理", "已转交市市政设施管理处办理", "承办单位已签收",
                                                  "井盖已更换，感谢您的反映"]
    text = r.text
    for secret in ("13812345678", "王先生", "5678", "张工", "馨苑", "滨河路", "description"):
        assert secret not in text, secret
    wrong = await client.get(f"/v1/public/orders/{o['ticket']}?phone_last4=0000")
    missing = await client.get("/v1/public/orders/20991231-0001?phone_last4=5678")
    assert wrong.status_code == missing.status_code == 404 and wrong.json() == missing.json()
    assert (await client.get(f"/v1/public/orders/{o['ticket']}?phone_last4=56a8")).status_code == 422
    assert (await client.get(f"/v1/public/orders/{o['ticket']}")).status_code == 422
    for _ in range(container.settings.wo_track_max_failures - 1):
        await client.get(f"/v1/public/orders/{o['ticket']}?phone_last4=1111")
    r = await client.get(f"/v1/public/orders/{o['ticket']}?phone_last4=5678")
    assert r.status_code == 429  # guessing the last four digits is throttled per ticket


async def test_open311_round_trip(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    services = (await client.get("/open311/v2/services.json")).json()
    codes = {s["service_code"]: s for s in services}
    assert codes["road.manhole_cover"]["service_name"] == "井盖缺失/松动" and codes["road.manhole_cover"]["group"] == "road"
    assert (await client.get("/open311/v2/services/road.damage.json")).json() == {"service_code": "road.damage",
                                                                                 "attributes": []}
    r = await client.get("/open311/v2/services/nope.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    key = (await client.post("/v1/intake-keys", json={"channel": "city_app"}, headers=admin)).json()["api_key"]
    assert (await client.post("/v1/intake-keys", json={"channel": "city_app"}, headers=admin)).status_code == 409
    assert (await client.post("/v1/intake-keys", json={"channel": "x"}, headers=headers["agent"])).status_code == 403
    listed = (await client.get("/v1/intake-keys", headers=admin)).json()
    assert listed[0]["channel"] == "city_app" and listed[0]["api_key"] is None and key not in str(listed)
    form = {"api_key": key, "service_code": "lighting.streetlight", "description": "路灯不亮一周了，我电话13855556666",
            "address_string": "云湖区学府路学府华庭北门", "lat": "41.1", "long": "122.2", "phone": "13855556666",
            "first_name": "明", "last_name": "赵"}
    r = await client.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 201, r.text
    sr = r.json()[0]
    ticket = sr["service_request_id"]
    assert "已受理" in sr["service_notice"] and "青山区" not in sr["service_notice"]
    got = (await client.get(f"/open311/v2/requests/{ticket}.json")).json()[0]
    assert got["status"] == "open" and got["service_code"] == "lighting.streetlight"
    assert got["agency_responsible"] == "云湖区人民政府接诉即办分中心" and got["lat"] == 41.1
    assert "13855556666" not in str(got) and "赵" not in str(got) and "138****6666" in got["description"]
    internal = (await client.get(f"/v1/work-orders/{ticket}", headers=headers["supervisor"])).json()
    assert internal["channel"] == "city_app" and internal["caller_name"] == "赵 明"
    assert internal["history"][0]["actor"] == "open311:city_app"
    # a staff bearer token works too (JSON body); then close the loop and see it closed
    r = await client.post("/open311/v2/requests.json", headers=headers["agent"],
                          json={"service_code": "traffic.parking", "description": "消防通道被私家车占了",
                                "address_string": "东河区锦绣家园"})
    assert r.status_code == 201
    sup = headers["supervisor"]
    await act(client, sup, ticket, "accept")
    await act(client, sup, ticket, "resolve", note="已更换灯泡", public_note="路灯已修复")
    await act(client, sup, ticket, "callback", result="satisfied")
    closed = (await client.get(f"/open311/v2/requests.json?service_request_id={ticket}")).json()
    assert closed[0]["status"] == "closed" and closed[0]["status_notes"] == "路灯已修复"
    assert len((await client.get("/open311/v2/requests.json?status=open")).json()) == 1
    assert len((await client.get("/open311/v2/requests.json?service_code=traffic.parking")).json()) == 1
    # refusals in the GeoReport error shape
    bad = [
        ({**form, "api_key": "wrong"}, 403), ({k: v for k, v in form.items() if k != "api_key"}, 403),
        ({**form, "service_code": "nope"}, 400), ({**form, "description": ""}, 400), ({**form, "lat": "north"}, 400),
        ({**form, "phone": "123"}, 400),
    ]
    for body, code in bad:
        r = await client.post("/open311/v2/requests.json", data=body)
        assert r.status_code == code, (body, r.text)
        assert r.json()[0]["code"] == code and r.json()[0]["description"]
    assert (await client.post("/open311/v2/requests.json", headers=headers["dept_a"],
                              json={"service_code": "other", "description": "测试"})).status_code == 403
    assert (await client.get("/open311/v2/requests/20991231-0001.json")).status_code == 404
    assert (await client.get("/open311/v2/requests.json?status=maybe")).status_code == 400
    kid = listed[0]["id"]
    assert (await client.delete(f"/v1/intake-keys/{kid}", headers=admin)).json()["active"] is False
    assert (await client.post("/open311/v2/requests.json", data=form)).status_code == 403
