"""One caller turn read in the light of the question the bot asked: answer it ourselves, or tell the bot.

The bot (Rasa) keeps the conversation's forms and actions; this planner decides what the caller meant:

* the answer to the question asked fills that question (an address stays an address, a yes is a yes), and a
  category in progress is never replaced silently;
* a first turn the classifier is unsure of is clarified in words the caller understands (confirm one reading,
  choose between two, offer the KB entry the search found) before anyone is asked to rephrase;
* the read-back before an order is committed takes a correction of the part the caller names.

`plan()` returns a :class:`Plan`: either replies of our own (a clarification, a repair, a prompt) or the turn to
send to the bot, with the understanding already decided (`parse`) where we know better than its classifier.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dialogue import replies
from dialogue.rasa_client import Parse
from dialogue.state import DialogueState, Pending
from understanding.address import match_address
from understanding.answers import is_backchannel, read_choice, read_digits, read_yes_no
from understanding.emergency import detect_emergency
from understanding.categories import Category, category_of_intent, load_categories
from understanding.expect import Expect
from understanding.gazetteer import Gazetteer, load_gazetteer

log = logging.getLogger(__name__)

KB_PROBE_SECONDS = 0.8
HIGH = 0.75  # a first-turn reading at least this sure goes straight to the bot
LOW = 0.3  # a report reading below this is no reading at all
CLOSE = 0.15  # two readings this close: ask which
DESTRUCTIVE = {"withdraw": 0.9}  # intents that undo something need more certainty (else: confirm)
CONFIRM_OTHER = {"withdraw": "您是要撤销之前反映的问题吗？"}
GREETING = re.compile(r"你好|您好|喂")
HUMAN_CUE = re.compile(r"人工|真人|接线员|转客服|找客服|人工客服|转接")
ADDRESS_WORDS = re.compile(r"[路街道巷号楼栋院村镇乡]|小区|门口|附近|旁边|对面|路口|大厦|广场|市场|学校|医院|公园")
_PLAIN = re.compile(r"[\s，,。.、！!？?~…]+")
PLACE_KINDS = ("district", "street", "road", "landmark")

ParseFn = Callable[[str], Awaitable[Parse]]


@dataclass(frozen=True)
class KbHit:
    entry_id: int
    title: str
    strength: str  # "strong" (answer it) | "plausible" (offer it) | "none"


KbProbe = Callable[[str], Awaitable[KbHit | None]]


@dataclass
class Plan:
    replies: list[str] = field(default_factory=list)  # said by us (no bot turn) when `forward` is None
    action: str = "clarify"
    expect: Expect = Expect.FREE
    intent: str | None = None
    category: str | None = None
    handoff: dict[str, str] | None = None
    forward: str | None = None  # the text to send to the bot
    parse: dict[str, Any] | None = None  # the understanding decided for it (None: the bot's classifier reads it)
    confidence: float | None = None
    set_slots: dict[str, Any] | None = None  # slots to set before anything else (a correction)
    readback_after: bool = False  # after setting slots, read the order back again

    @classmethod
    def to_bot(cls, text: str, intent: str | None = None, entities: list[dict[str, Any]] | None = None,
               confidence: float | None = None) -> "Plan":
        parse = {"intent": intent, "entities": entities or []} if intent else None
        return cls(forward=text, parse=parse, confidence=confidence)

    @classmethod
    def say(cls, text: str, expect: Expect = Expect.FREE, action: str = "clarify", **kw: Any) -> "Plan":
        return cls(replies=[text], expect=expect, action=action, **kw)


def kb_entity(hit: KbHit) -> dict[str, Any]:
    """The KB entry chosen for the question (the KB action answers this one, not its own search's top)."""
    return {"entity": "kb_entry", "value": str(hit.entry_id)}


def handoff_plan(reason: str, category: str | None = None) -> Plan:
    return Plan(replies=["好的，正在为您转接人工客服，请稍候。"], action="human", category=category,
                handoff={"queue": "general", "priority": "normal", "reason": reason})


def place_entities(text: str, gazetteer: Gazetteer) -> tuple[list[dict[str, Any]], Any]:
    """The address's places as the bot's entities (district by its name, as the bot's lookup tables say it)."""
    m = match_address(text, gazetteer)
    entities: list[dict[str, Any]] = []
    if m.district:
        d = gazetteer.district(m.district)
        if d is not None:
            entities.append({"entity": "district", "value": d.name})
    for kind in ("street", "road", "landmark"):
        value = getattr(m, kind, None)
        if value:
            entities.append({"entity": kind, "value": value})
    return entities, m


class TurnPlanner:
    def __init__(self, parse: ParseFn, kb_probe: KbProbe | None = None, gazetteer: Gazetteer | None = None,
                 categories: dict[str, Category] | None = None) -> None:
        self.parse = parse
        self.kb_probe = kb_probe
        self.gazetteer = gazetteer or load_gazetteer()
        self.categories = categories or load_categories()

    def warm_up(self) -> None:
        match_address("青山区人民路十八号", self.gazetteer)
        detect_emergency("你好")

    # ------------------------------------------------------------------ entry
    async def plan(self, state: DialogueState, text: str, slots: dict[str, Any]) -> Plan:
        expect, pending = state.expecting, state.pending
        if HUMAN_CUE.search(text) and expect is not Expect.FREE:
            return Plan.to_bot(text, "ask_human")
        if pending is not None:
            planned = await self._pending(state, pending, text, slots)
            if planned is not None:
                return planned
        if expect is Expect.YES_NO and state.requested_slot == "phone_confirmed":
            return await self._readback_answer(state, text, slots)
        if expect is Expect.ADDRESS:
            return await self._address(state, text, slots)
        if expect is Expect.DESCRIPTION:
            return Plan.to_bot(text, "inform")
        if expect is Expect.PHONE:
            digits = read_digits(text)
            if digits and len(digits) >= 7:
                return Plan.to_bot(digits, "inform", [{"entity": "phone", "value": digits}])
            return self._repair(state, Expect.PHONE)
        return await self._free(state, text)

    def _repair(self, state: DialogueState, expect: Expect) -> Plan:
        return Plan.say(replies.repair(expect, state.misses), expect, action="collecting",
                        category=None)

    # ------------------------------------------------------------------ a first turn / a new request
    async def _free(self, state: DialogueState, text: str) -> Plan:
        if state.asked_more and len(text) <= 6 and read_yes_no(text) is False:  # "还有别的吗？" "没有了"
            return Plan.say(replies.GOODBYE, action="chitchat", intent="goodbye")
        if is_backchannel(text):
            intent = "greet" if GREETING.search(text) else "chitchat"
            return Plan.say(replies.GO_AHEAD, action="chitchat", intent=intent)
        p, kb = await asyncio.gather(self.parse(text), self._probe(text))
        ranking = [(i, c) for i, c in p.ranking if i != "nlu_fallback"]
        intent = p.intent if p.intent != "nlu_fallback" else None
        if intent in ("affirm", "deny") and read_yes_no(text) is None:
            intent = None  # a yes/no reading of words that hold no yes or no (babble): not understood
        top, conf = (ranking[0] if ranking else (None, 0.0))
        entities = [e for e in p.entities if e.get("entity") in (*PLACE_KINDS, "ticket", "phone")]
        if intent is not None and intent.startswith("report_") and conf >= HIGH:
            return Plan.to_bot(text, intent, self._with_places(text, entities), conf)
        if intent is not None and not intent.startswith("report_") and intent != "ask_info":
            need = DESTRUCTIVE.get(intent)
            if need is not None and conf < need:
                state.pending = Pending("intent", text, [intent], entities)
                return Plan.say(CONFIRM_OTHER[intent], Expect.YES_NO, intent=intent, confidence=conf)
            return Plan.to_bot(text, intent, entities, conf)
        # A KB question, unsure, or nothing at all: what the KB and the category words say.
        strong = kb is not None and kb.strength == "strong"
        plausible = kb is not None and kb.strength == "plausible"
        if strong and (intent == "ask_info" or not (top or "").startswith("report_") or conf < LOW):
            return Plan.to_bot(text, "ask_info", [*entities, kb_entity(kb)], conf)
        if intent == "ask_info" and plausible:
            return self._offer(state, text, kb)
        if intent == "ask_info":
            return Plan.to_bot(text, "ask_info", entities, conf)
        reports = [(i, c) for i, c in ranking if i.startswith("report_")]
        cue = self._category_cue(text)
        if reports and reports[0][1] >= LOW:
            first, c1 = reports[0]
            if len(reports) > 1 and c1 - reports[1][1] < CLOSE and reports[1][1] >= LOW:
                state.pending = Pending("choice", text, [first, reports[1][0]], entities)
                names = [self._spoken(first), self._spoken(reports[1][0])]
                return Plan.say(replies.choose_category(*names), Expect.CHOICE, confidence=c1)
            return self._confirm(state, text, first, entities, c1)
        if cue is not None:
            return self._confirm(state, text, cue, entities, conf)
        if kb is not None and (strong or plausible):
            return self._offer(state, text, kb)
        return Plan.to_bot(text, intent or "nlu_fallback", entities, conf)

    async def _probe(self, text: str) -> KbHit | None:
        """The KB's best entry for the text; a search that is slow (an index being rebuilt) counts as none."""
        if self.kb_probe is None:
            return None
        try:
            async with asyncio.timeout(KB_PROBE_SECONDS):
                return await self.kb_probe(text)
        except TimeoutError:
            log.warning("KB probe slower than %.1f s: not used for this turn", KB_PROBE_SECONDS)
        except Exception:  # noqa: BLE001 - the KB is an aid here; the bot's own KB action still answers
            log.exception("KB probe failed")
        return None

    def _offer(self, state: DialogueState, text: str, kb: KbHit) -> Plan:
        state.pending = Pending("kb", text, entities=[kb_entity(kb)], kb_title=kb.title)
        return Plan.say(replies.offer_kb(kb.title), Expect.YES_NO)

    def _confirm(self, state: DialogueState, text: str, intent: str, entities: list[dict[str, Any]],
                 conf: float) -> Plan:
        state.pending = Pending("intent", text, [intent], entities)
        return Plan.say(replies.confirm_category(self._spoken(intent)), Expect.YES_NO,
                        category=category_of_intent(intent), confidence=conf)

    def _spoken(self, intent: str) -> str:
        code = category_of_intent(intent) or ""
        cat = self.categories.get(code)
        return cat.spoken if cat else "相关"

    def _category_cue(self, text: str) -> str | None:
        """A category whose own words (the taxonomy's keywords) the caller used: the longest match wins."""
        best: tuple[int, str] | None = None
        for cat in self.categories.values():
            for word in cat.keywords:
                if len(word) >= 2 and word in text and (best is None or len(word) > best[0]):
                    best = (len(word), cat.intent)
        return best[1] if best else None

    def _with_places(self, text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A report whose places the classifier missed or made up ("路灯坏了，载清山区、人民路…": the recogniser's
        homophones): the gazetteer's reading by sound when it names more places, and the address written properly
        (the bot takes it as the address)."""
        found = [e for e in entities if e.get("entity") in PLACE_KINDS]
        places, m = place_entities(text, self.gazetteer)
        if not m.normalized or m.ambiguous or len(places) <= len(found):
            return entities  # the classifier named as many places: its spans give the address (with its details)
        others = [e for e in entities if e.get("entity") not in PLACE_KINDS]  # "山区" is no place of this city
        return [*others, *places, {"entity": "address", "value": m.normalized}]

    # ------------------------------------------------------------------ our own questions
    async def _pending(self, state: DialogueState, pending: Pending, text: str,
                       slots: dict[str, Any]) -> Plan | None:
        yes = read_yes_no(text)
        if pending.kind == "choice":
            names = [self._spoken(i) for i in pending.intents]
            idx = read_choice(text, names)
            if idx is not None:
                state.pending = None
                return Plan.to_bot(pending.text, pending.intents[idx], pending.entities)
            if yes is False:
                return self._clarification_failed(state)
            return None if len(text) > 8 else self._repair(state, Expect.CHOICE)
        if pending.kind == "district":
            entities, m = place_entities(text, self.gazetteer)
            if m.district:
                state.pending = None
                d = self.gazetteer.district(m.district)
                return await self._address(state, f"{d.name if d else ''}{pending.text}", slots)
            return self._repair(state, Expect.ADDRESS)
        if pending.kind == "correction":
            if yes is True:  # "哪一项不对？" "都对，没错": the order stands as read back
                state.pending = None
                return Plan.to_bot(text, "affirm")
            return await self._correction(state, text, slots, bare_no_again=yes is False)
        # yes/no to: one reading, a KB offer, a category change
        if yes is True:
            state.pending = None
            state.clarifications = 0
            if pending.kind == "kb":
                return Plan.to_bot(pending.text, "ask_info", pending.entities)
            if pending.kind == "category_change":
                return Plan(replies=[replies.corrected(f"反映{self._spoken(pending.intents[0])}方面的问题")
                                     + "请问具体地址在哪里？"],
                            expect=Expect.ADDRESS, action="collecting",
                            set_slots={"category": category_of_intent(pending.intents[0])},
                            category=category_of_intent(pending.intents[0]))
            return Plan.to_bot(pending.text, pending.intents[0], pending.entities)
        if yes is False:
            if pending.kind == "category_change":
                state.pending = None
                current = self._spoken(f"report_{(slots.get('category') or 'other').replace('.', '_')}")
                return Plan.say(f"好的，还是按{current}方面的问题登记。请问具体地址在哪里？", Expect.ADDRESS,
                                action="collecting")
            return self._clarification_failed(state)
        if len(text) > 6:  # not an answer to our question: the caller said something new
            state.pending = None
            return None
        return self._repair(state, Expect.YES_NO)

    def _clarification_failed(self, state: DialogueState) -> Plan:
        state.pending = None
        state.clarifications += 1
        if state.clarifications >= 2:
            return handoff_plan("clarification_failed")
        return Plan.say(replies.ASK_AGAIN)

    # ------------------------------------------------------------------ the form's questions
    async def _address(self, state: DialogueState, text: str, slots: dict[str, Any]) -> Plan:
        entities, m = place_entities(text, self.gazetteer)
        if m.ambiguous and not m.district and m.road:  # the road is in several districts: which one?
            state.pending = Pending("district", text, road=m.road)
            return Plan.say(replies.ask_district(m.road), Expect.ADDRESS, action="collecting")
        if entities:
            return Plan.to_bot(m.normalized or text, "inform", entities)
        p = await self.parse(text)
        current = slots.get("category")
        if p.intent and p.intent.startswith("report_") and p.confidence >= HIGH \
                and category_of_intent(p.intent) != current and not ADDRESS_WORDS.search(text):
            state.pending = Pending("category_change", text, [p.intent])
            return Plan.say(replies.confirm_category_change(self._spoken(p.intent)), Expect.YES_NO)
        if p.intent in ("ask_human", "angry", "withdraw", "query_status", "urge"):
            return Plan.to_bot(text, p.intent, p.entities)
        if len(text) >= 3 and ADDRESS_WORDS.search(text):  # a place the map doesn't know: taken as said
            return Plan.to_bot(text, "inform")
        return self._repair(state, Expect.ADDRESS)

    async def _readback_answer(self, state: DialogueState, text: str, slots: dict[str, Any]) -> Plan:
        yes = read_yes_no(text)
        if yes is None and re.match(r"^(对的|对|是的|没错|嗯)[，, ]", text) and not re.search(r"不|错", text):
            yes = True  # "对的，就是这个号"
        if yes is True:
            return Plan.to_bot(text, "affirm")
        if yes is False or len(text) > 2:
            return await self._correction(state, text, slots, bare_no_again=False, adds=yes is None)
        return self._repair(state, Expect.YES_NO)

    async def _correction(self, state: DialogueState, text: str, slots: dict[str, Any], *,
                          bare_no_again: bool, adds: bool = False) -> Plan:
        """"不对，是东河区" changes the part named and keeps the rest; a bare "不对" asks which part. With `adds`
        (the answer to the read-back was neither yes nor no), words that change no part are more about the
        problem ("路灯一直不亮已经三天了"): they go into the description and the order is read back again."""
        content = re.sub(r"^(不对|不是|错了|说错了|不)[\s，,。.、]*(是|应该是|在)?", "", text).strip(" ，,。")
        changes: dict[str, Any] = {}
        said: list[str] = []
        about_problem = False  # the words speak of the problem (its kind named, or read as a report)
        if content:
            entities, m = place_entities(content, self.gazetteer)
            if entities:
                changes |= self._address_change(slots, content, m)
                said.append(changes.get("address", ""))
            digits = read_digits(content)
            if digits and len(digits) >= 7:
                changes["caller_phone"] = digits
                said.append("电话" + replies.spoken_phone(digits))
            cue = self._category_cue(content)
            if not entities and cue is None and len(content) >= 4:
                p = await self.parse(content)
                if p.intent and p.intent.startswith("report_") and p.confidence >= 0.5:
                    cue = p.intent
                about_problem = p.intent == "inform" and p.confidence >= 0.5
            about_problem = about_problem or cue is not None
            if cue is not None and category_of_intent(cue) != slots.get("category"):
                changes["category"] = category_of_intent(cue)
                said.append(f"反映{self._spoken(cue)}方面的问题")
        if changes:
            state.pending = None
            return Plan(replies=[replies.corrected("，".join(s for s in said if s))], expect=Expect.YES_NO,
                        action="collecting", set_slots=changes, readback_after=True)
        if adds:  # neither yes nor no: more about the problem, or no answer to the read-back at all
            if not about_problem or len(_PLAIN.sub("", content)) < 5:
                return self._repair(state, Expect.YES_NO)
            description = "；".join(p for p in (str(slots.get("description") or ""), content) if p)
            return Plan(replies=[replies.NOTED], expect=Expect.YES_NO, action="collecting",
                        set_slots={"description": description[:500]}, readback_after=True)
        if state.pending is not None and state.pending.kind == "correction" and bare_no_again:
            return handoff_plan("confirmation_refused", slots.get("category"))
        if state.pending is None or state.pending.kind != "correction":
            state.pending = Pending("correction", text)
            return Plan.say(replies.WHICH_PART, Expect.FREE, action="collecting")
        return self._repair(state, Expect.FREE)

    def _address_change(self, slots: dict[str, Any], content: str, m: Any) -> dict[str, Any]:
        """Only a district named: the district of the address read back changes, the rest stays."""
        old = str(slots.get("address") or "")
        d = self.gazetteer.district(m.district) if m.district else None
        only_district = d is not None and not any(getattr(m, k, None) for k in ("street", "road", "landmark"))
        if only_district and old:
            rest = old
            for other in self.gazetteer.districts:
                for name in (other.name, other.short):
                    if rest.startswith(name):
                        rest = rest[len(name):]
                        break
            address = d.name + rest
        else:
            address = m.normalized or content
        out: dict[str, Any] = {"address": address}
        if d is not None:
            out["district"] = d.name
        return out
