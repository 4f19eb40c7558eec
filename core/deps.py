"""FastAPI dependencies as Annotated aliases, so a route just names what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth.models import Role, User
from core.db import as_loaded, driver_fetch
from core.errors import Forbidden, Unauthorized
from core.security import decode_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_container(request: Request) -> Any:
    """The process's container (`hotline/container.py`, the top, which the floor does not import). A router names
    the part of it that it uses as a Protocol: `Annotated[KbWiring, Depends(get_container)]`."""
    # A coroutine: FastAPI runs a plain-def dependency in a worker thread, a thread hop for every request.
    return request.app.state.container


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.container.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def authenticate(request: Request, session: AsyncSession, token: str | None) -> User:
    if not token:
        raise Unauthorized("not authenticated: send a bearer token from POST /v1/auth/token")
    secret = request.app.state.container.settings.secret_key
    try:
        claims = decode_token(token, secret)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired; log in again") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("invalid token") from None
    user = await load_user(session, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("user no longer active")
    return user


async def get_current_user(request: Request, session: SessionDep, token: TokenDep) -> User:
    return await authenticate(request, session, token)


_USER_COLUMNS = tuple(column.name for column in User.__table__.columns)
_USER_BY_ID = f"SELECT {', '.join(_USER_COLUMNS)} FROM users WHERE id = $1"


async def load_user(session: AsyncSession, user_id: int) -> User | None:
    """The user's row, read for every authenticated request (a deactivated user or a changed role counts at
    once). On PostgreSQL one statement straight through the driver, before the request's transaction begins
    (a read needs none; BEGIN would be one more round trip, and on the intake path, which writes through the
    driver too, COMMIT another), instead of the ORM's `session.get` (building and caching its query cost more
    CPU than the whole lookup). The User comes back detached, every column loaded, not put into the session."""
    if session.bind.dialect.name != "postgresql":
        return await session.get(User, user_id)
    rows = await driver_fetch(session, _USER_BY_ID, (user_id,))
    return as_loaded(User, dict(rows[0])) if rows else None


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[..., object]:
    allowed = {r.value for r in roles}

    # Authenticates itself rather than depending on get_current_user: each level of dependencies costs FastAPI
    # noticeable CPU on every request.
    async def check(request: Request, session: SessionDep, token: TokenDep) -> User:
        user = await authenticate(request, session, token)
        if user.role not in allowed:
            raise Forbidden(f"role {user.role!r} may not do this (needs {', '.join(sorted(allowed))})")
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
StaffUser = Annotated[User, Depends(require_roles(Role.admin, Role.supervisor, Role.agent))]
SupervisorUser = Annotated[User, Depends(require_roles(Role.admin, Role.supervisor))]
AnyStaffUser = Annotated[
    User, Depends(require_roles(Role.admin, Role.supervisor, Role.agent, Role.department))
]
