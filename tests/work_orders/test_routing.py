"""Responsibility-list precedence, the gazetteer, admin edits of the taxonomy (audited) and an idempotent seeder."""

from __future__ import annotations

import httpx
import pytest

from hotline.container import Container
from work_orders.routing import DepartmentInfo, Taxonomy, _Rule
from work_orders.taxonomy import seed_work_orders


def tax_with(rules: list[_Rule]) -> Taxonomy:
    t = Taxonomy()
    for code in ("a", "b", "c", "d", "e", "district.east"):
        t.departments[code] = DepartmentInfo(code, f"部门{code}", "", "", True)
    t.rules["road.damage"] = rules
    return t


def test_most_specific_rule_wins() -> None:
    t = tax_with([
        _Rule(1, None, None, "a"),  # category
        _Rule(2, None, "国道", "b"),  # category × keyword
        _Rule(3, "east", None, "c"),  # category × district
        _Rule(4, "east", "国道", "d"),  # category × district × keyword
        _Rule(5, None, "国道边", "e"),  # longer keyword than rule 2
    ])
    assert t.route("road.damage", "east", "国道塌了").department_code == "d"
    assert t.route("road.damage", "east", "国道塌了").level == "category+district+keyword"
    assert t.route("road.damage", "east", "小路塌了").department_code == "c"
    assert t.route("road.damage", "west", "国道塌了").department_code == "b"
    assert t.route("road.damage", "west", "国道边的路塌了").department_code == "e"  # longer keyword wins a tie
    assert t.route("road.damage", "west", "小路塌了").department_code == "a"
    assert t.route("road.damage", None, "小路塌了").level == "category"
    # no rule for the category → the district office; no district either → nobody (agent dispatches by hand)
    assert t.route("lighting.streetlight", "east", "").department_code == "district.east"
    assert t.route("lighting.streetlight", "east", "").level == "district_office"
    assert t.route("lighting.streetlight", None, "").department_code is None
    t.departments["c"] = DepartmentInfo("c", "部门c", "", "", False)  # retired department: rule skipped
    assert t.route("road.damage", "east", "小路塌了").department_code == "a"


async def test_seeded_city_routes(container: Container, city: dict) -> None:
    assert city["wo_rules"] >= 40 and city["wo_districts"] >= 4
    svc = container.work_orders
    async with container.db.session() as s:
        cases = [
            ("road.manhole_cover", "qingshan", "井盖松了", "district.qingshan"),
            ("road.manhole_cover", "qingshan", "燃气井盖松了", "gas"),  # c×d×k beats c×d
            ("road.manhole_cover", "donghe", "燃气井盖松了", "gas"),  # c×k beats c
            ("road.manhole_cover", "donghe", "井盖松了", "municipal"),  # c
            ("environment.noise", "yunhu", "楼下广场舞太吵", "district.yunhu"),
            ("environment.noise", "yunhu", "工地半夜施工", "urban_mgmt"),
            ("utilities.water", "beiling", "水表坏了", "district.beiling"),
            ("utilities.water", "donghe", "二次供水水质发黄", "housing"),
        ]
        for category, district, text, dept in cases:
            assert (await svc.route(s, category, district, text)).department_code == dept, (category, district, text)
        assert await svc.locate(s, "我在青年路小学门口") == "qingshan"
        assert await svc.locate(s, "望湖苑三栋") == "yunhu"
        assert await svc.locate(s, "火星基地") is None
        tax = await svc.tax(s)
        assert tax.place("东河区滨河路胜利小区3号楼", "donghe") == "胜利小区"  # landmark beats road
        assert {c.code for c in await svc.categories(s)} >= {"road.manhole_cover", "other", "labor.wage_arrears"}


async def test_admin_edits_audited_and_seeder_never_overwrites(
    client: httpx.AsyncClient, headers: dict, container: Container, city: dict
) -> None:
    admin, agent = headers["admin"], headers["agent"]
    route = "/v1/taxonomy/route?category=road.manhole_cover&address=东河区滨河路"
    assert (await client.get(route, headers=agent)).json()["department_code"] == "municipal"
    r = await client.post("/v1/taxonomy/rules", json={"category": "road.manhole_cover", "district": "donghe",
                                                       "department": "district.donghe"}, headers=admin)
    assert r.status_code == 201, r.text
    rule = r.json()
    got = (await client.get(route, headers=agent)).json()
    assert got["department_code"] == "district.donghe" and got["level"] == "category+district"
    dup = await client.post("/v1/taxonomy/rules", json={"category": "road.manhole_cover", "district": "donghe",
                                                         "department": "municipal"}, headers=admin)
    assert dup.status_code == 409
    for body in ({"category": "nope", "department": "gas"}, {"category": "other", "department": "nope"},
                 {"category": "other", "district": "nope", "department": "gas"}):
        assert (await client.post("/v1/taxonomy/rules", json=body, headers=admin)).status_code == 400
    assert (await client.post("/v1/taxonomy/rules", json={"category": "other", "department": "gas"},
                              headers=agent)).status_code == 403
    # rename a department and retire a seeded rule
    r = await client.put("/v1/taxonomy/departments/municipal", json={"name": "市市政管理处"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "市市政管理处"
    seeded = [x for x in (await client.get("/v1/taxonomy/rules?category=environment.noise", headers=agent)).json()
              if x["keyword"] == "工地"][0]
    r = await client.put(f"/v1/taxonomy/rules/{seeded['id']}", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    r = await client.post("/v1/taxonomy/categories", json={"code": "road.snow", "name": "道路积雪", "urgency": "urgent",
                                                           "keywords": ["积雪", "结冰"]}, headers=admin)
    assert r.status_code == 201
    assert (await client.post("/v1/taxonomy/categories", json={"code": "road.snow", "name": "x"},
                              headers=admin)).status_code == 409
    assert (await client.put("/v1/taxonomy/categories/nope", json={"name": "x"}, headers=admin)).status_code == 404
    assert (await client.put("/v1/taxonomy/categories/road.snow", json={"urgency": "now"},
                             headers=admin)).status_code == 422
    # seeding again adds nothing and keeps every edit
    assert set((await seed_work_orders(container)).values()) == {0}
    dept = (await client.get("/v1/taxonomy/departments/municipal", headers=agent)).json()
    assert dept["name"] == "市市政管理处"
    rules = (await client.get("/v1/taxonomy/rules?category=environment.noise", headers=agent)).json()
    assert [x["active"] for x in rules if x["keyword"] == "工地"] == [False]
    audit = (await client.get("/v1/audit", headers=admin)).json()
    actions = [a["action"] for a in audit]
    for a in ("taxonomy.rule.create", "taxonomy.department.update", "taxonomy.rule.update",
              "taxonomy.category.create"):
        assert a in actions
    o = (await client.post("/v1/work-orders", json={"category": "road.manhole_cover", "description": "井盖丢了",
                                                     "address": "东河区滨河路"}, headers=agent)).json()
    assert o["department_code"] == "district.donghe" and o["department_name"] == "东河区人民政府接诉即办分中心"
