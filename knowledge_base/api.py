from __future__ import annotations

from typing import Annotated, Literal, Protocol

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from core.deps import AdminUser, AnyStaffUser, SessionDep, get_container
from core.errors import BadRequest
from knowledge_base import io as kb_io
from knowledge_base.models import EntryStatus, KbEntry, KbEntryVersion
from knowledge_base.schemas import (
    EntryCreate,
    EntryOut,
    EntryPage,
    EntryUpdate,
    ImportReport,
    SearchResult,
    VersionOut,
)
from knowledge_base.service import KnowledgeBaseService

router = APIRouter(prefix="/kb", tags=["knowledge base"])


class KbWiring(Protocol):
    kb: KnowledgeBaseService


ContainerDep = Annotated[KbWiring, Depends(get_container)]
MAX_IMPORT_BYTES = 10 * 1024 * 1024


@router.get("/search", response_model=SearchResult)
async def search(
    container: ContainerDep,
    _: AnyStaffUser,
    q: Annotated[str, Query(min_length=1, max_length=200, description="the question, in everyday words")],
    region: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchResult:
    if not q.strip():
        raise BadRequest("q must contain text")
    return await container.kb.search(q.strip(), region, limit)


@router.get("/entries", response_model=EntryPage)
async def list_entries(
    container: ContainerDep,
    session: SessionDep,
    _: AnyStaffUser,
    status: EntryStatus | None = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    region: Annotated[str | None, Query(max_length=32)] = None,
    text: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EntryPage:
    items, total = await container.kb.list(
        session, status=status, category=category, region=region, text=text, limit=limit, offset=offset
    )
    return EntryPage(items=[EntryOut.model_validate(i) for i in items], total=total, limit=limit, offset=offset)


@router.post("/entries", response_model=EntryOut, status_code=201)
async def create_entry(data: EntryCreate, container: ContainerDep, session: SessionDep, admin: AdminUser) -> KbEntry:
    return await container.kb.create(session, admin, data)


@router.get("/entries/{entry_id}", response_model=EntryOut)
async def get_entry(entry_id: int, container: ContainerDep, session: SessionDep, _: AnyStaffUser) -> KbEntry:
    return await container.kb.get(session, entry_id)


@router.put("/entries/{entry_id}", response_model=EntryOut)
async def update_entry(
    entry_id: int, data: EntryUpdate, container: ContainerDep, session: SessionDep, admin: AdminUser
) -> KbEntry:
    return await container.kb.update(session, admin, entry_id, data)


@router.delete("/entries/{entry_id}", response_model=EntryOut)
async def archive_entry(
    entry_id: int,
    container: ContainerDep,
    session: SessionDep,
    admin: AdminUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> KbEntry:
    """Archive (entries are never erased: their versions and audit trail stay)."""
    return await container.kb.archive(session, admin, entry_id, version)


@router.post("/entries/{entry_id}/{action}", response_model=EntryOut)
async def change_status(
    entry_id: int,
    action: Literal["publish", "unpublish"],
    container: ContainerDep,
    session: SessionDep,
    admin: AdminUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> KbEntry:
    """Explicit publishing: `publish` (draft → published) or `unpublish` (published → draft)."""
    return await getattr(container.kb, action)(session, admin, entry_id, version)


@router.get("/entries/{entry_id}/versions", response_model=list[VersionOut])
async def list_versions(
    entry_id: int, container: ContainerDep, session: SessionDep, _: AnyStaffUser
) -> list[KbEntryVersion]:
    return await container.kb.versions(session, entry_id)


@router.get("/entries/{entry_id}/versions/{version}", response_model=VersionOut)
async def get_version(
    entry_id: int, version: int, container: ContainerDep, session: SessionDep, _: AnyStaffUser
) -> KbEntryVersion:
    return await container.kb.version(session, entry_id, version)


@router.post("/entries/{entry_id}/versions/{version}/restore", response_model=EntryOut)
async def restore_version(
    entry_id: int, version: int, container: ContainerDep, session: SessionDep, admin: AdminUser
) -> KbEntry:
    return await container.kb.restore(session, admin, entry_id, version)


@router.post("/import", response_model=ImportReport)
async def import_entries(
    container: ContainerDep,
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="YAML list of entries, or CSV with a header row")],
    format: Literal["yaml", "csv"] | None = None,
) -> ImportReport:
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise BadRequest("import file larger than 10 MB")
    fmt = format or ("csv" if (file.filename or "").lower().endswith(".csv") else "yaml")
    return await container.kb.import_rows(session, admin, kb_io.parse(content, fmt))


@router.get("/export")
async def export_entries(
    container: ContainerDep,
    session: SessionDep,
    _: AdminUser,
    format: Literal["yaml", "csv"] = "yaml",
    status: EntryStatus | None = None,
) -> Response:
    rows = await container.kb.export(session, status)
    media = "text/csv" if format == "csv" else "application/yaml"
    return Response(
        kb_io.render(rows, format),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kb-export.{format}"'},
    )
