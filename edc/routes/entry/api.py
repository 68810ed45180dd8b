"""JSON API for data entry, SDV and queries, bulk import and clinical-data exports (/api/v1).

A save sends the whole form with the record version it edits (``base_version``, 0 for a new
form) and a reason for every changed field; a save on an older version merges when none of
its changed fields was changed since, else answers 409 with ``error.details.changes_since``
and ``error.details.conflicts`` (both values per field); failed checks answer 422 with
``error.details.errors`` (one message per field, zh/en).
Thin routes: each calls one domain function.
"""

from __future__ import annotations

import codecs
import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Query, UploadFile
from fastapi.responses import Response

from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep, audited_read
from edc.errors import raises
from edc.policy import ApiRouter, attachment, requires
from edc.routing import quick
from studies.entry import bulk_import, level5, monitoring, odm_export, stat_export
from studies.entry import files as entry_files
from studies.entry import reading as entry_reading
from studies.entry import service as entry
from studies.entry.files import KNOWN_TYPES
from studies.entry.schemas import (
    EntryFileOut,
    EntrySettingsOut,
    FieldVersionOut,
    FormViewOut,
    GridOut,
    ImportBatchOut,
    QueryAnsweredOut,
    QueryAnswerIn,
    QueryNoteIn,
    QueryOpenedOut,
    QueryOpenIn,
    QueryOut,
    QueryRowOut,
    QueryStatusOut,
    SaveIn,
    SaveOut,
    SdvIn,
    SdvOut,
    SettingsIn,
    TimelineEntryOut,
    UnmaskGrantIn,
    UnmaskGrantOut,
    WorklistOut,
)
from studies.kernel.errors import Locked
from studies.kernel.events import Action
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm

router = ApiRouter(prefix="/api/v1", tags=["data entry, SDV and queries"])
FORM = "/studies/{study}/entry/{subject}/{event}/{form}"
Repeat = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/studies/{study}/entry/settings", response_model=EntrySettingsOut,
            dependencies=[requires(Perm.ENTRY_READ)])
