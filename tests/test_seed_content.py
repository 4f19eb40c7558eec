"""Consistency checks for the Mandarin seed content and its data files.

Covers knowledge_base/seed/entries.yaml, config/synonyms.yaml,
tests/knowledge_base/search_cases.yaml, work_orders/seed/city.yaml and
work_orders/seed/sample_requests.yaml: that they parse, follow the agreed formats, and that
every cross-reference (rule -> department/district/category, search case -> entry key, phone
number -> department directory) resolves. Uses only PyYAML and the standard library.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ROOT / "knowledge_base" / "seed" / "entries.yaml"
SYNONYMS = ROOT / "config" / "synonyms.yaml"
SEARCH_CASES = ROOT / "tests" / "knowledge_base" / "search_cases.yaml"
CITY = ROOT / "work_orders" / "seed" / "city.yaml"
SAMPLES = ROOT / "work_orders" / "seed" / "sample_requests.yaml"

CST = timezone(timedelta(hours=8))
CJK = re.compile(r"[\u4e00-\u9fff]")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DEPT_CODE = re.compile(r"^[a-z][a-z_]*(?:\.[a-z][a-z_]*)?$")
ASCII_CODE = re.compile(r"^[a-z][a-z_]*$")
CATEGORY_CODE = re.compile(r"^[a-z][a-z_]*(?:\.[a-z][a-z_]*)?$")
HOTLINE = re.compile(r"^0478-\d{7,8}$")
ENTRY_FIELDS = {
    "key", "title", "category", "question", "alt_questions", "spoken_answer", "text_answer",
    "tags", "region", "valid_from", "valid_until", "status",
}
STATUSES = {"draft", "published", "archived"}
SKILLS = {"综合", "劳动保障", "住建", "法律", "城管", "环保", "市场"}
URGENCIES = {"normal", "urgent", "critical"}
COMPLEXITIES = {"easy", "simple", "complex"}
REQUIRED_CATEGORIES = {
    "road.manhole_cover": "井盖缺失/松动",
    "road.damage": "道路破损",
    "lighting.streetlight": "路灯不亮",
    "sanitation.garbage": "垃圾清运",
    "environment.noise": "噪音扰民",
    "environment.pollution": "污染/异味",
    "agriculture.livestock": "养殖扰民",
    "utilities.water": "供水/停水/漏水",
    "utilities.power": "停电",
    "utilities.heating": "供暖不热",
    "housing.property": "物业纠纷",
    "labor.wage_arrears": "拖欠工资",
    "traffic.parking": "违章停车/占道",
    "market.food_safety": "食品安全",
    "market.consumer": "消费纠纷",
    "legal.dispute": "民间纠纷调解",
    "public.facility": "公共设施损坏",
    "other": "其他",
}
REQUIRED_DEPARTMENTS = {
    "市住建局", "市城管局", "市生态环境局", "市农业农村局", "市水务集团", "青山供电公司", "市供热办",
    "市人社局劳动监察支队", "市公安局交警支队", "市市场监管局", "市司法局人民调解中心", "市市政设施管理处",
}
# Topics the seed must cover; each must appear in at least `n` entry titles or questions.
REQUIRED_TOPICS = {
    "社会保障卡": 4, "医保|医疗": 4, "公积金": 5, "身份证": 3, "户口|落户": 3, "居住证": 2,
    "政务服务中心": 5, "供暖|暖气|供热": 4, "垃圾": 4, "法律援助": 2, "诉前调解": 1,
    "12345": 2, "老年人优待": 1, "残疾人": 2, "不动产": 3, "营业执照": 1, "驾驶证": 1,
    "新能源": 1, "水费|电费|燃气费": 3,
}
# Numbers that may be spoken or written without being in the department directory.
PUBLIC_NUMBERS = {"12345", "110", "119", "120", "122", "12333", "12348", "12368", "12123", "12315"}
SPOKEN_DIGITS = {"零": "0", "一": "1", "二": "2", "三": "3", "四": "4",
                 "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}


def _load(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@lru_cache(maxsize=None)
def entries() -> list[dict]:
    return _load(ENTRIES)


@lru_cache(maxsize=None)
def synonyms() -> list[list[str]]:
    return _load(SYNONYMS)


@lru_cache(maxsize=None)
def search_cases() -> list[dict]:
    return _load(SEARCH_CASES)


@lru_cache(maxsize=None)
def city() -> dict:
    return _load(CITY)


@lru_cache(maxsize=None)
def samples() -> list[dict]:
    return _load(SAMPLES)


def _norm(text: str) -> str:
    """Lower-case, NFKC, without punctuation or spaces, for 'is this a copy' checks."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def _parse_ts(value) -> datetime:
    assert isinstance(value, str), f"timestamp must be a quoted ISO-8601 string, got {value!r}"
    ts = datetime.fromisoformat(value)
    assert ts.utcoffset() == timedelta(hours=8), f"{value}: offset must be +08:00"
    return ts


