"""Work-order categories as the bot speaks of them and as callers name them (from the city seed)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from understanding.gazetteer import DEFAULT_CITY_FILE


@dataclass(frozen=True)
class Category:
    code: str  # utilities.water
    name: str  # 供水/停水/漏水
    keywords: tuple[str, ...] = ()

    @property
    def spoken(self) -> str:
        """For the ear: 供水/停水/漏水 → 供水、停水、漏水."""
        return self.name.replace("/", "、")

    @property
    def intent(self) -> str:
        """The bot's intent for this category: utilities.water → report_utilities_water."""
        return "report_" + self.code.replace(".", "_")


def category_of_intent(intent: str | None) -> str | None:
    """report_road_manhole_cover → road.manhole_cover; report_other → other."""
    if not intent or not intent.startswith("report_"):
        return None
    code = intent.removeprefix("report_")
    return code.replace("_", ".", 1) if "_" in code else code


def load_categories(path: Path | str = DEFAULT_CITY_FILE) -> dict[str, Category]:
    return _load(str(path))


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Category]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return {
        str(c["code"]): Category(str(c["code"]), str(c["name"]), tuple(str(k) for k in c.get("keywords") or ()))
        for c in data.get("categories") or ()
    }
