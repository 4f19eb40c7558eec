from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Path

from core.deps import StaffUser, get_container
from dialogue.schemas import SESSION_ID, EndOut, TurnIn, TurnOut
from dialogue.service import DialogueService

router = APIRouter(prefix="/dialogue", tags=["dialogue"])


class DialogueWiring(Protocol):
    dialogue: DialogueService


ContainerDep = Annotated[DialogueWiring, Depends(get_container)]
SessionId = Annotated[str, Path(pattern=SESSION_ID, description="one conversation, e.g. the call id")]


@router.post("/{session_id}", response_model=TurnOut)
async def turn(session_id: SessionId, data: TurnIn, container: ContainerDep, _: StaffUser) -> TurnOut:
    return await container.dialogue.turn(session_id, data)


@router.post("/{session_id}/end", response_model=EndOut)
async def end(session_id: SessionId, container: ContainerDep, _: StaffUser) -> EndOut:
    await container.dialogue.end(session_id)
    return EndOut(session_id=session_id, ended=True)
