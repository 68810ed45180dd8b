"""Output shapes of eCRF metadata (imports, forms and their versions, items, value checks)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.forms import expressions as ex


class ImportedFormOut(BaseModel):
    form: str
    version: int
    items: int
    status: str


class ImportOut(BaseModel):
    study: str
    study_created: bool
    forms: list[ImportedFormOut]
    events: list[str]
    warnings: list[str]


class FormVersionSummaryOut(BaseModel):
    number: int
    status: str
    label_en: str
    label_zh: str


class FormSummaryOut(BaseModel):
    name: str
    versions: list[FormVersionSummaryOut]


class EventOut(BaseModel):
    name: str
    label_zh: str
    label_en: str
    forms: list[str]


class ItemOut(BaseModel):
    name: str
    field_type: str
    data_type: str
    label_zh: str
    label_en: str
    help_zh: str | None
    help_en: str | None
    unit: str | None
    text_format: str | None
    range_min: str | None
    range_max: str | None
    required: bool
    multiple: bool
    choices: list[dict[str, Any]]
    show_if: str | None
    calc: str | None
    source_logic: str | None
    logic_problem: str | None
    classification: str
    classification_confirmed: bool
    data_category: str
    level: int
    matrix_group: str | None = None


class GroupOut(BaseModel):
    name: str
    label_zh: str
    label_en: str
    repeating: bool
    items: list[ItemOut]


class FormVersionOut(BaseModel):
    form: str
    version: int
    id: str
    status: str
    label_zh: str
    label_en: str
    source: str
    published_at: str | None
    groups: list[GroupOut]


class VersionStatusOut(BaseModel):
    form: str
    version: int
    status: str


class CheckOut(BaseModel):
    """The outcome of checking a form's values: typed values, field errors, hidden fields."""

    ok: bool
    values: dict[str, Any]
    errors: dict[str, str]
    hidden: list[str]


# ---- input shapes ----------------------------------------------------------------------------

class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = PField(min_length=1, max_length=64)
    label_zh: str = PField(min_length=1, max_length=300)
    label_en: str = PField(min_length=1, max_length=300)
    repeating: bool = False
    form_names: list[str] = PField(default_factory=list, max_length=200)


class ItemUpdate(BaseModel):
    """Changes to an item of a draft version (published versions are immutable)."""

    model_config = ConfigDict(extra="forbid")
    classification: str | None = PField(default=None, max_length=30)
    confirm_classification: bool = False
    data_category: str | None = PField(default=None, max_length=30)
    level: int | None = None
    required: bool | None = None
    show_if: str | None = PField(default=None, max_length=ex.MAX_LENGTH)
    calc: str | None = PField(default=None, max_length=ex.MAX_LENGTH)
    clear_show_if: bool = False
    unit: str | None = PField(default=None, max_length=40)
    help_zh: str | None = PField(default=None, max_length=5000)
    help_en: str | None = PField(default=None, max_length=5000)
