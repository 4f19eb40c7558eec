"""The part of the process's container the work-order routers use (`hotline/container.py` provides it)."""

from __future__ import annotations

from typing import Annotated, Protocol

import redis.asyncio as aioredis
from fastapi import Depends

from config.settings import Settings
from core.deps import get_container
from work_orders.service import WorkOrderService


class WorkOrdersWiring(Protocol):
    settings: Settings
    redis: aioredis.Redis
    work_orders: WorkOrderService


ContainerDep = Annotated[WorkOrdersWiring, Depends(get_container)]