def _district_names() -> dict[str, str]:
    return {d["name"]: d["code"] for d in city()["districts"]}


def _hotlines() -> set[str]:
    return {d["hotline"] for d in city()["departments"]}


# ─────────────────────────────── knowledge base ───────────────────────────────


def test_entries_shape_and_unique_keys():
    data = entries()
    assert isinstance(data, list)
    assert len(data) >= 90
    keys = [e.get("key") for e in data]
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes, f"duplicate keys: {dupes}"
    titles = [e.get("title") for e in data]
    assert not [t for t, n in Counter(titles).items() if n > 1], "duplicate titles"
    for e in data:
        assert set(e) == ENTRY_FIELDS, f"{e.get('key')}: fields {sorted(set(e) ^ ENTRY_FIELDS)}"
        assert SLUG.match(e["key"]), e["key"]
        for field in ("title", "category", "question", "spoken_answer", "text_answer", "region"):
            assert isinstance(e[field], str) and e[field].strip(), f"{e['key']}.{field}"
        assert e["status"] in STATUSES, e["key"]
        assert isinstance(e["tags"], list) and e["tags"], e["key"]
        assert all(isinstance(t, str) and t.strip() for t in e["tags"]), f"{e['key']}: tags must be strings"
        assert len(set(e["tags"])) == len(e["tags"]), f"{e['key']}: duplicate tags"


def test_entries_statuses_and_categories():
    data = entries()
    statuses = Counter(e["status"] for e in data)
    assert 1 <= statuses["draft"] <= 5, statuses
    assert statuses["published"] >= 90, statuses
    categories = Counter(e["category"] for e in data)
    assert 10 <= len(categories) <= 16, categories
    assert min(categories.values()) >= 3, categories


def test_alt_questions():
    for e in entries():
        alts = e["alt_questions"]
        assert isinstance(alts, list) and 3 <= len(alts) <= 6, e["key"]
        assert all(isinstance(a, str) and a.strip() for a in alts), e["key"]
        normed = [_norm(a) for a in alts] + [_norm(e["question"])]
        assert len(set(normed)) == len(normed), f"{e['key']}: repeated phrasing"
    colloquial = sum(
        1 for e in entries() if any(w in a for a in e["alt_questions"] for w in ("咋", "啥", "整", "俺"))
    )
    assert colloquial >= 60, colloquial


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e["key"])
def test_spoken_answer_is_for_the_ear(entry):
    spoken = entry["spoken_answer"]
    n = len(CJK.findall(spoken))
    assert 40 <= n <= 160, f"{n} Chinese characters"
    assert not re.search(r"[0-9０-９]", spoken), "digits must be written as they are read"
    assert not re.search(r"[A-Za-zＡ-Ｚａ-ｚ]", spoken), "no Latin letters (say the words instead)"
    assert not re.search(r"[()（）\[\]【】{}<>《》|/\\#*_~@%&=+]", spoken), "no brackets, tables or symbols"
    assert "\n" not in spoken, "one paragraph"
    assert not re.search(r"http|www|\.com|\.cn", spoken, re.I), "no URLs"


