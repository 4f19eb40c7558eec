"""Shared fixtures: real PostgreSQL (and SQLite) databases migrated by Alembic, real Redis, the app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import delete, inspect, text

from config.settings import Settings
from hotline.app import create_app
from core.auth.models import Role, User
from hotline.container import Container
from core.db import Base, Database
from hotline.models import import_all_models
from hotline.migrate import upgrade
from core.security import hash_password
from tests import services

if TYPE_CHECKING:
    from hotline.services.actions import ActionServer
    from hotline.services.rasa import RasaServer

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
import_all_models()

TEST_REDIS_DB = int(os.environ.get("HOTLINE_TEST_REDIS_DB", "9"))  # another DB lets two test runs share a Redis
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    services.ensure_postgres()
    url, name = await services.create_pg_database()
    await asyncio.to_thread(upgrade, url)
    yield url
    await services.drop_pg_database(name)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'hotline.db'}"
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.ensure_redis()
    return f"redis://127.0.0.1:{services.REDIS_PORT}/{TEST_REDIS_DB}"


RASA_TRACKER_TEST_DB = 10
RASA_LOCK_TEST_DB = 11
# Databases other suites own (and flush or rely on) on the same Redis: the `container` fixture flushes
# TEST_REDIS_DB, so one of these would wipe, e.g., the Rasa trackers of every test run on this machine.
RESERVED_REDIS_DBS = {7: "IVR controller tests", 8: "web tests", RASA_TRACKER_TEST_DB: "Rasa trackers",
                      RASA_LOCK_TEST_DB: "Rasa locks"}
if TEST_REDIS_DB in RESERVED_REDIS_DBS:
    raise pytest.UsageError(f"HOTLINE_TEST_REDIS_DB={TEST_REDIS_DB} is the Redis database of the "
                            f"{RESERVED_REDIS_DBS[TEST_REDIS_DB]}; choose another (e.g. 0-6 or 9)")


@pytest.fixture(scope="session")
def rasa_model() -> Path:
    from hotline.services import rasa

    rasa.ensure_installed()
    return rasa.ensure_model()


@pytest.fixture(scope="session")
def action_server(pg_url: str, redis_url: str) -> Iterator["ActionServer"]:
    """The real rasa-sdk action server, on the session's PostgreSQL test database."""
    from hotline.services import actions, rasa

    server = actions.start_server(rasa.free_port(), env={"DATABASE_URL": pg_url, "REDIS_URL": redis_url,
                                                          "HOTLINE_ENV": "test"})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rasa_server(rasa_model: Path, action_server: "ActionServer") -> Iterator["RasaServer"]:
    """One real `rasa run --enable-api` per session, trackers in Redis test DBs, actions wired in."""
    from hotline.services import rasa

    services.ensure_redis()
    server = rasa.start_server(
        port=rasa.free_port(),
        model=rasa_model,
        env={"REDIS_PORT": services.REDIS_PORT, "RASA_TRACKER_DB": RASA_TRACKER_TEST_DB,
             "RASA_LOCK_DB": RASA_LOCK_TEST_DB, "ACTION_ENDPOINT_URL": action_server.webhook},
    )
    rasa.warm_up(server.url)
    try:
        yield server
    finally:
        rasa.stop_server()


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Storage tests parametrize this with ["postgresql", "sqlite"] (indirect) to run on both."""
    return request.param


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        admin_password=PASSWORD,
        ari_password="test-ari",
        **overrides,
    )


async def prepare_database(url: str, redis_url: str) -> None:
    """Migrate and seed a fresh database as `make setup` does (the admin, the KB, the city)."""
    from hotline.seed import seed_all

    await asyncio.to_thread(upgrade, url)
    container = Container.build(make_settings(url, redis_url))
    try:
        await seed_all(container)
    finally:
        await container.close()


async def reset_database(db: Database) -> None:
    async with db.engine.connect() as conn:
        existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name in existing]
    async with db.engine.begin() as conn:
        if db.backend == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(delete(table))


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: str, redis_url: str) -> Settings:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    return make_settings(url, redis_url)


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    c = Container.build(settings)
    await reset_database(c.db)
    try:
        await c.redis.flushdb()
    except Exception:  # noqa: BLE001 - tests that stop Redis clean up themselves
        pass
    await c.start()
    yield c
    await c.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as c:
        yield c


async def add_user(container: Container, username: str, role: Role, department_code: str | None = None) -> User:
    async with container.db.session() as session:
        user = User(
            username=username,
            display_name=username,
            password_hash=hash_password(PASSWORD),
            role=role.value,
            department_code=department_code,
        )
        session.add(user)
        await session.commit()
        return user


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = await client.post("/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def headers(client: httpx.AsyncClient, container: Container) -> dict[str, dict[str, str]]:
    """Bearer headers per role: admin, supervisor, agent, dept_a (department A), dept_b."""
    await add_user(container, "super", Role.supervisor)
    await add_user(container, "agent", Role.agent)
    await add_user(container, "dept_a", Role.department, "municipal")
    await add_user(container, "dept_b", Role.department, "water")
    return {
        "admin": await login(client, container.settings.admin_user),
        "supervisor": await login(client, "super"),
        "agent": await login(client, "agent"),
        "dept_a": await login(client, "dept_a"),
        "dept_b": await login(client, "dept_b"),
    }


REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the speech-engine tests first, in a fresh process: after the IVR controller suite has used Whisper
    in the same process they saw empty transcripts (under investigation, see the session notes)."""
    items.sort(key=lambda item: 0 if "tests/ivr/speech/" in str(item.path) else 1)
