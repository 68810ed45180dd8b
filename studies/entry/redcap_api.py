"""What REDCap's API answers (``POST /api/``, as PyCap, REDCapR and redcapAPI call it), over this
system's rules: the token is one of this system's API tokens (one user, one role, one study),
each content checks its permission and site scope here, reads go through the same data as the
JSON API, an import saves each form through :func:`studies.entry.service.save_form` (locks,
consent, checks, reasons for change), and items classified as direct identifiers never leave
(REDCap's own API does not de-identify; this one does not export them at all).

The shapes follow REDCap's documentation: every value is text; a record row is
``record_id, redcap_event_name, redcap_repeat_instrument, redcap_repeat_instance``, then each
form's fields (a checkbox as ``name___code``) and ``<form>_complete``. Events are named
``<event>_arm_1`` (one arm). A change to saved data carries its reason in the row's
``reason_for_change`` column (REDCap has no such column; its API skips reasons).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger
from studies.accounts.models import RoleGrant, User
from studies.entry import export_approval, level5, odm_export
from studies.entry import service as entry
from studies.entry.errors import EntryInvalid
from studies.entry.schemas import SaveIn
from studies.forms import expressions, redcap
from studies.forms import service as forms
from studies.forms.datatypes import DATA_TYPES
from studies.forms.errors import ExpressionError
from studies.forms.models import Form, Item, StudyEvent
from studies.forms.redcap import join_label
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.subjects.models import Subject

REDCAP_VERSION = "14.5.0"  # the REDCap API version whose shapes this follows
ARM = "_arm_1"
RECORD_ID = redcap.RECORD_ID
REASON_COLUMN = "reason_for_change"
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")
MAX_ROWS = 10_000
DATA_ACTIONS = (Action.ENTRY_CREATE, Action.ENTRY_UPDATE, Action.ENTRY_IMPORT)


def _err(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def study_of(session: Session, actor: Actor) -> Study:
    """The one study the token is for (a REDCap token names one project)."""
    studies = sorted({s for _x, s in actor.grants if s is not None})
    if len(studies) != 1:
        raise PermissionDenied(_("this API token is not for one study; issue a REDCap token for "
                                 "the study"))
    require(actor, Perm.STUDY_READ, study=studies[0])
    return registry.get_study(session, studies[0])


# ---- metadata -------------------------------------------------------------------------------

@dataclass
class _Form:
    form: Form
    label: str
    items: list[Item]


def _forms(session: Session, study: Study) -> list[_Form]:
    out = []
    for form in forms.forms_of(session, study.id):
        v = forms.current_version(session, form)
        if v is not None:
            out.append(_Form(form, join_label(v.label_zh, v.label_en),
                             forms.items_of(session, v.id)))
    return out


def _exported(item: Item) -> bool:
    return item.field_type != "descriptive" and item.classification != "direct_identifier"


def _names(value: list[str] | None, known: Mapping[str, object], param: str) -> list[str] | None:
    if not value:
        return None
    bad = [v for v in value if v not in known]
    if bad:
        raise _err(param, _("the following values are not valid: {value}").format(
                              value=', '.join(bad[:20])))
    return value


def project(session: Session, *, actor: Actor) -> dict[str, Any]:
    study = study_of(session, actor)
    events = forms.events_of(session, study.id)
    return {"project_id": study.code, "project_title": join_label(study.title_zh, study.title_en),
            "creation_time": study.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "production_time": "", "in_production": 1, "project_language": "Chinese/English",
            "purpose": 2, "purpose_other": "", "project_notes": "",
            "custom_record_label": "", "secondary_unique_field": "",
            "is_longitudinal": 1 if events else 0,
            "has_repeating_instruments_or_events": int(any(e.repeating for e in events)),
            "surveys_enabled": 0, "scheduling_enabled": 0, "record_autonumbering_enabled": 0,
            "randomization_enabled": 0, "ddp_enabled": 0, "project_irb_number": "",
            "project_grant_number": "", "project_pi_firstname": "", "project_pi_lastname": "",
            "display_today_now_button": 1, "missing_data_codes": "", "external_modules": "",
            "bypass_branching_erase_field_prompt": 0}


def metadata(session: Session, *, actor: Actor, fields: list[str] | None = None,
             form_names: list[str] | None = None) -> list[dict[str, str]]:
    """The data dictionary (:func:`studies.forms.redcap.dictionary_rows`) of the current
    versions, narrowed to ``fields`` / ``forms``."""
    study = study_of(session, actor)
    specs, _x = forms.current_specs(session, study)
    rows = redcap.dictionary_rows(specs)
    fields = _names(fields, {r["field_name"]: 1 for r in rows}, "fields")
    form_names = _names(form_names, {s.name: 1 for s in specs}, "forms")
    return [r for r in rows if (fields is None or r["field_name"] in fields)
            and (form_names is None or r["form_name"] in form_names)]


def instruments(session: Session, *, actor: Actor) -> list[dict[str, str]]:
    study = study_of(session, actor)
    return [{"instrument_name": f.form.name, "instrument_label": f.label}
            for f in _forms(session, study)]


def _export_columns(item: Item) -> list[tuple[str, str]]:
    if item.multiple:
        return [(f"{item.name}___{c['code']}", c["code"]) for c in item.choices]
    return [(item.name, "")]


def export_field_names(session: Session, *, actor: Actor,
                       field: str | None = None) -> list[dict[str, str]]:
    study = study_of(session, actor)
    out = [{"original_field_name": RECORD_ID, "choice_value": "", "export_field_name": RECORD_ID}]
    for f in _forms(session, study):
        for i in f.items:
            if _exported(i):
                out += [{"original_field_name": i.name, "choice_value": code,
                         "export_field_name": name} for name, code in _export_columns(i)]
    if field:
        out = [r for r in out if r["original_field_name"] == field]
        if not out:
            raise _err("field", _("{field!r} is not a field of this study").format(field=field))
    return out


def _unique(event: StudyEvent) -> str:
    return event.name + ARM


def _events(session: Session, study: Study) -> list[StudyEvent]:
    return forms.events_of(session, study.id)


def events(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    study = study_of(session, actor)
    return [{"event_name": join_label(e.label_zh, e.label_en), "arm_num": 1,
             "unique_event_name": _unique(e), "custom_event_label": "", "event_id": e.position,
             "days_offset": 0, "offset_min": 0, "offset_max": 0}
            for e in _events(session, study)]


def _event_forms(e: StudyEvent, all_forms: list[str]) -> list[str]:
    return [n for n in all_forms if not e.form_names or n in e.form_names]


def form_event_mapping(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    study = study_of(session, actor)
    names = [f.name for f in forms.forms_of(session, study.id)]
    return [{"arm_num": 1, "unique_event_name": _unique(e), "form": n}
            for e in _events(session, study) for n in _event_forms(e, names)]


def users(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """The study team: who holds a role for this study (and at which site). No e-mail
    addresses leave through the API."""
    study = study_of(session, actor)
    rows = session.execute(select(User, RoleGrant)
                           .join(RoleGrant, col(RoleGrant.user_id) == User.id)
                           .where(col(RoleGrant.study) == study.code)
                           .order_by(col(User.username), col(RoleGrant.role))).all()
    return [{"username": u.username, "email": "", "firstname": u.display_name, "lastname": "",
             "expiration": "", "data_access_group": g.site or "", "edc_role": g.role}
            for u, g in rows]


# ---- records: export ------------------------------------------------------------------------

@dataclass
class RecordQuery:
    type: str = "flat"
    records: list[str] | None = None
    fields: list[str] | None = None
    forms: list[str] | None = None
    events: list[str] | None = None
    labels: bool = False
    label_headers: bool = False
    checkbox_labels: bool = False
    filter_logic: str | None = None  # REDCap's filterLogic (its branching-logic syntax)


def _label_of(item: Item, code: str) -> str:
    for c in item.choices or DATA_TYPES[item.data_type].choices:
        if c["code"] == code:
            return join_label(c.get("label_zh"), c.get("label_en")) or code
    return code


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def export_records(session: Session, ledger: Ledger, *, actor: Actor,
                   q: RecordQuery) -> list[dict[str, str]]:
    """Records as REDCap rows (flat: one per subject, event and repeat; eav: one per value),
    for the subjects at the sites where the actor may read data. Direct identifiers are left
    out. Audited with what was exported and its SHA-256."""
    study = study_of(session, actor)
    reader = actor.can(Perm.ENTRY_READ, study.code)
    perm = Perm.ENTRY_READ if reader else Perm.ENTRY_EXPORT
    require(actor, perm, study=study.code)
    if q.type not in ("flat", "eav"):
        raise _err("type", _("must be flat or eav"))
    # An exporter's token needs an approved export request (§11.3.4.1 c); a reader's gets
    # quasi-identifiers only where an approved request grants them raw.
    approval = export_approval.covering(session, actor=actor, study=study,
                                        form_names=q.forms, required=not reader)
    note = ReadNote()
    out, chosen = flat_records(session, actor=actor, study=study, q=q, perm=perm,
                               quasi_identifiers=export_approval.with_quasi_identifiers(
                                   approval), note=note)
    if q.type == "eav":
        out = _eav(out, chosen)
    digest = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.ENTRY_EXPORT,
                  entity_type="study", entity_id=study.id, study=study.code,
                  changes=[Change("format", None, f"REDCap API records ({q.type})"),
                           Change("subjects", None, sorted({r[RECORD_ID] for r in out}
                                                           if q.type == "flat" else
                                                           {r["record"] for r in out})),
                           Change("forms", None, [f.form.name for f, _x1, _x2 in chosen]),
                           Change("rows", None, len(out)), Change("sha256", None, digest),
                           *export_approval.audit_changes(approval),
                           *level5.unmasked_change(note)]
                  + ([Change("filterLogic", None, q.filter_logic)] if q.filter_logic else []))
    return out


Chosen = list[tuple["_Form", list[Item], bool]]  # form, its exported items, its _complete column


def flat_records(session: Session, *, actor: Actor, study: Study, q: RecordQuery, perm: Perm,
                 note: ReadNote | None = None, masked: Any = level5.MASKED,
                 quasi_identifiers: bool = True) -> tuple[list[dict[str, str]], Chosen]:
    """REDCap's flat rows (not audited: the callers audit their export) of the subjects at the
    sites where ``perm`` is held, and the forms and items they hold (items classified as
    quasi-identifiers left out unless ``quasi_identifiers``; level-5 values masked as
    ``studies.entry.level5`` says, those shown under a grant named in ``note``)."""
    all_forms = _forms(session, study)
    evs = _events(session, study)
    by_unique = {_unique(e): e for e in evs}
    known = {RECORD_ID: 1, **{i.name: 1 for f in all_forms for i in f.items},
             **{f"{f.form.name}_complete": 1 for f in all_forms}}
    fields = _names(q.fields, known, "fields")
    form_sel = _names(q.forms, {f.form.name: 1 for f in all_forms}, "forms")
    event_sel = _names(q.events, by_unique, "events")
    everything = fields is None and form_sel is None

    def wanted(form: str, name: str) -> bool:
        return everything or name in (fields or ()) or form in (form_sel or ())

    chosen: Chosen = []
    for f in all_forms:
        items = [i for i in f.items if _exported(i) and wanted(f.form.name, i.name)
                 and (quasi_identifiers or i.classification != "quasi_identifier")]
        complete = wanted(f.form.name, f"{f.form.name}_complete")
        if items or complete:
            chosen.append((f, items, complete))
    wanted_forms = [f.form.name for f, _x1, _x2 in chosen]
    seen = level5.access(session, actor=actor, study=study)
    condition, filter_forms = _filter(q.filter_logic, all_forms, quasi_identifiers,
                                      level5_shown=seen.sees)
    rows = odm_export._selected(session, study.id, q.records or None,
                                (wanted_forms + filter_forms) if wanted_forms else None,
                                actor.sites(perm, study.code))
    if event_sel is not None:
        rows = [r for r in rows if _unique_name(r[0].event_name) in event_sel]
    # one output row per subject, event and repeat, in subject / event order
    order = {e.name: e.position for e in evs}
    keyed: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    for rec, subj, _site, form in rows:
        key = (subj.code, order.get(rec.event_name, 0), rec.event_name, rec.event_repeat)
        keyed.setdefault(key, {})[form.name] = (rec, entry.current_values(session, rec.id))
    repeating = {e.name for e in evs if e.repeating}
    five = level5.level5_items(i for _f, items, _c in chosen for i in items)
    out: list[dict[str, str]] = []
    for (code, _x, event_name, repeat), recs in sorted(keyed.items()):
        if condition is not None:
            if not any(n in recs for n in wanted_forms):
                continue  # only the filter's forms hold a record here
            merged: dict[str, Any] = {}
            for _rec, values_ in recs.values():
                merged.update(values_)
            if expressions.evaluate(condition, merged) is not True:
                continue
        ev = next((e for e in evs if e.name == event_name), None)
        event_text = (join_label(ev.label_zh, ev.label_en) if q.labels and ev
                      else _unique_name(event_name))
        row: dict[str, str] = {RECORD_ID: code, "redcap_event_name": event_text,
                               "redcap_repeat_instrument": "",
                               "redcap_repeat_instance": str(repeat)
                               if event_name in repeating else ""}
        for f, items, complete in chosen:
            rec_values = recs.get(f.form.name)
            values = seen.show(rec_values[1], five, note, masked) if rec_values else {}
            for i in items:
                v = values.get(i.name)
                if i.multiple:
                    chosen_codes = set(v or [])
                    for name, code_ in _export_columns(i):
                        on = code_ in chosen_codes
                        row[name] = ("" if rec_values is None else
                                     (("Checked" if on else "Unchecked") if q.labels
                                      else ("1" if on else "0")))
                elif q.labels and v is not None and DATA_TYPES[i.data_type].coded:
                    row[i.name] = _label_of(i, str(v))
                else:
                    row[i.name] = _text(v)
            if complete:
                status = "" if rec_values is None else (
                    "2" if rec_values[0].status == "complete" else "0")
                row[f"{f.form.name}_complete"] = (
                    {"2": "Complete", "0": "Incomplete"}.get(status, "") if q.labels else status)
        out.append(row)
    return out, chosen


def _filter(logic: str | None, all_forms: list[_Form], quasi_identifiers: bool,
            level5_shown: bool = True) -> tuple[expressions.Node | None, list[str]]:
    """REDCap's ``filterLogic`` parsed (its branching-logic syntax, evaluated on each row's
    subject-event values), and the forms whose fields it reads. A field that is not exported
    (a direct identifier, a quasi-identifier left out) or shown masked (a level-5 value the
    actor may not see) may not be filtered on: the rows chosen would disclose it."""
    if not logic or not logic.strip():
        return None, []
    items = {i.name: (f.form.name, i) for f in all_forms for i in f.items}
    try:
        node = expressions.parse(logic, "redcap")
        expressions.check_fields(node, {n: bool(i.multiple) for n, (_x, i) in items.items()})
    except ExpressionError as exc:
        raise _err("filterLogic", f"{exc} / 筛选条件无效") from None
    used = sorted(expressions.fields_of(node))
    for name in used:
        item = items[name][1]
        if not _exported(item) or (item.classification == "quasi_identifier"
                                   and not quasi_identifiers) or (
                item.level >= level5.LEVEL and not level5_shown):
            raise _err("filterLogic", _("{name!r} is not exported to you, so it cannot be "
                                        "filtered on").format(name=name))
    return node, sorted({items[n][0] for n in used})


def _unique_name(event_name: str) -> str:
    return event_name + ARM


def _eav(flat: list[dict[str, str]], chosen: Chosen) -> list[dict[str, str]]:
    multiple = {i.name: i for _x1, items, _x2 in chosen for i in items if i.multiple}
    out = []
    for row in flat:
        base = {"record": row[RECORD_ID], "redcap_event_name": row["redcap_event_name"],
                "redcap_repeat_instrument": "",
                "redcap_repeat_instance": row["redcap_repeat_instance"]}
        for k, v in row.items():
            if k in (RECORD_ID, *SPECIAL) or v in ("", "0", "Unchecked") and "___" in k:
                continue
            name, _x, code = k.partition("___")
            if name in multiple and code:
                out.append({**base, "field_name": name, "value": code})
            elif v != "":
                out.append({**base, "field_name": k, "value": v})
    return out


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """REDCap's CSV of rows (the columns of the first row unless given)."""
    buf = io.StringIO()
    cols = columns or (list(rows[0]) if rows else [])
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _text(v) for k, v in r.items()})
    return buf.getvalue()


