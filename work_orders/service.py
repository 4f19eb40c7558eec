"""Work-order logic (no HTTP): intake with routing, repeat-call linking and hotspots, the lifecycle, callbacks.

`WorkOrderService` is one object put together from its parts, each in its own module:

- service_base.py: state, taxonomy helpers, reading, public tracking, the write steps the others share
- intake.py: `create` (pg_statements.py: its single-statement lookup and write on PostgreSQL)
- lifecycle_actions.py: dispatch, accept, start, return, resolve, withdraw, urge, reopen, merge, close
- callbacks.py: the callback survey (回访)

Every public write method is one transaction and commits before returning, so a ticket number handed back
to the caller (bot, IVR, agent, intake channel) is already durable.
"""

from __future__ import annotations

from work_orders.callbacks import Callbacks
from work_orders.intake import Intake
from work_orders.lifecycle_actions import LifecycleActions
from work_orders.service_base import OPEN_VALUES, SYSTEM, CreatedOrder, SystemActor, role_of

__all__ = ["OPEN_VALUES", "SYSTEM", "CreatedOrder", "SystemActor", "WorkOrderService", "role_of"]


class WorkOrderService(Intake, LifecycleActions, Callbacks):
    """Intake, the lifecycle, callbacks, reading: see the modules above."""
