from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from core import audit
from core.auth import service
from core.auth.models import User
from core.auth.schemas import Token, UserCreate, UserOut, UserUpdate
from core.auth.service import AuthService
from core.deps import AdminUser, CurrentUser, SessionDep, get_container

router = APIRouter(tags=["auth"])


class AuthWiring(Protocol):
    auth: AuthService


ContainerDep = Annotated[AuthWiring, Depends(get_container)]


@router.post("/auth/token", response_model=Token)
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    container: ContainerDep,
) -> Token:
    client = request.client.host if request.client else "unknown"
    return await container.auth.login(session, form.username, form.password, client)


@router.get("/auth/me", response_model=UserOut)
async def me(user: CurrentUser) -> User:
    return user


@router.get("/users", response_model=list[UserOut])
async def list_users(session: SessionDep, _: AdminUser) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(data: UserCreate, session: SessionDep, admin: AdminUser) -> User:
    return await service.create_user(session, admin, data)


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: int, data: UserUpdate, session: SessionDep, admin: AdminUser) -> User:
    return await service.update_user(session, admin, user_id, data)


@router.get("/audit")
async def audit_log(
    session: SessionDep, _: AdminUser, object_type: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict]:
    rows = await audit.list_entries(session, object_type, min(max(limit, 1), 500), max(offset, 0))
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "username": r.username,
            "action": r.action,
            "object_type": r.object_type,
            "object_id": r.object_id,
            "detail": r.detail,
        }
        for r in rows
    ]
