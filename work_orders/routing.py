"""Responsibility-list routing and the address gazetteer, over a short-lived in-process taxonomy snapshot."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from work_orders.models import Category, Department, District, RoutingRule

LEVELS = {3: "category+district+keyword", 2: "category+district", 1: "category+keyword", 0: "category"}
_PUNCT = re.compile(r"[\s,，。.、;；:：!！?？()（）\-—_#＃号]+")


def normalize_address(text: str) -> str:
    return _PUNCT.sub("", text or "").lower()


@dataclass(frozen=True)
class RouteDecision:
    department_code: str | None
    department_name: str | None
    district_code: str | None
    rule_id: int | None
    level: str


@dataclass(frozen=True)
class _Rule:
    id: int
    district: str | None
    keyword: str | None
    department: str


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    name: str
    urgency: str
    complexity: str
    skill: str
    keywords: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class DepartmentInfo:
    code: str
    name: str
    hotline: str
    skill: str
    active: bool


@dataclass(frozen=True)
class DistrictInfo:
    code: str
    name: str
    streets: tuple[str, ...]
    roads: tuple[str, ...]
    landmarks: tuple[str, ...]
    active: bool


@dataclass
class Taxonomy:
    """A snapshot of the (small) taxonomy tables, rebuilt at most every `ttl` seconds or on any admin edit."""

    categories: dict[str, CategoryInfo] = field(default_factory=dict)
    departments: dict[str, DepartmentInfo] = field(default_factory=dict)
    districts: dict[str, DistrictInfo] = field(default_factory=dict)
    rules: dict[str, list[_Rule]] = field(default_factory=dict)
    # gazetteer: (place name, district code, kind rank) sorted longest first
    places: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    async def load(cls, session: AsyncSession) -> "Taxonomy":
        t = cls()
        for c in (await session.scalars(select(Category))).all():
            t.categories[c.code] = CategoryInfo(
                c.code, c.name, c.urgency, c.complexity, c.skill, tuple(c.keywords or ()), c.active
            )
        for d in (await session.scalars(select(Department))).all():
            t.departments[d.code] = DepartmentInfo(d.code, d.name, d.hotline, d.skill, d.active)
        for x in (await session.scalars(select(District))).all():
            t.districts[x.code] = DistrictInfo(
                x.code, x.name, tuple(x.streets or ()), tuple(x.roads or ()), tuple(x.landmarks or ()), x.active
            )
        rules = (await session.scalars(select(RoutingRule).where(RoutingRule.active.is_(True)))).all()
        for r in rules:
            t.rules.setdefault(r.category_code, []).append(
                _Rule(r.id, r.district_code, r.keyword, r.department_code)
            )
        t.index_places()
        return t

    def index_places(self) -> None:
        """(Re)build the gazetteer from the active districts."""
        self.places = []
        for d in self.districts.values():
            if not d.active:
                continue
            entries = [(d.name, 0), *((s, 1) for s in d.streets), *((r, 2) for r in d.roads)]
            entries += [(m, 3) for m in d.landmarks]
            self.places.extend((name, d.code, rank) for name, rank in entries if name)
        self.places.sort(key=lambda p: (-len(p[0]), -p[2]))

    # -- gazetteer ---------------------------------------------------------------------------
    def locate(self, address: str) -> str | None:
        """The district an address lies in. The district the address names (青山区, or 青山) wins over the
        district of any street, road or landmark in it ("东河区解放路" is in donghe whatever other 解放路
        exist). Otherwise the most specific place decides (landmark > road > street); a name found in
        several districts decides only where another place narrows it to one of them, else None."""
        named = self._named_district(address)
        if named:
            return named
        candidates: set[str] | None = None
        for rank in (3, 2, 1):
            codes: set[str] = set()
            for name, code, r in self.places:
                if r == rank and name in address and not any(name in other for other, _, _ in self.places
                                                             if other != name and other in address):
                    codes.add(code)
            if codes:
                candidates = codes if candidates is None else (candidates & codes or candidates)
        if candidates and len(candidates) == 1:
            return next(iter(candidates))
        return None

    def _named_district(self, address: str) -> str | None:
        """The first district named in the address by its full name, or else by its short name (东河)."""
        best: tuple[int, str] | None = None
        for d in self.districts.values():
            if not d.active:
                continue
            at = address.find(d.name)
            short = d.name[:-1] if len(d.name) > 2 and d.name[-1] in "区县" else ""
            if at < 0 and short:
                at = address.find(short)
                # a short name inside a longer place name is that place, not the district (青山一中 is a landmark)
                if at >= 0 and any(short in name and name in address for name, _, r in self.places if r):
                    at = -1
            if at >= 0 and (best is None or at < best[0]):
                best = (at, d.code)
        return best[1] if best else None

    def place(self, address: str, district: str | None) -> str | None:
        """The most specific gazetteer place (landmark > road > street) named in the address: of `district`
        when it has one, else of any district."""
        best: tuple[int, int, int, str] | None = None
        for name, code, rank in self.places:
            if rank == 0 or name not in address:
                continue
            key = (int(district is None or code == district), rank, len(name), name)
            if best is None or key > best:
                best = key
        return best[3] if best else None

    # -- routing -----------------------------------------------------------------------------
    def route(self, category: str, district: str | None, text: str) -> RouteDecision:
        """Most specific active rule wins: category×district×keyword > category×district > category×keyword >
        category; ties go to the longer keyword, then the older rule. No rule → the district office."""
        best: tuple[int, int, int] | None = None
        chosen: _Rule | None = None
        for r in self.rules.get(category, []):
            if r.district is not None and r.district != district:
                continue
            if r.keyword is not None and r.keyword not in text:
                continue
            dept = self.departments.get(r.department)
            if dept is None or not dept.active:
                continue
            tier = (2 if r.district else 0) + (1 if r.keyword else 0)
            key = (tier, len(r.keyword or ""), -r.id)
            if best is None or key > best:
                best, chosen = key, r
        if chosen is not None and best is not None:
            return RouteDecision(
                chosen.department, self.departments[chosen.department].name, district, chosen.id, LEVELS[best[0]]
            )
        office = self.departments.get(f"district.{district}") if district else None
        if office is not None and office.active:
            return RouteDecision(office.code, office.name, district, None, "district_office")
        return RouteDecision(None, None, district, None, "none")

    def department_name(self, code: str | None) -> str | None:
        d = self.departments.get(code) if code else None
        return d.name if d else None

    def category_name(self, code: str) -> str:
        c = self.categories.get(code)
        return c.name if c else code


class TaxonomyCache:
    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl = ttl_seconds
        self._value: Taxonomy | None = None
        self._loaded = 0.0

    async def get(self, session: AsyncSession) -> Taxonomy:
        if self._value is None or time.monotonic() - self._loaded > self.ttl:
            self._value = await Taxonomy.load(session)
            self._loaded = time.monotonic()
        return self._value

    def invalidate(self) -> None:
        self._value = None
