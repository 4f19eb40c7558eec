"""The city's places, as callers name them: districts, streets (街道/镇/乡), roads and landmarks.

Loaded from the city seed (`settings.city_seed_file`, the same file the work-order taxonomy and the Rasa
lookup tables are built from). The same road name may exist in several districts, as in real cities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_CITY_FILE = Path(__file__).resolve().parents[1] / "work_orders" / "seed" / "city.yaml"

KINDS = ("district", "street", "road", "landmark")


@dataclass(frozen=True, slots=True)
class Place:
    name: str  # as written in the gazetteer: 青山区, 人民路街道, 人民路, 馨苑小区
    kind: str  # one of KINDS
    district: str  # district code: qingshan


@dataclass(frozen=True)
class District:
    code: str
    name: str  # 青山区 / 北岭县
    streets: tuple[str, ...] = ()
    roads: tuple[str, ...] = ()
    landmarks: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """青山区 → 青山 (callers often drop 区/县)."""
        return self.name[:-1] if len(self.name) > 2 and self.name[-1] in "区县" else self.name


@dataclass(frozen=True)
class Gazetteer:
    city: str
    districts: tuple[District, ...]
    places: tuple[Place, ...] = field(default=())

    @classmethod
    def from_mapping(cls, data: dict) -> "Gazetteer":
        districts = tuple(
            District(
                code=str(d["code"]), name=str(d["name"]),
                streets=tuple(d.get("streets") or ()), roads=tuple(d.get("roads") or ()),
                landmarks=tuple(d.get("landmarks") or ()),
            )
            for d in data.get("districts") or ()
        )
        places: list[Place] = []
        for d in districts:
            places.append(Place(d.name, "district", d.code))
            places += [Place(s, "street", d.code) for s in d.streets]
            places += [Place(r, "road", d.code) for r in d.roads]
            places += [Place(m, "landmark", d.code) for m in d.landmarks]
        return cls(city=str(data.get("city") or ""), districts=districts, places=tuple(places))

    def district(self, code: str) -> District | None:
        return next((d for d in self.districts if d.code == code), None)

    def named(self, name: str) -> list[Place]:
        """Every place of that exact name (a road may be in several districts)."""
        return [p for p in self.places if p.name == name]

    def names(self, *kinds: str) -> list[str]:
        """Distinct names of the given kinds (all kinds when none given), gazetteer order."""
        seen: dict[str, None] = {}
        for p in self.places:
            if not kinds or p.kind in kinds:
                seen.setdefault(p.name, None)
        return list(seen)


def load_gazetteer(path: Path | str = DEFAULT_CITY_FILE) -> Gazetteer:
    return _load(str(path))


@lru_cache(maxsize=4)
def _load(path: str) -> Gazetteer:
    with open(path, encoding="utf-8") as fh:
        return Gazetteer.from_mapping(yaml.safe_load(fh) or {})
