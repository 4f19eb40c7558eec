from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.auth.models import Role


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=128)
    role: Role
    display_name: str = Field(default="", max_length=64)
    department_code: str | None = Field(default=None, max_length=64)
    sip_endpoint: str | None = Field(default=None, max_length=64)
    skills: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _department_needs_code(self) -> "UserCreate":
        if self.role == Role.department and not self.department_code:
            raise ValueError("department users need a department_code")
        return self


class UserUpdate(BaseModel):
    password: str | None = Field(default=None, min_length=8, max_length=128)
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=64)
    department_code: str | None = Field(default=None, max_length=64)
    sip_endpoint: str | None = Field(default=None, max_length=64)
    skills: list[str] | None = Field(default=None, max_length=20)
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    department_code: str | None
    sip_endpoint: str | None
    skills: list[str]
    is_active: bool
    created_at: dt.datetime

    @model_validator(mode="before")
    @classmethod
    def _split_skills(cls, value: object) -> object:
        skills = getattr(value, "skills", None)
        if isinstance(skills, str):
            return {k: getattr(value, k) for k in cls.model_fields if k != "skills"} | {
                "skills": [s for s in skills.split(",") if s]
            }
        return value
