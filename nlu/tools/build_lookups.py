"""Generate the Rasa NLU data that depends on the city gazetteer, deterministically.

Inputs
  work_orders/seed/city.yaml        the seeded city (districts with streets/roads/landmarks); while it does
                                    not exist, nlu/tools/gazetteer_fallback.yaml (same shape) is used
  nlu/corpus/*.txt                  hand-written citizen utterances, grouped by "## <intent>"; placeholders
                                    {district} {street} {road} {landmark} {ticket} {phone}; literal
                                    [text](entity) annotations pass through

Outputs (committed; rerun after editing the corpus or the city seed)
  nlu/data/lookups.yml              lookup tables + synonyms (district aliases) + regexes (ticket, phone)
  nlu/dict/userdict.txt             jieba user dictionary: gazetteer names + hotline domain terms
  nlu/data/nlu.yml                  training examples (80 %)
  nlu/data/nlu_spoken.yml           one spoken variant of most training examples
                                    (`speak_like_a_caller`: fillers before/after, context first, no punctuation,
                                    colloquial words), since callers do not talk like the corpus's tidy lines
  nlu/tests/test_nlu.yml            held-out examples (every 5th example of each intent, from the first; never trained on)
  nlu/tests/test_sample_requests.yml  work_orders/seed/sample_requests.yaml as report_<category> examples
                                    (written by another author; a second, independent held-out set)

Usage: python nlu/tools/build_lookups.py [--check]   (--check: exit 1 if any output would change)
Runs with the standard library + PyYAML (either virtualenv).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

import yaml

NLU_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = NLU_DIR.parent
CITY_SEED = REPO_ROOT / "work_orders" / "seed" / "city.yaml"
SAMPLE_REQUESTS = REPO_ROOT / "work_orders" / "seed" / "sample_requests.yaml"
OUT_SAMPLES = NLU_DIR / "tests" / "test_sample_requests.yml"
FALLBACK = NLU_DIR / "tools" / "gazetteer_fallback.yaml"
CORPUS_DIR = NLU_DIR / "corpus"
OUT_LOOKUPS = NLU_DIR / "data" / "lookups.yml"
OUT_TRAIN = NLU_DIR / "data" / "nlu.yml"
OUT_SPOKEN = NLU_DIR / "data" / "nlu_spoken.yml"
OUT_TEST = NLU_DIR / "tests" / "test_nlu.yml"
OUT_DICT = NLU_DIR / "dict" / "userdict.txt"

TEST_EVERY = 5  # examples 0, 5, 10, ... of each intent are held out -> ceil(n/5) >= 20 %
SEED = 12345
ENTITY_KINDS = ("district", "street", "road", "landmark")

# Hotline vocabulary jieba should keep whole (including common recogniser homophones).
DOMAIN_TERMS = """
12345 一二三四五 幺二三四五 转人工 人工客服 接线员 工单 单号 工单号 受理编号 催办 撤单 撤销 督办 进度
井盖 窨井盖 紧盖 景盖 下水道 雨水篦子 检查井 路灯 路等 露灯 路灯杆 红绿灯 信号灯 减速带 人行道 盲道 马路牙子
垃圾清运 垃圾桶 垃圾站 建筑垃圾 装修垃圾 厨余垃圾 大件垃圾 垃圾分类 噪音扰民 造音 广场舞 打桩 油烟 异味 排污 扬尘
养殖场 养猪场 养鸡场 杨朱场 粪水 停水 漏水 水管 水压 自来水 二次供水 停电 跳闸 变压器 电线杆 停店
暖气 暖气片 暖器 供暖 地暖 换热站 物业 物业费 物页 业委会 电梯 拖欠工资 拖钱 托欠 欠薪 讨薪 包工头 工钱
违章停车 违停 违张 占道经营 消防通道 僵尸车 地锁 食品安全 视频安全 过期 地沟油 三无食品 消费纠纷 消废 预付卡
缺斤少两 虚假宣传 民间纠纷 名间纠纷 人民调解 宅基地 抚养费 健身器材 公共设施 公共设失 护栏 公厕
社保 社保卡 养老保险 医保 医保卡 异地就医 新农合 公积金 身份证 户口 户口本 居住证 政务服务中心 政务大厅
供暖费 暖气费 法律援助 调解委员会 老年卡 老年优待证 残疾证 残疾人 两项补贴 不动产登记 不动产证 房产证 低保
着火 起火 失火 煤气 燃气 天然气 液化气 泄漏 漏气 抢劫 打架 持刀 家暴 晕倒 昏迷 救护车 一二零 一一九 一一零
咋整 咋弄 啥时候 俺们 俺家
""".split()

CN_DIGITS = "零一二三四五六七八九"


# ---------------------------------------------------------------- gazetteer
def _names(value) -> list[tuple[str, list[str]]]:
    """Items may be strings or dicts with name (+aliases); returns [(name, aliases)]."""
    out = []
    for item in value or []:
        if isinstance(item, str):
            out.append((item, []))
        elif isinstance(item, dict) and item.get("name"):
            aliases = item.get("aliases") or item.get("alias") or []
            out.append((str(item["name"]), [aliases] if isinstance(aliases, str) else list(aliases)))
    return out


def load_gazetteer(path: Path) -> dict:
    """Tolerant reader: districts[] each with name/aliases and lists whose key mentions street/road/landmark
    (also communities/villages → landmark); streets given as dicts may nest their own roads/landmarks."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    districts = data.get("districts") if isinstance(data, dict) else data
    gaz = {k: {} for k in ENTITY_KINDS}  # kind -> {name: [aliases]}

    def add(kind, name, aliases):
        gaz[kind].setdefault(name, [])
        for a in aliases:
            if a and a != name and a not in gaz[kind][name]:
                gaz[kind][name].append(a)

    def walk(node: dict):
        for key, value in node.items():
            if not isinstance(value, list):
                continue
            k = key.lower()
            kind = ("street" if "street" in k or "town" in k else
                    "road" if "road" in k else
                    "landmark" if any(w in k for w in ("landmark", "communit", "village", "poi", "place")) else None)
            if kind is None:
                continue
            for name, aliases in _names(value):
                add(kind, name, aliases)
            for item in value:
                if isinstance(item, dict):
                    walk(item)

    for d in districts or []:
        if isinstance(d, str):
            add("district", d, [])
            continue
        if not isinstance(d, dict) or not d.get("name"):
            continue
        aliases = d.get("aliases") or []
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        name = str(d["name"])
        if len(name) > 2 and name[-1] in "区县市":
            aliases.append(name[:-1])  # 东河区 is often just 东河
        add("district", name, aliases)
        walk(d)
    if not gaz["district"]:
        raise SystemExit(f"{path}: no districts found")
    return gaz


