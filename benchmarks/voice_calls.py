"""Multi-turn voice calls that end right (issue 13 item 6): real SIP calls through Asterisk, one scenario per call.

    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/voice_calls.py             # every scenario, by voice
    .venv/bin/python benchmarks/voice_calls.py --text                     # the same scenarios by text (no Asterisk)
    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/voice_calls.py --both --kind work_order --limit 5
    flock /tmp/hotline-asterisk.lock .venv/bin/python benchmarks/voice_calls.py --only water-01
    ... --resume        # skip the scenarios already in --out (a JSON line per call, written as each one ends)

Brings up benchmarks/ivr_stack.py's throw-away stack (dev Asterisk, fresh SQLite database, Rasa + action
server with the cached model, the IVR controller). For each scenario of benchmarks/data/voice_scenarios.yaml
the test caller (tests/support/sip_caller.py) dials 12345 in a voice of its own (tests/support/voices.py: speed
±15 %, pitch ±10 %, level, line noise - chosen from the scenario id), says the opening, then listens: it
transcribes what the bot said with the project's recogniser, decides from the words what was asked and answers
from the scenario (a correction at the first read-back if the scenario has one; "1" on the keypad for the first
yes/no if `keypad: true`). Whether the call ended right is read from the stack's records, not from what the
caller heard: the call record and its turns, the order in the database (category, district, ticket read
back), the transfer and its priority, the order's events.

--text runs the same scenarios over `POST /v1/dialogue/{session}` with the same answer logic on the reply
text (no Asterisk needed); --both runs text, then voice, and prints them side by side.

Scenario (YAML list):
    - id: water-01
      kind: work_order        # work_order | kb_answer | emergency | human | urge | status_query
      opening: "喂 你好 我们小区从昨天晚上就没水了"
      answers: {address: "...", district: "东河区", description: "...", yes_no: "对", ticket: "...", phone: "..."}
      correction: "不对 是东河区"   # optional: said at the first read-back instead of yes
      keypad: false                 # optional: the first yes/no answered with "1" on the keypad
      expect: {category: utilities.water, district: donghe}   # or {kb: "<KB title>"} / {emergency: fire}
                                                              # / {human: true} / {action: urge|status_query}
Urge and status-query scenarios get an order of their own created before the call (category: expect.category
or a street light), owned by the calling number; a ticket in the scenario's words is replaced by its ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.voice_common import (  # noqa: E402
    DialogueApi, Ear, Records, audio_between, bench_stack, caller_number, check_lock, has_number,
    processor_model, short, spoken_digits, wait_reply,
)

SCENARIOS = REPO / "benchmarks" / "data" / "voice_scenarios.yaml"
KINDS = ("work_order", "kb_answer", "emergency", "human", "urge", "status_query")
MAX_TURNS = 10
EMERGENCY_NUMBERS = {"fire": "119", "smoke": "119", "gas": "119", "rescue": "119", "trapped": "119",
                     "medical": "120", "drowning": "120", "injury": "120", "suicide": "110",
                     "crime": "110", "violence": "110", "police": "110", "weapon": "110", "missing": "110",
                     "traffic": "122"}
_DIGIT_RUN = re.compile(r"[0-9零〇一二三四五六七八九幺两洞\-杠 ]{8,}")


# ================================================================================================ the caller
# What the bot asked, from the words the caller heard (the recogniser's transcript, or the reply text).
ASKS: list[tuple[str, re.Pattern[str]]] = [
    ("emergency", re.compile(r"(?<![0-9零〇一二三四五六七八九幺两])(一一九|一二[零〇]|一一[零〇]|幺幺九|幺二[零〇]|幺幺[零〇]"
                             r"|119|120|110)(?![0-9零〇一二三四五六七八九幺两])")),
    ("human", re.compile(r"转接|请稍候|请稍后|请稍等|不要挂机|正在为您转")),
    ("ticket_read", re.compile(r"(工单|单号|编号).{0,8}[0-9零〇一二三四五六七八九幺]{6,}|已受理|已为您登记|已登记")),
    ("anything_else", re.compile(r"还有其他|还有别的|还有什么")),
    ("which_part", re.compile(r"哪里不对|哪儿不对|哪个地方不对")),
    ("yes_no", re.compile(r"对吗|对嘛|对么|是吗|是嘛|对不对|是不是|确认|正确请按|吗[？?。]?\s*$")),
    ("district", re.compile(r"哪个区|哪一个区|什么区")),
    ("address", re.compile(r"地址|在哪里|在哪儿|在什么地方|哪条路|位置")),
    ("ticket", re.compile(r"(工单号|单号|编号).{0,6}(多少|是什么|[？?])|请.{0,6}(说|提供|告诉|报).{0,6}(工单|单号|编号)")),
    ("phone", re.compile(r"(电话|号码).{0,6}(多少|是什么|[？?])|请.{0,6}(说|留|提供|告诉|报).{0,6}(电话|号码)")),
    ("description", re.compile(r"具体情况|说一下|什么问题|描述|详细")),
    ("repeat", re.compile(r"没听清|再说一遍|换个说法|没有听清|请重新")),
    ("go_ahead", re.compile(r"您请讲|有什么可以帮|请说出您的问题|请直接说")),
]
HUMAN_WORD = re.compile(r"人工")
HUMAN_OFFER = re.compile(r"请说.{0,2}转人工|如果需要人工|需要人工服务|转人工服务请按")


def what_was_asked(heard: str) -> str:
    heard = heard.strip()
    for name, pattern in ASKS:
        if pattern.search(heard):
            if name == "yes_no" and re.search(r"请按[一二三1-3].{0,6}请按", heard):  # the keypad menu
                return "menu"
            return name
    if HUMAN_WORD.search(heard) and not HUMAN_OFFER.search(heard):
        return "human"
    if re.search(r"请按[一二三1-3]", heard):
        return "menu"
    return "statement"


@dataclass
class Answer:
    text: str = ""  # what to say
    dtmf: str = ""  # or keys to press
    why: str = ""


class Caller:
    """The caller's side of a scenario: the same for voice and text."""

    def __init__(self, sc: dict[str, Any], caller: str, ticket: str | None) -> None:
        self.sc = sc
        self.answers: dict[str, str] = {k: str(v) for k, v in (sc.get("answers") or {}).items() if v is not None}
        self.caller = caller
        self.ticket = ticket
        self.corrected = not sc.get("correction")
        self.keypad_left = bool(sc.get("keypad"))
        self.repeats = 0
        self.last: Answer = Answer(self.opening())
        self.said_opening = 1

    def with_ticket(self, text: str) -> str:
        """A ticket in the scenario's words → the ticket of the order made for this call, said as digits."""
        if not self.ticket or not text:
            return text
        digits = spoken_digits(self.ticket.replace("-", ""))
        for run in _DIGIT_RUN.findall(text):
            if len(re.sub(r"[^0-9零〇一二三四五六七八九幺两洞]", "", run)) >= 8:
                return text.replace(run.strip(), digits)
        return text

    def opening(self) -> str:
        return self.with_ticket(str(self.sc["opening"]))

    def sentences(self) -> list[str]:
        """Everything this caller may say (rendered before dialling: a caller doesn't pause to think)."""
        out = [self.opening(), *(self.with_ticket(v) for v in self.answers.values()), "对", "没有了 谢谢"]
        if self.sc.get("correction"):
            out.append(str(self.sc["correction"]))
        out.append(spoken_digits(self.caller))
        return list(dict.fromkeys(t for t in out if t))

    def next(self, heard: str) -> Answer | None:
        """What to say to what was heard; None: the call is over for this caller."""
        asked = what_was_asked(heard)
        a = self._answer(asked, heard)
        if a is not None:
            a.why = asked
            self.last = a
        return a

    def _or_restate(self, answer: str | None) -> Answer | None:
        """A question the scenario has no answer for (an urge taken for a new report asks for the address): the
        caller says what they want again, once; then gives up."""
        if answer:
            return Answer(answer)
        self.said_opening += 1
        return Answer(self.opening()) if self.said_opening <= 2 else None

    def _answer(self, asked: str, heard: str) -> Answer | None:
        ans = self.answers
        if asked in ("emergency", "human", "ticket_read", "anything_else", "statement"):
            return None
        if asked == "yes_no":
            readback = re.search(r"确认|反映的是|您反映", heard) is not None
            if readback and not self.corrected:
                self.corrected = True
                return Answer(str(self.sc["correction"]))
            if self.keypad_left:
                self.keypad_left = False
                return Answer(dtmf="1")
            return Answer(ans.get("yes_no") or "对")
        if asked == "which_part":  # "请问哪里不对？" after a bare no: the right part, else the address again
            return self._or_restate(str(self.sc.get("correction") or "") or ans.get("address") or ans.get("district"))
        if asked == "district":
            return self._or_restate(ans.get("district") or ans.get("address"))
        if asked == "address":
            return self._or_restate(ans.get("address") or ans.get("district"))
        if asked == "ticket":
            return self._or_restate(self.with_ticket(ans.get("ticket", "")) or (
                spoken_digits(self.ticket.replace("-", "")) if self.ticket else ""))
        if asked == "phone":
            return Answer(ans.get("phone") or spoken_digits(self.caller))
        if asked == "description":
            return Answer(ans.get("description") or self.opening())
        if asked == "menu":
            return Answer(dtmf="0" if self.sc.get("kind") == "human" else "2" if self.sc.get("kind") == "work_order"
                          else "1")
        if asked == "repeat":
            self.repeats += 1
            return Answer(self.last.text, self.last.dtmf) if self.repeats <= 2 else None
        if asked == "go_ahead":
            self.said_opening += 1
            return Answer(self.opening()) if self.said_opening <= 2 else None
        return None


