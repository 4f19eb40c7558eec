"""Open311 GeoReport v2 (JSON) at /open311/v2, and the admin API for intake-channel api_keys (/v1/intake-keys).

GETs are public and carry no personal data (no phone, no name; phone numbers in free text masked).
POST requests.json needs an api_key issued to an intake channel, or a hotline staff bearer token.
Errors use the GeoReport shape: [{"code": 400, "description": "..."}].
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import select

from core import audit
from core.auth.models import User
from core.deps import AdminUser, SessionDep
from core.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound, Unauthorized
from core.logging import mask_phone
from core.security import decode_token
from work_orders.deps import ContainerDep
from work_orders.models import OPEN_STATUSES, IntakeKey, Status, WorkOrder
from work_orders.routing import Taxonomy
from work_orders.schemas import WorkOrderCreate

MAX_REQUESTS = 1000


class Open311Route(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                return JSONResponse([{"code": exc.status_code, "description": exc.message}], exc.status_code)
            except RequestValidationError as exc:
                msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
                return JSONResponse([{"code": 400, "description": msg}], 400)

        return wrapped


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)
keys_router = APIRouter(prefix="/intake-keys", tags=["open311"])


@dataclass(frozen=True)
class IntakeActor:
    username: str
    role: str = "intake"
    id: None = None
    department_code: None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _service(tax: Taxonomy, code: str) -> dict[str, Any]:
    c = tax.categories[code]
    return {
        "service_code": c.code, "service_name": c.name, "description": c.name, "metadata": False,
        "type": "realtime", "keywords": ",".join(c.keywords), "group": c.code.split(".")[0],
    }


def _request_out(o: WorkOrder, tax: Taxonomy) -> dict[str, Any]:
    return {
        "service_request_id": o.ticket,
        "status": "open" if Status(o.status) in OPEN_STATUSES else "closed",
        "status_notes": mask_phone(o.public_note) if o.public_note else None,
        "service_name": tax.category_name(o.category_code),
        "service_code": o.category_code,
        "description": mask_phone(o.description),
        "agency_responsible": tax.department_name(o.department_code),
        "service_notice": None,
        "requested_datetime": o.created_at.isoformat(),
        "updated_datetime": o.updated_at.isoformat(),
        "expected_datetime": o.resolution_due.isoformat(),
        "address": o.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": o.lat,
        "long": o.lon,
        "media_url": None,
    }


@router.get("/services.json")
async def services(container: ContainerDep, session: SessionDep) -> list[dict[str, Any]]:
    tax = await container.work_orders.tax(session)
    return [_service(tax, c) for c, info in sorted(tax.categories.items()) if info.active]


@router.get("/services/{service_code}.json")
async def service_definition(service_code: str, container: ContainerDep, session: SessionDep) -> dict[str, Any]:
    tax = await container.work_orders.tax(session)
    info = tax.categories.get(service_code)
    if info is None or not info.active:
        raise NotFound(f"no service {service_code!r}")
    return {"service_code": service_code, "attributes": []}


class Open311Post(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_key: str | None = Field(default=None, max_length=128)
    service_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]
    address_string: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    phone: str | None = Field(default=None, max_length=20)
    first_name: str | None = Field(default=None, max_length=32)
    last_name: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=128)
    device_id: str | None = Field(default=None, max_length=64)
    account_id: str | None = Field(default=None, max_length=64)


async def _actor(request: Request, session: Any, api_key: str | None) -> Any:
    container = request.app.state.container
    if api_key:
        row = await session.scalar(select(IntakeKey).where(IntakeKey.key_hash == hash_key(api_key)))
        if row is None or not row.active:
            raise Forbidden("invalid api_key")
        return IntakeActor(username=f"open311:{row.channel}")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        try:
            claims = decode_token(auth[7:], container.settings.secret_key)
            user = await session.get(User, int(claims["sub"]))
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            raise Unauthorized("invalid token") from None
        if user is None or not user.is_active:
            raise Unauthorized("user no longer active")
        if user.role == "department":
            raise Forbidden("department users cannot raise orders")
        return user
    raise Forbidden("api_key required")


@router.post("/requests.json", status_code=201)
async def post_request(request: Request, container: ContainerDep, session: SessionDep) -> list[dict[str, Any]]:
    ctype = request.headers.get("content-type", "")
    try:
        raw: Any = await request.json() if "json" in ctype else dict(await request.form())
    except ValueError:
        raise BadRequest("body must be form-encoded or JSON") from None
    if not isinstance(raw, dict):
        raise BadRequest("body must be an object")
    raw.setdefault("api_key", request.query_params.get("api_key"))
    try:
        body = Open311Post.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise BadRequest(f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    actor = await _actor(request, session, body.api_key)
    name = " ".join(p for p in (body.last_name, body.first_name) if p) or None
    channel = actor.username.split(":", 1)[1] if isinstance(actor, IntakeActor) else "open311"
    try:
        data = WorkOrderCreate(
            category=body.service_code, description=body.description, address=body.address_string,
            caller_phone=body.phone, caller_name=name, channel=channel, lat=body.lat, lon=body.long,
        )
    except ValidationError as exc:
        e = exc.errors()[0]
        raise BadRequest(f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    key = request.headers.get("idempotency-key")
    created = await container.work_orders.create(
        session, actor, data, idempotency_key=f"{channel}:{key}"[:128] if key else None
    )
    notice = f"已受理，工单号 {created.ticket}" + (f"，由{created.department_name}办理" if created.department_name else "")
    return [{"service_request_id": created.ticket, "service_notice": notice, "account_id": body.account_id}]


@router.get("/requests.json")
async def get_requests(
    container: ContainerDep,
    session: SessionDep,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=64)] = None,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> list[dict[str, Any]]:
    svc = container.work_orders
    q = select(WorkOrder).where(WorkOrder.status != Status.merged.value)
    if service_request_id:
        q = q.where(WorkOrder.ticket.in_([t.strip() for t in service_request_id.split(",") if t.strip()][:100]))
    else:  # the standard's default window: the last 90 days
        end = end_date or svc.clock()
        start = start_date or end - dt.timedelta(days=90)
        for d in (start, end):
            if d.tzinfo is None:
                raise BadRequest("start_date/end_date need a time zone (W3C format)")
        q = q.where(WorkOrder.created_at >= start, WorkOrder.created_at <= end)
    if service_code:
        q = q.where(WorkOrder.category_code == service_code)
    open_values = [s.value for s in OPEN_STATUSES]
    if status == "open":
        q = q.where(WorkOrder.status.in_(open_values))
    elif status == "closed":
        q = q.where(WorkOrder.status.not_in(open_values))
    rows = (await session.scalars(q.order_by(WorkOrder.id.desc()).limit(MAX_REQUESTS))).all()
    tax = await svc.tax(session)
    return [_request_out(o, tax) for o in rows]


@router.get("/requests/{service_request_id}.json")
async def get_request(service_request_id: str, container: ContainerDep, session: SessionDep) -> list[dict[str, Any]]:
    svc = container.work_orders
    order = await svc.get_by_ticket(session, service_request_id)
    if order is None or order.status == Status.merged.value:
        raise NotFound(f"no service request {service_request_id!r}")
    return [_request_out(order, await svc.tax(session))]


# -- admin: intake-channel keys ----------------------------------------------------------------
class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32,
                                              pattern=r"^[a-z][a-z0-9_\-]*$")]


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    channel: str
    key_prefix: str
    active: bool
    created_at: dt.datetime
    created_by: str
    api_key: str | None = None  # shown once, at creation


@keys_router.get("", response_model=list[KeyOut])
async def list_keys(session: SessionDep, _: AdminUser) -> Any:
    return (await session.scalars(select(IntakeKey).order_by(IntakeKey.id))).all()


@keys_router.post("", response_model=KeyOut, status_code=201)
async def issue_key(body: KeyIn, session: SessionDep, admin: AdminUser) -> KeyOut:
    if await session.scalar(select(IntakeKey.id).where(IntakeKey.channel == body.channel)):
        raise Conflict(f"channel {body.channel!r} already has a key; revoke it first")
    key = "o311_" + secrets.token_urlsafe(32)
    row = IntakeKey(channel=body.channel, key_hash=hash_key(key), key_prefix=key[:8], created_by=admin.username)
    session.add(row)
    await session.flush()
    audit.record(session, admin, "open311.key_issue", "intake_key", row.id, channel=body.channel)
    await session.commit()
    return KeyOut.model_validate(row).model_copy(update={"api_key": key})


@keys_router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: int, session: SessionDep, admin: AdminUser) -> Any:
    row = await session.get(IntakeKey, key_id)
    if row is None:
        raise NotFound(f"intake key {key_id} not found")
    row.active = False
    row.channel = f"{row.channel}~{row.id}"[:32]  # frees the channel name for a new key
    audit.record(session, admin, "open311.key_revoke", "intake_key", row.id, channel=row.channel)
    await session.commit()
    return row