# ---- records: import ------------------------------------------------------------------------

def _parse_rows(data: str, fmt: str) -> list[dict[str, str]]:
    if fmt == "json":
        try:
            rows = json.loads(data)
        except ValueError:
            raise _err("data", _("not valid JSON")) from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _err("data", _("must be a JSON array of records"))
        return [{str(k): _text(v) for k, v in r.items()} for r in rows]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(data.lstrip("\ufeff"), newline=""))
        try:
            return [{k: v or "" for k, v in r.items() if k is not None} for r in reader]
        except csv.Error as exc:
            raise _err("data", _("not readable as CSV: {exc}").format(exc=exc)) from None
    raise _err("format", _("imports are json or csv"))


def import_records(session: Session, ledger: Ledger, *, actor: Actor, data: str, fmt: str,
                   overwrite: str = "normal", date_format: str = "YMD",
                   force_auto_number: bool = False, now: dt.datetime | None = None
                   ) -> list[str]:
    """Import REDCap rows (``overwriteBehavior=normal``: a blank cell changes nothing). Each
    form a row touches is saved as a new record version through the same save as the entry
    page, so locks, consent, checks and reasons hold; a change to saved data needs the row's
    ``reason_for_change``. All rows or none: the first refusal ends the import and nothing
    is kept. Returns the record ids (subject codes) imported."""
    study = study_of(session, actor)
    require(actor, Perm.ENTRY_WRITE, study=study.code)
    if overwrite != "normal":
        raise _err("overwriteBehavior", _("only 'normal' is supported: a blank value never erases "
                                          "saved data here"))
    if date_format.upper() != "YMD":
        raise _err("dateFormat", _("only YMD (YYYY-MM-DD) is supported"))
    if force_auto_number:
        raise _err("forceAutoNumber", _("subjects are enrolled in this system, not created by an "
                                        "import"))
    rows = _parse_rows(data, fmt)
    if len(rows) > MAX_ROWS:
        raise _err("data", _("more than {MAX_ROWS} rows; use the bulk import").format(
                               MAX_ROWS=MAX_ROWS))
    all_forms = _forms(session, study)
    evs = {e.name: e for e in _events(session, study)}
    owner = {i.name: (f, i) for f in all_forms for i in f.items}
    imported: list[str] = []
    for n, row in enumerate(rows, start=1):
        where = f"row {n}"
        code = (row.get(RECORD_ID) or (next(iter(row.values()), "") if row else "")).strip()
        if not code:
            raise _err(RECORD_ID, _("{where}: the record id (subject code) is empty").format(
                                      where=where))
        where = f"row {n} ({code})"
        ev_text = row.get("redcap_event_name", "").strip()
        ev_name = ev_text[: -len(ARM)] if ev_text.endswith(ARM) else ev_text
        if not ev_name and len(evs) == 1:
            ev_name = next(iter(evs))
        if ev_name not in evs:
            raise _err("redcap_event_name", _("{where}: no event {ev_text!r}").format(
                                                where=where, ev_text=ev_text))
        rep_text = row.get("redcap_repeat_instance", "").strip()
        if not rep_text.isdigit() and rep_text:
            raise _err("redcap_repeat_instance", _("{where}: must be a whole number").format(
                                                     where=where))
        repeat = int(rep_text) if rep_text else 1
        reason = row.get(REASON_COLUMN, "").strip() or None
        by_form: dict[str, dict[str, Any]] = {}
        first = next(iter(row))
        for key, raw in row.items():
            if key in (RECORD_ID, REASON_COLUMN, first, *SPECIAL):
                continue
            name, _x, choice = key.partition("___")
            if name.endswith("_complete") and name[:-9] in {f.form.name for f in all_forms}:
                continue
            found = owner.get(name)
            if found is None:
                raise _err(key, _("{where}: {key!r} is not a field of this study").format(
                                    where=where, key=key))
            form, item = found
            if item.field_type in ("calc", "descriptive") or raw.strip() == "":
                continue  # computed by the server / display only / blank: no change (normal)
            vals = by_form.setdefault(form.form.name, {})
            if choice:
                if not item.multiple or choice not in {c["code"] for c in item.choices}:
                    raise _err(key, f"{where}: {name} has no checkbox choice {choice!r}")
                if raw.strip() not in ("0", "1"):
                    raise _err(key, _("{where}: a checkbox column takes 0 or 1").format(
                                        where=where))
                vals.setdefault(f"{name}___", {})[choice] = raw.strip() == "1"
            else:
                vals[name] = raw.strip()
        for form_name, submitted in by_form.items():
            _save(session, ledger, actor=actor, study=study, code=code, event=evs[ev_name],
                  repeat=repeat, form_name=form_name, submitted=submitted, reason=reason,
                  where=where, now=now)
        if code not in imported:
            imported.append(code)
    return imported


