"""What an action does while PostgreSQL cannot be reached (restart, crash, network): the caller hears a short
apology that fits the action and is handed to a person (or, for a read-only answer, offered one), never silence
(an action that raises is a 500 at the action server: Rasa drops the turn), never a made-up answer, and never
"done" for a write that was not stored.

Two pieces, used by every action that touches the database:

- `retried(op)` runs `op` again after brief pauses while the database is unreachable. Only for what may safely
  run twice: reads, and writes under an idempotency key (the work order). A plain write (urge, withdraw, an audit
  record) is tried once: its answer may be lost after it committed.
- `@when_database_down(...)` on an action's `run`: a "database unreachable" error (core/db_errors.py) from
  anywhere in the action drops whatever the action had already said this turn and answers with the apology and
  the hand-over instead. Any other error still propagates.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from core.db_errors import database_unavailable
from nlu.actions.runtime import decision, handoff

log = logging.getLogger(__name__)
T = TypeVar("T")

# Pauses before trying again with the database unreachable. Short: the whole turn must fit in the dialogue's
# Rasa timeout (1.5 s) for the caller to hear anything (~0.7 s in all with the server down).
DB_RETRY_DELAYS = (0.15, 0.35)

Run = Callable[[Any, CollectingDispatcher, Tracker, dict], Awaitable[list[dict[str, Any]]]]


async def retried(op: Callable[[], Awaitable[T]], what: str = "database call") -> T:
    """`op()`, called again after each of DB_RETRY_DELAYS while the database is unreachable; the last error if it
    stays so. `op` must be safe to run twice (a read, or a write under an idempotency key)."""
    for pause in (*DB_RETRY_DELAYS, None):
        try:
            return await op()
        except Exception as exc:
            if pause is None or not database_unavailable(exc):
                raise
            log.info("%s: database unavailable (%s), trying again in %.2f s", what, type(exc).__name__, pause)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def when_database_down(
    text: str,
    reason: str | None,
    *,
    priority: str = "normal",
    events: Sequence[dict[str, Any]] = (),
) -> Callable[[Run], Run]:
    """Decorate an action's `run`: with the database unreachable the caller hears `text` and, with a `reason`,
    is handed over (decision "human", queue general, `priority`); without one (a read-only answer) nothing is
    handed over, `text` offers a person itself (decision "fallback"). The action returns `events` then: by
    default none, so the slots stay for the person taking over."""

    def decorate(run: Run) -> Run:
        @functools.wraps(run)
        async def guarded(self: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: dict) -> list[dict[str, Any]]:
            said = len(dispatcher.messages)
            try:
                return await run(self, dispatcher, tracker, domain)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("%s for %s: database unavailable (%s), %s", self.name(), tracker.sender_id[:16],
                            type(exc).__name__, f"handed over ({reason})" if reason else "a person offered")
            # Nothing said before the failure stands: it may tell what was not stored.
            del dispatcher.messages[said:]
            dispatcher.utter_message(text=text)
            if reason:
                dispatcher.utter_message(json_message=decision(
                    "human", category=tracker.get_slot("category"), handoff=handoff("general", priority, reason)))
            else:
                dispatcher.utter_message(json_message=decision("fallback"))
            return [dict(e) for e in events]

        return guarded

    return decorate
