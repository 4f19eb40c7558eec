"""/v1/dialogue single-turn latency through the real stack (API → Rasa → action server → PostgreSQL).

Run by hand: `.venv/bin/python benchmarks/dialogue_latency.py [turns]`. Starts its own Rasa and action server
on a throw-away database, warms them up, then times single turns (excluding the first request) and prints
p50/p95 per kind of turn, plus the held-out intent accuracy via `rasa test nlu`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from hotline.app import create_app  # noqa: E402
from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from hotline.seed import seed_all  # noqa: E402
from hotline.services import actions, rasa  # noqa: E402
from tests import services  # noqa: E402
from tests.conftest import PASSWORD, make_settings  # noqa: E402

TURNS = {
    "kb_answer": ["社保卡丢了咋办", "公积金怎么取出来", "居住证在哪办", "垃圾分类分几类"],
    "chitchat": ["你好", "谢谢你啊"],
    "work_order (first turn)": ["东河区滨河路的路灯一到晚上就不亮", "青山区人民路那边有个井盖没了"],
    "status_query": ["帮我查一下工单二零二六一一二五零零零一的进度"],
}
# The action each kind of turn must end in: a custom action that failed (Rasa logs it and carries on) would
# otherwise pass for a fast turn.  The status query names a ticket that does not exist: the action answers that.
EXPECTED_ACTION = {"kb_answer": "kb_answer", "chitchat": "chitchat", "work_order (first turn)": "work_order",
                   "status_query": "status_query"}


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def main(n: int) -> None:
    services.ensure_postgres()
    services.ensure_redis()
    url, name = await services.create_pg_database("hotline_bench")
    act = bot = None
    try:
        await asyncio.to_thread(upgrade, url)
        act = actions.start_server(rasa.free_port(), env={"DATABASE_URL": url})
        bot = rasa.start_server(port=rasa.free_port(), model=rasa.ensure_model(),
                                env={"RASA_TRACKER_DB": 12, "RASA_LOCK_DB": 12, "ACTION_ENDPOINT_URL": act.webhook})
        rasa.warm_up(bot.url)
        container = Container.build(make_settings(url, "redis://127.0.0.1:6379/14", rasa_url=bot.url))
        await seed_all(container)
        app = create_app(container.settings, container=container)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
            token = (await client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})).json()
            h = {"Authorization": f"Bearer {token['access_token']}"}
            await client.post("/v1/dialogue/warm", json={"text": "社保卡丢了咋办"}, headers=h)  # first request
            overall: list[float] = []
            for kind, texts in TURNS.items():
                timings = []
                for i in range(n):
                    sid = f"bench-{uuid.uuid4().hex[:10]}"
                    t = time.perf_counter()
                    r = await client.post(f"/v1/dialogue/{sid}", json={"text": texts[i % len(texts)]}, headers=h)
                    timings.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200 and not r.json()["degraded"], r.text
                    assert r.json()["action"] == EXPECTED_ACTION[kind], r.text
                overall += timings
                print(f"{kind:28s} n={n:3d}  p50 {pct(timings, 50):6.1f} ms  p95 {pct(timings, 95):6.1f} ms")
            print(f"{'all single turns':28s} n={len(overall):3d}  p50 {pct(overall, 50):6.1f} ms  "
                  f"p95 {pct(overall, 95):6.1f} ms")
        await container.close()
        report = rasa.evaluate_nlu()
        print(f"held-out intent accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f} "
              f"over {report['examples']} examples (nlu/tests/test_nlu.yml)")
    finally:
        if bot:
            rasa.stop_server()
        if act:
            act.stop()
        await services.drop_pg_database(name)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
