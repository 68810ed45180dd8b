"""Output shapes of data entry, SDV and queries, and bulk import."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.forms.schemas import GroupOut
from studies.kernel.schemas import DB_INT_MAX

# ---- settings and the grid --------------------------------------------------------------------

MAX_REASON = 500
MAX_QUERY_TEXT = 4000


class EntrySettingsOut(BaseModel):
    allow_incomplete: bool
    sdv_mode: str
    sdv_key_items: list[str]
    sdv_sample_percent: int
    reasons: dict[str, str]


class GridEventOut(BaseModel):
    name: str
    label_zh: str
    label_en: str
    repeating: bool
    forms: list[str]


class GridRecordOut(BaseModel):
    version: int
    status: str
    verified: bool = PField(description="every field that needs SDV is verified")
    open_queries: int = PField(description="queries not closed")
    locked: bool = PField(description="a lock covers it and no signed unlock opens it")


class GridSubjectOut(BaseModel):
    code: str
    site: str
    records: dict[str, GridRecordOut]  # "EVENT/REPEAT/FORM"


class GridOut(BaseModel):
    study: str
    events: list[GridEventOut]
    subjects: list[GridSubjectOut]


# ---- a form -----------------------------------------------------------------------------------


class SdvMarkOut(BaseModel):
    state: str
    value_version: int
    by: str
    at: str


class QueryMessageOut(BaseModel):
    kind: str
    text: str
    by: str
    at: str
    record_version: int | None


class RecordQueryOut(BaseModel):
    id: str
    item: str
    status: str
    opened_by: str
    opened_at: str
    thread: list[QueryMessageOut]


class FormViewOut(BaseModel):
    study: str
    subject: str
    site: str
    event: str
    event_label_zh: str
    event_label_en: str
    repeat: int
    form: str
    form_version: int
    form_label_zh: str
    form_label_en: str
    record_id: str | None
    version: int
    status: str
    values: dict[str, Any]
    groups: list[GroupOut]
    sdv: dict[str, SdvMarkOut]
    sdv_required: list[str]
    queries: list[RecordQueryOut]
    locked: bool = PField(description="a lock covers the form; it is read-only until unlocked")
    settings: EntrySettingsOut


class ValueChangeOut(BaseModel):
    field: str
    before: Any
    after: Any
    reason: str | None


class SaveOut(BaseModel):
    record_id: str
    version: int
    status: str
    saved: bool
    changes: list[ValueChangeOut]
    missing: list[str]
    sdv_cleared: list[str]
    merged_from: int | None = PField(default=None, description=(
        "the base version this save named when others had saved since: their changes to "
        "other fields were kept and this save merged onto the newest version"))


class TimelineEntryOut(BaseModel):
    """One event of a form record: a save (``kind`` "save": version, status, ledger_seq,
    batch, changes), an SDV mark ("sdv.…": field, version) or a query message ("query.…":
    field, text, query). Keys that do not belong to the kind are absent."""

    kind: str
    field: str | None = None
    version: int | None = None
    status: str | None = None
    text: str | None = None
    by: str
    at: str
    ledger_seq: int | None = None
    batch: str | None = None
    changes: list[ValueChangeOut] | None = None
    query: str | None = None


class FieldVersionOut(BaseModel):
    version: int
    by: str
    at: str
    reason: str | None
    before: Any
    after: Any
    client: str | None


# ---- SDV and queries --------------------------------------------------------------------------


class SdvOut(BaseModel):
    verified: dict[str, list[str]]  # form name: the fields verified
    count: int


class QueryRowOut(BaseModel):
    id: str
    subject: str
    site: str
    event: str
    repeat: int
    form: str
    item: str
    status: str
    opened_by: str
    opened_at: str
    age_days: int


class WorklistFormOut(BaseModel):
    subject: str
    site: str
    event: str
    repeat: int
    form: str
    version: int
    status: str
    fields: list[str]


class ChangedAfterSdvOut(BaseModel):
    subject: str
    site: str
    event: str
    repeat: int
    form: str
    version: int
    status: str
    item: str
    note: str


class WorklistOut(BaseModel):
    unverified_forms: list[WorklistFormOut]
    open_queries: list[QueryRowOut]
    changed_after_sdv: list[ChangedAfterSdvOut]


class QueryOpenedOut(BaseModel):
    id: str
    status: str


class QueryOut(BaseModel):
    id: str
    item: str
    status: str
    subject: str
    site: str
    event: str
    repeat: int
    form: str
    opened_by: str
    opened_at: str
    thread: list[QueryMessageOut]


class QueryStatusOut(BaseModel):
    query: str
    status: str


class QueryAnsweredOut(BaseModel):
    query: str
    status: str
    save: SaveOut | None


# ---- bulk import ------------------------------------------------------------------------------


class ImportBatchOut(BaseModel):
    batch: str
    rows: int
    records: int
    values: int
    sha256: str


# ---- input shapes ----------------------------------------------------------------------------

class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow_incomplete: bool = False
    sdv_mode: str = PField(default="all", max_length=10)
    sdv_key_items: list[str] = PField(default_factory=list, max_length=2000)
    sdv_sample_percent: int = PField(default=100, ge=1, le=100)
    reasons: dict[str, str] = PField(default_factory=dict, max_length=50)
    treating_roles: list[str] | None = PField(
        default=None, max_length=20,
        description="the roles counted as treating clinicians, who alone see level-5 values "
        "(§6.2 e); null: principal investigator and investigator")


class SaveIn(BaseModel):
    """A save from the API: the whole form (an item left out is empty)."""

    model_config = ConfigDict(extra="forbid")
    base_version: int = PField(ge=0, le=DB_INT_MAX,
                               description=(
        "the record version this save edits; 0: new. A later version is merged with when "
        "no field this save changes was changed since; else 409 with both values"))
    values: dict[str, str | int | float | bool | list[str] | None] = PField(
        default_factory=dict, max_length=2000)
    reasons: dict[str, str] = PField(default_factory=dict, max_length=2000)
    incomplete: bool = False
    repeat: int = PField(default=1, ge=1, le=10_000)


# ---- input shapes ----------------------------------------------------------------------------

class SdvIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = PField(max_length=20)
    event: str = PField(max_length=64)
    repeat: int = PField(default=1, ge=1, le=10_000)
    form: str | None = PField(default=None, max_length=64,
                              description="one form; leave out for the whole visit")
    items: list[str] | None = PField(default=None, max_length=2000,
                                     description="fields; leave out for every field needing SDV")


class QueryOpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = PField(max_length=20)
    event: str = PField(max_length=64)
    repeat: int = PField(default=1, ge=1, le=10_000)
    form: str = PField(max_length=64)
    item: str = PField(max_length=64)
    text: str = PField(min_length=1, max_length=MAX_QUERY_TEXT)


class QueryAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = PField(min_length=1, max_length=MAX_QUERY_TEXT)
    change_value: bool = False
    value: str | list[str] | None = PField(default=None, max_length=10_000)
    reason: str | None = PField(default=None, max_length=MAX_REASON)
    base_version: int | None = PField(default=None, ge=1, le=DB_INT_MAX)


class QueryNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = PField(min_length=1, max_length=MAX_QUERY_TEXT)


class EntryFileOut(BaseModel):
    """An uploaded file: save its ``id`` as the file field's value."""

    id: str
    filename: str
    size: int
    media_type: str
    sha256: str


class UnmaskGrantIn(BaseModel):
    """Let one user see the study's level-5 values for a while (§6.2 e)."""

    model_config = ConfigDict(extra="forbid")
    username: str = PField(max_length=100)
    reason: str = PField(max_length=2000)
    hours: int = PField(ge=1, le=DB_INT_MAX, description="at most EDC_UNMASK_GRANT_MAX_HOURS")


class UnmaskGrantOut(BaseModel):
    id: str
    username: str
    reason: str
    granted_by: str
    expires_at: dt.datetime
