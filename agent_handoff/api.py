"""Seat APIs: agents (state, current call, hold/transfer, wrap-up, order), supervisors (queues, agents,
calls), callbacks, contact-centre statistics, and the console websockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import jwt
from fastapi import APIRouter, Depends, Header, Query, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from agent_handoff.models import AgentState, CallbackRequest
from agent_handoff.service import HandoffService
from agent_handoff.schemas import (
    AgentOut, CallbackOut, CallStats, DepartmentLine, LoginIn, QueueEntryOut, QueueOut, SeatsOverview, StateIn,
    TransferIn, WrapUpIn,
)
from agent_handoff.stats import call_stats
from agent_handoff.store import AgentLive, QueueEntry, SeatStore
from core.auth.models import Role, User
from config.settings import Settings
from core.deps import SessionDep, StaffUser, SupervisorUser, get_container
from core.errors import BadRequest, NotFound
from core.logging import mask_phone
from core.security import decode_token
from telephony.models import Call

if TYPE_CHECKING:
    from work_orders.service import WorkOrderService

router = APIRouter(prefix="/agents", tags=["seats"])
seats_router = APIRouter(prefix="/seats", tags=["seats"])
stats_router = APIRouter(prefix="/stats", tags=["seats"])


class HandoffWiring(Protocol):
    settings: Settings
    handoff: HandoffService
    work_orders: WorkOrderService


ContainerDep = Annotated[HandoffWiring, Depends(get_container)]


def _ts(v: float) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(v, dt.timezone.utc) if v else None


def agent_out(a: AgentLive) -> AgentOut:
    return AgentOut(id=a.id, username=a.username, name=a.name, endpoint=a.endpoint, skills=a.skills,
                    state=a.state, reason=a.reason, since=_ts(a.since) or dt.datetime.now(dt.timezone.utc),
                    idle_since=_ts(a.idle_since), call_id=a.call_id or None,
                    wrap_until=_ts(a.wrap_until) if a.state == AgentState.wrap_up.value else None, node=a.node)


def entry_out(e: QueueEntry, position: int | None, now: float, user: User) -> QueueEntryOut:
    caller = e.caller if user.role in (Role.admin.value, Role.supervisor.value) else mask_phone(e.caller)
    return QueueEntryOut(call_id=e.call_id, caller=caller, queue=e.queue, priority=e.priority, skill=e.skill,
                         state=e.state, kind=e.kind, position=position, waited_seconds=round(e.waited(now), 1),
                         agent_id=e.agent_id, node=e.node)


# ====================================================================== agents
@router.post("/me/login", response_model=AgentOut)
async def login(data: LoginIn, container: ContainerDep, user: StaffUser) -> AgentOut:
    svc = container.handoff
    return agent_out(await svc.agents.login(user, endpoint=data.endpoint, ready=data.ready,
                                            node=svc.seat_node(data.node)))


@router.post("/me/logout", status_code=204)
async def logout(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.agents.logout(user.id)


@router.get("/me", response_model=AgentOut)
async def me(container: ContainerDep, user: StaffUser) -> AgentOut:
    return agent_out(await container.handoff.agents.get(user.id))


@router.post("/me/state", response_model=AgentOut)
async def set_state(data: StateIn, container: ContainerDep, user: StaffUser) -> AgentOut:
    return agent_out(await container.handoff.agents.request(user.id, AgentState(data.state), data.reason))


@router.get("/me/call")
async def current_call(container: ContainerDep, user: StaffUser) -> dict[str, Any]:
    """The screen pop of the call offered to / taken by this agent (also pushed on the websocket)."""
    pop = await container.handoff.store.pop(user.id)
    if pop is None:
        raise NotFound("no call offered or in progress")
    entry = await container.handoff.store.entry(pop["call_id"])
    pop["state"] = entry.state if entry else "ended"
    return pop


@router.post("/me/call/hold", status_code=204)
async def hold(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.control.hold(user.id, True)


@router.post("/me/call/unhold", status_code=204)
async def unhold(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.control.hold(user.id, False)


@router.post("/me/call/hangup", status_code=204)
async def hangup(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.control.hangup(user.id)


@router.post("/me/call/transfer", status_code=202)
async def transfer(data: TransferIn, container: ContainerDep, session: SessionDep, user: StaffUser) -> dict[str, Any]:
    """To a department's hotline (warm: caller holds, agent consults, then complete) or back into a queue."""
    ctl = container.handoff.control
    if bool(data.department) == bool(data.queue):
        raise BadRequest("give either department (a code from GET /v1/agents/directory) or queue")
    if data.queue:
        e = await ctl.transfer_queue(user.id, data.queue, data.skill, data.priority.value if data.priority else None)
        return {"state": e.state, "queue": e.queue}
    line = next((d for d in await directory(session, user) if d.code == data.department), None)
    if line is None or not line.hotline:
        raise NotFound(f"department {data.department} not in the directory")
    e = await ctl.transfer_department(user.id, line.hotline, line.code)
    return {"state": e.state, "department": line.code, "number": line.hotline}


