"""The hotline's Rasa input channel module, in the Rasa venv: its speed-up of Rasa's action-reply validation
still accepts good replies and rejects bad ones, the turn summary picks the message just handled, the graph
runner gives dask's results, and the action endpoint's session is kept open."""

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

# The sequential graph runner: the targets' outputs as dask gives them, each needed node run once, others not.
import tempfile
from pathlib import Path
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage

assert DaskGraphRunner.run._hotline_sequential
calls = []


class Add(GraphComponent):
    @classmethod
    def create(cls, config, model_storage, resource, execution_context):
        return cls(config["n"])

    def __init__(self, n):
        self.n = n

    def run(self, **parts):
        calls.append(self.n)
        return self.n + sum(parts.values())


def node(n, **needs):
    return SchemaNode(needs=needs, uses=Add, constructor_name="create", fn="run", config={"n": n})


schema = GraphSchema({"a": node(1, x="text"), "b": node(10, x="a"), "c": node(100, x="a", y="b"), "unused": node(1000)})
runner = DaskGraphRunner(schema, LocalModelStorage(Path(tempfile.mkdtemp())), ExecutionContext(schema, "m"))
assert runner.run(inputs={"text": 5}, targets=["c", "b"]) == {"c": 122, "b": 16}
assert sorted(calls) == [1, 10, 100], calls

# The action endpoint keeps one session (and its connections) open; a closed one is replaced.
import asyncio
from rasa.utils.endpoints import EndpointConfig

endpoint = EndpointConfig("http://127.0.0.1:9/webhook")
hotline_channel.keep_action_connections(endpoint)
hotline_channel.keep_action_connections(endpoint)


async def sessions():
    async with endpoint.session() as first:
        pass
    async with endpoint.session() as second:
        assert second is first and not first.closed
    await first.close()
    async with endpoint.session() as third:
        assert third is not first and not third.closed
    await third.close()


asyncio.run(sessions())
print("ok")
"""


def test_channel_module_in_the_rasa_venv() -> None:
    rasa.ensure_installed()
    proc = subprocess.run([str(rasa.RASA_BIN.parent / "python"), "-c", CHECK], cwd=REPO_ROOT / "nlu",
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout[-2000:] + proc.stderr[-3000:]
