"""API and service shapes. Limits: description ≤ 2000 chars, address ≤ 200, notes ≤ 1000, names ≤ 64."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from work_orders.models import Complexity, Satisfaction, Status, Urgency

PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|[2-9]\d{6,7})$")
CODE_RE = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=CODE_RE)]
Text1000 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


def normalize_phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = re.sub(r"[\s()+]", "", value)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits:
        return None
    if not PHONE_RE.match(digits):
        raise ValueError("phone must be a mainland mobile (11 digits) or landline number")
    return digits


class WorkOrderCreate(BaseModel):
    """What the bot, an agent, or an intake channel knows about a request."""

    model_config = ConfigDict(extra="forbid")

    category: Code
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    district: Code | None = None
    caller_phone: str | None = Field(default=None, max_length=20)
    caller_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = "phone"
    call_ref: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    urgency: Urgency | None = None  # default: the category's
    complexity: Complexity | None = None  # default: the category's; easy → answered on the call, closed at once
    answer: Text1000 | None = None  # what the caller was told, for 易 items closed on the call
    department: Code | None = None  # override the responsibility list (agents, supervisors)
    dispatch: bool = True  # dispatch at once to the routed department
    link_repeats: bool = True  # same phone+category+place within the window → urge the open order instead
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("caller_phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalize_phone(v)


OutcomeName = Literal["created", "closed_on_call", "linked_repeat", "hotspot_child", "replayed"]


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: dt.datetime
    actor: str
    actor_role: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str
    public: bool
    detail: dict


class WorkOrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket: str
    status: Status
    status_label: str = ""
    category_code: str
    category_name: str = ""
    district_code: str | None
    department_code: str | None
    department_name: str | None = None
    description: str
    address: str
    place: str | None
    caller_phone: str | None
    caller_name: str | None
    channel: str
    call_ref: str | None
    urgency: Urgency
    complexity: Complexity
    created_at: dt.datetime
    created_by: str
    response_due: dt.datetime
    resolution_due: dt.datetime
    dispatched_at: dt.datetime | None
    accepted_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    result_note: str | None
    public_note: str | None
    urge_count: int
    return_count: int
    reopen_count: int
    escalation_level: int
    master_id: int | None
    merged_into_id: int | None
    satisfaction: Satisfaction | None
    solved: bool | None
    overdue: bool = False
    allowed_actions: list[str] = []
    outcome: str | None = None
    version: int


class WorkOrderDetail(WorkOrderOut):
    history: list[EventOut] = []
    children: list[str] = []  # tickets grouped under this master order (hotspot)


class WorkOrderPage(BaseModel):
    items: list[WorkOrderOut]
    total: int
    limit: int
    offset: int


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text1000 = ""
    public_note: Text1000 | None = None


class RequiredNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note
    public_note: Text1000 | None = None


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: Code | None = None  # default: the responsibility list
    note: Text1000 = ""


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]  # ticket or id
    note: Text1000 = ""


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Satisfaction
    solved: bool | None = None  # 问题是否解决; default: not dissatisfied
    comment: Text1000 = ""


class CallbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    order_id: int
    ticket: str = ""
    status: str
    due_at: dt.datetime
    attempts: int
    created_at: dt.datetime
    completed_at: dt.datetime | None
    result: Satisfaction | None
    solved: bool | None
    comment: str
    recorded_by: str


class PublicNote(BaseModel):
    at: dt.datetime
    status: str | None
    note: str


class PublicOrder(BaseModel):
    ticket: str
    status: Status
    status_label: str
    category: str
    department: str | None
    created_at: dt.datetime
    response_due: dt.datetime
    resolution_due: dt.datetime
    resolved_at: dt.datetime | None
    public_note: str | None
    notes: list[PublicNote]


# -- taxonomy ----------------------------------------------------------------------------------
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Words = list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]]


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    urgency: Urgency = Urgency.normal
    complexity: Complexity = Complexity.simple
    skill: Annotated[str, StringConstraints(max_length=32)] = ""
    keywords: Words = Field(default_factory=list, max_length=100)
    active: bool = True


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    urgency: Urgency | None = None
    complexity: Complexity | None = None
    skill: Annotated[str, StringConstraints(max_length=32)] | None = None
    keywords: Words | None = Field(default=None, max_length=100)
    active: bool | None = None


class CategoryOut(CategoryIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    hotline: Annotated[str, StringConstraints(max_length=32)] = ""
    skill: Annotated[str, StringConstraints(max_length=32)] = ""
    active: bool = True


class DepartmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    hotline: Annotated[str, StringConstraints(max_length=32)] | None = None
    skill: Annotated[str, StringConstraints(max_length=32)] | None = None
    active: bool | None = None


class DepartmentOut(DepartmentIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class DistrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    streets: Words = Field(default_factory=list, max_length=500)
    roads: Words = Field(default_factory=list, max_length=500)
    landmarks: Words = Field(default_factory=list, max_length=500)
    active: bool = True


class DistrictUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    streets: Words | None = Field(default=None, max_length=500)
    roads: Words | None = Field(default=None, max_length=500)
    landmarks: Words | None = Field(default=None, max_length=500)
    active: bool | None = None


class DistrictOut(DistrictIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Code
    district: Code | None = None
    keyword: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = None
    department: Code
    active: bool = True


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: Code | None = None
    active: bool | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    category_code: str
    district_code: str | None
    keyword: str | None
    department_code: str
    active: bool


class RouteOut(BaseModel):
    department_code: str | None
    department_name: str | None
    district_code: str | None
    rule_id: int | None
    level: str  # category+district+keyword | category+district | category+keyword | category | district_office | none
