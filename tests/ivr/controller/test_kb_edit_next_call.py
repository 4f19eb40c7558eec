"""An admin changes a KB answer in the browser (管理后台) and the very next phone call hears the new text:
no retraining, no restart - the bot's actions read the published KB on every question."""

from __future__ import annotations

import uuid
from typing import Any

from core.auth.models import Role
from hotline.container import Container
from knowledge_base.models import KbEntry
from sqlalchemy import select
from tests.conftest import add_user
from tests.ivr.controller.conftest import ControllerFactory, Speech, audio_between, until
from tests.ivr.controller.test_bot_calls import _bigrams, _finished, _story, ask_on_a_call
from tests.web.conftest import LiveServer, browser, page, shot, ui_login, web_setup  # noqa: F401

QUESTION = "社保卡丢了怎么办"
NEW_ANSWER = "社保卡丢了请先拨打社保热线挂失，再带身份证到政务服务中心二楼七号窗口补办，当场就能领到新卡。"


async def test_admin_edit_is_heard_on_the_next_call(start_controller: ControllerFactory, speech: Speech,
                                                    ivr_container: Container, bot_url: str, page: Any) -> None:
    c = ivr_container
    async with c.db.session() as s:
        entry = await s.scalar(select(KbEntry).where(KbEntry.key == "shebao-card-loss"))
    assert entry is not None and entry.status == "published"
    old_answer = entry.spoken_answer
    admin = await add_user(c, f"kb-editor-{uuid.uuid4().hex[:6]}", Role.admin)

    async with LiveServer(c) as live:
        await ui_login(page, live, admin.username)
        await page.fill("#kb-text", "社保卡")
        await page.click("#kb-filter button[type=submit]")
        await page.click(f"#kb-list tr:has-text('{entry.title}')")
        await page.wait_for_selector(f"#kb-entry-version:has-text('第 {entry.version} 版')")
        await page.fill("#kb-spoken", NEW_ANSWER)
        await page.click("#kb-save")
        await page.wait_for_selector(f"#kb-msg:has-text('已保存为第 {entry.version + 1} 版')")
        await page.wait_for_selector("#kb-entry-status[data-status=published]")
        await shot(page, "admin-kb-edit-before-call")

    ctl = await start_controller(rasa_url=bot_url)
    call, call_id, (_, first, last) = await ask_on_a_call(ctl, speech, "13800138011", QUESTION)
    record = await until(lambda: _finished(c, call_id), 10)
    story = await _story(ctl, c, call_id)
    assert record.turns[0].action == "kb_answer", story
    assert record.turns[0].reply == NEW_ANSWER, story
    heard = await speech.transcribe(audio_between(call, first, last))
    new_overlap = len(_bigrams(NEW_ANSWER) & _bigrams(heard)) / len(_bigrams(NEW_ANSWER))
    old_overlap = len(_bigrams(old_answer) & _bigrams(heard)) / len(_bigrams(old_answer))
    assert new_overlap >= 0.4 and new_overlap > old_overlap, (heard, new_overlap, old_overlap)
