"""Who may call what: one table over every route of the app (/v1, /open311, health, docs, consoles).

For every route that is not public: no token → 401, each role the table refuses → 403, each role it allows
gets past the auth layer (neither 401/403 nor a 5xx; path parameters are dummies, so 404/409/422 are fine).
A route missing from the table (or an entry without a route) fails `test_table_covers_every_route`.
Finer, state-dependent rules (which order transitions a department may make, department scoping) are
enforced after auth by the services and tested with them.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from starlette.routing import Mount, compile_path

from config.settings import Settings
from hotline.app import create_app
from hotline.container import Container
from tests.conftest import make_settings

CLOSED = "http://127.0.0.1:9"  # nothing listens there
PUBLIC = "public"
ADMIN = frozenset({"admin"})
SUPERVISOR = frozenset({"admin", "supervisor"})
STAFF = frozenset({"admin", "supervisor", "agent"})
ANY_USER = frozenset({"admin", "supervisor", "agent", "department"})
ROLES = ("admin", "supervisor", "agent", "department")
HEADER_KEY = {"admin": "admin", "supervisor": "supervisor", "agent": "agent", "department": "dept_a"}

# Open311 POST: an intake api_key or a staff token; without either GeoReport says 403 (not 401).
OPEN311_POST = ("api_key", frozenset({"admin", "supervisor", "agent"}))

TABLE: dict[str, Any] = {
    # docs, health, consoles (the console pages are static; their data comes through the API)
    "GET /openapi.json": PUBLIC, "GET /docs": PUBLIC, "GET /docs/oauth2-redirect": PUBLIC, "GET /redoc": PUBLIC,
    "GET /healthz": PUBLIC, "GET /readyz": PUBLIC, "GET /metrics": PUBLIC,
    "GET /console": PUBLIC, "GET /console/": PUBLIC, "GET /console/login": PUBLIC, "GET /console/agent": PUBLIC,
    "GET /console/admin": PUBLIC, "GET /console/supervisor": PUBLIC, "MOUNT /console/static": PUBLIC,
    # auth, users, audit
    "POST /v1/auth/token": PUBLIC, "GET /v1/auth/me": ANY_USER,
    "GET /v1/users": ADMIN, "POST /v1/users": ADMIN, "PATCH /v1/users/{user_id}": ADMIN, "GET /v1/audit": ADMIN,
    # knowledge base
    "GET /v1/kb/search": ANY_USER, "GET /v1/kb/entries": ANY_USER, "POST /v1/kb/entries": ADMIN,
    "GET /v1/kb/entries/{entry_id}": ANY_USER, "PUT /v1/kb/entries/{entry_id}": ADMIN,
    "DELETE /v1/kb/entries/{entry_id}": ADMIN, "POST /v1/kb/entries/{entry_id}/{action}": ADMIN,
    "GET /v1/kb/entries/{entry_id}/versions": ANY_USER, "GET /v1/kb/entries/{entry_id}/versions/{version}": ANY_USER,
    "POST /v1/kb/entries/{entry_id}/versions/{version}/restore": ADMIN,
    "POST /v1/kb/import": ADMIN, "GET /v1/kb/export": ADMIN,
    # dialogue, calls
    "POST /v1/dialogue/{session_id}": STAFF, "POST /v1/dialogue/{session_id}/end": STAFF,
    "GET /v1/calls": STAFF, "GET /v1/calls/{call_id}": STAFF,
    # work orders (transitions: all roles pass auth, the lifecycle decides per action and order)
    "POST /v1/work-orders": STAFF, "GET /v1/work-orders": ANY_USER, "GET /v1/work-orders/callbacks": STAFF,
    "POST /v1/work-orders/callbacks/{task_id}/unanswered": STAFF, "POST /v1/work-orders/escalation/run": SUPERVISOR,
    "GET /v1/work-orders/{ref}": ANY_USER,
    **{f"POST /v1/work-orders/{{ref}}/{a}": ANY_USER for a in (
        "dispatch", "accept", "start", "return", "resolve", "withdraw", "urge", "reopen", "merge", "callback", "close")},
    "GET /v1/stats/kpis": SUPERVISOR, "GET /v1/public/orders/{ticket}": PUBLIC,
    # taxonomy, intake keys
    **{f"GET /v1/taxonomy/{t}": ANY_USER for t in ("categories", "departments", "districts", "rules")},
    **{f"GET /v1/taxonomy/{t}/{{code}}": ANY_USER for t in ("categories", "departments", "districts")},
    **{f"POST /v1/taxonomy/{t}": ADMIN for t in ("categories", "departments", "districts", "rules")},
    **{f"PUT /v1/taxonomy/{t}/{{code}}": ADMIN for t in ("categories", "departments", "districts")},
    "PUT /v1/taxonomy/rules/{rule_id}": ADMIN, "GET /v1/taxonomy/route": STAFF,
    "GET /v1/intake-keys": ADMIN, "POST /v1/intake-keys": ADMIN, "DELETE /v1/intake-keys/{key_id}": ADMIN,
    # seats
    **{f"POST /v1/agents/me/{p}": STAFF for p in (
        "login", "logout", "state", "call/hold", "call/unhold", "call/hangup", "call/transfer",
        "call/transfer/complete", "call/transfer/cancel", "wrap-up", "order")},
    "GET /v1/agents/me": STAFF, "GET /v1/agents/me/call": STAFF, "GET /v1/agents/directory": STAFF,
    "GET /v1/agents/callbacks": STAFF, "WS /v1/agents/ws": STAFF,
    "GET /v1/seats": SUPERVISOR, "POST /v1/seats/agents/{agent_id}/logout": SUPERVISOR, "WS /v1/seats/ws": SUPERVISOR,
    "GET /v1/stats/calls": SUPERVISOR,
    # Open311 GeoReport v2
    "GET /open311/v2/services.json": PUBLIC, "GET /open311/v2/services/{service_code}.json": PUBLIC,
    "GET /open311/v2/requests.json": PUBLIC, "GET /open311/v2/requests/{service_request_id}.json": PUBLIC,
    "POST /open311/v2/requests.json": OPEN311_POST,
}

# A body that passes validation where auth comes after it (Open311 reads api_key from the body).
BODIES = {"POST /open311/v2/requests.json": {"service_code": "streetlight", "description": "路灯不亮了，请尽快修理"}}
DUMMY_PARAMS = {"action": "publish"}


@pytest.fixture
def settings(pg_url: str, redis_url: str) -> Settings:
    """Overrides conftest's: ARI and Rasa on a closed port, so no call reaches the servers other suites run."""
    return make_settings(pg_url, redis_url, ari_url=CLOSED, rasa_url=CLOSED)


