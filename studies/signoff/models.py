"""Tables of multi-party sign-off and the team inbox. Nothing here is ever deleted.

- ``signoff`` — one row per (thing signed, role): which electronic signature (``e_signature``)
  signed it in which role. Unique per role and per person, so distinct people sign. Unlock
  requests and study unblindings are signed off this way.
- ``inbox_message`` — the team inbox shown on the home page: one row per role a message is for
  (or one for everyone with a role on the study), so a lock message never reaches the sponsor.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field

from studies.kernel.models import CreatedAt, IdTable


class SignOff(IdTable, table=True):
    __tablename__ = "signoff"
    __table_args__ = (
        UniqueConstraint("entity_type", "entity_id", "role", name="signoff_role"),
        UniqueConstraint("entity_type", "entity_id", "user_id", name="signoff_person"),
    )

    entity_type: str = Field(sa_column=Column(String(40), nullable=False))
    entity_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    role: str = Field(sa_column=Column(String(40), nullable=False))
    user_id: str = Field(sa_column=Column(String(36), ForeignKey("user_account.id"),
                                          nullable=False))
    signature_id: str = Field(sa_column=Column(String(36), ForeignKey("e_signature.id"),
                                               nullable=False))


class InboxMessage(IdTable, CreatedAt, table=True):
    __tablename__ = "inbox_message"

    # None: a message about no one study (an abnormal-access flag of a refusal outside any
    # study), for the audience role wherever it is held.
    study_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=True, index=True))
    study_code: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    # None: everyone with a role on the study; else only holders of this role.
    audience_role: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    text: str = Field(sa_column=Column(Text(), nullable=False))
    link: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
