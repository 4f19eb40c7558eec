"""Property-based fuzzing of the whole HTTP API with Schemathesis (a few thousand generated requests).

Run by hand: `.venv/bin/python benchmarks/api_fuzz.py [examples-per-operation]` (default 25). Builds the app on
a throw-away PostgreSQL database (seeded) and Redis DB 13, logs in as the admin, then sends valid and invalid
requests generated from /openapi.json to every operation through ASGI. Rasa and Asterisk point at a closed
port (the API must degrade, not fail). Prints the count per status code, per operation with errors, and every
server error (5xx other than /readyz's 503) with the request that caused it. Exit status 1 when there are any.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import schemathesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from hotline.app import create_app  # noqa: E402
from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from hotline.seed import seed_all  # noqa: E402
from tests import services  # noqa: E402
from tests.conftest import PASSWORD, make_settings  # noqa: E402

CLOSED = "http://127.0.0.1:9"  # nothing listens: Rasa and ARI calls fail fast, other engineers' servers untouched
# Operations that would lock the fuzzer out (it could deactivate or demote its own admin account).
SKIP = {("PATCH", "/v1/users/{user_id}")}


async def _seed(url: str) -> None:
    container = Container.build(make_settings(url, "redis://127.0.0.1:6379/13"))
    try:
        await container.start()
        await seed_all(container)
    finally:
        await container.close()


def fuzz(url: str, examples: int) -> int:
    app = create_app(make_settings(url, "redis://127.0.0.1:6379/13", ari_url=CLOSED, rasa_url=CLOSED))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    login = schema["/v1/auth/token"]["POST"].Case(
        body={"username": "admin", "password": PASSWORD}, media_type="application/x-www-form-urlencoded")
    headers = {"Authorization": f"Bearer {login.call().json()['access_token']}"}

    statuses: Counter[str] = Counter()
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    errors: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        label = f"{op.method.upper()} {op.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                reproduce = case.as_curl_command({"Authorization": "Bearer …"})
                try:
                    response = case.call(headers=headers)
                except Exception as exc:  # noqa: BLE001 - the app raised: a 500 for a real client
                    statuses["exception"] += 1
                    errors.append(f"{label} → {type(exc).__name__}: {str(exc)[:200]}\n    reproduce: {reproduce}")
                    return
                statuses[str(response.status_code)] += 1
                per_op[label][str(response.status_code)] += 1
                if response.status_code >= 500 and label != "GET /readyz":
                    errors.append(f"{label} → {response.status_code}: {response.text[:200]}\n    reproduce: {reproduce}")

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body)
    elapsed = time.monotonic() - started

    total = sum(statuses.values())
    print(f"{total} requests to {len(per_op)} operations in {elapsed:.0f} s ({total / elapsed:.0f}/s)")
    print("by status: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    print("operations answering 4xx to everything (generation could not get past validation or lookup):")
    for label, counts in sorted(per_op.items()):
        if all(code.startswith("4") for code in counts):
            print(f"  {label}: {dict(sorted(counts.items()))}")
    print(f"failures: {len(errors)}")
    for line in errors:
        print("  " + line)
    return 1 if errors else 0


def main(examples: int) -> int:
    services.ensure_postgres()
    services.ensure_redis()
    url, name = asyncio.run(services.create_pg_database("hotline_fuzz"))
    try:
        upgrade(url)
        asyncio.run(_seed(url))
        return fuzz(url, examples)
    finally:
        asyncio.run(services.drop_pg_database(name))


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 25))