def test_spoken_phone_numbers_are_in_the_directory():
    hotlines = _hotlines()
    pattern = re.compile(r"零四七八\s*([零一二三四五六七八九]{7,8})")
    seen = 0
    for e in entries():
        for match in pattern.finditer(e["spoken_answer"]):
            number = "0478-" + "".join(SPOKEN_DIGITS[c] for c in match.group(1))
            assert number in hotlines, f"{e['key']}: {number} is not a department hotline"
            seen += 1
    assert seen >= 5


def test_written_phone_numbers_are_in_the_directory():
    hotlines = _hotlines()
    for e in entries():
        for number in re.findall(r"0478-\d+", e["text_answer"]):
            if number.split("-", 1)[1] in PUBLIC_NUMBERS:
                continue
            assert number in hotlines, f"{e['key']}: {number} is not a department hotline"


def test_regions_and_validity_windows():
    regions = {"全市", *_district_names()}
    timed = []
    for e in entries():
        assert e["region"] in regions, f"{e['key']}: region {e['region']}"
        vf, vu = e["valid_from"], e["valid_until"]
        if vf is not None:
            vf = _parse_ts(vf)
        if vu is not None:
            vu = _parse_ts(vu)
        if vf and vu:
            assert vf < vu, e["key"]
        if vf or vu:
            timed.append((e, vf, vu))
    assert len(timed) >= 3
    # A district notice whose window covers late November 2026 ...
    nov_start, nov_end = datetime(2026, 11, 24, tzinfo=CST), datetime(2026, 11, 30, 23, 59, tzinfo=CST)
    assert any(
        e["region"] != "全市" and vf and vu and vf <= nov_start and vu >= nov_end for e, vf, vu in timed
    ), "need a district notice valid 2026-11-24..2026-11-30"
    # ... one that starts in December 2026 ...
    assert any(vf and vf.year == 2026 and vf.month == 12 and e["region"] != "全市" for e, vf, vu in timed)
    # ... and a heating-season notice.
    assert any(e["category"] == "城市供热" for e, _, _ in timed)


def test_topics_are_covered():
    for pattern, minimum in REQUIRED_TOPICS.items():
        rx = re.compile(pattern)
        hits = [e["key"] for e in entries() if rx.search(e["title"]) or rx.search(e["question"])]
        assert len(hits) >= minimum, f"{pattern}: {hits}"
    # A government service centre entry for every district.
    for name in _district_names():
        assert any(e["region"] == name and "政务服务中心" in e["title"] for e in entries()), name


# ─────────────────────────────── synonyms ───────────────────────────────


def test_synonym_groups():
    groups = synonyms()
    assert isinstance(groups, list) and len(groups) >= 60
    seen: dict[str, int] = {}
    for i, group in enumerate(groups):
        assert isinstance(group, list) and len(group) >= 2, f"group {i}: {group}"
        for word in group:
            assert isinstance(word, str) and word.strip() == word and word, f"group {i}: {word!r}"
            assert word not in seen, f"{word!r} in groups {seen[word]} and {i}"
            seen[word] = i


def test_synonym_canonical_words_are_used_in_entries():
    corpus = "".join(
        e["title"] + e["question"] + "".join(e["alt_questions"]) + "".join(e["tags"]) + e["text_answer"]
        for e in entries()
    )
    used = [g for g in synonyms() if any(w in corpus for w in g)]
    assert len(used) >= 60, len(used)


# ─────────────────────────────── search cases ───────────────────────────────


def test_search_cases_reference_published_undated_entries():
    cases = search_cases()
    assert isinstance(cases, list) and len(cases) >= 45
    by_key = {e["key"]: e for e in entries()}
    copies = {_norm(e["title"]) for e in entries()} | {_norm(e["question"]) for e in entries()}
    copies |= {_norm(a) for e in entries() for a in e["alt_questions"]}
    qs = []
    for case in cases:
        assert set(case) == {"q", "key"}, case
        assert isinstance(case["q"], str) and case["q"].strip(), case
        entry = by_key.get(case["key"])
        assert entry is not None, f"unknown key {case['key']}"
        assert entry["status"] == "published", case["key"]
        assert entry["valid_from"] is None and entry["valid_until"] is None, (
            f"{case['key']}: search cases must not depend on today's date"
        )
        assert _norm(case["q"]) not in copies, f"copies an entry: {case['q']}"
        qs.append(_norm(case["q"]))
    assert len(set(qs)) == len(qs), "duplicate search cases"
    assert len({c["key"] for c in cases}) >= 40
    assert sum(1 for c in cases if re.search(r"嗯|那个|就是", c["q"])) >= 5


