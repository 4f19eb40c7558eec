"""Where every long-lived object is built and wired together (one place, passed into constructors)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from config.settings import Settings
from core.auth.service import AuthService, LoginLimiter
from core.db import Database
from core.redis import make_redis
from core.tasks import PeriodicJob
from dialogue.planner import KbHit, KbProbe
from dialogue.rasa_client import RasaClient
from dialogue.service import DialogueService
from knowledge_base.service import KnowledgeBaseService
from telephony.calls import CallRecords
from work_orders.service import WorkOrderService
from agent_handoff.service import HandoffService

log = logging.getLogger(__name__)


def kb_probe(kb: KnowledgeBaseService) -> KbProbe:
    """The dialogue service's view of the KB: the best entry for a question and how sure the search is."""

    async def probe(text: str) -> KbHit | None:
        result = await kb.search(text, None, limit=2)
        if not result.hits:
            return None
        return KbHit(result.hits[0].id, result.hits[0].title, str(result.strength.value))

    return probe


@dataclass
class Container:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    auth: AuthService
    kb: KnowledgeBaseService
    rasa: RasaClient
    dialogue: DialogueService
    work_orders: WorkOrderService
    calls: CallRecords
    handoff: HandoffService = field(init=False)  # human seats; built in __post_init__
    readiness_checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    # Domain seeders added by later packages: each returns counts of what it created.
    seeders: list[Callable[["Container"], Awaitable[dict[str, int]]]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> "Container":
        db = Database(settings.effective_database_url)
        redis = make_redis(settings.redis_url)
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            auth=AuthService(settings, LoginLimiter(redis, settings.login_rate_limit_per_minute)),
            kb=(kb := KnowledgeBaseService(db, settings)),
            rasa=(rasa := RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)),
            dialogue=DialogueService(rasa, redis, settings.rasa_timeout_seconds, kb_probe=kb_probe(kb)),
            work_orders=WorkOrderService(db, settings),
            calls=CallRecords(db),
        )

    def periodic_jobs(self) -> list[PeriodicJob]:
        from work_orders import kpi_rollup
        from work_orders.escalation import run_escalation

        return [
            PeriodicJob("work_orders.escalation", self.settings.escalation_interval_seconds,
                        lambda: run_escalation(self.work_orders)),
            PeriodicJob("work_orders.kpi_rollup", kpi_rollup.COMPACT_INTERVAL_SECONDS,
                        lambda: kpi_rollup.compact(self.db, self.work_orders.tz)),
            # Seats runtime (ARI events of the seats app, routing, callbacks, surveys) lives in the worker.
            PeriodicJob("agent_handoff.seats", 5.0, self.handoff.ensure_running),
        ]

    def __post_init__(self) -> None:
        self.work_orders.containment = self.calls.containment_rate
        self.readiness_checks.setdefault("rasa", self.rasa.ready)
        self.handoff = HandoffService(self.settings, self.db, self.redis, kb=self.kb, work_orders=self.work_orders)
        from work_orders.taxonomy import seed_work_orders

        self.seeders.append(seed_work_orders)

    async def start(self) -> None:
        async with self.db.session() as session:
            await self.auth.ensure_admin(session)
        await self.dialogue.warm_up()

    async def close(self) -> None:
        await self.handoff.stop()
        await self.rasa.close()
        await self.redis.aclose()
        await self.db.dispose()
