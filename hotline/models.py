"""The model registry: every package's tables, so `Base.metadata` is complete (Alembic, tests, `hotline`).
The top is the one place that knows every domain; a domain imports only the models it uses."""

from __future__ import annotations


def import_all_models() -> None:
    """Import every package's models so Base.metadata is complete (Alembic, tests)."""
    import core.audit  # noqa: F401
    import core.auth.models  # noqa: F401
    import knowledge_base.models  # noqa: F401
    import work_orders.models  # noqa: F401
    import agent_handoff.models  # noqa: F401
    import telephony.models  # noqa: F401
