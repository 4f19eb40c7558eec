"""KB search latency over 5,000 generated published entries (PostgreSQL, through the real service).

Run by hand: `.venv/bin/python benchmarks/kb_search.py`. Prints p50/p95/p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from hotline.seed import SYSTEM  # noqa: E402
from tests import services  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

N_ENTRIES = 5000
N_QUERIES = 1000
ROOT = Path(__file__).resolve().parent.parent


def generate_rows(seed_rows: list[dict], n: int) -> list[dict]:
    rng = random.Random(12345)
    districts = ["青山区", "东河区", "新城区", "金川区", "北岭县"]
    topics = ["办理", "咨询", "补办", "申请", "查询", "变更", "注销", "续期", "缴费", "预约"]
    rows = []
    for i in range(n):
        base = seed_rows[i % len(seed_rows)]
        suffix = rng.choice(topics)
        place = rng.choice(districts)
        rows.append(
            base
            | {
                "key": f"gen-{i:05d}",
                "title": f"{base['title']}{suffix}（{place}第{i}号）",
                "question": f"{place}{base['question']}",
                "alt_questions": [f"{q}{suffix}" for q in base.get("alt_questions", [])][:4],
                "status": "published",
                "valid_from": None,
                "valid_until": None,
                "region": "全市",
            }
        )
    return rows


async def main() -> None:
    services.ensure_postgres()
    services.ensure_redis()
    url, name = await services.create_pg_database("hotline_bench")
    try:
        await asyncio.to_thread(upgrade, url)
        container = Container.build(make_settings(url, "redis://127.0.0.1:6379/14"))
        seed_rows = yaml.safe_load((ROOT / "knowledge_base/seed/entries.yaml").read_text(encoding="utf-8"))
        rows = generate_rows(seed_rows, N_ENTRIES)
        t0 = time.perf_counter()
        async with container.db.session() as session:
            report = await container.kb.import_rows(session, SYSTEM, rows)
        print(f"imported {report.created} entries in {time.perf_counter() - t0:.1f}s ({len(report.rejected)} rejected)")
        cases = yaml.safe_load((ROOT / "tests/knowledge_base/search_cases.yaml").read_text(encoding="utf-8"))
        queries = [c["q"] for c in cases]
        t0 = time.perf_counter()
        await container.kb.search("社保卡丢了", None)
        print(f"index build (first search): {(time.perf_counter() - t0) * 1000:.0f} ms")
        timings = []
        for i in range(N_QUERIES):
            q = queries[i % len(queries)]
            t = time.perf_counter()
            await container.kb.search(q, "青山区" if i % 2 else None)
            timings.append((time.perf_counter() - t) * 1000)
        timings.sort()
        q = statistics.quantiles(timings, n=100)
        print(f"KB search over {N_ENTRIES} entries, {N_QUERIES} queries: "
              f"p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, p99 {q[98]:.2f} ms, max {timings[-1]:.2f} ms")
        await container.close()
    finally:
        await services.drop_pg_database(name)


if __name__ == "__main__":
    asyncio.run(main())
