"""管理后台 in a real browser: edit a KB entry (with a concurrent edit → 409 shown), publish it, and the
search API answers with the new text; taxonomy and users tabs load and a user can be created."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from core.auth.models import Role
from hotline.container import Container
from hotline.seed import seed_kb
from tests.conftest import add_user
from work_orders.taxonomy import seed_work_orders

from .conftest import LiveServer, shot, token_headers, ui_login

ENTRY = {
    "key": "notice.qingnian-road-water",
    "title": "青年路片区计划停水通知",
    "category": "供水",
    "question": "青年路什么时候停水",
    "alt_questions": ["青年路停水到几点", "青年路明天有水吗"],
    "spoken_answer": "青年路片区因管网改造计划停水，具体时间请留意社区通知。",
    "region": "全市",
    "tags": ["停水", "供水"],
}
IMPORT_YAML = """
- key: gongjijin.import-test
  title: 公积金提取到账时间
  category: 公积金
  question: 公积金提取多久到账
  spoken_answer: 审核通过后三个工作日内到账。
- key: bad row
  title: 缺少答案的条目
"""
NEW_ANSWER = "青年路片区十二月三日上午九点到下午五点停水，请提前储水。"


async def test_admin_edits_and_publishes_kb_entry(container: Container, live: LiveServer, api: httpx.AsyncClient,
                                                  page: Any, tmp_path: Path) -> None:
    await seed_kb(container)
    await seed_work_orders(container)
    admin = await token_headers(api, container.settings.admin_user)
    r = await api.post("/v1/kb/entries", json=ENTRY, headers=admin)
    assert r.status_code == 201, r.text
    entry_id = r.json()["id"]

    await ui_login(page, live, container.settings.admin_user)
    assert page.url.endswith("/console/admin")
    await page.fill("#kb-text", "青年路")
    await page.click("#kb-filter button[type=submit]")
    await page.click(f"#kb-list tr:has-text('{ENTRY['title']}')")
    await page.wait_for_selector("#kb-entry-version:has-text('第 1 版')")
    assert await page.input_value("#kb-spoken") == ENTRY["spoken_answer"]

    # someone else saves first: our save gets 409 and says so in Mandarin
    r = await api.put(f"/v1/kb/entries/{entry_id}", json={"version": 1, "text_answer": "另一位管理员补充的说明"},
                      headers=admin)
    assert r.status_code == 200, r.text
    await page.fill("#kb-spoken", NEW_ANSWER)
    await page.click("#kb-save")
    await page.wait_for_selector("#kb-msg .msg.error:has-text('已被其他管理员修改')")
    await shot(page, "admin-kb-conflict")

    await page.click("#kb-reload")
    await page.wait_for_selector("#kb-entry-version:has-text('第 2 版')")
    assert await page.input_value("#kb-text-answer") == "另一位管理员补充的说明"
    await page.fill("#kb-spoken", NEW_ANSWER)
    await page.click("#kb-save")
    await page.wait_for_selector("#kb-msg:has-text('已保存为第 3 版')")
    await page.click("#kb-publish")
    await page.wait_for_selector("#kb-entry-status[data-status=published]")
    await page.wait_for_selector("#kb-versions tbody tr >> nth=3")  # create, update, update, publish
    await shot(page, "admin-kb")

    r = await api.get("/v1/kb/search", params={"q": "青年路明天几点停水"}, headers=admin)
    hits = r.json()["hits"]
    assert hits and hits[0]["id"] == entry_id and hits[0]["spoken_answer"] == NEW_ANSWER

    # restore the first version (a confirm dialog), then import a file with a good and a bad row, and export
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("#kb-versions tbody tr:has-text('v1') button:has-text('恢复')")
    await page.wait_for_selector("#kb-msg:has-text('已恢复第 1 版内容')")
    assert await page.input_value("#kb-spoken") == ENTRY["spoken_answer"]
    assert await page.get_attribute("#kb-entry-status", "data-status") == "published"

    upload = tmp_path / "kb-import.yaml"
    upload.write_text(IMPORT_YAML, encoding="utf-8")
    await page.set_input_files("#kb-file", str(upload))
    await page.click("#kb-import")
    await page.wait_for_selector("#kb-import-report .msg:has-text('新增 1 条')")
    assert "拒绝 1 行" in await page.text_content("#kb-import-report")
    async with page.expect_download() as dl:
        await page.click("#kb-export-csv")
    download = await dl.value
    exported = (tmp_path / "kb.csv")
    await download.save_as(exported)
    assert "gongjijin.import-test" in exported.read_text(encoding="utf-8")

    # taxonomy and responsibility list
    await page.click("#tabs a[data-tab=taxonomy]")
    await page.wait_for_selector("#tx-categories tbody tr:has-text('road.manhole_cover')")
    await page.wait_for_selector("#tx-rules tbody tr >> nth=39")
    await page.select_option("#route-category", "road.manhole_cover")
    await page.click("#route-form button[type=submit]")
    await page.wait_for_selector("#route-out .msg.ok:has-text('派往')")
    await shot(page, "admin-taxonomy", top=True)

    # users and roles: create an agent
    await page.click("#tabs a[data-tab=users]")
    await page.wait_for_selector("#users tbody tr:has-text('admin')")
    await page.fill("#user-username", "zhangli")
    await page.fill("#user-password", "seat-pass-2026")
    await page.select_option("#user-role", "agent")
    await page.fill("#user-display_name", "张丽")
    await page.fill("#user-sip_endpoint", "PJSIP/agent7")
    await page.fill("#user-skills", "综合:3，劳动保障")
    await page.click("#users form button[type=submit]")
    await page.wait_for_selector("#users tbody tr:has-text('zhangli')")
    await shot(page, "admin-users")
    users = (await api.get("/v1/users", headers=admin)).json()
    created = next(u for u in users if u["username"] == "zhangli")
    assert created["role"] == "agent" and created["sip_endpoint"] == "PJSIP/agent7"
    assert created["skills"] == ["综合:3", "劳动保障"]


async def test_roles_see_only_their_consoles(container: Container, live: LiveServer, api: httpx.AsyncClient,
                                             page: Any) -> None:
    await add_user(container, "seat9", Role.agent)
    await add_user(container, "water_dept", Role.department, "water")
    await ui_login(page, live, "seat9")
    assert page.url.endswith("/console/agent")
    assert await page.locator(".topbar nav a").all_text_contents() == ["坐席工作台"]
    await page.goto(f"{live.url}/console/admin")  # the page itself refuses, and so would the API
    await page.wait_for_selector("#login-msg:has-text('无权使用该页面')")
    token = await page.evaluate("JSON.parse(sessionStorage.getItem('hotline.session')).token")
    r = await api.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403

    await page.evaluate("sessionStorage.clear()")
    await ui_login(page, live, "water_dept", expect_console=False)
    await page.wait_for_selector("#login-msg:has-text('部门用户')")
    assert await page.evaluate("sessionStorage.length") == 0
    await page.fill("#username", "seat9")
    await page.fill("#password", "wrong-password")
    await page.click("#login-btn")
    await page.wait_for_selector("#login-msg:has-text('用户名或密码错误')")
    await shot(page, "login")
