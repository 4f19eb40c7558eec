"""Password hashing (argon2) and bearer tokens (JWT, HS256)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def create_token(subject: str, role: str, secret: str, ttl_minutes: int, **claims: Any) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    payload = {"sub": subject, "role": role, "iat": now, "exp": now + dt.timedelta(minutes=ttl_minutes)}
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """Raises jwt.PyJWTError on a bad, tampered or expired token."""
    return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp", "role"]})
