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
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import UserUttered
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
            collector = CollectingOutputChannel()
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata))
            tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
            summary = turn_summary(tracker, text) if tracker is not None else {"intent": {}, "slots": {},
                                                                                "active_loop": None}
            return response.json({"messages": collector.messages, **summary})

        return hook
