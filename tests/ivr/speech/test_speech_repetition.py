"""Whisper's repetition-loop and hallucination guards (pure functions)."""

from __future__ import annotations

from ivr.speech.whisper_asr import clean_transcript, find_repetition, to_simplified, trim_repetition


def test_loop_detected_and_rejected() -> None:
    looping = "我要投诉" + "谢谢谢谢" * 6 + "谢谢谢谢谢谢谢谢"
    assert find_repetition(looping) is not None
    assert trim_repetition(looping) == ""  # mostly loop: garbage


def test_loop_trimmed_when_small_part() -> None:
    text = "我家楼下的路灯坏了坏了坏了坏了，晚上很不安全"
    assert trim_repetition(text) == "我家楼下的路灯坏了，晚上很不安全"


def test_long_ngram_loop() -> None:
    text = "请问有什么可以帮您" * 5
    start, n, count = find_repetition(text)
    assert (n, count) == (9, 5)
    assert clean_transcript(text) == ""


def test_single_character_runs() -> None:
    assert clean_transcript("嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯") == ""
    assert find_repetition("谢谢你") is None  # a doubled character is normal Chinese
    assert clean_transcript("好好学习天天向上") == "好好学习天天向上"


def test_hallucinations_and_traditional() -> None:
    assert clean_transcript("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目") == ""
    assert clean_transcript("字幕由Amara.org社区提供") == ""
    assert to_simplified("這個電話號碼") == "这个电话号码"
    assert clean_transcript("請問社保卡怎麼辦理？") == "请问社保卡怎么办理？"


def test_prompt_recital_rejected_single_hotword_kept() -> None:
    from ivr.speech.whisper_asr import WhisperRecognizer

    rec = WhisperRecognizer(hotwords=["青山市", "一二三四五热线", "社保卡", "政务服务中心"])
    hot = ["青山市", "一二三四五热线", "社保卡", "政务服务中心"]
    # Seen for real on 3 s of white noise at -25 dBFS:
    seen = "语语：青山市、一二三五热线、社保卡、政务服务中心。相关词"
    assert clean_transcript(seen, rec.prompt, hot) == ""
    assert clean_transcript("语语：青山市、一二三五热线、", rec.prompt, hot, confidence=0.37) == ""
    assert clean_transcript("青山市，社保卡，政务服务中心", rec.prompt, hot, confidence=0.4) == ""
    assert clean_transcript("社保卡在政务服务中心", rec.prompt, hot, confidence=0.85) == "社保卡在政务服务中心"
    assert clean_transcript("政务服务中心", rec.prompt, hot) == "政务服务中心"
    kept = "社保卡丢了可以到政务服务中心补办"
    assert clean_transcript(kept, rec.prompt, hot) == kept


def test_short_request_made_of_one_hot_word_is_kept_at_modest_confidence() -> None:
    from ivr.speech.whisper_asr import WhisperRecognizer

    hot = ["青山市", "转人工", "人工服务", "工单"]
    rec = WhisperRecognizer(hotwords=hot)
    # Whisper base decodes a clear 我要转人工 at ~0.55-0.7; it was dropped as a prompt echo (a call test caught it)
    assert clean_transcript("我要转人工", rec.prompt, hot, confidence=0.55) == "我要转人工"
    assert clean_transcript("转人工、人工服务", rec.prompt, hot, confidence=0.55) == ""
    assert clean_transcript("青山市转人工人工服务", rec.prompt, hot, confidence=0.5) == ""
