"""The hotline's Rasa input channel: one request per turn answers the bot's messages *and* what the hotline
needs to know about the turn (intent, slots, active form).

The stock REST channel returns messages only, so the hotline used to parse the text a second time
(/model/parse) and fetch the tracker: three requests and the NLU pipeline run twice per turn.  Here the
tracker is read in-process right after the message is handled.

Configured in config/rasa/credentials.yml as ``hotline_channel.HotlineInput``; `rasa run` gets ``nlu/`` on
PYTHONPATH (hotline/services/rasa.py, deploy/rasa/Dockerfile).  POST /webhooks/hotline/webhook
``{"sender", "message", "metadata"}`` → ``{"messages": [...], "intent": {...}, "slots": {...},
"active_loop": str | null}``.
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse


def install_fast_action_validation() -> None:
    """Rasa 3.6 checks each custom action's reply with ``jsonschema.validate``, which re-checks the schema
    itself against the meta-schema on every call: ~40 % of a KB turn's time here (py-spy).  Validate with a
    validator built once instead - the same schema, the same errors."""
    from jsonschema import ValidationError, validators
    from rasa.core.actions.action import DOCS_BASE_URL, RemoteAction

    if getattr(RemoteAction._validate_action_result, "_hotline_fast", False):
        return
    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (f". Failed to validate Action server response from API, make sure your response from "
                          f"the Action endpoint is valid. For more information about the format visit "
                          f"{DOCS_BASE_URL}/custom-actions")
            raise e

    _validate_action_result._hotline_fast = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


install_fast_action_validation()

# The tracker the processor saved last in this task: the turn's summary is read from it instead of fetching and
# deserialising it from the tracker store again right after it was written.
_saved_tracker: ContextVar[Optional[DialogueStateTracker]] = ContextVar("hotline_saved_tracker", default=None)


def install_saved_tracker_capture() -> None:
    if getattr(MessageProcessor.save_tracker, "_hotline_capture", False):
        return
    save_tracker = MessageProcessor.save_tracker

    async def _save_tracker(self: MessageProcessor, tracker: DialogueStateTracker) -> None:
        await save_tracker(self, tracker)
        _saved_tracker.set(tracker)

    _save_tracker._hotline_capture = True  # type: ignore[attr-defined]
    MessageProcessor.save_tracker = _save_tracker  # type: ignore[method-assign]


install_saved_tracker_capture()


def install_sequential_graph_runner() -> None:
    """Rasa runs its graphs (the NLU pipeline once a turn, the policies once an action) through dask's local
    scheduler: ~2 ms of bookkeeping a turn here for graphs of a dozen nodes that run one after another anyway.
    Run the same nodes depth first in this thread: each node once, after the nodes it needs, as dask does."""
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    if getattr(DaskGraphRunner.run, "_hotline_sequential", False):
        return

    def run(self: DaskGraphRunner, inputs: Optional[Dict[Text, Any]] = None,
            targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        schema = self._graph_schema.minimal_graph_schema(run_targets)
        results: Dict[Text, Any] = {name: (name, value) for name, value in (inputs or {}).items()}

        def output(name: Text) -> Any:
            if name not in results:
                if name not in schema.nodes:
                    return name  # dask passes a need that is neither a node nor an input through as it is
                needs = [output(need) for need in schema.nodes[name].needs.values()]
                results[name] = self._instantiated_nodes[name](*needs)
            return results[name]

        try:
            return dict(output(target) for target in run_targets)
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e

    run._hotline_sequential = True  # type: ignore[attr-defined]
    DaskGraphRunner.run = run  # type: ignore[method-assign]


install_sequential_graph_runner()


class _KeptSession:
    """``async with`` yields the endpoint's long-lived session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        return None


def keep_action_connections(endpoint: Optional[EndpointConfig]) -> None:
    """Rasa opens a new aiohttp session - and so a new TCP connection - for every custom action call; an action
    turn makes one to three.  Give the action endpoint one session whose connections are kept alive (aiohttp
    keeps an idle one 15 s, less than rasa-sdk's 120 s, so the server never closes one as it is reused)."""
    if endpoint is None or getattr(endpoint.session, "_hotline_kept", False):
        return
    new_session = endpoint.session
    kept: Optional[_KeptSession] = None

    def session() -> _KeptSession:
        nonlocal kept
        if kept is None or kept.session.closed:
            kept = _KeptSession(new_session())
        return kept

    session._hotline_kept = True  # type: ignore[attr-defined]
    endpoint.session = session  # type: ignore[method-assign]


def turn_summary(tracker: Any, text: Text) -> Dict[Text, Any]:
    """Intent of the user message just handled (the newest UserUttered with this text), slots, form."""
    intent: Dict[Text, Any] = {}
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            if event.text == text or not intent:
                intent = dict(event.intent or {})
            if event.text == text:
                break
    return {"intent": intent, "slots": tracker.current_slot_values(), "active_loop": tracker.active_loop_name}


def given_parse(text: Text, parse: Any) -> Optional[Dict[Text, Any]]:
    """The hotline's own reading of the text (the answer to the question the bot asked, a confirmed
    clarification): used as the NLU result, so Rasa's classifier is not asked and the text stays as said."""
    if not isinstance(parse, dict) or not isinstance(parse.get("intent"), str):
        return None
    entities = [e for e in parse.get("entities") or [] if isinstance(e, dict) and "entity" in e and "value" in e]
    intent = {"name": parse["intent"], "confidence": 1.0}
    return {"text": text, "intent": intent, "intent_ranking": [intent], "entities": entities}


class HotlineInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "hotline"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        module = inspect.getmodule(self)
        hook = Blueprint("hotline_webhook", module.__name__ if module else None)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message (strings) are required"}, status=400)
            metadata: Optional[Dict[Text, Any]] = body.get("metadata")
            agent = request.app.ctx.agent
            keep_action_connections(agent.action_endpoint)
            collector = CollectingOutputChannel()
            _saved_tracker.set(None)
            parse_data = given_parse(text, body.get("parse"))
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata,
                                             parse_data=parse_data))
            tracker = _saved_tracker.get()
            if tracker is None or tracker.sender_id != sender:
                tracker = await agent.tracker_store.retrieve(sender)
            summary = turn_summary(tracker, text) if tracker is not None else {"intent": {}, "slots": {},
                                                                                "active_loop": None}
            return response.json({"messages": collector.messages, **summary})

        return hook
