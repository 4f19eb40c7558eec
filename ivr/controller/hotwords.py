"""Domain terms that bias the recogniser: KB titles and work-order category names (issue: hot words /
initial prompt). Whisper's prompt holds ~160 characters, so short, distinctive terms go first."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from hotline.db import Database

log = logging.getLogger(__name__)


def _terms(text: str) -> list[str]:
    """Split a title like '社保卡丢失补办（线下）' into speakable chunks."""
    return [t for t in re.split(r"[\s，,、/（）()：:；;。？?！!-]+", text) if 2 <= len(t) <= 8]


async def load_hotwords(db: Database, city: str = "青山市", limit: int = 60) -> list[str]:
    from knowledge_base.models import KbEntry
    from work_orders.models import Category

    words: list[str] = [city, "一二三四五"]
    try:
        async with db.session() as session:
            cats = (await session.scalars(select(Category.name).where(Category.active.is_(True)))).all()
            titles = (await session.scalars(select(KbEntry.title).where(KbEntry.status == "published"))).all()
    except Exception as exc:  # noqa: BLE001 - hot words are an optimisation, never a blocker
        log.warning("could not load hot words: %s", exc)
        return words
    for name in cats:
        words += _terms(name)
    for title in titles:
        words += _terms(title)
    seen: dict[str, None] = {}
    for w in words:
        seen.setdefault(w, None)
    return list(seen)[:limit]
