"""Users and login. Login attempts are rate-limited per username+client in Redis (in-process if Redis is down)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from core import audit
from core.auth.models import Role, User
from core.auth.schemas import Token, UserCreate, UserUpdate
from core.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from core.security import create_token, hash_password, verify_password

log = logging.getLogger(__name__)


class LoginLimiter:
    def __init__(self, redis: aioredis.Redis, per_minute: int) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self._local: dict[str, list[float]] = defaultdict(list)

    async def hit(self, key: str) -> None:
        """Count one failed attempt; raise 429 once the minute's budget is spent."""
        try:
            rkey = f"login:fail:{key}"
            count = await self.redis.incr(rkey)
            if count == 1:
                await self.redis.expire(rkey, 60)
        except Exception:  # noqa: BLE001 - Redis down: fall back to this process
            now = time.monotonic()
            window = [t for t in self._local[key] if now - t < 60] + [now]
            self._local[key] = window
            count = len(window)
        if count > self.per_minute:
            raise TooManyRequests("too many failed logins; try again in a minute")

    async def blocked(self, key: str) -> bool:
        try:
            value = await self.redis.get(f"login:fail:{key}")
            count = int(value or 0)
        except Exception:  # noqa: BLE001
            now = time.monotonic()
            count = len([t for t in self._local[key] if now - t < 60])
        return count >= self.per_minute


class AuthService:
    def __init__(self, settings: Settings, limiter: LoginLimiter) -> None:
        self.settings = settings
        self.limiter = limiter

    async def login(self, session: AsyncSession, username: str, password: str, client: str) -> Token:
        key = f"{username}:{client}"
        if await self.limiter.blocked(key):
            raise TooManyRequests("too many failed logins; try again in a minute")
        user = await session.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active or not verify_password(password, user.password_hash):
            await self.limiter.hit(key)
            raise Unauthorized("incorrect username or password")
        ttl = self.settings.token_ttl_minutes
        token = create_token(str(user.id), user.role, self.settings.secret_key, ttl, dept=user.department_code)
        return Token(access_token=token, expires_in=ttl * 60, role=Role(user.role))

    async def ensure_admin(self, session: AsyncSession) -> None:
        """Create the first admin from settings if no admin exists yet."""
        exists = await session.scalar(select(User.id).where(User.role == Role.admin.value).limit(1))
        if exists:
            return
        session.add(
            User(
                username=self.settings.admin_user,
                display_name="系统管理员",
                password_hash=hash_password(self.settings.admin_password),
                role=Role.admin.value,
            )
        )
        await session.commit()
        log.info("created first admin user %s", self.settings.admin_user)


async def create_user(session: AsyncSession, actor: User, data: UserCreate) -> User:
    if await session.scalar(select(User.id).where(User.username == data.username)):
        raise Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        role=data.role.value,
        department_code=data.department_code,
        sip_endpoint=data.sip_endpoint,
        skills=",".join(data.skills),
    )
    session.add(user)
    await session.flush()
    audit.record(session, actor, "user.create", "user", user.id, username=user.username, role=user.role)
    await session.commit()
    return user


async def update_user(session: AsyncSession, actor: User, user_id: int, data: UserUpdate) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    changes = data.model_dump(exclude_unset=True)
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        changes["password"] = "changed"
    if "skills" in changes and changes["skills"] is not None:
        user.skills = ",".join(changes["skills"])
    for field in ("role", "display_name", "department_code", "sip_endpoint", "is_active"):
        if field in changes and changes[field] is not None:
            value = changes[field]
            setattr(user, field, value.value if isinstance(value, Role) else value)
    if user.role == Role.department.value and not user.department_code:
        raise Conflict("department users need a department_code")
    audit.record(session, actor, "user.update", "user", user.id, fields=sorted(changes))
    await session.commit()
    return user