def _save(session: Session, ledger: Ledger, *, actor: Actor, study: Study, code: str,
          event: StudyEvent, repeat: int, form_name: str, submitted: dict[str, Any],
          reason: str | None, where: str, now: dt.datetime | None) -> None:
    t = entry.resolve(session, actor=actor, perm=Perm.ENTRY_WRITE, study_code=study.code,
                      subject_code=code, event_name=event.name, form_name=form_name,
                      repeat=repeat)
    record = entry.find_record(session, t)
    current = entry.current_values(session, record.id) if record is not None else {}
    items = {i.name: i for i in forms.item_rows(session, record.form_version_id
                                                 if record is not None else
                                                 entry.entry_version(session, t.form).id)}
    values = {k: v for k, v in current.items()
              if k in items and items[k].field_type != "calc"}
    changed: list[str] = []
    for key, v in submitted.items():
        if key.endswith("___"):
            name = key[:-3]
            codes = set(values.get(name) or [])
            for c, on in v.items():
                (codes.add if on else codes.discard)(c)
            values[name] = sorted(codes) or None
            changed.append(name)
        else:
            values[key] = v
            changed.append(key)
    settings = entry.get_settings(session, study.id)
    reasons = {n: reason for n in changed} if reason and record is not None else {}
    try:
        entry.save_form(session, ledger, actor=actor, study_code=study.code, subject_code=code,
                        event_name=event.name, form_name=form_name, now=now,
                        data=SaveIn(base_version=record.version if record else 0,
                                    values={k: v for k, v in values.items() if v is not None},
                                    reasons=reasons, repeat=repeat,
                                    incomplete=settings.allow_incomplete))
    except EntryInvalid as exc:
        missing_reason = any(k.startswith("reasons.") for k in exc.errors)
        hint = (_("; give the reason in the row's {REASON_COLUMN} column").format(
                    REASON_COLUMN=REASON_COLUMN)) if missing_reason else ""
        raise EntryInvalid(f"{where}, {_unique(event)}, {form_name}: {exc.message}{hint}",
                           errors=exc.errors, clause=exc.clause) from None