# ---------------------------------------------------------------- fillers
def cn_digits(s: str, yao: bool) -> str:
    out = "".join(CN_DIGITS[int(c)] if c.isdigit() else "" for c in s)
    return out.replace("一", "幺") if yao else out


def make_ticket(rng: random.Random) -> str:
    month = rng.randint(1, 12)
    digits = f"2026{month:02d}{rng.randint(1, 28):02d}{rng.randint(1, 999):04d}"
    form = rng.random()
    if form < 0.5:
        return cn_digits(digits, yao=False)
    if form < 0.75:
        return f"{digits[:8]}-{digits[8:]}"
    return digits


def make_phone(rng: random.Random) -> str:
    digits = rng.choice(["13", "15", "18", "17", "19"]) + "".join(str(rng.randint(0, 9)) for _ in range(9))
    form = rng.random()
    if form < 0.45:
        return cn_digits(digits, yao=rng.random() < 0.6)
    if form < 0.6:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return digits


def fill(line: str, gaz: dict, rng: random.Random) -> str:
    def repl(m: re.Match) -> str:
        kind = m.group(1)
        if kind == "ticket":
            return f"[{make_ticket(rng)}](ticket)"
        if kind == "phone":
            return f"[{make_phone(rng)}](phone)"
        name = rng.choice(sorted(gaz[kind]))
        aliases = gaz[kind][name]
        if aliases and rng.random() < 0.3:  # use an alias; the synonym maps it back to the canonical name
            return f"[{rng.choice(aliases)}]({kind})"
        return f"[{name}]({kind})"

    return re.sub(r"\{(district|street|road|landmark|ticket|phone)\}", repl, line)


