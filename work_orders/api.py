"""HTTP: /v1/work-orders (intake, list, transitions, callbacks), /v1/stats/kpis, /v1/public/orders."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from core.deps import AnyStaffUser, SessionDep, StaffUser, SupervisorUser
from core.errors import BadRequest, TooManyRequests
from work_orders import kpis
from work_orders.deps import ContainerDep
from work_orders.escalation import run_escalation
from work_orders.models import Status, WorkOrder
from work_orders.schemas import (
    CallbackIn,
    CallbackOut,
    DispatchIn,
    MergeIn,
    NoteIn,
    PublicOrder,
    RequiredNoteIn,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderOut,
    WorkOrderPage,
    normalize_phone,
)
from work_orders.service import WorkOrderService, role_of
from work_orders.views import order_detail, order_out, public_order

log = logging.getLogger(__name__)
router = APIRouter(prefix="/work-orders", tags=["work orders"])
stats_router = APIRouter(prefix="/stats", tags=["work orders"])
public_router = APIRouter(prefix="/public", tags=["public"])

Ref = Annotated[str, Path(min_length=1, max_length=16, description="order id or ticket (20261125-0042)")]


async def _out(svc: WorkOrderService, session: AsyncSession, order: WorkOrder, actor: Any,
               outcome: str | None = None) -> WorkOrderOut:
    return order_out(order, await svc.tax(session), role_of(actor), svc.clock(), outcome)


def local_range(svc: WorkOrderService, start: dt.date | None, end: dt.date | None, days: int = 30
                ) -> tuple[dt.datetime, dt.datetime]:
    """Calendar days in the city's time zone; `to` is inclusive."""
    today = svc.clock().astimezone(svc.tz).date()
    end = end or today
    start = start or end - dt.timedelta(days=days - 1)
    if start > end:
        raise BadRequest("from must not be after to")
    as_dt = lambda d: dt.datetime.combine(d, dt.time(), svc.tz)  # noqa: E731
    return as_dt(start), as_dt(end + dt.timedelta(days=1))


@router.post("", response_model=WorkOrderOut, status_code=201)
async def create_order(
    data: WorkOrderCreate,
    container: ContainerDep,
    session: SessionDep,
    user: StaffUser,
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=128)] = None,
) -> Response:
    """Raise an order. Same `Idempotency-Key` again → the same order (200). A repeat call of the same caller
    about the same place and category urges the open order instead (200, outcome linked_repeat)."""
    svc = container.work_orders
    created = await svc.create(session, user, data, idempotency_key=idempotency_key)
    out = await _out(svc, session, created.order, user, created.outcome)
    # Serialized here, once (the model is already validated): the busiest endpoint skips FastAPI's second pass.
    return Response(out.model_dump_json(), media_type="application/json",
                    status_code=200 if created.outcome in ("replayed", "linked_repeat") else 201)


