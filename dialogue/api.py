from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dialogue.schemas import SESSION_ID, EndOut, TurnIn, TurnOut
from hotline.deps import ContainerDep, StaffUser

router = APIRouter(prefix="/dialogue", tags=["dialogue"])
SessionId = Annotated[str, Path(pattern=SESSION_ID, description="one conversation, e.g. the call id")]


@router.post("/{session_id}", response_model=TurnOut)
async def turn(session_id: SessionId, data: TurnIn, container: ContainerDep, _: StaffUser) -> TurnOut:
    return await container.dialogue.turn(session_id, data)


@router.post("/{session_id}/end", response_model=EndOut)
async def end(session_id: SessionId, container: ContainerDep, _: StaffUser) -> EndOut:
    await container.dialogue.end(session_id)
    return EndOut(session_id=session_id, ended=True)
