"""The services the actions use, built once per action-server process on its own event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from config.settings import Settings, get_settings
from core.db import Database
from knowledge_base.service import KnowledgeBaseService
from work_orders.service import SystemActor, WorkOrderService

BOT = SystemActor(username="bot", role="agent")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    kb: KnowledgeBaseService
    work_orders: WorkOrderService


_runtime: Runtime | None = None
_lock = asyncio.Lock()


def _import_models() -> None:
    """The tables the KB and work-order services write, and those their foreign keys point at (users)."""
    import core.audit  # noqa: F401
    import core.auth.models  # noqa: F401
    import knowledge_base.models  # noqa: F401
    import work_orders.models  # noqa: F401


async def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        async with _lock:
            if _runtime is None:
                _import_models()  # foreign keys (e.g. audit_log → users) need those tables' metadata
                settings = get_settings()
                db = Database(settings.effective_database_url)
                _runtime = Runtime(settings, db, KnowledgeBaseService(db, settings), WorkOrderService(db, settings))
    return _runtime


def decision(action: str, **fields: Any) -> dict[str, Any]:
    """The JSON message the dialogue API reads."""
    return {"hotline": {"action": action, **{k: v for k, v in fields.items() if v is not None}}}


def handoff(queue: str, priority: str, reason: str) -> dict[str, str]:
    return {"queue": queue, "priority": priority, "reason": reason}