# ─────────────────────────────── city / routing ───────────────────────────────


def test_districts():
    districts = city()["districts"]
    assert city()["city"] == "青山市"
    assert 4 <= len(districts) <= 6
    codes = [d["code"] for d in districts]
    assert len(set(codes)) == len(codes)
    assert len({d["name"] for d in districts}) == len(districts)
    places: Counter[str] = Counter()
    roads: Counter[str] = Counter()
    for d in districts:
        assert ASCII_CODE.match(d["code"]), d["code"]
        assert 4 <= len(d["streets"]) <= 6, d["code"]
        assert 6 <= len(d["roads"]) <= 10, d["code"]
        assert 8 <= len(d["landmarks"]) <= 12, d["code"]
        for field in ("streets", "roads", "landmarks"):
            assert all(isinstance(x, str) and x for x in d[field]), (d["code"], field)
            assert len(set(d[field])) == len(d[field]), (d["code"], field)
            (roads if field == "roads" else places).update(d[field])
    dupes = [p for p, n in places.items() if n > 1]
    assert not dupes, f"streets or landmarks in two districts: {dupes}"
    # real cities have same-named roads in several districts; the seed keeps a few so that the address
    # matcher and the router are tested on them (the district the caller names wins)
    shared = sorted(r for r, n in roads.items() if n > 1)
    assert 1 <= len(shared) <= 4, shared
    assert not set(roads) & set(places), "a road named like a street or landmark"


def test_departments():
    departments = city()["departments"]
    codes = [d["code"] for d in departments]
    assert len(set(codes)) == len(codes), "duplicate department codes"
    hotlines = [d["hotline"] for d in departments]
    assert len(set(hotlines)) == len(hotlines), "duplicate hotlines"
    for d in departments:
        assert set(d) == {"code", "name", "hotline", "skill"}, d
        assert DEPT_CODE.match(d["code"]), d["code"]
        assert HOTLINE.match(d["hotline"]), d["hotline"]
        assert d["skill"] in SKILLS, d
    names = {d["name"] for d in departments}
    assert REQUIRED_DEPARTMENTS <= names, REQUIRED_DEPARTMENTS - names
    for district in city()["districts"]:
        assert f"district.{district['code']}" in codes, district["code"]


def test_categories():
    categories = city()["categories"]
    codes = [c["code"] for c in categories]
    assert len(set(codes)) == len(codes)
    by_code = {c["code"]: c for c in categories}
    for code, name in REQUIRED_CATEGORIES.items():
        assert code in by_code, code
        assert by_code[code]["name"] == name, code
    for c in categories:
        assert CATEGORY_CODE.match(c["code"]), c["code"]
        assert c["urgency"] in URGENCIES, c["code"]
        assert c["complexity"] in COMPLEXITIES, c["code"]
        assert c["skill"] in SKILLS, c["code"]
        assert isinstance(c["keywords"], list), c["code"]
        assert all(isinstance(k, str) and k for k in c["keywords"]), c["code"]
        if c["code"] != "other":
            assert len(c["keywords"]) >= 5, c["code"]
    assert "紧盖" in by_code["road.manhole_cover"]["keywords"]


def _rules():
    return city()["rules"]


def route(category: str, district: str | None, text: str) -> set[str]:
    """Reference router: the departments of the most specific matching rules."""
    best, found = -1, set()
    for r in _rules():
        if r["category"] != category:
            continue
        if r["district"] is not None and r["district"] != district:
            continue
        if r["keyword"] is not None and r["keyword"] not in text:
            continue
        rank = (r["district"] is not None) + (r["keyword"] is not None)
        if rank > best:
            best, found = rank, {r["department"]}
        elif rank == best:
            found.add(r["department"])
    return found or ({f"district.{district}"} if district else set())


