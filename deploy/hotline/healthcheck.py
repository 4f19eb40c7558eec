"""Container healthchecks of the hotline services (docker-compose.yml): `python healthcheck.py api|ivr|worker`.

api    — GET /healthz on the API port answers 200.
ivr    — the controller's Stasis app is registered in Asterisk (GET /ari/applications/<app> is 200 only while
         the controller holds its ARI websocket), so a controller that lost Asterisk is unhealthy.
worker — the database answers SELECT 1 and Redis answers PING.
Exit status 0 = healthy.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import urllib.request

from config.settings import get_settings


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - fixed local URLs
        return int(response.status)


async def _worker_ok() -> bool:
    from sqlalchemy import text

    from core.db import Database
    from core.redis import make_redis

    settings = get_settings()
    db, redis = Database(settings.effective_database_url), make_redis(settings.redis_url)
    try:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        return bool(await redis.ping())
    finally:
        await redis.aclose()
        await db.dispose()


def check(service: str) -> bool:
    settings = get_settings()
    if service == "api":
        return _get(f"http://127.0.0.1:{settings.api_port}/healthz") == 200
    if service == "ivr":
        url = f"{settings.ari_url.rstrip('/')}/ari/applications/{settings.ari_app}"
        return _get(url, (settings.ari_user, settings.ari_password)) == 200
    if service == "worker":
        return asyncio.run(_worker_ok())
    raise SystemExit(f"unknown service {service!r} (api, ivr, worker)")


def main(argv: list[str]) -> int:
    try:
        return 0 if check(argv[1] if len(argv) > 1 else "api") else 1
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say why in `docker inspect`
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