def get_settings(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return entry.settings_public(entry.study_settings(session, actor=actor, study_code=study))


@router.put("/studies/{study}/entry/settings", response_model=EntrySettingsOut,
            dependencies=[requires(Perm.STUDY_MANAGE)])
def put_settings(study: str, body: SettingsIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> dict[str, Any]:
    """Incomplete saves allowed or not; which items need SDV (all, key, sample, none)."""
    return entry.settings_public(entry.update_settings(session, ledger, actor=actor,
                                                       study_code=study, data=body))


@router.get("/studies/{study}/entry", response_model=GridOut,
            dependencies=[requires(Perm.ENTRY_READ), audited_read(Action.READ_LIST)])
def grid(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return entry_reading.subject_grid(session, actor=actor, study_code=study)


@router.get(FORM, response_model=FormViewOut, dependencies=[requires(Perm.ENTRY_READ)])
@quick
def read_form(study: str, subject: str, event: str, form: str, session: SessionDep,
              actor: CurrentActor, note: Annotated[ReadNote, audited_read(Action.READ_FORM)],
              repeat: Repeat = 1) -> dict[str, Any]:
    return entry_reading.form_view(session, actor=actor, study_code=study, subject_code=subject,
                           event_name=event, form_name=form, repeat=repeat, note=note)


@router.put(FORM, response_model=SaveOut, dependencies=[requires(Perm.ENTRY_WRITE)],
            responses=raises(Locked))
@quick
def save_form(study: str, subject: str, event: str, form: str, body: SaveIn,
              session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    """Save the whole form as a new record version (see the module doc for 409 and 422)."""
    return entry.save_form(session, ledger, actor=actor, study_code=study,
                           subject_code=subject, event_name=event, form_name=form,
                           data=body).public()


@router.post(FORM + "/files/{item}", response_model=EntryFileOut,
             dependencies=[requires(Perm.ENTRY_WRITE)], responses=raises(Locked))
def upload_file(study: str, subject: str, event: str, form: str, item: str, file: UploadFile,
                session: SessionDep, ledger: LedgerDep, state: StateDep,
                actor: CurrentActor, repeat: Repeat = 1) -> dict[str, Any]:
    """Upload a file for a file field (multipart ``file``; size and type limits are
    settings); then save its ``id`` as the field's value. Audited."""
    limits = state.settings.file_limits()
    row = entry_files.upload(session, ledger, actor=actor, study_code=study,
                             subject_code=subject, event_name=event, form_name=form, item=item,
                             filename=file.filename or "", content=file.file.read(
                                 limits.max_bytes + 1), limits=limits, repeat=repeat)
    return entry_files.describe(session, [row.id])[row.id]


@router.get("/studies/{study}/files/{file_id}", dependencies=[requires(Perm.ENTRY_READ)],
            response_class=Response,
            responses=attachment(*KNOWN_TYPES, description="the file as uploaded"))
def download_file(study: str, file_id: str, session: SessionDep, ledger: LedgerDep,
                  state: StateDep, actor: CurrentActor) -> Response:
    """A file field's file, for the roles that read the subject's data (audited)."""
    row, content = entry_files.download(session, ledger, actor=actor, study_code=study,
                                        file_id=file_id, limits=state.settings.file_limits())
    return Response(content, media_type=row.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
        "X-Content-SHA256": row.sha256})


@router.get(FORM + "/history", response_model=list[TimelineEntryOut],
            response_model_exclude_unset=True, dependencies=[requires(Perm.ENTRY_READ)])
def form_timeline(study: str, subject: str, event: str, form: str, session: SessionDep,
                  actor: CurrentActor,
                  note: Annotated[ReadNote, audited_read(Action.READ_HISTORY)],
                  repeat: Repeat = 1) -> list[dict[str, Any]]:
    return entry_reading.timeline(session, actor=actor, study_code=study, subject_code=subject,
                          event_name=event, form_name=form, repeat=repeat, note=note)


@router.get(FORM + "/items/{item}/history", response_model=list[FieldVersionOut],
            dependencies=[requires(Perm.ENTRY_READ)])
def item_history(study: str, subject: str, event: str, form: str, item: str,
                 session: SessionDep, actor: CurrentActor,
                 note: Annotated[ReadNote, audited_read(Action.READ_HISTORY)],
                 repeat: Repeat = 1) -> list[dict[str, Any]]:
    return entry_reading.field_history(session, actor=actor, study_code=study, subject_code=subject,
                               event_name=event, form_name=form, item=item, repeat=repeat,
                               note=note)


@router.post("/studies/{study}/sdv", response_model=SdvOut,
             dependencies=[requires(Perm.ENTRY_VERIFY)], responses=raises(Locked))
def sdv(study: str, body: SdvIn, session: SessionDep, ledger: LedgerDep,
        actor: CurrentActor) -> dict[str, Any]:
    """Verify fields of a form, a whole form, or a whole visit (leave out form and items)."""
    return monitoring.verify(session, ledger, actor=actor, study_code=study, data=body)


@router.get("/studies/{study}/worklist", response_model=WorklistOut,
            dependencies=[requires(Perm.ENTRY_VERIFY), audited_read(Action.READ_LIST)])
def worklist(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return monitoring.worklist(session, actor=actor, study_code=study)


@router.get("/studies/{study}/queries", response_model=list[QueryRowOut],
            dependencies=[requires(Perm.ENTRY_READ), audited_read(Action.READ_LIST)])
def queries(study: str, session: SessionDep, actor: CurrentActor,
            status: Annotated[str | None, Query(max_length=10)] = None
            ) -> list[dict[str, Any]]:
    return monitoring.list_queries(session, actor=actor, study_code=study, status=status)


@router.post("/studies/{study}/queries", status_code=201, response_model=QueryOpenedOut,
             dependencies=[requires(Perm.ENTRY_VERIFY)], responses=raises(Locked))
def open_query(study: str, body: QueryOpenIn, session: SessionDep,
               ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    q = monitoring.open_query(session, ledger, actor=actor, study_code=study, data=body)
    return {"id": q.id, "status": q.status}


@router.get("/studies/{study}/queries/{query_id}", response_model=QueryOut,
            dependencies=[requires(Perm.ENTRY_READ), audited_read(Action.READ_LIST)])
def get_query(study: str, query_id: str, session: SessionDep,
              actor: CurrentActor) -> dict[str, Any]:
    return monitoring.get_query(session, actor=actor, study_code=study, query_id=query_id)


@router.post("/studies/{study}/queries/{query_id}/answer", response_model=QueryAnsweredOut,
             dependencies=[requires(Perm.QUERY_ANSWER)], responses=raises(Locked))
def answer_query(study: str, query_id: str, body: QueryAnswerIn,
                 session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return monitoring.answer_query(session, ledger, actor=actor, study_code=study,
                                   query_id=query_id, data=body)


@router.post("/studies/{study}/queries/{query_id}/close", response_model=QueryStatusOut,
             dependencies=[requires(Perm.ENTRY_VERIFY)], responses=raises(Locked))
def close_query(study: str, query_id: str, body: QueryNoteIn, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return monitoring.close_query(session, ledger, actor=actor, study_code=study,
                                  query_id=query_id, data=body)


@router.post("/studies/{study}/queries/{query_id}/reopen", response_model=QueryStatusOut,
             dependencies=[requires(Perm.ENTRY_VERIFY)], responses=raises(Locked))
def reopen_query(study: str, query_id: str, body: QueryNoteIn, session: SessionDep,
                 ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return monitoring.close_query(session, ledger, actor=actor, study_code=study,
                                  query_id=query_id, data=body, reopen=True)


@router.post("/studies/{study}/entry/import", response_model=ImportBatchOut,
             dependencies=[requires(Perm.ENTRY_IMPORT)], responses=raises(Locked))
def import_csv(study: str, file: UploadFile, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, Any]:
    """A REDCap flat CSV: all rows or none; answers the batch id and counts, or 422 with
    ``error.details.errors`` (row, column, field, message). Large files: use the CLI."""
    lines = codecs.iterdecode(file.file, "utf-8-sig")
    return bulk_import.import_redcap_csv(session, ledger, actor=actor, study_code=study,
                                         lines=lines)


@router.get("/studies/{study}/export/odm", dependencies=[requires(Perm.ENTRY_EXPORT)],
            response_class=Response, responses=attachment("application/xml"))
def export_odm(study: str, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
               subject: Annotated[list[str] | None, Query(max_length=5000)] = None,
               form: Annotated[list[str] | None, Query(max_length=500)] = None) -> Response:
    """CDISC ODM 1.3.2 ClinicalData with AuditRecords; ``subject`` / ``form`` narrow it."""
    data = odm_export.export_clinical_odm(session, ledger, actor=actor, study_code=study,
                                          subjects=subject, form_names=form)
    name = f"{study}-clinical-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.odm.xml"
    return Response(data, media_type="application/xml",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


@router.get("/studies/{study}/export/forms/{form}.csv",
            dependencies=[requires(Perm.ENTRY_EXPORT)], response_class=Response,
            responses=attachment("text/csv; charset=utf-8"))
def export_csv(study: str, form: str, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> Response:
    """One form as CSV, UTF-8 with a byte-order mark (Excel on Chinese Windows reads the
    labels right)."""
    text = odm_export.export_form_csv(session, ledger, actor=actor, study_code=study,
                                      form_name=form)
    return Response(("\ufeff" + text).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition":
                             f'attachment; filename="{study}-{form}.csv"'})


StatFormat = Literal["csv", "csv_labels", "sav", "dta", "xpt", "r"]


@router.get("/studies/{study}/export/statistics/{fmt}",
            dependencies=[requires(Perm.ENTRY_EXPORT)], response_class=Response,
            responses=attachment(*sorted({m for _, m in stat_export.FORMATS.values()})))
def export_statistics(study: str, fmt: StatFormat, session: SessionDep, ledger: LedgerDep,
                      actor: CurrentActor,
                      form: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """A form (``form``) or the whole study for statisticians: CSV (codes, or ``csv_labels``),
    SPSS ``sav``, Stata ``dta``, SAS ``xpt`` with labels, or the R script reading the CSV."""
    data, name = stat_export.export_for_statistics(session, ledger, actor=actor,
                                                   study_code=study, fmt=fmt, form_name=form)
    return Response(data, media_type=stat_export.FORMATS[fmt][1],
                    headers={"content-disposition": f'attachment; filename="{name}"'})


@router.post("/studies/{study}/unmask-grants", status_code=201, response_model=UnmaskGrantOut,
             dependencies=[requires(Perm.UNMASK_GRANT)])
def grant_unmask(study: str, body: UnmaskGrantIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor, state: StateDep) -> dict[str, Any]:
    """Let a user who is not a treating clinician see the study's level-5 values for
    ``hours`` (§6.2 e); audited, and each view they make of such a value is audited."""
    g = level5.grant(session, ledger, actor=actor, study=entry.study_named(session, study),
                     username=body.username, reason=body.reason, hours=body.hours,
                     max_hours=state.settings.unmask_grant_max_hours,
                     now=dt.datetime.now(dt.UTC))
    return {"id": g.id, "username": body.username, "reason": g.reason,
            "granted_by": g.granted_by, "expires_at": g.expires_at}
