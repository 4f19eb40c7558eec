"""Password hashing (argon2) and bearer tokens (JWT, HS256)."""

from __future__ import annotations

import datetime as dt
import time
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


# Tokens whose signature was verified (secret, token) -> claims: a client sends the same token with every request,
# and checking it costs more CPU than the rest of the auth. Only verified tokens get in; expiry is checked on
# every use. Bounded: the oldest entries go first.
_verified: dict[tuple[str, str], dict[str, Any]] = {}
VERIFIED_TOKENS_KEPT = 4096


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """Raises jwt.PyJWTError on a bad, tampered or expired token."""
    key = (secret, token)
    claims = _verified.get(key)
    if claims is None:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp", "role"]})
        if len(_verified) >= VERIFIED_TOKENS_KEPT:
            _verified.pop(next(iter(_verified)), None)
        _verified[key] = claims
    elif int(claims["exp"]) <= time.time():  # as PyJWT decides it
        _verified.pop(key, None)
        raise jwt.ExpiredSignatureError("Signature has expired")
    return dict(claims)
