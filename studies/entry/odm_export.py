"""Exports of entered data for internal use (§11.3.4.7 b, §11.3.4.9 b): CDISC ODM 1.3.2
ClinicalData with an AuditRecord (user, location, time, reason) for every value version, and
CSV (one file per form, one row per subject-event-form, codes and labels).

Both are for authorised internal roles (``entry.export``) with an approved export request
(:mod:`studies.entry.export_approval`, §11.3.4.1 c: quasi-identifiers only when it grants them
raw); extracts for sponsors are a separate, approved workflow. Subjects appear only by their
code, and items classified as direct identifiers are never written (identity lives in the
code index). Every export is a ledger entry with the SHA-256 of what was produced.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from typing import Any, cast

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.entry import export_approval, level5
from studies.entry import service as entry
from studies.entry.models import FormRecord, RecordVersion, ValueVersion
from studies.forms import odm
from studies.forms import service as forms
from studies.forms.datatypes import DATA_TYPES
from studies.forms.models import Form, FormVersion, Item
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import Site
from studies.subjects.models import Subject

NS = odm.NS


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _el(parent: Any, tag: str, **attrs: str | None) -> Any:
    return etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})


def _value_text(v: Any) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, list) else str(v)


def _ts(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _metadata(session: Session, study_code: str, now: dt.datetime) -> Any:
    study = registry.get_study(session, study_code)
    return etree.fromstring(forms.metadata_odm(session, study, now=now)[0])


def _selected(session: Session, study_id: str, subjects: list[str] | None,
              form_names: list[str] | None, sites: set[str] | None
              ) -> list[tuple[FormRecord, Subject, Site, Form]]:
    q = (select(FormRecord, Subject, Site, Form)
         .join(Subject, col(Subject.id) == FormRecord.subject_id)
         .join(Site, col(Site.id) == Subject.site_id).join(Form, col(Form.id) == FormRecord.form_id)
         .where(col(FormRecord.study_id) == study_id)
         .order_by(col(Subject.code), col(FormRecord.event_name), col(FormRecord.event_repeat),
                   col(Form.name)))
    if subjects:
        q = q.where(col(Subject.code).in_(subjects))
    if form_names:
        q = q.where(col(Form.name).in_(form_names))
    rows = [cast(tuple[FormRecord, Subject, Site, Form], tuple(r))
            for r in session.execute(q).all()]
    return [r for r in rows if sites is None or r[2].code in sites]


def export_clinical_odm(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                        subjects: list[str] | None = None, form_names: list[str] | None = None,
                        now: dt.datetime | None = None) -> bytes:
    """The study's metadata, AdminData (users, sites as locations) and ClinicalData with every
    value version as a transaction with its AuditRecord, for the whole study or a subset of
    subjects / forms. Validates against ODM1-3-2.xsd."""
    require(actor, Perm.ENTRY_EXPORT, study=study_code)
    now = now or dt.datetime.now(dt.UTC)
    study = registry.get_study(session, study_code)
    approval = export_approval.covering(session, actor=actor, study=study,
                                        form_names=form_names or None)
    raw_qi = export_approval.with_quasi_identifiers(approval)
    root = _metadata(session, study.code, now)
    root.set("FileType", "Transactional")
    root.set("Granularity", "All")
    mdv_oid = root.find(f"{_q('Study')}/{_q('MetaDataVersion')}").get("OID")
    study_oid = f"ST.{study.code}"
    rows = _selected(session, study.id, subjects, form_names,
                     actor.sites(Perm.ENTRY_EXPORT, study.code))
    if subjects:
        missing = set(subjects) - {r[1].code for r in rows}
        if missing and not all(_subject_exists(session, study.id, c) for c in missing):
            raise InvalidInput(_("no subject {value!r} in this study").format(
                                   value=sorted(missing)[0]), field="subjects")
    users: set[str] = set()
    locations = {s.code: s for _x1, _x2, s, _x3 in rows}
    admin = _el(root, "AdminData", StudyOID=study_oid)
    clinical = _el(root, "ClinicalData", StudyOID=study_oid, MetaDataVersionOID=mdv_oid)
    n_values = 0
    seen = level5.access(session, actor=actor, study=study, now=now)
    note = ReadNote()
    by_subject: dict[str, Any] = {}
    event_el: dict[tuple[str, str, int], Any] = {}
    for rec, subj, site, form in rows:
        items = {i.name: i for i in forms.items_of(session, rec.form_version_id)}
        five = level5.level5_items(items.values())
        group_of = {g.id: g.name for g in forms.groups_of(session, rec.form_version_id)}
        sd = by_subject.get(subj.code)
        if sd is None:
            sd = _el(clinical, "SubjectData", SubjectKey=subj.code, TransactionType="Upsert")
            _el(sd, "SiteRef", LocationOID=f"LOC.{site.code}")
            by_subject[subj.code] = sd
        key = (subj.code, rec.event_name, rec.event_repeat)
        se = event_el.get(key)
        if se is None:
            se = _el(sd, "StudyEventData", StudyEventOID=f"SE.{rec.event_name}",
                     StudyEventRepeatKey=str(rec.event_repeat), TransactionType="Upsert")
            event_el[key] = se
        fd = _el(se, "FormData", FormOID=f"F.{form.name}", TransactionType="Upsert")
        clients = dict(session.execute(select(col(RecordVersion.version),
                                              col(RecordVersion.client))
                                       .where(col(RecordVersion.record_id) == rec.id))
                       .tuples().all())
        groups: dict[str, Any] = {}
        for v in session.execute(select(ValueVersion).where(col(ValueVersion.record_id) == rec.id)
                                 .order_by(col(ValueVersion.version), col(ValueVersion.item_name))
                                 ).scalars():
            item: Item | None = items.get(v.item_name)
            if item is None or item.classification == "direct_identifier" or (
                    item.classification == "quasi_identifier" and not raw_qi):
                continue
            gname = group_of[item.group_id]
            ig = groups.get(gname)
            if ig is None:
                ig = _el(fd, "ItemGroupData", ItemGroupOID=f"IG.{form.name}.{gname}",
                         TransactionType="Upsert")
                groups[gname] = ig
            attrs: dict[str, str | None] = {
                "ItemOID": f"I.{form.name}.{v.item_name}",
                "TransactionType": "Insert" if v.before is None and v.version == 1
                else "Update"}
            after = seen.value(v.item_name, v.after, five, note)
            if after is None:
                attrs["IsNull"] = "Yes"
            else:
                attrs["Value"] = _value_text(after)
            idata = _el(ig, "ItemData", **attrs)
            ar = _el(idata, "AuditRecord")
            _el(ar, "UserRef", UserOID=f"USR.{v.saved_by}")
            _el(ar, "LocationRef", LocationOID=f"LOC.{site.code}")
            _el(ar, "DateTimeStamp").text = _ts(v.saved_at)
            _el(ar, "ReasonForChange").text = v.reason or _("initial entry")
            _el(ar, "SourceID").text = (f"record {rec.id} version {v.version}"
                                        + (f" from {clients.get(v.version)}"
                                           if clients.get(v.version) else ""))
            users.add(v.saved_by)
            n_values += 1
    for u in sorted(users):
        ue = _el(admin, "User", OID=f"USR.{u}", UserType="Investigator")
        _el(ue, "LoginName").text = u
    for code, site in sorted(locations.items()):
        loc = _el(admin, "Location", OID=f"LOC.{code}", Name=f"{code} {site.hospital}",
                  LocationType="Site")
        _el(loc, "MetaDataVersionRef", StudyOID=study_oid, MetaDataVersionOID=mdv_oid,
            EffectiveDate=now.date().isoformat())
    if not len(admin):
        root.remove(admin)
    data = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                pretty_print=True))
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ENTRY_EXPORT, entity_type="study", entity_id=study.id,
                  study=study.code, changes=[
                      Change("format", None, "ODM 1.3.2 ClinicalData"),
                      Change("subjects", None, sorted(by_subject)),
                      Change("forms", None, sorted({r[3].name for r in rows})),
                      Change("values", None, n_values),
                      Change("sha256", None, hashlib.sha256(data).hexdigest()),
                      *level5.unmasked_change(note),
                      *export_approval.audit_changes(approval)])
    return data


def _subject_exists(session: Session, study_id: str, code: str) -> bool:
    return session.execute(select(col(Subject.id)).where(
        col(Subject.study_id) == study_id, col(Subject.code) == code)).first() is not None


def exportable_forms(session: Session, *, actor: Actor, study_code: str) -> list[str]:
    """The forms of the study one may export as CSV (the export page's list)."""
    require(actor, Perm.ENTRY_EXPORT, study=study_code)
    study = registry.get_study(session, study_code)
    return [f.name for f in forms.forms_of(session, study.id)]


def export_form_csv(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    form_name: str) -> str:
    """One form as CSV: a row per subject-event-form (current values), codes and labels of
    coded items side by side; direct identifiers left out."""
    require(actor, Perm.ENTRY_EXPORT, study=study_code)
    study = registry.get_study(session, study_code)
    form = forms.get_form(session, study, form_name)
    approval = export_approval.covering(session, actor=actor, study=study,
                                        form_names=[form.name])
    raw_qi = export_approval.with_quasi_identifiers(approval)
    rows = _selected(session, study.id, None, [form.name],
                     actor.sites(Perm.ENTRY_EXPORT, study.code))
    v = forms.current_version(session, form)
    items = [i for i in (forms.items_of(session, v.id) if v else [])
             if i.field_type != "descriptive" and i.classification != "direct_identifier"
             and (raw_qi or i.classification != "quasi_identifier")]
    header = ["subject", "site", "event", "event_repeat", "form_version", "record_version",
              "status"]
    for i in items:
        header.append(i.name)
        if i.choices and DATA_TYPES[i.data_type].code_list:
            header.append(f"{i.name}_label")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    seen = level5.access(session, actor=actor, study=study)
    five = level5.level5_items(items)
    note = ReadNote()
    for rec, subj, site, _form in rows:
        values = seen.show(entry.current_values(session, rec.id), five, note)
        fv = session.get(FormVersion, rec.form_version_id)
        number = fv.number if fv else ""
        line: list[Any] = [subj.code, site.code, rec.event_name, rec.event_repeat, number,
                           rec.version, rec.status]
        for i in items:
            val = values.get(i.name)
            line.append("" if val is None else _value_text(val).replace(",", "|")
                        if isinstance(val, list) else val)
            if i.choices and DATA_TYPES[i.data_type].code_list:
                labels = {c["code"]: " / ".join(x for x in (c.get("label_zh"),
                                                            c.get("label_en")) if x) or c["code"]
                          for c in i.choices}
                codes: list[str] = (val if isinstance(val, list)
                                    else ([val] if val is not None else []))
                line.append("|".join(labels.get(c, c) for c in codes))
        w.writerow(line)
    text = buf.getvalue()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.ENTRY_EXPORT,
                  entity_type="crf_form", entity_id=form.id, study=study.code,
                  changes=[Change("format", None, "CSV"), Change("form", None, form.name),
                           Change("rows", None, len(rows)),
                           Change("sha256", None, hashlib.sha256(text.encode()).hexdigest()),
                           *level5.unmasked_change(note),
                           *export_approval.audit_changes(approval)])
    return text
