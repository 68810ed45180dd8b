"""Request bodies that the APIs of more than one domain take: an electronic signature and a
reason (locks and randomisation)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from studies.kernel.roles import Role


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)
    content_sha256: str | None = Field(default=None, max_length=64,
                                       description="hash of the text you were shown")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=4000)