@router.post("/me/call/transfer/complete", status_code=204)
async def transfer_complete(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.control.complete_transfer(user.id)


@router.post("/me/call/transfer/cancel", status_code=204)
async def transfer_cancel(container: ContainerDep, user: StaffUser) -> None:
    await container.handoff.control.cancel_transfer(user.id)


@router.post("/me/wrap-up", response_model=AgentOut)
async def wrap_up(data: WrapUpIn, container: ContainerDep, session: SessionDep, user: StaffUser) -> AgentOut:
    svc = container.handoff
    agent = await svc.agents.get(user.id)
    call_id = data.call_id or agent.call_id
    call = await session.get(Call, call_id) if call_id else None
    if call is None or call.agent_id != user.id:
        raise NotFound("no call of yours to wrap up")
    call.wrap_up_code = data.code
    await session.commit()
    if data.end and agent.state == AgentState.wrap_up.value:
        agent = await svc.agents.end_wrap_up(user.id)
    return agent_out(agent)


@router.post("/me/order", status_code=201)
async def submit_order(body: dict[str, Any], container: ContainerDep, session: SessionDep, user: StaffUser,
                       idempotency_key: Annotated[str | None, Header(min_length=8, max_length=128)] = None
                       ) -> dict[str, Any]:
    """The pre-filled form, edited: created through the work-order service (same rules as POST /v1/work-orders);
    the caller's number and the call reference come from the call record, not from the browser."""
    from work_orders.schemas import WorkOrderCreate

    call_id = body.pop("call_ref", None) or (await container.handoff.agents.get(user.id)).call_id
    call = await session.get(Call, call_id) if call_id else None
    if call is None or call.agent_id != user.id:
        raise NotFound("no call of yours to raise an order for")
    body.pop("caller_phone", None)
    data = WorkOrderCreate.model_validate({**body, "caller_phone": call.caller or None, "call_ref": call.id,
                                           "channel": "phone"})
    created = await container.work_orders.create(session, user, data, idempotency_key=idempotency_key)
    call.ticket = created.ticket
    await session.commit()
    return {"ticket": created.ticket, "spoken_ticket": created.spoken_ticket, "outcome": created.outcome,
            "status": created.status, "department": created.department_name, "order_id": created.order.id}


@router.get("/directory", response_model=list[DepartmentLine])
async def directory(session: SessionDep, user: StaffUser) -> list[DepartmentLine]:
    """Departmental hotlines for warm transfers (the work-order seed's consolidated directory)."""
    from work_orders.models import Department

    rows = await session.scalars(select(Department).where(Department.active.is_(True)).order_by(Department.code))
    return [DepartmentLine(code=d.code, name=d.name, hotline=d.hotline, skill=d.skill) for d in rows.all()]


@router.get("/callbacks", response_model=list[CallbackOut])
async def callbacks(session: SessionDep, user: StaffUser,
                    status: Annotated[str | None, Query(pattern="^(pending|dialing|connected|done|failed|cancelled)$")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[CallbackOut]:
    q = select(CallbackRequest).order_by(CallbackRequest.queued_at).limit(limit)
    if status:
        q = q.where(CallbackRequest.status == status)
    out = [CallbackOut.model_validate(c) for c in (await session.scalars(q)).all()]
    if user.role == Role.agent.value:
        out = [c.model_copy(update={"phone": mask_phone(c.phone)}) for c in out]
    return out


# ====================================================================== supervisors
@seats_router.get("", response_model=SeatsOverview)
async def overview(container: ContainerDep, user: SupervisorUser) -> SeatsOverview:
    store: SeatStore = container.handoff.store
    now = container.handoff.now()
    waiting_ids = await store.queued_ids()
    entries = await store.entries()
    queues: dict[str, list[QueueEntryOut]] = {}
    in_progress = []
    for e in entries:
        if e.call_id in waiting_ids:
            queues.setdefault(e.queue, []).append(entry_out(e, waiting_ids.index(e.call_id) + 1, now, user))
        else:
            in_progress.append(entry_out(e, None, now, user))
    by_state: dict[str, list[AgentOut]] = {s.value: [] for s in AgentState if s != AgentState.logged_out}
    for a in await store.agents():
        by_state.setdefault(a.state, []).append(agent_out(a))
    return SeatsOverview(
        queues=[QueueOut(queue=q, waiting=len(es), longest_wait_seconds=max(e.waited_seconds for e in es),
                         entries=es) for q, es in sorted(queues.items())],
        agents_by_state=by_state, calls_in_progress=in_progress)


@seats_router.post("/agents/{agent_id}/logout", status_code=204)
async def force_logout(agent_id: int, container: ContainerDep, user: SupervisorUser) -> None:
    await container.handoff.agents.logout(agent_id)


@stats_router.get("/calls", response_model=CallStats)
async def stats_calls(container: ContainerDep, session: SessionDep, user: SupervisorUser,
                      from_: Annotated[dt.date | None, Query(alias="from")] = None,
                      to: dt.date | None = None,
                      bucket: Annotated[str, Query(pattern="^(hour|day)$")] = "day") -> CallStats:
    """Contact-centre statistics by hour or day (local calendar days, `to` inclusive; default: last 7 days)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(container.settings.timezone)
    today = container.handoff.clock().astimezone(tz).date()
    end_day = to or today
    start_day = from_ or end_day - dt.timedelta(days=6)
    if start_day > end_day:
        raise BadRequest("from must not be after to")
    if (end_day - start_day).days > 366:
        raise BadRequest("at most 366 days at a time")
    start = dt.datetime.combine(start_day, dt.time(), tz)
    end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), tz)
    return await call_stats(session, start, end, bucket, container.settings.timezone)


# ====================================================================== websockets
async def _ws_user(ws: WebSocket, token: str) -> User | None:
    container = ws.app.state.container
    try:
        claims = decode_token(token, container.settings.secret_key)
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    async with container.db.session() as session:
        user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def _relay(ws: WebSocket, channels: list[str], first: list[dict[str, Any]]) -> None:
    container = ws.app.state.container
    pubsub = container.redis.pubsub()
    await pubsub.subscribe(*channels)
    await ws.accept()
    try:
        for msg in first:
            await ws.send_json(msg)

        async def pump() -> None:
            while True:
                m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if m and m.get("type") == "message":
                    await ws.send_text(m["data"])

        async def listen() -> None:
            while True:
                await ws.receive_text()  # pings from the console; a close ends the relay

        done, pending = await asyncio.wait([asyncio.create_task(pump()), asyncio.create_task(listen())],
                                           return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            if not t.cancelled():
                t.exception()  # a closed socket ends the relay; nothing to report
    except WebSocketDisconnect:
        pass
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()


@router.websocket("/ws")
async def agent_ws(ws: WebSocket, token: str = "") -> None:
    """Screen pops, call events and the live transcript for the logged-in agent (`?token=<bearer>`)."""
    user = await _ws_user(ws, token)
    if user is None or user.role == Role.department.value:
        await ws.close(code=4401)
        return
    store: SeatStore = ws.app.state.container.handoff.store
    pop = await store.pop(user.id)
    await _relay(ws, [store.agent_channel_name(user.id)], [{"type": "hello", "agent_id": user.id}]
                 + ([json.loads(json.dumps(pop))] if pop else []))


@seats_router.websocket("/ws")
async def supervisor_ws(ws: WebSocket, token: str = "") -> None:
    user = await _ws_user(ws, token)
    if user is None or user.role not in (Role.admin.value, Role.supervisor.value):
        await ws.close(code=4403)
        return
    await _relay(ws, [SeatStore.supervisor_channel_name()], [{"type": "hello"}])
