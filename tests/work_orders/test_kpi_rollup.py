"""The KPI rollup (work_orders/kpi_rollup.py) gives exactly the reference query's figures, on both backends:
on a randomized history of intake and transitions (folded into the daily rows at random moments, so some
changes are folded and some still in the log), for whole-day and partial-day ranges, every grouping, and
several values of "now" around the response deadlines; after raw SQL edits and deletes (the triggers see
them); after a rebuild; under concurrent writers and compactions; and through the API and CSV export."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import httpx
import pytest
from sqlalchemy import func, select, text

from hotline.container import Container
from core.errors import DomainError
from work_orders import kpi_rollup, kpis
from work_orders.lifecycle import allowed_actions
from work_orders.models import CallbackTask, KpiDaily, KpiDelta, KpiRollupState, Satisfaction, WorkOrder
from work_orders.schemas import WorkOrderCreate
from work_orders.service import SYSTEM, WorkOrderService
from tests.work_orders.conftest import START, Clock
from tests.work_orders.test_kpis import build

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True),
    pytest.mark.usefixtures("city"),
]

ADDRESSES = ["青山区人民路馨苑小区东门", "东河区滨河花园3栋", "东河区幸福里12号", "云湖区望湖苑北门", "金川区冶金路88号",
             "北岭县", "青山区文化路", "", "某某路100号", "云湖区学府华庭"]
PHONES = [f"1380000{n:04d}" for n in range(12)] + [None]
GROUPS = [None, "department", "category", "district"]


async def random_history(svc: WorkOrderService, clock: Clock, rng: random.Random, orders: int, actions: int,
                         compact_every: int) -> None:
    """Orders created over several local days, then random transitions, with compactions in between."""
    async with svc.db.session() as session:
        tax = await svc.tax(session)
    categories = sorted(c.code for c in tax.categories.values() if c.active)
    departments = sorted(d for d, info in tax.departments.items() if info.active)
    ids: list[int] = []
    step = 0

    async def tick() -> None:
        nonlocal step
        step += 1
        clock.advance(minutes=rng.choice([1, 5, 20, 45, 90, 200, 600]))
        if step % compact_every == 0:
            await kpi_rollup.compact(svc.db, svc.tz)

    for i in range(orders):
        data = WorkOrderCreate(
            category=rng.choice(categories), description=f"随机诉求{i} 路面坑洼", address=rng.choice(ADDRESSES),
            caller_phone=rng.choice(PHONES), dispatch=rng.random() < 0.8,
            answer="已当场答复" if rng.random() < 0.1 else None,
            complexity="easy" if rng.random() < 0.1 else None,
            urgency=rng.choice([None, None, "urgent", "critical"]),
        )
        async with svc.db.session() as session:
            try:
                created = await svc.create(session, SYSTEM, data)
                ids.append(created.order.id)
            except DomainError:
                pass
        await tick()
    for _ in range(actions):
        oid = rng.choice(ids)
        async with svc.db.session() as session:
            status = await session.scalar(select(WorkOrder.status).where(WorkOrder.id == oid))
            allowed = allowed_actions(status, "system") or ["accept"]  # mostly what the status allows
            if "callback" in allowed:
                allowed += ["callback", "callback", "unanswered"]
            action = rng.choice([a for a in allowed if a not in ("merge", "withdraw")] * 6 + allowed)
            try:
                if action == "dispatch":
                    await svc.dispatch(session, SYSTEM, oid, rng.choice([None, *departments[:5]]))
                elif action == "accept":
                    await svc.accept(session, SYSTEM, oid)
                elif action == "start":
                    await svc.start(session, SYSTEM, oid)
                elif action == "return":
                    await svc.return_(session, SYSTEM, oid, "不属于本单位")
                elif action == "resolve":
                    await svc.resolve(session, SYSTEM, oid, "已处理")
                elif action == "withdraw":
                    await svc.withdraw(session, SYSTEM, oid)
                elif action == "urge":
                    await svc.urge(session, SYSTEM, oid)
                elif action == "reopen":
                    await svc.reopen(session, SYSTEM, oid, "仍未解决")
                elif action == "merge":
                    await svc.merge(session, SYSTEM, oid, rng.choice(ids))
                elif action == "callback":
                    await svc.record_callback(session, SYSTEM, oid, rng.choice(list(Satisfaction)),
                                              rng.choice([None, True, False]))
                elif action == "close":
                    await svc.close(session, SYSTEM, oid, "未接通")
                else:
                    task = await session.scalar(select(CallbackTask.id).where(
                        CallbackTask.order_id == oid, CallbackTask.status == "pending"))
                    if task is not None:
                        await svc.callback_unanswered(session, SYSTEM, task)
            except DomainError:
                await session.rollback()
        await tick()


async def assert_same(svc: WorkOrderService, nows: list[dt.datetime], ranges: list[tuple[dt.datetime, dt.datetime]],
                      expect_rollup: bool = True) -> int:
    """Rollup-backed and reference KPIs agree for every range × grouping × now. Returns the orders seen."""
    seen = 0
    async with svc.db.session() as session:
        tax = await svc.tax(session)
        for start, end in ranges:
            for group_by in GROUPS:
                for now in nows:
                    raw = await kpis.compute_raw(session, tax, start, end, group_by, now)
                    rows = await kpi_rollup.count_rows(session, start, end, group_by, now, svc.tz)
                    fast = await kpis.compute(session, tax, start, end, group_by, now, tz=svc.tz)
                    assert fast == raw, (start, end, group_by, now)
                    whole_day = kpi_rollup.whole_days(start, end, svc.tz)
                    if expect_rollup and whole_day[0] < whole_day[1]:
                        assert rows is not None, "the rollup should have served this range"
                    seen = max(seen, raw["total"]["orders"])
    return seen


def day(n: int, hour: float = 0) -> dt.datetime:
    return dt.datetime.combine(START.date() + dt.timedelta(days=n), dt.time(), START.tzinfo) + dt.timedelta(hours=hour)


RANGES = [(day(-1), day(10)), (day(0), day(1)), (day(1), day(3)), (day(0, 9.5), day(2, 13)), (day(2, 7), day(2, 19)),
          (day(-30), day(30)), (day(3), day(4, 0.25))]


async def test_rollup_equals_reference_on_random_history(container: Container, clock: Clock) -> None:
    svc = container.work_orders
    rng = random.Random(20261125)
    async with svc.db.session() as session:  # not built yet: the reference query serves
        assert await kpi_rollup.count_rows(session, day(0), day(1), None, clock.now, svc.tz) is None
    await random_history(svc, clock, rng, orders=50, actions=300, compact_every=11)
    nows = [day(0, 10), day(2, 12), clock.now, clock.now + dt.timedelta(days=30)]
    nows += [o + dt.timedelta(seconds=s) for o in await _due_times(svc, 3) for s in (-1, 0, 1)]
    async with svc.db.session() as session:
        pending = await session.scalar(select(func.count()).select_from(KpiDelta))
        statuses = set((await session.scalars(select(WorkOrder.status))).all())
    assert pending, "part of the history should still be in the change log"
    assert len(nows) == 13, "some orders should still wait to be accepted"
    assert {"merged", "withdrawn", "closed", "reopened", "dispatched", "accepted"} <= statuses, statuses
    assert await assert_same(svc, nows, RANGES) >= 30
    nows = nows[:4] + nows[5:6]

    await kpi_rollup.compact(svc.db, svc.tz)  # everything folded
    async with svc.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(KpiDelta)) == 0
    await assert_same(svc, nows, RANGES)

    # Writes that bypass the service (raw SQL, a delete) are seen by the triggers too.
    async with svc.db.engine.begin() as conn:
        await conn.execute(text("UPDATE work_orders SET urge_count = 0, return_count = 2, satisfaction = NULL, "
                                "solved = NULL WHERE id % 3 = 0"))
        await conn.execute(text("UPDATE work_orders SET department_code = 'water', category_code = 'other' "
                                "WHERE id % 5 = 1"))
        await conn.execute(text("UPDATE work_orders SET escalation_level = 1 WHERE id % 2 = 0"))  # not counted
        victim = (await conn.execute(text(
            "SELECT id FROM work_orders w WHERE NOT EXISTS (SELECT 1 FROM work_orders c WHERE c.master_id = w.id "
            "OR c.merged_into_id = w.id) AND status <> 'merged' ORDER BY id LIMIT 1"))).scalar_one()
        await conn.execute(text("DELETE FROM work_orders WHERE id = :id"), {"id": victim})
    await assert_same(svc, nows, RANGES)
    await kpi_rollup.compact(svc.db, svc.tz)
    await assert_same(svc, nows, RANGES)

    # A rebuild gives the same rollup as the one maintained step by step.
    async with svc.db.session() as session:
        before = sorted(tuple(r) for r in (await session.execute(select(KpiDaily.__table__))).all()
                        if any(r[3:]))  # rows summing to zero may remain from folding; a rebuild has none
    assert await kpi_rollup.rebuild(svc.db, svc.tz) >= 30
    async with svc.db.session() as session:
        after = sorted(tuple(r) for r in (await session.execute(select(KpiDaily.__table__))).all())
    assert after == before
    await assert_same(svc, nows, RANGES)


async def _due_times(svc: WorkOrderService, n: int) -> list[dt.datetime]:
    """Response deadlines of orders still waiting to be accepted: where `response_due` turns with "now"."""
    async with svc.db.session() as session:
        return list((await session.scalars(select(WorkOrder.response_due).where(
            WorkOrder.dispatched_at.is_not(None), WorkOrder.accepted_at.is_(None),
            WorkOrder.status.not_in(["withdrawn", "merged"])).order_by(WorkOrder.id).limit(n))).all())


async def test_response_due_follows_now_without_any_write(container: Container, clock: Clock) -> None:
    """An order dispatched and not accepted enters `response_due` when its deadline passes, with no write."""
    svc = container.work_orders
    async with svc.db.session() as session:
        created = await svc.create(session, SYSTEM, WorkOrderCreate(
            category="road.manhole_cover", description="井盖松动", address="东河区幸福里12号"))
    await kpi_rollup.compact(svc.db, svc.tz)
    due = created.response_due
    async with svc.db.session() as session:
        tax = await svc.tax(session)
        for now, expected in ((due - dt.timedelta(seconds=1), 0), (due, 1), (due + dt.timedelta(days=9), 1)):
            r = await kpis.compute(session, tax, day(0), day(1), "department", now, tz=svc.tz)
            assert r["total"]["response_due"] == expected
            assert r == await kpis.compute_raw(session, tax, day(0), day(1), "department", now)


async def test_deadline_boundaries(container: Container, clock: Clock) -> None:
    """Accepted exactly at the response deadline and resolved exactly at the resolution deadline: on time."""
    svc = container.work_orders
    await kpi_rollup.compact(svc.db, svc.tz)  # built (empty) first: what follows goes through the triggers
    async with svc.db.session() as session:
        created = await svc.create(session, SYSTEM, WorkOrderCreate(
            category="road.manhole_cover", description="井盖松动", address="东河区幸福里12号"))
    clock.now = created.response_due
    async with svc.db.session() as session:
        await svc.accept(session, SYSTEM, created.order.id)
    clock.now = created.resolution_due
    async with svc.db.session() as session:
        await svc.resolve(session, SYSTEM, created.order.id, "已修复")
    for fold in (False, True):
        if fold:
            await kpi_rollup.compact(svc.db, svc.tz)
        async with svc.db.session() as session:
            tax = await svc.tax(session)
            r = await kpis.compute(session, tax, day(0), day(1), None, clock.now, tz=svc.tz)
            assert r == await kpis.compute_raw(session, tax, day(0), day(1), None, clock.now)
            assert (r["total"]["responded_on_time"], r["total"]["resolved_on_time"]) == (1, 1)


async def test_concurrent_writers_and_compactions(container: Container, clock: Clock) -> None:
    """Creating and changing orders from several sessions while compactions run: nothing lost or doubled."""
    svc = container.work_orders
    await kpi_rollup.compact(svc.db, svc.tz)
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(8):
            async with svc.db.session() as session:
                created = await svc.create(session, SYSTEM, WorkOrderCreate(
                    category="road.manhole_cover", description=f"并发{w}-{i}", address="东河区幸福里12号",
                    caller_phone=f"1370000{w:02d}{i:02d}", link_repeats=False))
            async with svc.db.session() as session:
                try:
                    await svc.accept(session, SYSTEM, created.order.id)
                except DomainError:
                    pass

    async def compactor() -> None:
        while not stop.is_set():
            await kpi_rollup.compact(svc.db, svc.tz)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(compactor()), asyncio.create_task(compactor())]
    await asyncio.gather(*(writer(w) for w in range(4)))
    stop.set()
    await asyncio.gather(*tasks)
    assert await assert_same(svc, [clock.now, clock.now + dt.timedelta(hours=5)], [(day(0), day(1))]) == 32
    await kpi_rollup.compact(svc.db, svc.tz)
    await assert_same(svc, [clock.now], [(day(0), day(1))])


async def test_api_and_csv_from_the_rollup(
    client: httpx.AsyncClient, headers: dict, clock: Clock, container: Container
) -> None:
    """The hand-computed dataset of test_kpis: identical report and CSV once the rollup is built."""
    await build(client, headers, clock)
    sup = headers["supervisor"]
    urls = [f"/v1/stats/kpis?from=2026-11-25&to=2026-11-26&group_by={g}" for g in ("department", "category",
                                                                                  "district")]
    urls += ["/v1/stats/kpis?from=2026-11-25&to=2026-11-28", "/v1/stats/kpis?from=2026-11-25&to=2026-11-26&"
             "group_by=department&format=csv", "/v1/stats/kpis"]
    before = [(await client.get(u, headers=sup)).text for u in urls]
    await kpi_rollup.compact(container.db, container.work_orders.tz)
    async with container.db.session() as session:
        assert await session.get(KpiRollupState, 1) is not None
        assert await session.scalar(select(func.count()).select_from(KpiDaily)) > 0
    after = [(await client.get(u, headers=sup)).text for u in urls]
    assert after == before
    assert '"response_rate":0.5' in after[0].replace(" ", "")


async def test_worker_job_and_cli(container: Container, clock: Clock) -> None:
    jobs = {j.name: j for j in container.periodic_jobs()}
    job = jobs["work_orders.kpi_rollup"]
    assert job.interval_seconds == kpi_rollup.COMPACT_INTERVAL_SECONDS
    async with container.db.session() as session:
        await container.work_orders.create(session, SYSTEM, WorkOrderCreate(category="other", description="咨询"))
    assert await job.run() == 1  # first run: rebuilt from the one order
    async with container.db.session() as session:
        await container.work_orders.create(session, SYSTEM, WorkOrderCreate(category="other", description="咨询"))
    assert await job.run() == 1  # then: the one logged change folded
    assert await job.run() == 0
    from hotline.cli import build_parser

    assert build_parser().parse_args(["kpi-rollup", "--rebuild"]).rebuild is True


async def test_other_time_zone_means_rebuild(container: Container, clock: Clock) -> None:
    """Daily rows are local days: a rollup built for another time zone is not used, and compact() rebuilds."""
    from zoneinfo import ZoneInfo

    svc = container.work_orders
    async with svc.db.session() as session:
        await svc.create(session, SYSTEM, WorkOrderCreate(category="other", description="咨询", address=""))
    utc = ZoneInfo("UTC")
    await kpi_rollup.compact(svc.db, utc)
    async with svc.db.session() as session:
        assert await kpi_rollup.count_rows(session, day(0), day(1), None, clock.now, svc.tz) is None
        assert await kpi_rollup.count_rows(session, day(0), day(2), None, clock.now, utc) is not None
    await kpi_rollup.compact(svc.db, svc.tz)
    async with svc.db.session() as session:
        assert await kpi_rollup.built_tz(session) == svc.tz.key
        assert (await kpi_rollup.count_rows(session, day(0), day(1), None, clock.now, svc.tz))[0][0] == 1