# ---------------------------------------------------------------- callers' ways of speaking
# Wrappers and substitutions for `speak_like_a_caller`. The bot's evaluation set (benchmarks/data/) is written by
# another author and never generated from these.
OPENINGS = ["喂", "喂你好", "你好", "您好", "喂 您好", "那个", "就是", "我跟你说", "麻烦问一下", "是这样的",
            "喂 那个", "你好 我想问一下", "你好 我想反映个事", "嗯 那个", "哎你好", "喂喂", "同志你好"]
CONTEXTS = ["我是这边的老住户了", "我们这边的情况是这样", "我跟你们反映个情况啊", "这事儿好几天了",
            "我也是没办法了才打的电话", "我给你们说一下啊", "我们家住这好些年了", "我在这上班"]
CLOSINGS = ["你们管管吧", "麻烦你们给处理一下", "谢谢啊", "咋整啊", "这可咋办", "你们看看吧", "赶紧的吧",
            "帮帮忙", "你们给个说法"]
COLLOQUIAL = [("什么", "啥"), ("怎么办", "咋办"), ("怎么", "咋"), ("我们", "俺们"), ("我家", "俺家"), ("看看", "瞅瞅"),
              ("非常", "贼"), ("很", "挺")]
WRAPPED_INTENTS = ("report_", "ask_info", "urge", "query_status", "withdraw", "ask_human", "angry", "praise")
VARIANT_SHARE = 0.6  # of the training examples of those intents


def _outside_annotations(text: str, fn) -> str:  # noqa: ANN001 - str -> str
    """Apply fn to the text but not inside [value](entity) annotations."""
    parts = re.split(r"(\[[^\]]*\]\([a-z_]+\))", text)
    return "".join(p if p.startswith("[") and p.endswith(")") else fn(p) for p in parts)


def speak_like_a_caller(text: str, intent: str, rng: random.Random) -> str:
    """One spoken variant of a corpus line: a filler or greeting first, sometimes context before the point and a
    closing after it, colloquial words, and no punctuation (as the recogniser writes it)."""
    out = text
    if rng.random() < 0.5:
        for a, b in COLLOQUIAL:
            if rng.random() < 0.5:
                out = _outside_annotations(out, lambda s, a=a, b=b: s.replace(a, b))
    if intent.startswith("report_") and rng.random() < 0.35:
        out = rng.choice(CONTEXTS) + " " + out
    if rng.random() < 0.7:
        out = rng.choice(OPENINGS) + " " + out
    if (intent.startswith("report_") or intent in ("ask_info", "urge")) and rng.random() < 0.3:
        out = out + " " + rng.choice(CLOSINGS)
    out = _outside_annotations(out, lambda s: re.sub(r"[，。！？,.!?；;、]+", " ", s))
    return re.sub(r"\s+", " ", out).strip()


# ---------------------------------------------------------------- corpus
def read_corpus() -> dict[str, list[str]]:
    intents: dict[str, list[str]] = {}
    current = None
    for f in sorted(CORPUS_DIR.glob("*.txt")):
        for raw in f.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") and not line.startswith("## "):
                continue
            if line.startswith("## "):
                current = line[3:].strip()
                intents.setdefault(current, [])
                continue
            if current is None:
                raise SystemExit(f"{f}: example before any '## intent' header: {line}")
            intents[current].append(line)
    for intent, examples in intents.items():
        dup = {e for e in examples if examples.count(e) > 1}
        if dup:
            raise SystemExit(f"duplicate examples in {intent}: {sorted(dup)}")
    return intents


def _block(text: str, indent: int = 6) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}- {line}" for line in text)


def render_nlu(intents: dict[str, list[str]], header: str) -> str:
    parts = [f'version: "3.1"\n# {header}\n# GENERATED by nlu/tools/build_lookups.py from nlu/corpus/ - edit the corpus, not this file.\nnlu:']
    for intent, examples in intents.items():
        if not examples:
            continue
        parts.append(f"  - intent: {intent}\n    examples: |\n{_block(examples)}")
    return "\n".join(parts) + "\n"


