"""Admin edits of categories, departments, districts and the responsibility list (audited), and the seeder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from core import audit
from core.db import Database, utcnow
from core.errors import BadRequest, Conflict, NotFound
from work_orders.models import Category, Department, District, RoutingRule
from work_orders.schemas import CategoryIn, DepartmentIn, DistrictIn, RuleIn, RuleUpdate
from work_orders.service import SYSTEM, WorkOrderService

log = logging.getLogger(__name__)

KINDS: dict[str, tuple[type, type[BaseModel]]] = {
    "category": (Category, CategoryIn),
    "department": (Department, DepartmentIn),
    "district": (District, DistrictIn),
}


class TaxonomyAdmin:
    def __init__(self, orders: WorkOrderService) -> None:
        self.orders = orders

    async def list(self, session: AsyncSession, kind: str) -> list[Any]:
        model = KINDS[kind][0]
        return list((await session.scalars(select(model).order_by(model.code))).all())

    async def get(self, session: AsyncSession, kind: str, code: str) -> Any:
        model = KINDS[kind][0]
        row = await session.scalar(select(model).where(model.code == code))
        if row is None:
            raise NotFound(f"{kind} {code!r} not found")
        return row

    async def create(self, session: AsyncSession, actor: Any, kind: str, data: BaseModel) -> Any:
        model = KINDS[kind][0]
        values = data.model_dump()
        if await session.scalar(select(model.id).where(model.code == values["code"])):
            raise Conflict(f"{kind} {values['code']!r} already exists")
        row = model(**values, updated_at=utcnow(), updated_by=actor.username)
        session.add(row)
        await session.flush()
        audit.record(session, actor, f"taxonomy.{kind}.create", kind, row.code, **_jsonable(values))
        return await self._commit(session, row)

    async def update(self, session: AsyncSession, actor: Any, kind: str, code: str, data: BaseModel) -> Any:
        row = await self.get(session, kind, code)
        changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if getattr(row, k) != v}
        for key, value in changes.items():
            setattr(row, key, value)
        if changes:
            row.updated_at, row.updated_by = utcnow(), actor.username
            audit.record(session, actor, f"taxonomy.{kind}.update", kind, code, **_jsonable(changes))
        return await self._commit(session, row)

    # -- responsibility list -------------------------------------------------------------------
    async def rules(self, session: AsyncSession, category: str | None = None) -> list[RoutingRule]:
        q = select(RoutingRule).order_by(RoutingRule.category_code, RoutingRule.id)
        if category:
            q = q.where(RoutingRule.category_code == category)
        return list((await session.scalars(q)).all())

    async def create_rule(self, session: AsyncSession, actor: Any, data: RuleIn) -> RoutingRule:
        await self._check_rule_refs(session, data.category, data.district, data.department)
        clash = await session.scalar(select(RoutingRule).where(
            RoutingRule.category_code == data.category, RoutingRule.active.is_(True),
            _eq_or_null(RoutingRule.district_code, data.district), _eq_or_null(RoutingRule.keyword, data.keyword)))
        if clash is not None and data.active:
            raise Conflict(f"rule {clash.id} already covers this category/district/keyword; edit it instead")
        rule = RoutingRule(category_code=data.category, district_code=data.district, keyword=data.keyword,
                           department_code=data.department, active=data.active, updated_at=utcnow(),
                           updated_by=actor.username)
        session.add(rule)
        await session.flush()
        audit.record(session, actor, "taxonomy.rule.create", "routing_rule", rule.id, **data.model_dump())
        return await self._commit(session, rule)

    async def update_rule(self, session: AsyncSession, actor: Any, rule_id: int, data: RuleUpdate) -> RoutingRule:
        rule = await session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound(f"routing rule {rule_id} not found")
        changes = data.model_dump(exclude_unset=True)
        if changes.get("department"):
            await self._check_rule_refs(session, rule.category_code, None, changes["department"])
            rule.department_code = changes["department"]
        if changes.get("active") is not None:
            rule.active = changes["active"]
        rule.updated_at, rule.updated_by = utcnow(), actor.username
        audit.record(session, actor, "taxonomy.rule.update", "routing_rule", rule.id, **changes)
        return await self._commit(session, rule)

    async def _check_rule_refs(self, session: AsyncSession, category: str, district: str | None, dept: str) -> None:
        if not await session.scalar(select(Category.id).where(Category.code == category)):
            raise BadRequest(f"unknown category {category!r}")
        if district and not await session.scalar(select(District.id).where(District.code == district)):
            raise BadRequest(f"unknown district {district!r}")
        if not await session.scalar(select(Department.id).where(Department.code == dept)):
            raise BadRequest(f"unknown department {dept!r}")

    async def _commit(self, session: AsyncSession, row: Any) -> Any:
        await session.commit()
        self.orders.taxonomy.invalidate()
        return row


def _eq_or_null(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}


# -- seeding -------------------------------------------------------------------------------------
async def seed_city(session: AsyncSession, path: Path) -> dict[str, int]:
    """Insert what the seed file has and the database lacks; never touch existing rows (admin edits win).
    Rules are keyed by (category, district, keyword): a rule an admin deactivated stays deactivated."""
    if not path.exists():
        log.warning("city seed file %s missing; nothing seeded", path)
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    counts: dict[str, int] = {}
    for section, kind in (("districts", "district"), ("departments", "department"), ("categories", "category")):
        model, schema = KINDS[kind]
        existing = set((await session.scalars(select(model.code))).all())
        n = 0
        for i, raw in enumerate(data.get(section) or []):
            try:
                item = schema.model_validate(raw)
            except ValidationError as exc:
                log.warning("seed %s #%d rejected: %s", section, i, exc.errors()[0]["msg"])
                continue
            if item.code in existing:
                continue
            session.add(model(**_jsonable(item.model_dump()), updated_by=SYSTEM.username))
            existing.add(item.code)
            n += 1
        counts[f"wo_{section}"] = n
    await session.flush()
    have = {(r.category_code, r.district_code, r.keyword) for r in (await session.scalars(select(RoutingRule))).all()}
    n = 0
    for raw in data.get("rules") or []:
        key = (raw.get("category"), raw.get("district"), raw.get("keyword"))
        if key in have or not raw.get("department"):
            continue
        session.add(RoutingRule(category_code=key[0], district_code=key[1], keyword=key[2],
                                department_code=raw["department"], updated_by=SYSTEM.username))
        have.add(key)
        n += 1
    counts["wo_rules"] = n
    await session.commit()
    return counts


class SeedWiring(Protocol):
    """The part of the process's container (`hotline/container.py`) the seeder uses."""

    settings: Settings
    db: Database
    work_orders: WorkOrderService


async def seed_work_orders(container: SeedWiring) -> dict[str, int]:
    async with container.db.session() as session:
        counts = await seed_city(session, container.settings.city_seed_file)
    container.work_orders.taxonomy.invalidate()
    return counts
