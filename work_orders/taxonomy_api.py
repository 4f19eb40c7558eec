"""HTTP: /v1/taxonomy — categories, departments, districts, responsibility list (admins edit, staff read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from core.deps import AdminUser, AnyStaffUser, SessionDep, StaffUser
from work_orders.deps import ContainerDep
from work_orders.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryUpdate,
    DepartmentIn,
    DepartmentOut,
    DepartmentUpdate,
    DistrictIn,
    DistrictOut,
    DistrictUpdate,
    RouteOut,
    RuleIn,
    RuleOut,
    RuleUpdate,
)
from work_orders.taxonomy import TaxonomyAdmin

router = APIRouter(prefix="/taxonomy", tags=["taxonomy"])


def _admin(container: Any) -> TaxonomyAdmin:
    return TaxonomyAdmin(container.work_orders)


def _crud(kind: str, plural: str, create_model: type, update_model: type, out_model: type) -> None:
    async def list_items(container: ContainerDep, session: SessionDep, _: AnyStaffUser) -> Any:
        return await _admin(container).list(session, kind)

    async def get_item(code: str, container: ContainerDep, session: SessionDep, _: AnyStaffUser) -> Any:
        return await _admin(container).get(session, kind, code)

    async def create_item(body: Any, container: ContainerDep, session: SessionDep, admin: AdminUser) -> Any:
        return await _admin(container).create(session, admin, kind, body)

    async def update_item(code: str, body: Any, container: ContainerDep, session: SessionDep,
                          admin: AdminUser) -> Any:
        return await _admin(container).update(session, admin, kind, code, body)

    create_item.__annotations__["body"] = create_model
    update_item.__annotations__["body"] = update_model
    for fn, name in ((list_items, "list"), (get_item, "get"), (create_item, "create"), (update_item, "update")):
        fn.__name__ = f"{name}_{kind}"
    router.add_api_route(f"/{plural}", list_items, methods=["GET"], response_model=list[out_model])
    router.add_api_route(f"/{plural}/{{code}}", get_item, methods=["GET"], response_model=out_model)
    router.add_api_route(f"/{plural}", create_item, methods=["POST"], response_model=out_model, status_code=201)
    router.add_api_route(f"/{plural}/{{code}}", update_item, methods=["PUT"], response_model=out_model,
                         summary=f"edit a {kind} (set active=false to retire it)")


_crud("category", "categories", CategoryIn, CategoryUpdate, CategoryOut)
_crud("department", "departments", DepartmentIn, DepartmentUpdate, DepartmentOut)
_crud("district", "districts", DistrictIn, DistrictUpdate, DistrictOut)


@router.get("/rules", response_model=list[RuleOut])
async def list_rules(
    container: ContainerDep, session: SessionDep, _: AnyStaffUser,
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return await _admin(container).rules(session, category)


@router.post("/rules", response_model=RuleOut, status_code=201)
async def create_rule(body: RuleIn, container: ContainerDep, session: SessionDep, admin: AdminUser) -> Any:
    return await _admin(container).create_rule(session, admin, body)


@router.put("/rules/{rule_id}", response_model=RuleOut)
async def update_rule(rule_id: int, body: RuleUpdate, container: ContainerDep, session: SessionDep,
                      admin: AdminUser) -> Any:
    """Change the department or (de)activate; rules are never deleted, so the seeder never brings one back."""
    return await _admin(container).update_rule(session, admin, rule_id, body)


@router.get("/route", response_model=RouteOut)
async def preview_route(
    container: ContainerDep, session: SessionDep, _: StaffUser,
    category: Annotated[str, Query(max_length=64)],
    district: Annotated[str | None, Query(max_length=64)] = None,
    text: Annotated[str, Query(max_length=2000)] = "",
    address: Annotated[str, Query(max_length=200)] = "",
) -> RouteOut:
    """Which department the responsibility list picks (district found from the address when not given)."""
    svc = container.work_orders
    district = district or await svc.locate(session, address)
    d = await svc.route(session, category, district, f"{text} {address}")
    return RouteOut(department_code=d.department_code, department_name=d.department_name,
                    district_code=d.district_code, rule_id=d.rule_id, level=d.level)