@router.get("", response_model=WorkOrderPage)
async def list_orders(
    container: ContainerDep,
    session: SessionDep,
    user: AnyStaffUser,
    status: Annotated[list[Status] | None, Query()] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    escalation_level: Annotated[int | None, Query(ge=1, le=3)] = None,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WorkOrderPage:
    if phone is not None and role_of(user) == "department":
        raise BadRequest("department users cannot search by phone number")
    try:
        phone = normalize_phone(phone)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    for value in (created_from, created_to):
        if value is not None and value.tzinfo is None:
            raise BadRequest("from/to need a time zone, e.g. 2026-11-25T00:00:00+08:00")
    svc = container.work_orders
    items, total = await svc.list(
        session, user, status=[s.value for s in status] if status else None, category=category,
        department=department, district=district, overdue=overdue, escalation_level=escalation_level,
        phone=phone, created_from=created_from, created_to=created_to, limit=limit, offset=offset,
    )
    tax, now, role = await svc.tax(session), svc.clock(), role_of(user)
    return WorkOrderPage(items=[order_out(o, tax, role, now) for o in items], total=total, limit=limit, offset=offset)


@router.get("/callbacks", response_model=list[CallbackOut])
async def callback_queue(
    container: ContainerDep,
    session: SessionDep,
    _: StaffUser,
    status: Literal["pending", "done", "cancelled"] = "pending",
    due: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[CallbackOut]:
    """The callback (回访) task queue; `due=true` → only tasks due now."""
    svc = container.work_orders
    rows = await svc.callbacks(session, status, svc.clock() if due else None, limit)
    return [CallbackOut.model_validate(t).model_copy(update={"ticket": o.ticket}) for t, o in rows]


@router.post("/callbacks/{task_id}/unanswered", response_model=CallbackOut)
async def callback_unanswered(task_id: int, container: ContainerDep, session: SessionDep, user: StaffUser) -> Any:
    return await container.work_orders.callback_unanswered(session, user, task_id)


@router.post("/escalation/run")
async def escalate_now(container: ContainerDep, _: SupervisorUser) -> dict[str, int]:
    """Run one escalation pass now (the worker does this every escalation_interval_seconds)."""
    return {"raised": await run_escalation(container.work_orders)}


@router.get("/{ref}", response_model=WorkOrderDetail)
async def get_order(ref: Ref, container: ContainerDep, session: SessionDep, user: AnyStaffUser) -> WorkOrderDetail:
    svc = container.work_orders
    order = await svc.get(session, user, ref)
    events = await svc.history(session, order.id)
    return order_detail(order, await svc.tax(session), role_of(user), svc.clock(), events,
                        await svc.children(session, order.id))


def _transition(action: str, body_model: type, call: Any, summary: str) -> None:
    async def endpoint(ref: Ref, body: body_model, container: ContainerDep, session: SessionDep,  # type: ignore[valid-type]
                       user: AnyStaffUser) -> WorkOrderOut:
        svc = container.work_orders
        order = await call(svc, session, user, ref, body)
        return await _out(svc, session, order, user)

    endpoint.__annotations__["body"] = body_model  # a closure variable: give FastAPI the real class
    endpoint.__name__ = f"{action}_order"
    router.add_api_route(f"/{{ref}}/{action}", endpoint, methods=["POST"], response_model=WorkOrderOut,
                         summary=summary)


_transition("dispatch", DispatchIn, lambda s, ses, u, r, b: s.dispatch(ses, u, r, b.department, b.note),
            "派单 (default department: the responsibility list)")
_transition("accept", NoteIn, lambda s, ses, u, r, b: s.accept(ses, u, r, b.note), "签收 (department)")
_transition("start", NoteIn, lambda s, ses, u, r, b: s.start(ses, u, r, b.note), "开始处置 (department)")
_transition("return", RequiredNoteIn, lambda s, ses, u, r, b: s.return_(ses, u, r, b.note),
            "退回 with a reason (department)")
_transition("resolve", RequiredNoteIn, lambda s, ses, u, r, b: s.resolve(ses, u, r, b.note, b.public_note),
            "办结 with a result note; queues the callback")
_transition("withdraw", NoteIn, lambda s, ses, u, r, b: s.withdraw(ses, u, r, b.note), "撤单 (citizen's wish)")
_transition("urge", NoteIn, lambda s, ses, u, r, b: s.urge(ses, u, r, b.note), "催办")
_transition("reopen", RequiredNoteIn, lambda s, ses, u, r, b: s.reopen(ses, u, r, b.note), "重办 (supervisor)")
_transition("merge", MergeIn, lambda s, ses, u, r, b: s.merge(ses, u, r, b.into, b.note), "并案 into another order")
_transition("callback", CallbackIn,
            lambda s, ses, u, r, b: s.record_callback(ses, u, r, b.result, b.solved, b.comment),
            "回访 result: satisfied/basically_satisfied close, dissatisfied reopens")
_transition("close", RequiredNoteIn, lambda s, ses, u, r, b: s.close(ses, u, r, b.note),
            "结案 without a rating (citizen unreachable)")


@stats_router.get("/kpis")
async def kpi_report(
    container: ContainerDep,
    session: SessionDep,
    _: SupervisorUser,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    group_by: Literal["department", "category", "district"] | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """KPIs over orders created from `from` to `to` (inclusive local dates; default the last 30 days)."""
    svc = container.work_orders
    s, e = local_range(svc, start, end)
    result = await kpis.compute(session, await svc.tax(session), s, e, group_by, svc.clock(), svc.containment,
                                tz=svc.tz)
    if format == "csv":
        return Response(kpis.to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="kpis.csv"'})
    return result


@public_router.get("/orders/{ticket}", response_model=PublicOrder)
async def track_order(
    container: ContainerDep,
    session: SessionDep,
    ticket: Annotated[str, Path(max_length=16)],
    phone_last4: Annotated[str, Query(pattern=r"^\d{4}$", description="last four digits of the caller's phone")],
) -> PublicOrder:
    """Citizen tracking: status and public notes only. A wrong number and a missing ticket look the same."""
    svc = container.work_orders
    key = f"wo:track:fail:{ticket}"
    redis = container.redis
    try:
        failures = int(await redis.get(key) or 0)
    except Exception:  # noqa: BLE001 - Redis down: tracking still works, just unthrottled
        failures = 0
    if failures >= container.settings.wo_track_max_failures:
        raise TooManyRequests("查询次数过多，请一小时后再试")
    try:
        order, events = await svc.track(session, ticket, phone_last4)
    except Exception:
        try:
            await redis.incr(key)
            await redis.expire(key, 3600)
        except Exception:  # noqa: BLE001
            pass
        raise
    return public_order(order, await svc.tax(session), events)
