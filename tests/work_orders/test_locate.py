"""Taxonomy.locate / place on the seeded city: the district the caller names wins over a road's district."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from work_orders.routing import DistrictInfo, Taxonomy

CITY = Path(__file__).resolve().parents[2] / "work_orders" / "seed" / "city.yaml"


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    t = Taxonomy()
    for d in yaml.safe_load(CITY.read_text(encoding="utf-8"))["districts"]:
        t.districts[d["code"]] = DistrictInfo(d["code"], d["name"], tuple(d["streets"]), tuple(d["roads"]),
                                              tuple(d["landmarks"]), True)
    t.index_places()
    return t


@pytest.mark.parametrize(
    ("address", "district"),
    [
        ("东河区解放路的一家装修公司", "donghe"),  # was filed under qingshan: the road's first district won
        ("青山区解放路88号", "qingshan"),
        ("青山区和平路七号院", "qingshan"),
        ("东河和平路12号", "donghe"),  # short district name
        ("东河区人民路", "donghe"),  # a road of another district: the caller's district still wins
        ("解放路26号", None),  # in two districts, none named: ambiguous, the bot asks
        ("和平路", None),
        ("解放路胜利小区", "donghe"),  # a landmark narrows the shared road down
        ("建设路26号", "qingshan"),  # a road in one district only
        ("人民路街道办事处", "qingshan"),
        ("我在青年路小学门口", "qingshan"),
        ("青山一中门口", "qingshan"),  # 青山 inside a landmark's name is the landmark
        ("东河湿地公园", "donghe"),
        ("望湖苑三栋", "yunhu"),
        ("火星基地", None),
    ],
)
def test_locate(tax: Taxonomy, address: str, district: str | None) -> None:
    assert tax.locate(address) == district


def test_place_prefers_the_named_district(tax: Taxonomy) -> None:
    assert tax.place("东河区滨河路胜利小区3号楼", "donghe") == "胜利小区"  # landmark beats road
    assert tax.place("东河区解放路的一家装修公司", "donghe") == "解放路"
    assert tax.place("东河区人民路", "donghe") == "人民路"  # only in qingshan, still the place named
    assert tax.place("东河区胜利小区对面的人民路", "donghe") == "胜利小区"
    assert tax.place("火星基地", None) is None