# ================================================================================================ one conversation
@dataclass
class Step:
    said: str  # what the caller said (or "[key 1]")
    heard: str  # what the caller heard back (voice: the recogniser's transcript; text: the reply)
    asked: str = ""  # what the caller took it for


@dataclass
class Result:
    id: str
    kind: str
    mode: str
    ok: bool = False
    reason: str = ""
    seconds: float = 0.0
    voice: str = ""
    steps: list[Step] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # the stack's turn records (bot side)
    call: dict[str, Any] = field(default_factory=dict)


async def prepare_order(api_or_container: Any, sc: dict[str, Any], caller: str) -> str | None:
    """An order of the caller's own for urge/status-query scenarios; its ticket."""
    if sc.get("kind") not in ("urge", "status_query"):
        return None
    from work_orders.schemas import WorkOrderCreate
    from work_orders.service import SYSTEM

    container = api_or_container
    expect = sc.get("expect") or {}
    data = WorkOrderCreate(category=str(expect.get("category") or "lighting.streetlight"),
                           description="路灯晚上不亮（基准预置工单）", address="青山区人民路十八号",
                           caller_phone=caller, link_repeats=False)
    async with container.db.session() as session:
        created = await container.work_orders.create(session, SYSTEM, data)
    return created.ticket


async def run_text(sc: dict[str, Any], api: DialogueApi, db: Records) -> Result:
    t0 = time.monotonic()
    caller = caller_number(sc["id"], "text")
    ticket = await prepare_order(api.container, sc, caller)
    me = Caller(sc, caller, ticket)
    res = Result(sc["id"], sc.get("kind", "?"), "text")
    session = api.new_session("vc-text")
    said: Answer | None = Answer(me.opening())
    first = True
    for _ in range(MAX_TURNS):
        if said is None:
            break
        text = said.text if not said.dtmf else ("对" if said.dtmf == "1" else said.dtmf)  # the IVR's keypad yes
        out = await api.turn(session, text, caller if first else None)
        first = False
        reply = "".join(out.get("replies") or [])
        res.records.append({"transcript": text, "action": out.get("action"), "category": out.get("category"),
                            "intent": out.get("intent"), "reply": reply, "kb_entry_id": out.get("kb_entry_id"),
                            "ticket": (out.get("work_order") or {}).get("ticket"),
                            "priority": (out.get("handoff") or {}).get("priority"),
                            "degraded": out.get("degraded")})
        nxt = me.next(reply)
        res.steps.append(Step(f"[key {said.dtmf}]" if said.dtmf else said.text, reply, what_was_asked(reply)))
        said = nxt
    await api.end(session)
    res.ok, res.reason = judge(sc, res, db, ticket)
    res.seconds = time.monotonic() - t0
    return res