def app_routes(app: FastAPI) -> set[str]:
    """"METHOD /path" for every route, including those inside included routers (FastAPI ≥ 0.16x keeps them
    in lazily flattened _IncludedRouter entries, so `app.routes` alone no longer lists them)."""
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = [(c.original_route, c.path) for c in iter_contexts(app.routes)] if iter_contexts \
        else [(r, getattr(r, "path", "")) for r in app.routes]
    out: set[str] = set()
    for route, path in routes:
        if isinstance(route, APIWebSocketRoute):
            out.add(f"WS {path}")
        elif isinstance(route, Mount):
            out.add(f"MOUNT {path}")
        else:
            out |= {f"{m} {path}" for m in (getattr(route, "methods", None) or {"GET"}) - {"HEAD"}}
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: DUMMY_PARAMS.get(m.group(1), "1"), path)


def _settings() -> Settings:
    return Settings(env="test", secret_key="s" * 40, admin_password="p" * 12, ari_password="a" * 12,
                    database_url="sqlite+aiosqlite://")


def test_table_covers_every_route() -> None:
    routes = app_routes(create_app(_settings()))
    assert routes - TABLE.keys() == set(), "routes without an access entry: add them to TABLE"
    assert TABLE.keys() - routes == set(), "TABLE entries without a route: remove them"