# ---- the log --------------------------------------------------------------------------------

def log(session: Session, *, actor: Actor, user: str | None = None, record: str | None = None,
        begin: dt.datetime | None = None, end: dt.datetime | None = None,
        log_type: str | None = None) -> list[dict[str, str]]:
    """The data changes and exports of the study from the ledger, as REDCap's logging rows,
    for the subjects at the sites where the actor may read data."""
    study = study_of(session, actor)
    require(actor, Perm.ENTRY_READ, study=study.code)
    actions: tuple[str, ...] = (*DATA_ACTIONS, Action.ENTRY_EXPORT)
    if log_type in ("record", "record_add", "record_edit"):
        actions = {"record": DATA_ACTIONS, "record_add": (Action.ENTRY_CREATE, Action.ENTRY_IMPORT),
                   "record_edit": (Action.ENTRY_UPDATE,)}[log_type]
    elif log_type == "export":
        actions = (Action.ENTRY_EXPORT,)
    elif log_type:
        raise _err("logtype", _("supported: record, record_add, record_edit, export"))
    q = (select(LedgerEntry).where(col(LedgerEntry.study) == study.code,
                                   col(LedgerEntry.action).in_([str(a) for a in actions]),
                                   col(LedgerEntry.outcome) == "success")
         .order_by(col(LedgerEntry.seq).desc()))
    if user:
        q = q.where(col(LedgerEntry.actor) == user)
    if record:
        q = q.where(col(LedgerEntry.subject) == record)
    if begin:
        q = q.where(col(LedgerEntry.ts) >= _ts(begin))
    if end:
        q = q.where(col(LedgerEntry.ts) <= _ts(end))
    sites = actor.sites(Perm.ENTRY_READ, study.code)
    site_of = dict(session.execute(select(col(Subject.code), col(Site.code))
                                   .join(Site, col(Site.id) == Subject.site_id)
                                   .where(col(Subject.study_id) == study.id)).tuples().all())
    out = []
    for e in session.execute(q.limit(5000)).scalars():
        if e.subject and sites is not None and site_of.get(e.subject) not in sites:
            continue
        if not e.subject and sites is not None and e.actor != actor.username:
            continue  # another site's export: not this actor's to see
        changes = json.loads(e.changes) if e.changes and not e.redacted else []
        if e.action == Action.ENTRY_EXPORT:
            what = f"Data export ({_change(changes, 'format')})"
            details = f"rows = {_change(changes, 'rows') or _change(changes, 'values')}"
        else:
            verb = "Create" if e.action != Action.ENTRY_UPDATE else "Update"
            what = f"{verb} record {e.subject}"
            details = ", ".join(f"{c['field']} = '{_text(_flat(c.get('after')))}'"
                                for c in changes)
        out.append({"timestamp": e.ts[:16].replace("T", " "), "username": e.actor,
                    "action": what, "details": details, "reason": e.reason or "",
                    "record": e.subject or ""})
    return out


def _ts(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _change(changes: list[dict[str, Any]], name: str) -> str:
    return next((_text(c.get("after")) for c in changes if c.get("field") == name), "")


def _flat(v: Any) -> Any:
    return ",".join(str(x) for x in v) if isinstance(v, list) else v