def test_rules_reference_known_codes():
    rules = _rules()
    assert len(rules) >= 50
    departments = {d["code"] for d in city()["departments"]}
    districts = {d["code"] for d in city()["districts"]}
    categories = {c["code"] for c in city()["categories"]}
    seen = set()
    for r in rules:
        assert set(r) == {"category", "district", "keyword", "department"}, r
        assert r["category"] in categories, r
        assert r["district"] is None or r["district"] in districts, r
        assert r["keyword"] is None or (isinstance(r["keyword"], str) and r["keyword"]), r
        assert r["department"] in departments, r
        ident = (r["category"], r["district"], r["keyword"])
        assert ident not in seen, f"duplicate rule {ident}"
        seen.add(ident)
    for category in categories:
        assert (category, None, None) in seen, f"no city-wide rule for {category}"
    assert sum(1 for r in rules if r["district"] and not r["keyword"]) >= 15
    assert sum(1 for r in rules if r["keyword"]) >= 5


def test_rules_do_not_depend_on_tie_breaking():
    """Where a district-only rule and a keyword-only rule could both match with different
    departments, a rule naming both must exist, so any 'most specific wins' order agrees."""
    index = {(r["category"], r["district"], r["keyword"]): r["department"] for r in _rules()}
    for (category, district, keyword), dept_d in index.items():
        if district is None or keyword is not None:
            continue
        for (cat2, dist2, kw), dept_k in index.items():
            if cat2 != category or dist2 is not None or kw is None or dept_k == dept_d:
                continue
            assert (category, district, kw) in index, (
                f"ambiguous: {category} in {district} with keyword {kw}: {dept_d} vs {dept_k}"
            )


def test_routing_examples():
    assert route("road.manhole_cover", None, "井盖丢了") == {"municipal"}
    assert route("road.manhole_cover", "qingshan", "井盖丢了") == {"district.qingshan"}
    assert route("utilities.water", None, "水表漏水") == {"water"}
    assert route("utilities.heating", "donghe", "我们小区自管锅炉不热") == {"district.donghe"}
    assert route("utilities.heating", "donghe", "暖气不热") == {"heating"}
    assert route("environment.noise", "yunhu", "工地夜里施工") == {"urban_mgmt"}
    assert route("environment.noise", "jinchuan", "广场舞太吵") == {"district.jinchuan"}
    assert route("environment.noise", "jinchuan", "商铺喇叭") == {"ecology"}


# ─────────────────────────────── sample requests ───────────────────────────────


def test_sample_requests():
    data = samples()
    assert isinstance(data, list) and len(data) >= 40
    categories = {c["code"]: c for c in city()["categories"]}
    districts = {d["code"]: d for d in city()["districts"]}
    texts = []
    for s in data:
        assert set(s) == {"text", "category", "district", "address"}, s
        assert isinstance(s["text"], str) and len(s["text"]) >= 15, s
        assert s["category"] in categories, s["category"]
        assert isinstance(s["address"], str) and s["address"].strip(), s
        if s["district"] is not None:
            d = districts[s["district"]]
            places = [d["name"], *d["streets"], *d["roads"], *d["landmarks"]]
            assert any(p in s["address"] for p in places), f"{s['address']} not in {d['name']}"
            assert any(p in s["text"] for p in places), f"text does not name a place in {d['name']}"
        if s["category"] != "other":
            keywords = categories[s["category"]]["keywords"]
            assert any(k in s["text"] for k in keywords), f"no {s['category']} keyword in: {s['text']}"
        departments = route(s["category"], s["district"], s["text"])
        assert len(departments) == 1, f"{s['text']}: routes to {departments}"
        texts.append(s["text"])
    assert len(set(texts)) == len(texts)
    assert set(REQUIRED_CATEGORIES) <= {s["category"] for s in data}
    assert sum(1 for s in data if s["district"] is None) >= 2
    homophones = ("紧盖", "景盖", "路登", "公暖", "托欠", "拉圾")
    assert sum(1 for s in data if any(h in s["text"] for h in homophones)) >= 4