async def run_voice(sc: dict[str, Any], stack: Any, ear: Ear, db: Records, container: Any) -> Result:
    from tests.support.sip_caller import SipCaller
    from tests.support.voices import voice_for

    t0 = time.monotonic()
    caller = caller_number(sc["id"], "voice")
    ticket = await prepare_order(container, sc, caller)
    me = Caller(sc, caller, ticket)
    voice = voice_for(sc["id"])
    res = Result(sc["id"], sc.get("kind", "?"), "voice", voice=str(voice))
    pcm = {s: await ear.mouth(s, voice) for s in me.sentences()}  # before dialling
    async with SipCaller(user=caller) as ua:
        call = await ua.dial("12345", timeout=30)
        greeting = await wait_reply(call, 0.0, first_timeout=20)
        said: Answer | None = Answer(me.opening()) if greeting else None
        if greeting is None:
            res.steps.append(Step("", "(no greeting)", "silence"))
        for _ in range(MAX_TURNS):
            if said is None or call.ended.is_set():
                break
            if said.dtmf:
                await call.send_dtmf(said.dtmf)
                end = time.monotonic()
            else:
                audio = pcm.get(said.text)
                if audio is None:  # not foreseen (e.g. an empty answer): rendered now
                    audio = pcm[said.text] = await ear.mouth(said.text or "嗯", voice)
                end = await call.play(audio)
            got = await wait_reply(call, end)
            if got is None:
                res.steps.append(Step(f"[key {said.dtmf}]" if said.dtmf else said.text, "(silence)", "silence"))
                break
            heard = await ear.hear(audio_between(call, *got))
            res.steps.append(Step(f"[key {said.dtmf}]" if said.dtmf else said.text, heard, what_was_asked(heard)))
            said = me.next(heard)
            if said is None and res.steps[-1].asked in ("human", "emergency"):
                await asyncio.sleep(2.0)  # let the handover begin before the caller hangs up
        if not call.ended.is_set():
            await call.hangup()
    call_id = db.last_call(caller)
    if call_id is not None:
        res.call = await db.wait_finished(call_id)
        res.records = db.call_turns(call_id)
        for r in res.records:
            r["priority"] = None
            r["ticket"] = None
        res.call["call_id"] = call_id
    res.ok, res.reason = judge(sc, res, db, ticket)
    res.seconds = time.monotonic() - t0
    return res


