"""Seed data: the first admin and the Mandarin seed content. Idempotent: never overwrites edits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select

from hotline.container import Container
from knowledge_base.models import KbEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemActor:
    username: str = "system"
    id: None = None


SYSTEM = SystemActor()


def load_yaml_list(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return data if isinstance(data, list) else []


async def seed_all(container: Container) -> dict[str, int]:
    async with container.db.session() as session:
        await container.auth.ensure_admin(session)
    counts = {"kb_entries": await seed_kb(container)}
    for seeder in container.seeders:
        counts.update(await seeder(container))
    return counts


async def seed_kb(container: Container) -> int:
    rows = load_yaml_list(container.settings.kb_seed_file)
    async with container.db.session() as session:
        existing = set((await session.scalars(select(KbEntry.key))).all())
        new_rows = [r for r in rows if isinstance(r, dict) and r.get("key") not in existing]
        if not new_rows:
            return 0
        report = await container.kb.import_rows(session, SYSTEM, new_rows)
    for bad in report.rejected:
        log.warning("seed entry row %s (%s) rejected: %s", bad.row, bad.key, "; ".join(bad.errors))
    return report.created
