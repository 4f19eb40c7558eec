"""FastAPI dependencies as Annotated aliases, so a route just names what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.auth.models import Role, User
from hotline.errors import Forbidden, Unauthorized
from hotline.security import decode_token

if TYPE_CHECKING:
    from hotline.container import Container

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def get_container(request: Request) -> "Container":
    return request.app.state.container


ContainerDep = Annotated["Container", Depends(get_container)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.container.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_current_user(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
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
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("user no longer active")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[..., object]:
    allowed = {r.value for r in roles}

    async def check(user: CurrentUser) -> User:
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
