"""An address as a caller says it (or the recogniser hears it), matched to the city's gazetteer.

``match_address("青山期间设度二十六号")`` → district ``qingshan``, road 建设路, detail 26号,
normalized "青山区建设路26号", spoken "青山区建设路二十六号". Exact names first, then windows whose
toneless pinyin is near a place name (district + road together where they were said together, which is
what makes "青山期间设度" safe to read as 青山区建设路).

Rules: the district the caller names wins over the district of a road, street or landmark; a road that
exists in several districts with no district named leaves ``district`` empty and lists them in
``ambiguous`` (the bot asks "是哪个区的解放路？"); a road-like name that is not in the gazetteer
("新华街") is kept as ``unknown_road`` rather than forced onto a known one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from understanding.gazetteer import Gazetteer, Place, load_gazetteer
from understanding.normalize import normalize, spoken_digits, spoken_number
from understanding.pinyin import Fix, PinyinLexicon, Term, is_word, syllables

#: Address answers are expected answers: a little looser than correcting free text (pinyin.STRICT).
ADDRESS_SCORES = {2: 0.92, 3: 0.75, 4: 0.72}
_PUNCT = re.compile(r"[\s,，。.、;；:：!！?？()（）\-—_~～…]+")
_NUMBERED = r"\d+(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|排|组)"
_POSITION = (r"小区|大院|院|门口|大门|对面|旁边|附近|路口|十字路口|交叉口|[东西南北][侧门边头]|后面|前面|后身|里面|"
             r"楼下|楼上|底商|公交站|站牌")
_DETAIL = re.compile(rf"(?:{_NUMBERED}|{_POSITION})+")
_ROAD_SUFFIX = ("大街", "大道", "路", "街", "巷", "胡同")
_HEARD_SUFFIX = {"jie": "街", "lu": "路"}  # 新华捷 → 新华街, 光明阶 → 光明街
_NOT_AFTER_ROAD = set("道边上面过人况线费灯牌")  # 街道, 路边, 路上, 路面, 路过 …: a word, not a road's name
_NOT_IN_NAMES = set("的了我你他她在是有这那个就都也还把被给从到和跟说要想去")


@dataclass(frozen=True)
class AddressMatch:
    district: str | None = None  # district code: qingshan
    district_name: str | None = None  # 青山区
    street: str | None = None  # 街道/镇/乡
    road: str | None = None  # a gazetteer road
    landmark: str | None = None  # a gazetteer landmark (小区, 公园, 医院…)
    detail: str = ""  # 26号, 3栋2单元, 门口
    unknown_road: str | None = None  # a road-like name not in the gazetteer: 新华街
    ambiguous: tuple[str, ...] = ()  # district codes of a road named without its district
    normalized: str = ""  # 青山区建设路26号
    spoken: str = ""  # 青山区建设路二十六号
    score: float = 0.0  # 1.0 all exact; lower when parts were matched by sound; 0 nothing found
    heard: tuple[tuple[str, str], ...] = ()  # (what the text said, the place taken for it) for fuzzy parts

    @property
    def found(self) -> bool:
        return bool(self.district or self.road or self.landmark or self.street or self.unknown_road or self.ambiguous)


def match_address(text: str, gazetteer: Gazetteer | None = None) -> AddressMatch:
    """The places named in `text`, the district they resolve to, and the address written properly."""
    gazetteer = gazetteer or load_gazetteer()
    clean = _PUNCT.sub("", spoken_digits(normalize(text)))
    if not clean:
        return AddressMatch()
    hits = _lexicon(gazetteer).find(clean, words=False)
    places = [(f, p) for f in hits for p in f.term.payload]  # type: ignore[union-attr]
    named = [p for _, p in places if p.kind == "district"]
    district = named[0].district if named else None

    def pick(kind: str) -> list[Place]:
        found = [p for _, p in places if p.kind == kind]
        if district:  # the named district wins: its own place of that name if there is one
            return [p for p in found if p.district == district] or found[:1]
        return found

    roads, streets, landmarks = pick("road"), pick("street"), pick("landmark")
    ambiguous: tuple[str, ...] = ()
    if not district:
        district, ambiguous = _resolve([roads, landmarks, streets])
    road = roads[0].name if roads else None
    end = max((f.end for f in hits), default=0)
    unknown_at = None if road or landmarks else _unknown_road(clean, hits)
    unknown = unknown_at[0] if unknown_at else None
    if unknown_at:
        end = max(end, unknown_at[1])
    m = _DETAIL.match(clean, end)
    detail = m.group() if m else ""
    crossing = [p.name for f, p in places if p.kind == "road" and f.end == end and p.name != road]
    if crossing and clean.startswith("口", end):  # 滨河路和平路口: at the crossing with 和平路
        detail = crossing[0] + "口"
    if not (hits or unknown):
        m = _DETAIL.search(clean)
        detail = m.group() if m and re.search(r"\d", m.group()) else ""
    d = gazetteer.district(district) if district else None
    street = streets[0].name if streets else None
    landmark = landmarks[0].name if landmarks else None
    parts = [d.name if d else "", road or unknown or ("" if landmark else street or ""), landmark or "", detail]
    normalized = "".join(parts)
    scores = [f.score for f in hits] + ([0.8] if unknown else [])
    return AddressMatch(
        district=district, district_name=d.name if d else None, street=street, road=road, landmark=landmark,
        detail=detail, unknown_road=unknown, ambiguous=ambiguous, normalized=normalized,
        spoken=spoken_address(normalized), score=round(sum(scores) / len(scores), 3) if scores else 0.0,
        heard=tuple((f.heard, f.term.text) for f in hits if f.heard != f.term.text),
    )


def spoken_address(address: str) -> str:
    """Digits said as a caller says them: 26号 → 二十六号, 3栋2单元 → 三栋二单元, 302室 → 三零二室."""
    def say(m: re.Match[str]) -> str:
        digits, unit = m.group(1), m.group(2)
        if unit == "室" or len(digits) > 4 or digits.startswith("0"):
            return "".join("零一二三四五六七八九"[int(c)] for c in digits) + unit
        return spoken_number(int(digits)) + unit

    return re.sub(r"(\d+)(\D?)", say, address)


def _resolve(groups: list[list[Place]]) -> tuple[str | None, tuple[str, ...]]:
    """No district named: the first kind of place found decides; a name in several districts is ambiguous,
    unless another place named narrows it to one of them."""
    candidates: set[str] | None = None
    for places in groups:
        if not places:
            continue
        codes = {p.district for p in places if p.name == places[0].name}
        candidates = codes if candidates is None else (candidates & codes or candidates)
    if not candidates:
        return None, ()
    if len(candidates) == 1:
        return next(iter(candidates)), ()
    return None, tuple(sorted(candidates))


def _unknown_road(clean: str, hits: list[Fix]) -> tuple[str, int] | None:
    """A road-like name outside the gazetteer and where it ends: 2-4 characters and 路/街/大街/大道/巷/胡同,
    written so, or heard so right after a district (新华捷 → 新华街). Only where an address is said: right
    after a district, at the start, or after 在/住/到; never a bus line (十八路) or a word (走路, 逛街)."""
    after_district = {f.end for f in hits if any(p.kind == "district" for p in f.term.payload)}  # type: ignore[union-attr]
    taken = {i for f in hits for i in range(f.start, f.end)}
    sy = syllables(clean)
    for i in range(len(clean)):
        if i in taken:
            continue
        suffix = next((x for x in _ROAD_SUFFIX if clean.startswith(x, i)), None)
        length = len(suffix or "")
        if suffix is None and any(i - k in after_district for k in (2, 3, 4)):
            suffix, length = _HEARD_SUFFIX.get(sy[i] or ""), 1
        if not suffix:
            continue
        name = ""
        for j in range(i - 1, max(-1, i - 5), -1):
            if j in taken or clean[j] in _NOT_IN_NAMES or not "\u4e00" <= clean[j] <= "\u9fff":
                break
            name = clean[j] + name
        at = i - len(name)
        where = at in after_district or at == 0 or (at > 0 and clean[at - 1] in "在住到于")
        if (len(name) >= 2 and where and not re.search(r"[\d零一二两三四五六七八九十百]", name)
                and not is_word(name[-1] + suffix[0]) and clean[i + length:i + length + 1] not in _NOT_AFTER_ROAD):
            return name + suffix, i + length
    return None


@lru_cache(maxsize=4)
def _lexicon(gazetteer: Gazetteer) -> PinyinLexicon:
    """Every place name, each district's short name, and district + road said together (青山区建设路,
    青山建设路) as one term: a long term heard with one garbled syllable is still unmistakable."""
    by_name: dict[str, list[Place]] = {}
    short_names: set[str] = set()  # 青山, 东河: only as written (云湖 would otherwise be heard in 孕妇)
    combos: set[str] = set()  # 青山区建设路: only by sound (as written, its parts are found: 人民路街道 stays whole)
    for p in gazetteer.places:
        by_name.setdefault(p.name, []).append(p)
    for d in gazetteer.districts:
        district = Place(d.name, "district", d.code)
        if d.short != d.name:
            by_name.setdefault(d.short, []).append(district)
            short_names.add(d.short)
        for road in d.roads:
            for said in {d.name, d.short}:
                by_name.setdefault(said + road, []).extend([district, Place(road, "road", d.code)])
                combos.add(said + road)
    terms = (Term(name, fuzzy=name not in short_names, written=name not in combos, payload=tuple(places))
             for name, places in by_name.items())
    return PinyinLexicon(terms, ADDRESS_SCORES)
