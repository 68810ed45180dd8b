"""eCRF metadata (§11.3.4.4 a): events, forms and their versions, item groups, items.

A form's content belongs to a :class:`FormVersion`; a published version is immutable, so data
entered under it keeps meaning what it meant. Code lists are stored with their item.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field

from audit_trail.base import UTCDateTime
from studies.forms import datatypes
from studies.kernel.i18n import _l
from studies.kernel.models import CreatedAt, IdTable

DATA_TYPES = tuple(datatypes.DATA_TYPES)  # one entry per type: studies/forms/datatypes.py
FIELD_TYPES = ("text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc",
               "descriptive", "slider", "file")
TEXT_FORMATS = ("email", "phone", "postcode", "postcode_ca", "id_number", "mm_ss",
                "alpha", "1dp", "2dp", "3dp", "4dp", "hh_mm_ss")
CLASSIFICATIONS = ("direct_identifier", "quasi_identifier", "sensitive", "clinical")
CLASSIFICATION_LABELS = {
    "direct_identifier": _l("Direct identifier"),
    "quasi_identifier": _l("Quasi-identifier"),
    "sensitive": _l("Sensitive"),
    "clinical": _l("Clinical"),
}
# GB/T 39725-2020 Table 1.
DATA_CATEGORIES = {
    "personal_attributes": _l("Personal attributes"),
    "health_status": _l("Health status"),
    "medical_application": _l("Medical application"),
    "medical_payment": _l("Medical payment"),
    "health_resources": _l("Health resources"),
    "public_health": _l("Public health"),
}
LEVELS = (1, 2, 3, 4, 5)  # §6.2
FORM_STATUSES = ("draft", "published")


class StudyEvent(IdTable, table=True):
    """A visit or event of the study schedule (ODM StudyEventDef)."""

    __tablename__ = "study_event"
    __table_args__ = (UniqueConstraint("study_id", "name", name="study_event_name"),)

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))
    label_zh: str = Field(sa_column=Column(String(300), nullable=False))
    label_en: str = Field(sa_column=Column(String(300), nullable=False))
    position: int = Field(sa_column=Column(Integer(), nullable=False))
    repeating: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    form_names: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))


class Form(IdTable, CreatedAt, table=True):
    """A case report form of a study; its content is in its versions."""

    __tablename__ = "crf_form"
    __table_args__ = (UniqueConstraint("study_id", "name", name="crf_form_name"),)

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))


class FormVersion(IdTable, CreatedAt, table=True):
    __tablename__ = "crf_form_version"
    __table_args__ = (UniqueConstraint("form_id", "number", name="crf_form_version_number"),)

    form_id: str = Field(sa_column=Column(
        String(36), ForeignKey("crf_form.id"), nullable=False, index=True))
    number: int = Field(sa_column=Column(Integer(), nullable=False))
    label_zh: str = Field(sa_column=Column(String(300), nullable=False))
    label_en: str = Field(sa_column=Column(String(300), nullable=False))
    status: str = Field(default="draft", sa_column=Column(String(20), nullable=False))
    source: str = Field(default="manual", sa_column=Column(String(20), nullable=False))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
    published_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    published_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))


class ItemGroup(IdTable, table=True):
    __tablename__ = "crf_item_group"
    __table_args__ = (UniqueConstraint("form_version_id", "name", name="crf_item_group_name"),)

    form_version_id: str = Field(sa_column=Column(
        String(36), ForeignKey("crf_form_version.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))
    label_zh: str = Field(sa_column=Column(String(500), nullable=False))
    label_en: str = Field(sa_column=Column(String(500), nullable=False))
    position: int = Field(sa_column=Column(Integer(), nullable=False))
    repeating: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))


class Item(IdTable, table=True):
    """One field. ``show_if`` and ``calc`` hold expressions in the system's own language
    (:mod:`studies.forms.expressions`); ``logic_problem`` names an expression that could not be
    translated on import (kept in ``source_logic`` and reported; publishing is refused)."""

    __tablename__ = "crf_item"
    __table_args__ = (UniqueConstraint("form_version_id", "name", name="crf_item_name"),)

    form_version_id: str = Field(sa_column=Column(
        String(36), ForeignKey("crf_form_version.id"), nullable=False, index=True))
    group_id: str = Field(sa_column=Column(
        String(36), ForeignKey("crf_item_group.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))
    position: int = Field(sa_column=Column(Integer(), nullable=False))
    field_type: str = Field(sa_column=Column(String(20), nullable=False))
    data_type: str = Field(sa_column=Column(String(20), nullable=False))
    label_zh: str = Field(sa_column=Column(Text(), nullable=False))
    label_en: str = Field(sa_column=Column(Text(), nullable=False))
    help_zh: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    help_en: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    unit: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    text_format: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    # Bounds as text: a decimal for numbers, an ISO date/datetime for dates.
    range_min: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    range_max: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    required: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    multiple: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    choices: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON(), nullable=False))
    show_if: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    calc: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    source_logic: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    logic_problem: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    # REDCap's matrix group: items of one group share one choice list, shown as one matrix.
    matrix_group: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    classification: str = Field(default="clinical", sa_column=Column(String(30), nullable=False))
    classification_confirmed: bool = Field(default=True, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    data_category: str = Field(default="health_status", sa_column=Column(
        String(30), nullable=False))
    level: int = Field(default=3, sa_column=Column(Integer(), nullable=False))
