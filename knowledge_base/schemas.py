from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge_base.models import EntryStatus
from knowledge_base.strength import Strength

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
Text200 = Field(min_length=1, max_length=200)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class EntryFields(BaseModel):
    """Validation shared by create, update and import rows."""

    model_config = ConfigDict(str_strip_whitespace=True)

    title: str = Field(min_length=2, max_length=100)
    category: str = Field(min_length=1, max_length=32)
    question: str = Field(min_length=2, max_length=200)
    alt_questions: list[str] = Field(default_factory=list, max_length=30)
    spoken_answer: str = Field(min_length=2, max_length=500)
    text_answer: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    region: str = Field(default="全市", min_length=1, max_length=32)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None

    @field_validator("alt_questions", "tags")
    @classmethod
    def _items(cls, values: list[str], info: Any) -> list[str]:
        limit = 200 if info.field_name == "alt_questions" else 30
        cleaned = [str(v).strip() for v in values if str(v).strip()]
        for v in cleaned:
            if len(v) > limit:
                raise ValueError(f"each item must be at most {limit} characters")
        return list(dict.fromkeys(cleaned))

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-12-01T08:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _window(self) -> "EntryFields":
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class EntryCreate(EntryFields):
    key: str = Field(pattern=KEY_PATTERN)
    status: EntryStatus = EntryStatus.draft

    @field_validator("status")
    @classmethod
    def _not_archived(cls, value: EntryStatus) -> EntryStatus:
        if value == EntryStatus.archived:
            raise ValueError("new entries are draft or published")
        return value


class EntryUpdate(BaseModel):
    """Partial update; `version` is the version the editor started from (optimistic concurrency)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    version: int = Field(ge=1)
    title: str | None = Field(default=None, min_length=2, max_length=100)
    category: str | None = Field(default=None, min_length=1, max_length=32)
    question: str | None = Field(default=None, min_length=2, max_length=200)
    alt_questions: list[str] | None = Field(default=None, max_length=30)
    spoken_answer: str | None = Field(default=None, min_length=2, max_length=500)
    text_answer: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, min_length=1, max_length=32)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    title: str
    category: str
    question: str
    alt_questions: list[str]
    spoken_answer: str
    text_answer: str
    tags: list[str]
    region: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    status: EntryStatus
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    updated_by: str
    published_at: dt.datetime | None


class EntryPage(BaseModel):
    items: list[EntryOut]
    total: int
    limit: int
    offset: int


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    at: dt.datetime
    username: str
    action: str
    changed_fields: list[str]
    snapshot: dict[str, Any]


class SearchHit(BaseModel):
    id: int
    key: str
    title: str
    category: str
    question: str
    spoken_answer: str
    text_answer: str
    region: str
    score: float
    coverage: float = Field(description="idf-weighted share of the question's words found in the entry (0–1)")
    focus: float = Field(0.0, description="best share of one of the entry's phrasings found in the question (0–1)")
    strength: Strength = Field(
        Strength.plausible, description="strong: answer it; plausible: offer it (您是想问……吗？); only the first hit can be strong"
    )


class SearchResult(BaseModel):
    query: str
    terms: list[str]
    hits: list[SearchHit]
    searched: str = Field("", description="the question as searched: normalised, recogniser homophones of KB words corrected")
    strength: Strength = Field(Strength.none, description="how sure the first hit is: strong, plausible or none (no hits)")
    margin: float = Field(0.0, description="how far the first hit's score is ahead of the second's, as a share of it (0–1)")

    @property
    def best(self) -> SearchHit | None:
        return self.hits[0] if self.hits else None


class ImportRowError(BaseModel):
    row: int
    key: str | None
    errors: list[str]


class ImportReport(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: list[ImportRowError]
