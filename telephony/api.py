from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from core.auth.models import Role, User
from core.deps import SessionDep, StaffUser
from core.logging import mask_phone
from telephony.calls import CallRecords
from telephony.models import CallOutcome
from telephony.schemas import CallOut, CallPage, CallSummary

router = APIRouter(prefix="/calls", tags=["calls"])


def _caller_for(user: User, caller: str) -> str:
    """Agents see masked numbers in lists; supervisors and admins see them in full."""
    return mask_phone(caller) if user.role == Role.agent.value else caller


@router.get("", response_model=CallPage)
async def list_calls(
    session: SessionDep,
    user: StaffUser,
    caller: Annotated[str | None, Query(pattern=r"^\+?[0-9]{3,20}$")] = None,
    since: dt.datetime | None = None,
    outcome: CallOutcome | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallPage:
    rows, total = await CallRecords.list(session, caller=caller, since=since, outcome=outcome, limit=limit, offset=offset)
    items = [
        CallSummary.model_validate(call).model_copy(update={"n_turns": n, "caller": _caller_for(user, call.caller)})
        for call, n in rows
    ]
    return CallPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{call_id}", response_model=CallOut)
async def get_call(call_id: str, session: SessionDep, user: StaffUser) -> CallOut:
    call = await CallRecords.get(session, call_id)
    out = CallOut.model_validate(call)
    if user.role == Role.agent.value and call.agent_id != user.id:
        out = out.model_copy(update={"caller": mask_phone(call.caller)})
    return out
