"""Knowledge-base admin API on both storage backends: versions, publishing, validity, concurrency, import."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
import yaml

from hotline.container import Container

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)

TZ = dt.timezone(dt.timedelta(hours=8))


def entry(key: str = "shebao-card-loss", **overrides: object) -> dict:
    body = {
        "key": key,
        "title": "社会保障卡挂失补办",
        "category": "社会保障",
        "question": "社保卡丢了怎么挂失和补办？",
        "alt_questions": ["社保卡不见了咋整", "社保卡掉了怎么办"],
        "spoken_answer": "社保卡丢了，请先拨打社保服务电话挂失，再带身份证到任意社保网点补办。",
        "text_answer": "挂失：电话或网点。补办：携带身份证原件，工本费20元。",
        "tags": ["社保卡", "挂失", "补办"],
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, h: dict, **kw: object) -> dict:
    r = await client.post("/v1/kb/entries", json=entry(**kw), headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def test_every_edit_is_a_version_and_any_version_restores(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    e = await create(client, admin)
    assert e["version"] == 1 and e["status"] == "draft"
    r = await client.put(
        f"/v1/kb/entries/{e['id']}", json={"version": 1, "spoken_answer": "新的口语答案，请到政务服务中心办理。"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await client.put(f"/v1/kb/entries/{e['id']}", json={"version": 2, "title": "社保卡挂失与补办"}, headers=admin)
    assert r.json()["version"] == 3
    versions = (await client.get(f"/v1/kb/entries/{e['id']}/versions", headers=admin)).json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[1]["changed_fields"] == ["spoken_answer"] and versions[1]["username"] == "admin"
    assert versions[0]["snapshot"]["title"] == "社会保障卡挂失补办"
    one = await client.get(f"/v1/kb/entries/{e['id']}/versions/1", headers=admin)
    assert one.json()["snapshot"]["spoken_answer"].startswith("社保卡丢了")
    r = await client.post(f"/v1/kb/entries/{e['id']}/versions/1/restore", headers=admin)
    assert r.status_code == 200
    restored = r.json()
    assert restored["version"] == 4 and restored["title"] == "社会保障卡挂失补办"
    assert restored["spoken_answer"].startswith("社保卡丢了")
    assert (await client.get(f"/v1/kb/entries/{e['id']}/versions/9", headers=admin)).status_code == 404
    audit = (await client.get("/v1/audit?object_type=kb_entry", headers=admin)).json()
    assert [a["action"] for a in audit][:2] == ["kb.restore", "kb.update"]


async def test_publish_rules(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    e = await create(client, admin)
    r = await client.post(f"/v1/kb/entries/{e['id']}/unpublish", headers=admin)
    assert r.status_code == 409 and "only published" in r.json()["detail"]
    r = await client.post(f"/v1/kb/entries/{e['id']}/publish", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["published_at"]
    r = await client.post(f"/v1/kb/entries/{e['id']}/publish", headers=admin)
    assert r.status_code == 409 and "already published" in r.json()["detail"]
    r = await client.delete(f"/v1/kb/entries/{e['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "archived"
    for action in ("publish", "unpublish"):
        r = await client.post(f"/v1/kb/entries/{e['id']}/{action}", headers=admin)
        assert r.status_code == 409 and "archived" in r.json()["detail"]
    r = await client.put(f"/v1/kb/entries/{e['id']}", json={"version": 3, "title": "改标题试试"}, headers=admin)
    assert r.status_code == 409
    # An archived entry comes back as a draft by restoring a version.
    r = await client.post(f"/v1/kb/entries/{e['id']}/versions/1/restore", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "draft"
    expired = await create(
        client, admin, key="old-notice",
        valid_from=dt.datetime(2020, 1, 1, tzinfo=TZ).isoformat(), valid_until=dt.datetime(2020, 2, 1, tzinfo=TZ).isoformat(),
    )
    r = await client.post(f"/v1/kb/entries/{expired['id']}/publish", headers=admin)
    assert r.status_code == 409 and "validity" in r.json()["detail"]


async def test_validity_window_controls_search(client: httpx.AsyncClient, headers: dict, container: Container) -> None:
    admin = headers["admin"]
    now = dt.datetime(2026, 11, 25, 10, tzinfo=TZ)
    container.kb.clock = lambda: now
    notice = await create(
        client, admin, key="water-outage-qingshan", title="青山区计划停水通知", category="通知公告",
        question="青山区什么时候停水？", alt_questions=["我们这停水了吗", "今天为啥没水"],
        spoken_answer="青山区振华路一带十一月二十六日早上八点到晚上八点计划停水，请提前储水。",
        tags=["停水", "通知"], region="青山区", status="published",
        valid_from=dt.datetime(2026, 11, 26, 0, tzinfo=TZ).isoformat(),
        valid_until=dt.datetime(2026, 11, 27, 0, tzinfo=TZ).isoformat(),
    )

    async def hit_ids(q: str, region: str | None = "青山区") -> list[int]:
        params = {"q": q} | ({"region": region} if region else {})
        r = await client.get("/v1/kb/search", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return [h["id"] for h in r.json()["hits"]]

    assert notice["id"] not in await hit_ids("青山区停水")  # not yet valid
    now = dt.datetime(2026, 11, 26, 9, tzinfo=TZ)
    assert (await hit_ids("青山区停水"))[0] == notice["id"]
    assert notice["id"] not in await hit_ids("停水", region="东河区")  # other district
    assert notice["id"] in await hit_ids("停水", region=None)
    now = dt.datetime(2026, 11, 27, 0, tzinfo=TZ)
    assert notice["id"] not in await hit_ids("青山区停水")  # window ended


async def test_search_sees_edits_at_once(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    e = await create(client, admin, status="published")
    r = await client.get("/v1/kb/search", params={"q": "社保卡掉了"}, headers=headers["agent"])
    assert r.json()["hits"][0]["id"] == e["id"]
    await client.put(
        f"/v1/kb/entries/{e['id']}", json={"version": 1, "spoken_answer": "请带身份证到社保大厅补卡，当场可以取。"}, headers=admin
    )
    r = await client.get("/v1/kb/search", params={"q": "社保卡掉了"}, headers=headers["agent"])
    assert r.json()["hits"][0]["spoken_answer"] == "请带身份证到社保大厅补卡，当场可以取。"
    await client.post(f"/v1/kb/entries/{e['id']}/unpublish", headers=admin)
    r = await client.get("/v1/kb/search", params={"q": "社保卡掉了"}, headers=headers["agent"])
    assert r.json()["hits"] == []


async def test_concurrent_edit_second_writer_gets_409(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    e = await create(client, admin)
    first = await client.put(f"/v1/kb/entries/{e['id']}", json={"version": 1, "title": "甲的修改标题"}, headers=admin)
    second = await client.put(f"/v1/kb/entries/{e['id']}", json={"version": 1, "title": "乙的修改标题"}, headers=admin)
    assert first.status_code == 200 and second.status_code == 409
    assert second.json()["current_version"] == 2
    # Truly simultaneous writers from the same starting version: exactly one wins.
    results = await asyncio.gather(
        *(
            client.put(f"/v1/kb/entries/{e['id']}", json={"version": 2, "title": f"并发修改{i}号"}, headers=admin)
            for i in range(4)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(409) == 3, codes
    versions = (await client.get(f"/v1/kb/entries/{e['id']}/versions", headers=admin)).json()
    assert [v["version"] for v in versions] == [1, 2, 3]


async def test_bad_input_gets_clear_4xx(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    cases = [
        entry(title=""),
        entry(spoken_answer="长" * 501),
        entry(key="Bad Key!"),
        entry(alt_questions="not a list"),
        entry(valid_from="2026-12-01T00:00:00+08:00", valid_until="2026-11-01T00:00:00+08:00"),
        entry(valid_from="2026-12-01T00:00:00"),
        entry(status="archived"),
        {"title": "缺少字段"},
    ]
    for body in cases:
        r = await client.post("/v1/kb/entries", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"].startswith("invalid request:")
    r = await client.post("/v1/kb/entries", content=b"{not json", headers=admin | {"content-type": "application/json"})
    assert r.status_code == 422
    assert (await client.get("/v1/kb/entries/999999", headers=admin)).status_code == 404
    assert (await client.get("/v1/kb/entries/abc", headers=admin)).status_code == 422
    await create(client, admin)
    dup = await client.post("/v1/kb/entries", json=entry(), headers=admin)
    assert dup.status_code == 409
    assert (await client.get("/v1/kb/search", params={"q": ""}, headers=admin)).status_code == 422
    assert (await client.get("/v1/kb/search", params={"q": "长" * 201}, headers=admin)).status_code == 422
    r = await client.put("/v1/kb/entries/1", json={"version": 1, "title": ""}, headers=admin)
    assert r.status_code == 422


async def test_roles(client: httpx.AsyncClient, headers: dict) -> None:
    e = await create(client, headers["admin"], status="published")
    for role in ("agent", "supervisor", "dept_a"):
        h = headers[role]
        assert (await client.get(f"/v1/kb/entries/{e['id']}", headers=h)).status_code == 200
        assert (await client.get("/v1/kb/search", params={"q": "社保卡"}, headers=h)).status_code == 200
        assert (await client.post("/v1/kb/entries", json=entry(key="x-" + role), headers=h)).status_code == 403
        r = await client.put(f"/v1/kb/entries/{e['id']}", json={"version": 1, "title": "不许改的标题"}, headers=h)
        assert r.status_code == 403
        assert (await client.post(f"/v1/kb/entries/{e['id']}/unpublish", headers=h)).status_code == 403
        assert (await client.get("/v1/kb/export", headers=h)).status_code == 403
    assert (await client.get("/v1/kb/entries")).status_code == 401


async def test_import_mixed_rows_and_export_roundtrip(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    rows = [
        entry(key="good-one", status="published"),
        entry(key="bad-title", title=""),
        entry(key="good-two", title="医保异地就医备案", question="去外地看病医保怎么备案？"),
        "just a string",
        entry(key="good-one", title="重复的键"),
        entry(key="bad-window", valid_from="2026-12-01T00:00:00+08:00", valid_until="2026-01-01T00:00:00+08:00"),
    ]
    files = {"file": ("kb.yaml", yaml.safe_dump(rows, allow_unicode=True).encode(), "application/yaml")}
    r = await client.post("/v1/kb/import", files=files, headers=admin)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 2 and report["updated"] == 0
    assert [(x["row"], x["key"]) for x in report["rejected"]] == [
        (2, "bad-title"), (4, None), (5, "good-one"), (6, "bad-window")
    ]
    assert "title" in report["rejected"][0]["errors"][0]
    # Export CSV, change one answer, import it back: one update, one unchanged.
    csv_text = (await client.get("/v1/kb/export?format=csv", headers=admin)).text
    assert csv_text.splitlines()[0].startswith("key,title,category")
    changed = csv_text.replace("医保异地就医备案", "医保异地就医备案办理")
    files = {"file": ("kb.csv", changed.encode(), "text/csv")}
    report = (await client.post("/v1/kb/import", files=files, headers=admin)).json()
    assert (report["created"], report["updated"], report["unchanged"], report["rejected"]) == (0, 1, 1, [])
    items = (await client.get("/v1/kb/entries", headers=admin)).json()["items"]
    assert {i["title"] for i in items} == {"社会保障卡挂失补办", "医保异地就医备案办理"}
    exported = yaml.safe_load((await client.get("/v1/kb/export?format=yaml", headers=admin)).text)
    assert exported[0]["alt_questions"] == ["社保卡不见了咋整", "社保卡掉了怎么办"]
    for bad in (b"\xff\xfe\x00", b"- [unclosed", b"key: not-a-list"):
        r = await client.post("/v1/kb/import", files={"file": ("x.yaml", bad, "application/yaml")}, headers=admin)
        assert r.status_code == 400, r.text
    r = await client.post("/v1/kb/import", files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")}, headers=admin)
    assert r.status_code == 400 and "header" in r.json()["detail"]
    # A carriage return inside an unquoted field: the csv module raises csv.Error (it was a 500; found by the fuzzer)
    for bad in (b"key\rtitle\n", b"key,title\nk1,a\rb\n"):
        r = await client.post("/v1/kb/import", files={"file": ("x.csv", bad, "text/csv")}, headers=admin)
        assert r.status_code == 400 and "CSV" in r.json()["detail"], r.text
