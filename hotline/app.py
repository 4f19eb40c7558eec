"""The FastAPI application: every router under /v1, health and metrics at the root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from config.settings import Settings, get_settings
from hotline import health, web
from core.auth.api import router as auth_router
from hotline.container import Container
from core.errors import install_error_handlers
from core.forms import FormCharsetMiddleware
from dialogue.api import router as dialogue_router
from telephony.api import router as calls_router
from knowledge_base.api import router as kb_router
from work_orders import api as wo_api, open311, taxonomy_api
from agent_handoff import api as seats_api


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or Container.build(settings)
        if owned:
            await app.state.container.start()
        try:
            yield
        finally:
            if owned:
                await app.state.container.close()

    app = FastAPI(
        title="12345 市民服务热线 API",
        version="0.1.0",
        description="Self-hosted citizen-service hotline: knowledge base, work orders, dialogue, calls, seats.",
        lifespan=lifespan,
    )
    if container is not None:
        app.state.container = container
    install_error_handlers(app)
    app.add_middleware(FormCharsetMiddleware)  # form fields read as UTF-8 (core/forms.py)
    app.add_middleware(health.MetricsMiddleware)

    # Each router straight under the app, busiest first: FastAPI matches a request against the routes in order,
    # and a router nested in another (a /v1 router) is matched again at every level. No two routers share a path.
    for router in (wo_api.router, auth_router, kb_router, dialogue_router, calls_router, wo_api.stats_router,
                   wo_api.public_router, taxonomy_api.router, open311.keys_router, seats_api.router,
                   seats_api.seats_router, seats_api.stats_router):
        app.include_router(router, prefix="/v1")
    app.include_router(open311.router)
    app.include_router(health.router)
    web.install(app)  # the consoles at /console/ (static pages over this API)
    return app
