from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
import jwt

from hotline.container import Container
from core.logging import mask_phone
from core.security import create_token, hash_password, verify_password
from tests.conftest import PASSWORD, login


async def test_first_admin_created_and_password_hashed(client: httpx.AsyncClient, container: Container) -> None:
    from sqlalchemy import select

    from core.auth.models import User

    async with container.db.session() as session:
        admin = await session.scalar(select(User).where(User.username == container.settings.admin_user))
    assert admin is not None and admin.role == "admin"
    assert PASSWORD not in admin.password_hash and admin.password_hash.startswith("$argon2")
    h = await login(client, "admin")
    me = await client.get("/v1/auth/me", headers=h)
    assert me.status_code == 200 and me.json()["role"] == "admin"


async def test_wrong_password_401_and_rate_limited(client: httpx.AsyncClient, container: Container) -> None:
    for _ in range(container.settings.login_rate_limit_per_minute):
        r = await client.post("/v1/auth/token", data={"username": "admin", "password": "nope-nope"})
        assert r.status_code == 401
        assert "incorrect" in r.json()["detail"]
    r = await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429


async def test_expired_and_tampered_tokens_rejected(client: httpx.AsyncClient, container: Container) -> None:
    secret = container.settings.secret_key
    expired = jwt.encode(
        {"sub": "1", "role": "admin", "exp": dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)}, secret
    )
    r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    forged = create_token("1", "admin", "another-secret-another-secret-123", 5)
    r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401


async def test_admin_manages_users_others_cannot(client: httpx.AsyncClient, headers: dict) -> None:
    body = {"username": "new_agent", "password": "long-enough-pw", "role": "agent", "skills": ["综合", "法律"]}
    r = await client.post("/v1/users", json=body, headers=headers["agent"])
    assert r.status_code == 403
    r = await client.post("/v1/users", json=body, headers=headers["admin"])
    assert r.status_code == 201, r.text
    assert r.json()["skills"] == ["综合", "法律"]
    assert "password" not in r.text
    r = await client.post("/v1/users", json=body, headers=headers["admin"])
    assert r.status_code == 409
    bad = body | {"username": "d1", "role": "department"}
    r = await client.post("/v1/users", json=bad, headers=headers["admin"])
    assert r.status_code == 422 and "department_code" in r.json()["detail"]
    audit = await client.get("/v1/audit?object_type=user", headers=headers["admin"])
    assert [a["action"] for a in audit.json()] == ["user.create"]


def test_password_hash_roundtrip() -> None:
    h = hash_password("秘密-password")
    assert verify_password("秘密-password", h) and not verify_password("other", h)


def test_phone_masking() -> None:
    assert mask_phone("caller 13812345678 called") == "caller 138****5678 called"
    assert mask_phone("dept 0478-6612345") == "dept 0478-****2345"
    assert mask_phone("ticket 20261125-0042") == "ticket 20261125-0042"


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    checks = r.json()["checks"]
    assert checks["database"] is True and checks["redis"] is True and "rasa" in checks
    assert r.status_code == (200 if all(checks.values()) else 503)
    m = await client.get("/metrics")
    assert "hotline_http_requests_total" in m.text


async def test_role_change_and_deactivation_count_at_once(client: httpx.AsyncClient, headers: dict) -> None:
    """A token already used (and verified) keeps no rights of its own: every request reads the user's row."""
    agent = headers["agent"]
    me = await client.get("/v1/auth/me", headers=agent)
    assert me.status_code == 200 and me.json()["role"] == "agent"
    assert (await client.get("/v1/work-orders/callbacks", headers=agent)).status_code == 200
    user_id = me.json()["id"]
    r = await client.patch(f"/v1/users/{user_id}", json={"role": "department", "department_code": "water"},
                           headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/work-orders/callbacks", headers=agent)).status_code == 403
    assert (await client.get("/v1/auth/me", headers=agent)).json()["role"] == "department"
    r = await client.patch(f"/v1/users/{user_id}", json={"is_active": False}, headers=headers["admin"])
    assert r.status_code == 200, r.text
    r = await client.get("/v1/auth/me", headers=agent)
    assert r.status_code == 401 and "no longer active" in r.json()["detail"]


async def test_token_that_expires_after_use_is_refused(client: httpx.AsyncClient, container: Container) -> None:
    h = await login(client, "admin")
    sub = (await client.get("/v1/auth/me", headers=h)).json()["id"]
    expires = time.time() + 1.5
    token = jwt.encode({"sub": str(sub), "role": "admin", "exp": int(expires) + 1}, container.settings.secret_key)
    short = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/auth/me", headers=short)).status_code == 200  # verified once, remembered
    while time.time() < int(expires) + 1:
        await asyncio.sleep(0.1)
    r = await client.get("/v1/auth/me", headers=short)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert (await client.get("/v1/auth/me", headers=h)).status_code == 200
