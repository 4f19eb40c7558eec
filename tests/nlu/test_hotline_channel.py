"""The hotline's Rasa input channel module, in the Rasa venv: its speed-up of Rasa's action-reply validation
still accepts good replies and rejects bad ones, and the turn summary picks the message just handled."""

from __future__ import annotations

import subprocess

from hotline.services import rasa
from tests.conftest import REPO_ROOT

CHECK = r"""
import hotline_channel
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

assert RemoteAction._validate_action_result._hotline_fast
action = RemoteAction.__new__(RemoteAction)
assert action._validate_action_result({"events": [{"event": "slot", "name": "x", "value": 1}], "responses": []})
for bad in ({"events": "nope"}, {"responses": [1]}):
    try:
        action._validate_action_result(bad)
    except ValidationError as e:
        assert "Failed to validate Action server response" in e.message
    else:
        raise SystemExit(f"accepted {bad}")

tracker = DialogueStateTracker.from_events("s", [
    UserUttered("社保卡丢了", {"name": "ask_info", "confidence": 0.9}),
    ActionExecuted("action_listen"),
    UserUttered("我要转人工", {"name": "request_human", "confidence": 0.8}),
    SlotSet("category", "other"),
])
summary = hotline_channel.turn_summary(tracker, "我要转人工")
assert summary["intent"]["name"] == "request_human", summary
assert hotline_channel.turn_summary(tracker, "社保卡丢了")["intent"]["name"] == "ask_info"
assert summary["slots"].get("category") == "other" and summary["active_loop"] is None
print("ok")
"""


def test_channel_module_in_the_rasa_venv() -> None:
    rasa.ensure_installed()
    proc = subprocess.run([str(rasa.RASA_BIN.parent / "python"), "-c", CHECK], cwd=REPO_ROOT / "nlu",
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout[-2000:] + proc.stderr[-3000:]