# ================================================================================================ ended right?
def trail(res: Result, upto: int = 4) -> str:
    """The bot's side, turn by turn: what it heard → what it did."""
    parts = []
    for i, r in enumerate([r for r in res.records if r.get("speaker", "caller") == "caller"][:upto], 1):
        what = r.get("action") or "?"
        if r.get("category"):
            what += f"/{r['category']}"
        if r.get("degraded"):
            what += "(degraded: bot too slow)"
        said = f"key {r['dtmf']}" if r.get("dtmf") else f"'{short(r.get('transcript'), 22)}'"
        parts.append(f"t{i} {said}→{what} '{short(r.get('reply'), 20)}'")
    if not parts and res.steps:
        parts.append(f"caller heard '{short(res.steps[-1].heard, 40)}'")
    return "; ".join(parts) or "no turns recorded"


def judge(sc: dict[str, Any], res: Result, db: Records, pre_ticket: str | None) -> tuple[bool, str]:
    """(ended right, a one-line reason when not)."""
    kind = sc.get("kind")
    expect = sc.get("expect") or {}
    recs = [r for r in res.records if r.get("speaker", "caller") == "caller"]
    replies = " ".join(r.get("reply") or "" for r in recs)
    actions = [r.get("action") for r in recs]
    if res.mode == "voice" and not res.call:
        return False, "no call record: " + (short(res.steps[-1].heard, 40) if res.steps else "call not placed")
    if kind == "work_order":
        ticket = res.call.get("ticket") if res.mode == "voice" else next(
            (r["ticket"] for r in reversed(recs) if r.get("ticket")), None)
        order = db.order(ticket) if ticket else None
        if order is None:
            orders = db.orders_of(caller_number(sc["id"], res.mode))
            if orders:
                o = orders[-1]
                return False, f"order {o['category']}/{o['district']} made but no ticket in the call; " + trail(res)
            return False, "no order: " + trail(res)
        districts = db.districts()
        want_cat, want_d = expect.get("category"), expect.get("district")
        bad = []
        if want_cat and order["category"] != want_cat:
            bad.append(f"category {order['category']} ≠ {want_cat}")
        if want_d and order["district"] != districts.get(str(want_d), want_d):
            bad.append(f"district {order['district']} ≠ {want_d} (address '{short(order['address'], 20)}')")
        if ticket not in replies:
            bad.append("ticket not read back")
        return (not bad), ("; ".join(bad) + " | " + trail(res)) if bad else ""
    if kind == "kb_answer":
        want = expect.get("kb")
        want_id = db.kb_id(str(want)) if want else None
        if want_id is None:
            return False, f"KB title {want!r} not in the seeded KB"
        answered: list[tuple[int | None, str | None]] = []
        for r in recs:
            if r.get("action") != "kb_answer":
                continue
            if r.get("kb_entry_id") is not None:
                answered.append((r["kb_entry_id"], db.kb_title(r["kb_entry_id"])))
            else:
                hit = db.kb_in_reply(r.get("reply") or "")
                answered.append(hit if hit else (None, None))
        if any(i == want_id for i, _ in answered):
            return True, ""
        if answered:
            return False, f"answered '{answered[-1][1] or '?'}' instead | " + trail(res)
        return False, "no KB answer | " + trail(res)
    if kind == "emergency":
        if not recs:
            return False, "no turn recorded | " + trail(res)
        first = recs[0]
        number = EMERGENCY_NUMBERS.get(str(expect.get("emergency", "")).lower())
        numbers = [number] if number else ["110", "119", "120", "122"]
        bad = []
        if first.get("action") != "emergency":
            bad.append(f"first turn {first.get('action')}")
        if not any(has_number(first.get("reply") or "", n) for n in numbers):
            bad.append(f"reply names no {'/'.join(numbers)}")
        if res.mode == "voice":
            if res.call.get("outcome") != "transferred":
                bad.append(f"outcome {res.call.get('outcome')}")
            # The record keeps a priority only when the seats took the call; the controller says "紧急转接" for an
            # emergency transfer (ivr/controller/prompts.py TRANSFER_EMERGENCY), which the caller heard.
            heard = res.steps[0].heard if res.steps else ""
            if res.call.get("priority") not in ("emergency", None) or (
                    res.call.get("priority") is None and not re.search(r"紧急", heard)):
                bad.append(f"not sent on as an emergency (priority {res.call.get('priority')}, "
                           f"heard '{short(heard, 30)}')")
        elif first.get("priority") != "emergency":
            bad.append(f"handoff priority {first.get('priority')}")
        return (not bad), ("; ".join(bad) + " | " + trail(res)) if bad else ""
    if kind == "human":
        if res.mode == "voice":
            ok = res.call.get("outcome") == "transferred"
            return ok, "" if ok else f"outcome {res.call.get('outcome')} | " + trail(res)
        ok = any(a in ("human", "emergency") or r.get("priority") for a, r in zip(actions, recs))
        return ok, "" if ok else "not transferred | " + trail(res)
    if kind in ("urge", "status_query"):
        order = db.order(pre_ticket) if pre_ticket else None
        if order is None:
            return False, "the scenario's order was not made"
        if kind == "urge" or expect.get("action") == "urge":
            n = db.events(order["id"], "urge")
            return n > 0, "" if n > 0 else "order not urged | " + trail(res)
        ok = any(r.get("action") == "status_query" and pre_ticket in (r.get("reply") or "") for r in recs)
        return ok, "" if ok else "status not read out | " + trail(res)
    return False, f"unknown kind {kind!r}"


