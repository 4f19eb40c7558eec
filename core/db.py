"""SQLAlchemy 2 async storage: one declarative Base, engine/session factories, both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

ModelT = TypeVar("ModelT", bound="Base")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes on both backends (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(_dbapi_connection, _record, connection: PoolProxiedConnection) -> None:
    """Instead of `pool_pre_ping` (which costs BEGIN, a ping and ROLLBACK: three round trips per checkout): a
    connection the server has closed (restart, crash, terminated backend) is known to be closed locally, the
    driver sees the end of the stream while it sits in the pool. Such a connection is replaced on checkout, and
    with it every connection older than it (after a restart they are all gone), as a failed ping would do.
    A connection that broke without the server closing it (a network cut) is found by its first statement,
    as it would be by a ping."""
    if connection.driver_connection.is_closed():
        raise InvalidatePoolError("connection closed by the server")


def as_loaded(model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """An ORM object as if read from its row: the given columns set (the others expired), no change history,
    detached (`session.add` makes it persistent without a query). Built the way the ORM's loader builds the
    objects of a query, without `__init__` and its attribute events (≈ 70 µs for a 10-column row)."""
    obj = sa_inspect(model).class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    return obj


async def driver_fetch(session: AsyncSession, sql: str, args: Sequence[Any]) -> list[Any]:
    """Run SQL (PostgreSQL, `$1` parameters) straight through the driver (asyncpg) on the session's connection:
    a tenth of the client CPU of a statement through the ORM session. Inside the session's transaction once it
    has begun one (its first statement through SQLAlchemy sends BEGIN); before that, the statement commits by
    itself. Driver errors come out as SQLAlchemy's (IntegrityError for a unique violation), as they would
    through the session."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    try:
        return await raw.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        error = IntegrityError if isinstance(exc, asyncpg.IntegrityConstraintViolationError) else DBAPIError
        raise error(sql, args, exc) from exc


class Database:
    """Owns the engine and hands out sessions; one per process, created at start-up."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

