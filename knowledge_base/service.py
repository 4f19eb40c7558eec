"""Knowledge-base logic: versioned edits, publishing rules, validity windows, search, import/export."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.settings import Settings
from core import audit
from core.db import Database, utcnow
from core.errors import Conflict, NotFound
from knowledge_base.models import CONTENT_FIELDS, EntryStatus, KbEntry, KbEntryVersion
from knowledge_base.schemas import EntryCreate, EntryUpdate, ImportReport, ImportRowError, SearchHit, SearchResult
from knowledge_base.caller_text import prepare
from knowledge_base.phonetic import HomophoneCorrector
from knowledge_base.search import BM25Index, IndexedDoc
from knowledge_base.strength import Strength, classify, has_evidence, margin
from knowledge_base.text import Analyzer, said_as_written, shared_analyzer

log = logging.getLogger(__name__)

CITY_WIDE = "全市"


def _jsonable(content: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in content.items()}


@dataclass(frozen=True)
class _Published:
    id: int
    key: str
    title: str
    category: str
    question: str
    spoken_answer: str
    text_answer: str
    region: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None

    def valid_at(self, now: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


class KnowledgeBaseService:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._analyzer: Analyzer | None = None
        self._index: BM25Index | None = None
        self._corrector: HomophoneCorrector | None = None
        self._published: dict[int, _Published] = {}
        self._revision: tuple[Any, ...] | None = None
        self._lock = asyncio.Lock()
        self.on_publish: list[Callable[[KbEntry], Any]] = []

    # -- reading -------------------------------------------------------------------------------
    async def get(self, session: AsyncSession, entry_id: int) -> KbEntry:
        entry = await session.get(KbEntry, entry_id)
        if entry is None:
            raise NotFound(f"knowledge-base entry {entry_id} not found")
        return entry

    async def list(
        self,
        session: AsyncSession,
        *,
        status: EntryStatus | None = None,
        category: str | None = None,
        region: str | None = None,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[KbEntry], int]:
        q = select(KbEntry)
        if status:
            q = q.where(KbEntry.status == status.value)
        if category:
            q = q.where(KbEntry.category == category)
        if region:
            q = q.where(KbEntry.region == region)
        if text:
            like = f"%{text}%"
            q = q.where(or_(KbEntry.title.like(like), KbEntry.question.like(like), KbEntry.key.like(like)))
        total = await session.scalar(select(func.count()).select_from(q.subquery()))
        rows = await session.scalars(q.order_by(KbEntry.id).limit(limit).offset(offset))
        return list(rows.all()), int(total or 0)

    async def versions(self, session: AsyncSession, entry_id: int) -> list[KbEntryVersion]:
        await self.get(session, entry_id)
        rows = await session.scalars(
            select(KbEntryVersion).where(KbEntryVersion.entry_id == entry_id).order_by(KbEntryVersion.version)
        )
        return list(rows.all())

    async def version(self, session: AsyncSession, entry_id: int, version: int) -> KbEntryVersion:
        row = await session.scalar(
            select(KbEntryVersion).where(KbEntryVersion.entry_id == entry_id, KbEntryVersion.version == version)
        )
        if row is None:
            await self.get(session, entry_id)
            raise NotFound(f"entry {entry_id} has no version {version}")
        return row

    # -- writing (each public method is one transaction) ---------------------------------------
    async def create(self, session: AsyncSession, actor: Any, data: EntryCreate) -> KbEntry:
        if await session.scalar(select(KbEntry.id).where(KbEntry.key == data.key)):
            raise Conflict(f"an entry with key {data.key!r} already exists")
        entry = self._new_entry(data, actor)
        session.add(entry)
        await session.flush()
        self._snapshot(session, entry, actor, "create", list(CONTENT_FIELDS))
        audit.record(session, actor, "kb.create", "kb_entry", entry.id, key=entry.key, status=entry.status)
        await self._commit(session)
        return entry

    async def update(self, session: AsyncSession, actor: Any, entry_id: int, data: EntryUpdate) -> KbEntry:
        entry = await self._editable(session, entry_id, data.version)
        changes = data.model_dump(exclude_unset=True, exclude={"version"})
        merged = entry.content() | changes
        try:
            EntryCreate.model_validate(merged | {"status": EntryStatus.draft})
        except ValidationError as exc:
            raise Conflict(f"the edit leaves the entry invalid: {_errors(exc)[0]}") from None
        changed = [f for f in changes if getattr(entry, f) != changes[f]]
        if not changed:
            return entry
        for field in changed:
            setattr(entry, field, merged[field])
        self._touch(entry, actor)
        await session.flush()
        self._snapshot(session, entry, actor, "update", changed)
        audit.record(session, actor, "kb.update", "kb_entry", entry.id, fields=changed, version=entry.version)
        await self._commit(session)
        return entry

    async def publish(self, session: AsyncSession, actor: Any, entry_id: int, version: int | None = None) -> KbEntry:
        entry = await self._editable(session, entry_id, version)
        if entry.status == EntryStatus.published.value:
            raise Conflict("entry is already published", allowed=["unpublish", "archive"])
        if entry.valid_until is not None and entry.valid_until <= self.clock():
            raise Conflict("entry's validity window has ended; extend valid_until before publishing")
        return await self._set_status(session, actor, entry, EntryStatus.published, "publish")

    async def unpublish(self, session: AsyncSession, actor: Any, entry_id: int, version: int | None = None) -> KbEntry:
        entry = await self._editable(session, entry_id, version)
        if entry.status != EntryStatus.published.value:
            raise Conflict(f"only published entries can be unpublished (this one is {entry.status})")
        return await self._set_status(session, actor, entry, EntryStatus.draft, "unpublish")

    async def archive(self, session: AsyncSession, actor: Any, entry_id: int, version: int | None = None) -> KbEntry:
        entry = await self._editable(session, entry_id, version)
        return await self._set_status(session, actor, entry, EntryStatus.archived, "archive")

    async def restore(self, session: AsyncSession, actor: Any, entry_id: int, version: int) -> KbEntry:
        """Bring back an old version's content as a new version; an archived entry comes back as a draft."""
        old = await self.version(session, entry_id, version)
        entry = await self.get(session, entry_id)
        content = EntryCreate.model_validate(old.snapshot | {"status": EntryStatus.draft}).model_dump()
        changed = [f for f in CONTENT_FIELDS if getattr(entry, f) != content[f]]
        for field in changed:
            setattr(entry, field, content[field])
        if entry.status == EntryStatus.archived.value:
            entry.status = EntryStatus.draft.value
            changed.append("status")
        self._touch(entry, actor)
        await session.flush()
        self._snapshot(session, entry, actor, f"restore:v{version}", changed)
        audit.record(session, actor, "kb.restore", "kb_entry", entry.id, from_version=version, version=entry.version)
        await self._commit(session)
        return entry

    async def import_rows(self, session: AsyncSession, actor: Any, rows: list[dict[str, Any]]) -> ImportReport:
        """Validate every row; write all the good ones in one transaction; report the bad ones."""
        report = ImportReport(created=0, updated=0, unchanged=0, rejected=[])
        seen: set[str] = set()
        good: list[EntryCreate] = []
        for number, row in enumerate(rows, start=1):
            key = str(row.get("key")) if isinstance(row, dict) and row.get("key") else None
            try:
                if not isinstance(row, dict):
                    raise ValueError("row is not a mapping of field names to values")
                data = EntryCreate.model_validate(row)
            except ValidationError as exc:
                report.rejected.append(ImportRowError(row=number, key=key, errors=_errors(exc)))
                continue
            except ValueError as exc:
                report.rejected.append(ImportRowError(row=number, key=key, errors=[str(exc)]))
                continue
            if data.key in seen:
                report.rejected.append(ImportRowError(row=number, key=key, errors=["key appears twice in the file"]))
                continue
            seen.add(data.key)
            good.append(data)
        existing = {
            e.key: e for e in (await session.scalars(select(KbEntry).where(KbEntry.key.in_(list(seen))))).all()
        }
        for data in good:
            entry = existing.get(data.key)
            if entry is None:
                entry = self._new_entry(data, actor)
                session.add(entry)
                await session.flush()
                self._snapshot(session, entry, actor, "import", list(CONTENT_FIELDS))
                report.created += 1
                continue
            content = data.model_dump()
            changed = [f for f in CONTENT_FIELDS if getattr(entry, f) != content[f]]
            if entry.status != data.status.value:
                changed.append("status")
            if not changed:
                report.unchanged += 1
                continue
            for field in CONTENT_FIELDS:
                setattr(entry, field, content[field])
            entry.status = data.status.value
            if entry.status == EntryStatus.published.value:
                entry.published_at = self.clock()
            self._touch(entry, actor)
            await session.flush()
            self._snapshot(session, entry, actor, "import", changed)
            report.updated += 1
        audit.record(
            session, actor, "kb.import", "kb", "import",
            created=report.created, updated=report.updated, rejected=len(report.rejected),
        )
        await self._commit(session)
        return report

    async def export(self, session: AsyncSession, status: EntryStatus | None = None) -> list[dict[str, Any]]:
        q = select(KbEntry).order_by(KbEntry.id)
        if status:
            q = q.where(KbEntry.status == status.value)
        return [_jsonable(e.content()) | {"status": e.status} for e in (await session.scalars(q)).all()]

    # -- search --------------------------------------------------------------------------------
    async def search(self, query: str, region: str | None = None, limit: int = 5) -> SearchResult:
        """Published, currently valid entries for a caller's question, best first, with how sure the first
        one is (`SearchResult.strength`: strong → answer it, plausible → offer it, none → no hits) and its
        margin over the second. Long, unpunctuated questions with their story first, fillers and
        recogniser homophones of KB words ("社宝卡") are expected."""
        await self._refresh_index()
        assert self._index is not None and self._analyzer is not None
        now = self.clock()
        allowed = {
            pid
            for pid, p in self._published.items()
            if p.valid_at(now) and (region is None or p.region in (CITY_WIDE, region))
        }
        searched = prepare(query, self._corrector)
        # One more than asked: the first hit's margin is measured against the next, shown or not.
        ranked = [r for r in self._index.search(searched, allowed, max(limit, 1) + 1) if r.score >= self.settings.kb_min_score]
        strength = classify(ranked[0], ranked[1] if len(ranked) > 1 else None) if ranked else Strength.none
        hits: list[SearchHit] = []
        if strength is not Strength.none:
            for i, r in enumerate(ranked[:limit]):
                if i and not has_evidence(r):
                    break
                p = self._published[r.doc_id]
                hits.append(
                    SearchHit(
                        id=p.id, key=p.key, title=p.title, category=p.category, question=p.question,
                        spoken_answer=p.spoken_answer, text_answer=p.text_answer, region=p.region,
                        score=round(r.score, 4), coverage=round(r.coverage, 3), focus=round(r.focus, 3),
                        strength=strength if i == 0 else Strength.plausible,
                    )
                )
        return SearchResult(
            query=query, terms=self._analyzer.terms(searched), hits=hits, searched=searched, strength=strength,
            margin=round(margin(ranked[0], ranked[1] if len(ranked) > 1 else None), 3) if hits else 0.0,
        )

    async def _refresh_index(self) -> None:
        """Rebuild when the published set changed (checked per search: edits take effect at once)."""
        async with self.db.session() as session:
            revision = tuple(
                (await session.execute(select(func.count(KbEntry.id), func.max(KbEntry.updated_at)))).one()
            )
        if revision == self._revision and self._index is not None:
            return
        async with self._lock:
            if revision == self._revision and self._index is not None:
                return
            async with self.db.session() as session:
                rows = (await session.scalars(select(KbEntry).where(KbEntry.status == EntryStatus.published.value))).all()
            if self._analyzer is None:
                self._analyzer = await asyncio.to_thread(shared_analyzer, self.settings.kb_synonyms_file)
            self._analyzer.add_words(t for e in rows for t in e.tags)
            docs = [
                IndexedDoc(
                    e.id,
                    {
                        "title": e.title,
                        "questions": " ".join([e.question, *e.alt_questions]),
                        "tags": " ".join(e.tags),
                        "category": e.category,
                        "answer": e.spoken_answer,
                        "bigram": " ".join([e.title, e.question, *e.alt_questions]),
                    },
                    (e.title, e.question, *e.alt_questions),
                )
                for e in rows
            ]
            self._index, self._corrector = await asyncio.to_thread(self._build, self._analyzer, docs, rows)
            self._published = {
                e.id: _Published(
                    e.id, e.key, e.title, e.category, e.question, e.spoken_answer, e.text_answer,
                    e.region, e.valid_from, e.valid_until,
                )
                for e in rows
            }
            self._revision = revision
            log.info("knowledge-base index rebuilt: %d published entries", len(rows))

    @staticmethod
    def _build(analyzer: Analyzer, docs: list[IndexedDoc], rows: list[KbEntry]) -> tuple[BM25Index, HomophoneCorrector]:
        """The index, and the homophone corrector over the words the published entries are asked with."""
        vocabulary = set(analyzer.known_words())
        for e in rows:
            for text in (e.title, e.question, *e.alt_questions, *e.tags):
                vocabulary.update(analyzer.words(text))
        return BM25Index(analyzer, docs), HomophoneCorrector(vocabulary, said_as_written)

    # -- helpers -------------------------------------------------------------------------------
    def _new_entry(self, data: EntryCreate, actor: Any) -> KbEntry:
        now = self.clock()
        entry = KbEntry(**data.model_dump(exclude={"status"}), status=data.status.value)
        entry.created_at = entry.updated_at = now
        entry.updated_by = getattr(actor, "username", str(actor))
        entry.published_at = now if data.status == EntryStatus.published else None
        return entry

    async def _editable(self, session: AsyncSession, entry_id: int, version: int | None) -> KbEntry:
        entry = await self.get(session, entry_id)
        if version is not None and version != entry.version:
            raise Conflict(
                f"entry {entry_id} was changed by someone else (you edited version {version}, "
                f"current is {entry.version}); reload and try again",
                current_version=entry.version,
            )
        if entry.status == EntryStatus.archived.value:
            raise Conflict("entry is archived; restore a version to bring it back as a draft")
        return entry

    async def _set_status(
        self, session: AsyncSession, actor: Any, entry: KbEntry, status: EntryStatus, action: str
    ) -> KbEntry:
        entry.status = status.value
        if status == EntryStatus.published:
            entry.published_at = self.clock()
        self._touch(entry, actor)
        await session.flush()
        self._snapshot(session, entry, actor, action, ["status"])
        audit.record(session, actor, f"kb.{action}", "kb_entry", entry.id, version=entry.version)
        await self._commit(session)
        if status == EntryStatus.published:
            for hook in self.on_publish:
                hook(entry)
        return entry

    def _touch(self, entry: KbEntry, actor: Any) -> None:
        entry.updated_at = max(self.clock(), entry.updated_at + dt.timedelta(microseconds=1))
        entry.updated_by = getattr(actor, "username", str(actor))

    def _snapshot(self, session: AsyncSession, entry: KbEntry, actor: Any, action: str, changed: list[str]) -> None:
        session.add(
            KbEntryVersion(
                entry_id=entry.id,
                version=entry.version,
                at=entry.updated_at,
                username=getattr(actor, "username", str(actor)),
                action=action,
                changed_fields=changed,
                snapshot=_jsonable(entry.content()) | {"status": entry.status},
            )
        )

    @staticmethod
    async def _commit(session: AsyncSession) -> None:
        try:
            await session.commit()
        except StaleDataError:
            await session.rollback()
            raise Conflict("the entry was changed by someone else at the same time; reload and try again") from None


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()]