def build(gaz: dict, source: Path) -> dict[Path, str]:
    rng = random.Random(SEED)
    spoken = random.Random(SEED + 1)  # its own stream: the variants never change what is held out
    corpus = read_corpus()
    train: dict[str, list[str]] = {}
    spoken_variants: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for intent, examples in corpus.items():
        train[intent], test[intent] = [], []
        for i, ex in enumerate(examples):
            filled = fill(ex, gaz, rng)
            (test if i % TEST_EVERY == 0 else train)[intent].append(filled)
        if intent.startswith(WRAPPED_INTENTS):
            variants = [speak_like_a_caller(ex, intent, spoken) for ex in train[intent]
                        if spoken.random() < VARIANT_SHARE]
            spoken_variants[intent] = [v for v in dict.fromkeys(variants) if v not in train[intent]]

    rel = source.relative_to(REPO_ROOT)
    lk = [f'version: "3.1"\n# GENERATED by nlu/tools/build_lookups.py from {rel} - do not edit.\nnlu:']
    for kind in ENTITY_KINDS:
        names = sorted(set(gaz[kind]) | {a for al in gaz[kind].values() for a in al})
        lk.append(f"  - lookup: {kind}\n    examples: |\n{_block(names)}")
    for kind in ENTITY_KINDS:
        for name, aliases in sorted(gaz[kind].items()):
            if aliases:
                lk.append(f"  - synonym: {name}\n    examples: |\n{_block(sorted(aliases))}")
    lk.append("  - regex: ticket\n    examples: |\n"
              "      - 2026[0-9]{4}-?[0-9]{4}\n"
              "      - [零〇一二三四五六七八九幺]{10,14}")
    lk.append("  - regex: phone\n    examples: |\n"
              "      - 1[3-9][0-9]{9}\n"
              "      - [幺一][三四五六七八九][零〇一二三四五六七八九幺]{9}")

    words = []
    for kind in ENTITY_KINDS:
        for name, aliases in gaz[kind].items():
            words += [name, *aliases]
    words += DOMAIN_TERMS
    seen, dict_lines = set(), []
    for w in words:
        if w not in seen and not re.search(r"\s", w):
            seen.add(w)
            dict_lines.append(f"{w} 2000 n")

    outputs = {
        OUT_LOOKUPS: "\n".join(lk) + "\n",
        OUT_TRAIN: render_nlu(train, "Training examples (80 % of nlu/corpus)."),
        OUT_SPOKEN: render_nlu(spoken_variants, "Spoken variants of the training examples (fillers, context, no punctuation)."),
        OUT_TEST: render_nlu(test, "HELD-OUT test examples (every 5th example of nlu/corpus). Never train on these."),
        OUT_DICT: "\n".join(dict_lines) + "\n",
    }
    if SAMPLE_REQUESTS.exists():
        samples: dict[str, list[str]] = {}
        for item in yaml.safe_load(SAMPLE_REQUESTS.read_text(encoding="utf-8")) or []:
            if isinstance(item, dict) and item.get("text") and item.get("category"):
                intent = "report_" + str(item["category"]).split(".", 1)[-1] if item["category"] == "other" \
                    else "report_" + str(item["category"]).replace(".", "_")
                text = re.sub(r"\s+", " ", str(item["text"])).strip()
                samples.setdefault(intent, []).append(text.replace("[", "【").replace("]", "】"))
        outputs[OUT_SAMPLES] = render_nlu(
            samples, "HELD-OUT: work_orders/seed/sample_requests.yaml (another author's requests). Never train on these."
        ).replace("from nlu/corpus/ - edit the corpus, not this file", "from work_orders/seed/sample_requests.yaml")
    return outputs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the generated files are out of date")
    args = ap.parse_args(argv)
    source = CITY_SEED if CITY_SEED.exists() else FALLBACK
    outputs = build(load_gazetteer(source), source)
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"out of date: {p.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(outputs[p], encoding="utf-8")
    print(f"gazetteer: {source.relative_to(REPO_ROOT)}; wrote {len(stale)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