def test_routers_share_no_path() -> None:
    """hotline/app.py puts the busiest router first; that order must not decide which route answers a request,
    so no route of one router may match a path of another router's route (same method)."""
    app = create_app(_settings())
    groups = []  # per router included in the app: [(method, path, regex)]
    for top in app.routes:
        routes = []
        for context in fastapi.routing.iter_route_contexts([top]):
            if isinstance(context.original_route, (Mount, APIWebSocketRoute)):
                continue
            regex = compile_path(context.path)[0]
            methods = (getattr(context.original_route, "methods", None) or {"GET"}) - {"HEAD"}
            routes += [(m, context.path, regex) for m in methods]
        groups.append(routes)
    seen = {f"{m} {path}" for routes in groups for m, path, _ in routes}
    assert seen == {k for k in TABLE if not k.startswith(("WS ", "MOUNT "))}  # every HTTP route was compared
    clashes = [f"{m} {path} (router {i}) also matches {m2} {path2} (router {j})"
               for i, routes in enumerate(groups) for m, path, _ in routes
               for j, others in enumerate(groups) if j != i for m2, path2, regex in others
               if m2 == m and regex.match(concrete(path))]
    assert not clashes, "\n".join(clashes)


async def _call(client: httpx.AsyncClient, key: str, headers: dict[str, str]) -> httpx.Response:
    method, path = key.split(" ", 1)
    body = BODIES.get(key, {}) if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, concrete(path), json=body, headers=headers)


async def test_every_route_refuses_the_wrong_callers(
    client: httpx.AsyncClient, headers: dict[str, dict[str, str]]
) -> None:
    failures: list[str] = []
    for key, access in sorted(TABLE.items()):
        if access == PUBLIC or key.startswith(("WS ", "MOUNT ")):
            continue
        scheme, allowed = access if isinstance(access, tuple) else ("bearer", access)
        anonymous = 403 if scheme == "api_key" else 401
        r = await _call(client, key, {})
        if r.status_code != anonymous:
            failures.append(f"{key} without a token: {r.status_code}, expected {anonymous}")
        for role in ROLES:
            r = await _call(client, key, headers[HEADER_KEY[role]])
            if role not in allowed and r.status_code != 403:
                failures.append(f"{key} as {role}: {r.status_code}, expected 403")
            if role in allowed and (r.status_code in (401, 403) or r.status_code >= 500):
                failures.append(f"{key} as {role} (allowed): {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


async def test_public_routes_need_no_token(client: httpx.AsyncClient) -> None:
    for key, access in sorted(TABLE.items()):
        if access == PUBLIC and key.startswith("GET "):
            r = await _call(client, key, {})
            unready = key == "GET /readyz" and r.status_code == 503  # Rasa/Asterisk not running here
            assert r.status_code not in (401, 403) and (r.status_code < 500 or unready), (key, r.status_code)


async def _ws_first_message(app: FastAPI, path: str, token: str) -> dict[str, Any]:
    """Open a websocket straight through ASGI and return the app's first message (accept or close)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] in ("websocket.accept", "websocket.close"):
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": f"token={token}".encode(), "headers": [(b"host", b"hotline.test")],
             "client": ("127.0.0.1", 50000), "server": ("hotline.test", 80), "subprotocols": [], "state": {}}
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    return sent[0]


async def test_websockets_refuse_the_wrong_callers(
    container: Container, headers: dict[str, dict[str, str]]
) -> None:
    app = create_app(container.settings, container=container)
    for key, allowed in TABLE.items():
        if not key.startswith("WS "):
            continue
        path = key[3:]
        assert (await _ws_first_message(app, path, ""))["type"] == "websocket.close", f"{path} without a token"
        for role in ROLES:
            token = headers[HEADER_KEY[role]]["Authorization"].removeprefix("Bearer ")
            first = await _ws_first_message(app, path, token)
            expected = "websocket.accept" if role in allowed else "websocket.close"
            assert first["type"] == expected, f"{path} as {role}: {first}"
