"""Domain terms that bias the recogniser (Whisper's initial prompt, ~160 characters): service words,
the city's districts, work-order category names, then KB titles - short, distinctive terms first."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from core.db import Database

log = logging.getLogger(__name__)


#: What callers say to steer the call; measured: without them Whisper base hears 我要转人工 as 为后再引工府.
SERVICE_WORDS = ("转人工", "人工服务", "工单", "查询进度", "投诉")


def _terms(text: str) -> list[str]:
    """Split a title like '社保卡丢失补办（线下）' into speakable chunks."""
    return [t for t in re.split(r"[\s，,、/（）()：:；;。？?！!-]+", text) if 2 <= len(t) <= 8]


async def load_hotwords(db: Database, city: str = "青山市", limit: int = 60) -> list[str]:
    from knowledge_base.models import KbEntry
    from work_orders.models import Category, District

    words: list[str] = [city, "一二三四五", *SERVICE_WORDS]
    try:
        async with db.session() as session:
            districts = (await session.scalars(select(District.name))).all()
            cats = (await session.scalars(select(Category.name).where(Category.active.is_(True)))).all()
            titles = (await session.scalars(select(KbEntry.title).where(KbEntry.status == "published"))).all()
    except Exception as exc:  # noqa: BLE001 - hot words are an optimisation, never a blocker
        log.warning("could not load hot words: %s", exc)
        return words
    words += list(districts)
    for name in cats:
        words += _terms(name)
    for title in titles:
        words += _terms(title)
    seen: dict[str, None] = {}
    for w in words:
        seen.setdefault(w, None)
    return list(seen)[:limit]