# ================================================================================================ running
def load_scenarios(path: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(items, dict):
        items = items.get("scenarios") or []
    out = [s for s in items if isinstance(s, dict) and s.get("id") and s.get("opening")]
    if args.only:
        out = [s for s in out if s["id"] in args.only]
    if args.kind:
        out = [s for s in out if s.get("kind") in args.kind]
    return out[: args.limit] if args.limit else out


def load_done(path: Path, mode: str) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("mode") == mode:
                done[r["id"]] = r
    return done


def print_line(r: dict[str, Any], n: int, total: int) -> None:
    mark = "ok  " if r["ok"] else "FAIL"
    extra = "" if r["ok"] else f"  {r['reason']}"
    print(f"[{r['mode']} {n}/{total}] {mark} {r['id']:<16} {r['kind']:<12} {r['seconds']:5.1f} s{extra}", flush=True)


def summary(results: list[dict[str, Any]], mode: str) -> dict[str, tuple[int, int]]:
    by: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by[r["kind"]].append(bool(r["ok"]))
    table = {k: (sum(v), len(v)) for k, v in by.items()}
    table["overall"] = (sum(r["ok"] for r in results), len(results))
    return table


def print_summary(tables: dict[str, dict[str, tuple[int, int]]], results: dict[str, list[dict[str, Any]]]) -> None:
    modes = list(tables)
    print("\n" + "kind".ljust(14) + "".join(f"{m + ': right / calls':>26}" for m in modes))
    kinds = [k for k in (*KINDS, *sorted({k for t in tables.values() for k in t} - set(KINDS) - {"overall"}))
             if any(k in t for t in tables.values())] + ["overall"]
    for k in kinds:
        cells = []
        for m in modes:
            ok, n = tables[m].get(k, (0, 0))
            cells.append(f"{ok:>5} / {n:<4} {100 * ok / n:5.1f} %" if n else f"{'-':>19}")
        print(k.ljust(14) + "".join(f"{c:>26}" for c in cells))
    if len(modes) == 2:
        a, b = (tables[m]["overall"] for m in modes)
        if a[1] and b[1]:
            print(f"{modes[1]} − {modes[0]}: {100 * (b[0] / b[1] - a[0] / a[1]):+.1f} points")
    for m in modes:
        bad = [r for r in results[m] if not r["ok"]]
        if bad:
            print(f"\n{m}: {len(bad)} failed")
            for r in bad:
                print(f"  {r['id']:<16} {r['kind']:<12} {r['reason']}")


async def main_async(args: argparse.Namespace) -> int:
    path = Path(args.scenarios)
    if not path.exists():
        print(f"no scenarios at {path}", file=sys.stderr)
        return 2
    scenarios = load_scenarios(path, args)
    if not scenarios:
        print("no scenario matches", file=sys.stderr)
        return 2
    modes = ["text", "voice"] if args.both else ["text"] if args.text else ["voice"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.resume and out.exists():
        out.unlink()
    started = time.monotonic()
    print(f"processor: {processor_model()}; {len(scenarios)} scenarios from {path.relative_to(REPO) if path.is_relative_to(REPO) else path}; "
          f"modes: {', '.join(modes)}; results: {out}", flush=True)
    check_lock("voice" in modes)
    results: dict[str, list[dict[str, Any]]] = {}
    async with bench_stack(voice="voice" in modes, redis_db=args.redis_db) as stack:
        db = Records(stack.db_path)
        for mode in modes:
            done = load_done(out, mode) if args.resume else {}
            todo = [s for s in scenarios if s["id"] not in done]
            if done:
                print(f"{mode}: {len(done)} scenarios already in {out}, {len(todo)} to run", flush=True)
            results[mode] = [done[s["id"]] for s in scenarios if s["id"] in done]
            t_mode = time.monotonic()
            async with DialogueApi(stack.settings, stack.rasa_url, args.rasa_timeout) as api:
                ear = await Ear().load() if mode == "voice" else None
                for n, sc in enumerate(todo, 1):
                    try:
                        if mode == "text":
                            res = await run_text(sc, api, db)
                        else:
                            res = await run_voice(sc, stack, ear, db, api.container)
                        r = asdict(res)
                    except Exception as exc:  # noqa: BLE001 - one broken call must not end the run
                        r = {"id": sc["id"], "kind": sc.get("kind", "?"), "mode": mode, "ok": False,
                             "reason": f"benchmark error {type(exc).__name__}: {exc}", "seconds": 0.0}
                    with out.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    results[mode].append(r)
                    print_line(r, len(results[mode]), len(scenarios))
                    if args.verbose and r.get("steps"):
                        for s in r["steps"]:
                            print(f"      caller: {short(s['said'], 40):<42} heard: {short(s['heard'], 60)} [{s['asked']}]")
            print(f"{mode}: {len(todo)} conversations in {time.monotonic() - t_mode:.0f} s", flush=True)
    tables = {m: summary(results[m], m) for m in modes}
    print_summary(tables, results)
    print(f"\nprocessor: {processor_model()}; wall time {time.monotonic() - started:.0f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=str(SCENARIOS))
    ap.add_argument("--only", nargs="+", help="scenario ids")
    ap.add_argument("--kind", nargs="+", choices=KINDS)
    ap.add_argument("--limit", type=int, default=0, help="the first N scenarios (after --only/--kind)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--text", action="store_true", help="by text over /v1/dialogue instead of voice")
    g.add_argument("--both", action="store_true", help="text, then voice; both printed")
    ap.add_argument("--out", default=str(REPO / "var" / "bench" / "voice_calls.jsonl"),
                    help="a JSON line per conversation, written as it ends")
    ap.add_argument("--resume", action="store_true", help="keep --out and skip the scenarios already there")
    ap.add_argument("--redis-db", type=int, default=11)
    ap.add_argument("--rasa-timeout", type=float, default=None, metavar="S",
                    help="the text side's bot timeout (default: HOTLINE_RASA_TIMEOUT_SECONDS, 1.5 s): a slower turn "
                         "degrades to the keypad menu, as in production; raise it on a loaded machine")
    ap.add_argument("-v", "--verbose", action="store_true", help="print what the caller said and heard")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
