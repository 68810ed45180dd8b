"""Building an approved extract (SPEC §7–8; §11.3.4.5 c, §11.4.2.4, §10.2).

1. Snapshot: the item values as they stood at ``as_of`` (the newest value version saved by
   then), with a signed ledger checkpoint taken at the build; the manifest records its size.
2. Consent: subjects whose consent does not (or no longer) cover the scopes the tier needs
   (``study``; ``identifiable`` for a RIF; ``cross_border`` when the data leave the country)
   are excluded; the manifest counts them per reason (counts only).
3. Tier: LDS through :mod:`deid` — subject codes become keyed tokens, quasi-identifiers
   (from the item classification) are generalised to k-anonymity (k ≥ 5) with l-diversity on
   sensitive items, other dates shifted by the study's secret offset, free text scrubbed; PUF
   through :func:`deid.aggregate`; RIF keeps codes and draws identity fields through the code
   index, by the system. Which of these a tier gets, and with which parameters, is its
   :class:`studies.extracts.tiers.Tier` (``treatment``). k-anonymity is computed on one row
   per subject (each quasi-identifier's first recorded value); every row of a subject is then
   generalised to the chosen levels and the rows of suppressed subjects are dropped from every
   form.
4. Pre-transfer checks (§11.3.4.5 c): completeness, missing values per field, duplicate rows,
   unique subject codes/tokens. A failed check blocks the transfer until a data manager
   overrides it with a reason.
5. Package: CSV and Parquet per form, ODM 1.3.2 XML (validated against the official schema when
   present), a data dictionary, the signed manifest; all streamed into age for the recipient.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import sqlmodel
from lxml import etree
from nacl.signing import SigningKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.service import Change, Ledger
from studies.accounts.models import Signature, User
from studies.consent.models import ConsentRecord, ConsentWithdrawal
from studies.entry.models import FormRecord, RecordVersion, ValueVersion
from studies.ethics.models import ConsentWaiver
from studies.extracts import package as pkg
from studies.extracts import recipients, service
from studies.extracts.deidentify import (
    Built,
    Names,
    Snapshot,
    Table,
    aggregate_puf,
    deidentify_lds,
    form_frames,
    kind_of,
    pre_transfer_checks,
)
from studies.extracts.errors import BuildError
from studies.extracts.models import ExtractRequest, ExtractTransfer
from studies.extracts.tiers import TIER_RULES, Treatment
from studies.forms import odm
from studies.forms import service as forms
from studies.forms.models import Form
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.registry import service as registry
from studies.subjects.crypto import CodeIndexKeys, decrypt_identity
from studies.subjects.models import CodeIndexEntry, Disclosure, Subject

Progress = Callable[[int], None]
FORMULA_START = ("=", "+", "-", "@")
NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
def take_snapshot(session: Session, study_id: str, as_of: dt.datetime,
                  form_names: set[str]) -> Snapshot:
    """Item values as of ``as_of``: for each record, the newest version of each item saved by
    then (read from the append-only ``item_value_version``, never the current table)."""
    snap = Snapshot(as_of)
    recs = session.execute(
        select(sqlmodel.col(FormRecord.id), sqlmodel.col(FormRecord.subject_id),
               sqlmodel.col(Subject.code), sqlmodel.col(FormRecord.event_name),
               sqlmodel.col(FormRecord.event_repeat), sqlmodel.col(Form.name))
        .join(Subject, sqlmodel.col(Subject.id) == FormRecord.subject_id)
        .join(Form, sqlmodel.col(Form.id) == FormRecord.form_id)
        .where(sqlmodel.col(FormRecord.study_id) == study_id,
               sqlmodel.col(FormRecord.created_at) <= as_of,
               sqlmodel.col(Form.name).in_(form_names))
        .order_by(sqlmodel.col(Subject.code), sqlmodel.col(FormRecord.event_name),
                  sqlmodel.col(FormRecord.event_repeat))).all()
    if not recs:
        return snap
    ids = [r[0] for r in recs]
    values: dict[str, dict[str, tuple[int, Any]]] = {i: {} for i in ids}
    status: dict[str, tuple[int, str]] = {}
    for chunk in range(0, len(ids), 5000):
        part = ids[chunk:chunk + 5000]
        for rid, name, ver, after in session.execute(
                select(sqlmodel.col(ValueVersion.record_id), sqlmodel.col(ValueVersion.item_name),
                       sqlmodel.col(ValueVersion.version), sqlmodel.col(ValueVersion.after)).where(
                    sqlmodel.col(ValueVersion.record_id).in_(part),
                    sqlmodel.col(ValueVersion.saved_at) <= as_of)):
            cur = values[rid].get(name)
            if cur is None or ver > cur[0]:
                values[rid][name] = (ver, after)
        for rid, ver, st in session.execute(
                select(sqlmodel.col(RecordVersion.record_id), sqlmodel.col(RecordVersion.version),
                       sqlmodel.col(RecordVersion.status))
                .where(sqlmodel.col(RecordVersion.record_id).in_(part),
                       sqlmodel.col(RecordVersion.saved_at) <= as_of)):
            if rid not in status or ver > status[rid][0]:
                status[rid] = (ver, st)
    for rid, sid, code, event, repeat, form in recs:
        if rid not in status:
            continue
        snap.rows.setdefault(form, []).append(
            (sid, code, event, repeat, status[rid][1],
             {k: v for k, (_x, v) in values[rid].items()}))
    return snap


def consent_exclusions(session: Session, subject_ids: set[str], scopes: list[str],
                       at: dt.datetime) -> dict[str, str]:
    """subject id -> reason for each subject whose consent does not cover ``scopes`` at
    ``at``. The same rule as :func:`studies.consent.service.use_problem`, read in bulk."""
    out: dict[str, str] = {}
    if not subject_ids:
        return out
    latest: dict[str, ConsentRecord] = {}
    ids = sorted(subject_ids)
    for chunk in range(0, len(ids), 5000):
        for rec in session.execute(select(ConsentRecord).where(
                sqlmodel.col(ConsentRecord.subject_id).in_(ids[chunk:chunk + 5000]),
                sqlmodel.col(ConsentRecord.given_at) <= at)).scalars():
            cur = latest.get(rec.subject_id)
            if cur is None or (rec.given_at, rec.recorded_at) > (cur.given_at, cur.recorded_at):
                latest[rec.subject_id] = rec
    withdrawn: dict[str, set[str | None]] = {}
    rec_ids = [r.id for r in latest.values()]
    for chunk in range(0, len(rec_ids), 5000):
        for cid, scope in session.execute(select(
                sqlmodel.col(ConsentWithdrawal.consent_id),
                sqlmodel.col(ConsentWithdrawal.scope)).where(
                sqlmodel.col(ConsentWithdrawal.consent_id).in_(rec_ids[chunk:chunk + 5000]),
                sqlmodel.col(ConsentWithdrawal.withdrawn_at) <= at)):
            withdrawn.setdefault(cid, set()).add(scope)
    waivers: dict[str, str] = {}
    for sid in ids:
        rec = latest.get(sid)
        if rec is None:
            out[sid] = "no consent on record"
            continue
        w = withdrawn.get(rec.id, set())
        if None in w:
            out[sid] = "consent withdrawn"
            continue
        for scope in scopes:
            if scope in w:
                out[sid] = f"withdrew consent for {scope}"
                break
            if scope not in rec.scopes:
                out[sid] = f"consent does not cover {scope}"
                break
        else:
            if rec.waiver_id:
                if rec.waiver_id not in waivers:
                    wv = session.get(ConsentWaiver, rec.waiver_id)
                    waivers[rec.waiver_id] = wv.status if wv else "missing"
                if waivers[rec.waiver_id] != "approved":
                    out[sid] = "consent waiver not approved"
    return out


def neutralise(cell: str | None) -> str | None:
    """Formula-injection guard for spreadsheets: a cell beginning with = + - @ (other than a
    plain number) gets a leading apostrophe."""
    if cell and cell.startswith(FORMULA_START) and not NUMBER_RE.match(cell):
        return "'" + cell
    return cell


# ── De-identification helpers ────────────────────────────────────────────────────────────────

def draw_identities(session: Session, ledger: Ledger, *, keys: CodeIndexKeys,
                    codes: list[str], fields: list[str], req: ExtractRequest,
                    reason: str = "RIF identity fields drawn through the code index for an "
                                  "approved extract") -> pl.DataFrame:
    """Identity fields through the code index, by the system (the custodian's key), one
    ledger entry for the draw (never the identities themselves): a RIF's identity fields, or
    an LDS's subject names to take out of its free text."""
    entries = {e.code: e for e in session.execute(select(CodeIndexEntry).where(
        sqlmodel.col(CodeIndexEntry.code).in_(codes))).scalars()}
    keys.require_all({e.key_id for e in entries.values()})
    data: dict[str, list[Any]] = {"subject": [], **{f: [] for f in fields}}
    for code in codes:
        e = entries.get(code)
        ident = decrypt_identity(code=code, kid=e.key_id, nonce=e.nonce,
                                 ciphertext=e.ciphertext, keys=keys).to_json() if e else {}
        data["subject"].append(code)
        for f in fields:
            data[f].append(ident.get(f))
    ledger.append(session, actor="system", action=Action.EXTRACT_IDENTITY_DRAW,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  reason=reason, changes=[Change("subjects", None, len(codes)),
                                          Change("fields", None, fields)])
    return pl.DataFrame(data, schema={"subject": pl.String, **{f: pl.String for f in fields}})


def names_to_scrub(session: Session, ledger: Ledger, *, keys: CodeIndexKeys,
                   codes: list[str], req: ExtractRequest) -> Names:
    """The names an LDS's free text must not hold (§10.2 d): each subject's own name, drawn
    through the code index by the system (never shown to a person), and every account's
    display name (the study team and other staff)."""
    drawn = draw_identities(session, ledger, keys=keys, codes=codes, fields=["name"], req=req,
                            reason="subject names drawn through the code index to take them "
                                   "out of the extract's free text")
    subjects = {c: [n] for c, n in zip(drawn["subject"].to_list(), drawn["name"].to_list(),
                                       strict=True) if n}
    staff = sorted({n for n in session.execute(select(sqlmodel.col(User.display_name))).scalars()
                    if n and n.strip()})
    return Names(subjects=subjects, staff=staff)


# ── Files ────────────────────────────────────────────────────────────────────────────────────

def _write_csv(df: pl.DataFrame, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(df.columns)
        for row in df.iter_rows():
            w.writerow(["" if v is None else neutralise(str(v)) for v in row])


def write_odm(session: Session, req: ExtractRequest, tables: list[Table], path: Path,
              now: dt.datetime) -> bool:
    """ODM 1.3.2 Snapshot: the study metadata and, for patient-level tiers, ClinicalData with
    the released values. Validates against the shipped schema; raises BuildError if it does not."""
    study = registry.get_study(session, req.study_code)
    specs, _labels = forms.current_specs(session, study)
    root = etree.fromstring(forms.metadata_odm(session, study, now=now)[0])
    ns = odm.NS

    def el(parent: Any, tag: str, **attrs: str) -> Any:
        return etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)

    mdv = root.find(f"{{{ns}}}Study/{{{ns}}}MetaDataVersion")
    if TIER_RULES[req.tier].writes_clinical_odm and mdv is not None:
        groups: dict[tuple[str, str], str] = {}
        for spec in specs:
            for g in spec.groups:
                for it in g.items:
                    groups[(spec.name, it.name)] = g.name
        cd = el(root, "ClinicalData", StudyOID=f"ST.{study.code}",
                MetaDataVersionOID=mdv.get("OID"))
        subjects: dict[str, Any] = {}
        for t in tables:
            key = "subject_token" if "subject_token" in t.df.columns else "subject"
            cols = [c for c in t.df.columns if c not in (key, "event", "repeat", "status")]
            for row in t.df.iter_rows(named=True):
                sd = subjects.get(row[key])
                if sd is None:
                    sd = subjects[row[key]] = el(cd, "SubjectData", SubjectKey=row[key])
                se = el(sd, "StudyEventData", StudyEventOID=f"SE.{row['event']}",
                        StudyEventRepeatKey=str(row["repeat"]))
                fd = el(se, "FormData", FormOID=f"F.{t.form}")
                igs: dict[str, Any] = {}
                for c in cols:
                    if row[c] is None or (t.form, c) not in groups:
                        continue
                    g = groups[(t.form, c)]
                    if g not in igs:
                        igs[g] = el(fd, "ItemGroupData", ItemGroupOID=f"IG.{t.form}.{g}")
                    el(igs[g], "ItemData", ItemOID=f"I.{t.form}.{c}", Value=str(row[c]))
    root.set("FileType", "Snapshot")
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    path.write_bytes(data)
    schema = odm.load_schema()
    if not schema.validate(etree.fromstring(data)):
        raise BuildError(f"ODM export does not validate: {schema.error_log.last_error}")
    return True


def signatures_for_request(session: Session, signature_id: str | None) -> dict[str, Any]:
    sig = session.get(Signature, signature_id) if signature_id else None
    if sig is None:
        return {}
    return {"signer": sig.display_name, "meaning": sig.meaning,
            "signed_at": sig.signed_at.isoformat(), "content_sha256": sig.content_hash}


# ── The whole build ──────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class BuildKeys:
    deid_key: bytes
    signing_key: SigningKey
    code_index: CodeIndexKeys


def build(session: Session, ledger: Ledger, *, request_id: str, keys: BuildKeys,
          out_dir: Path, progress: Progress = lambda p: None,
          now: dt.datetime | None = None) -> ExtractRequest:
    """Build, sign and encrypt the package of an approved, queued request. Raises
    :class:`BuildError` (or a domain error) on failure, leaving no file behind."""
    req = service.get_request(session, request_id)
    if req.status != "approved":
        raise BuildError(f"the request is {req.status}, not approved")
    now = now or dt.datetime.now(dt.UTC)
    as_of = req.as_of or now
    items = service.items_by_field(session, req.study_id)
    study_fields = [f for f in req.fields if not f.startswith("identity.")]
    identity_fields = [f.split(".", 1)[1] for f in req.fields if f.startswith("identity.")]
    wanted: dict[str, list[str]] = {}
    for f in study_fields:
        if f not in items:
            raise BuildError(f"field {f} no longer exists in the study's forms")
        form, it = f.split(".", 1)
        wanted.setdefault(form, []).append(it)
    progress(5)
    checkpoint = ledger.checkpoint(session, reason="extract")
    snap = take_snapshot(session, req.study_id, as_of, set(wanted))
    progress(25)
    subject_ids = {r[0] for rows in snap.rows.values() for r in rows}
    excluded = consent_exclusions(session, subject_ids, service.required_scopes(req), now)
    exclusions: dict[str, int] = {}
    for reason in excluded.values():
        exclusions[reason] = exclusions.get(reason, 0) + 1
    keep = subject_ids - set(excluded)
    if req.cross_border:
        allowance = (recipients.cross_border_allowance(session, req.recipient_org_id,
                                                       excluding=req.id)
                     if req.recipient_org_id else service.CROSS_BORDER_MAX)
        if allowance is not None and len(keep) > allowance:
            raise BuildError(
                _("data leaving the country: {n_keep} records about persons exceed what the "
                  "recipient may still receive ({allowance} of {CROSS_BORDER_MAX}, cumulative, §7 "
                  "p) without an approval of the relevant authority")
                .format(n_keep=len(keep), allowance=allowance,
                        CROSS_BORDER_MAX=service.CROSS_BORDER_MAX))
        req.persons = len(keep)
    frames = form_frames(snap, wanted, keep)
    progress(40)
    fitems = {f: items[f] for f in study_fields}
    token_project = f"{req.study_code}/extract/{req.id}"
    identity = None
    tier = TIER_RULES[req.tier]
    if tier.treatment is Treatment.DEIDENTIFY:
        assert tier.l_diversity is not None and tier.max_suppression is not None
        names = Names()
        if any(kind_of(i) == "text" for i in fitems.values()):
            names = names_to_scrub(session, ledger, keys=keys.code_index, req=req, codes=sorted(
                {c for df in frames.values() for c in df["subject"].to_list()}))
        built = deidentify_lds(frames, fitems, k=req.k, l_diversity=tier.l_diversity,
                               max_suppression=tier.max_suppression, study_code=req.study_code,
                               token_project=token_project, secret=keys.deid_key,
                               on=as_of.date(), names=names)
    elif tier.treatment is Treatment.AGGREGATE:
        assert tier.min_cell_count is not None
        built = aggregate_puf(frames, fitems, min_count=tier.min_cell_count,
                              token_project=token_project, secret=keys.deid_key)
    else:
        built = Built([Table(f, df, ["subject", "event", "repeat"])
                       for f, df in frames.items()], {"note": "identifiable (RIF)"},
                      {f: "as recorded (RIF)" for f in study_fields},
                      clauses={f: "§11.3.4.6 (RIF, inside the hospital)" for f in study_fields},
                      released={c for df in frames.values() for c in df["subject"].to_list()})
        if identity_fields:
            codes = sorted({c for df in frames.values() for c in df["subject"].to_list()})
            identity = draw_identities(session, ledger, keys=keys.code_index, codes=codes,
                                       fields=identity_fields, req=req)
    progress(60)
    checks = pre_transfer_checks(built.tables, frames, req.tier)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{req.id}.tar.age"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        root = Path(tmp) / "files"
        (root / "data").mkdir(parents=True)
        files: list[dict[str, Any]] = []
        total_rows = 0

        def add(name: str, rows: int | None = None) -> None:
            files.append({"name": name, "sha256": pkg.sha256_file(root / name),
                          "bytes": (root / name).stat().st_size, "rows": rows})

        for t in built.tables:
            df = t.df.drop("status") if "status" in t.df.columns else t.df
            _write_csv(df, root / f"data/{t.form}.csv")
            add(f"data/{t.form}.csv", df.height)
            df.write_parquet(root / f"data/{t.form}.parquet")
            add(f"data/{t.form}.parquet", df.height)
            total_rows += df.height
        if identity is not None:
            _write_csv(identity, root / "data/identity.csv")
            add("data/identity.csv", identity.height)
            identity.write_parquet(root / "data/identity.parquet")
            add("data/identity.parquet", identity.height)
        odm_valid = write_odm(session, req, built.tables, root / "odm.xml", now)
        add("odm.xml")
        with open(root / "dictionary.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["field", "label", "data_type", "classification", "level", "treatment"])
            for f in study_fields:
                it = items[f]
                w.writerow([f, neutralise(f"{it.label_zh} / {it.label_en}"), it.data_type,
                            it.classification, it.level, built.treatments.get(f, "")])
            for f in identity_fields:
                w.writerow([f"identity.{f}", "identity (code index)", "text",
                            "direct_identifier", 4, "drawn through the code index (RIF)"])
            w.writerow(["#", _("CSV cells beginning with = + - @ (other than plain numbers) are "
                               "prefixed with an apostrophe against formula injection; Parquet "
                               "files hold the values unchanged"), "", "", "", ""])
        add("dictionary.csv")
        progress(75)
        decisions = []
        for d in service.decisions_of(session, req.id):
            decisions.append({"kind": d.kind, "approve": d.approve, "by": d.username,
                              "at": d.decided_at.isoformat(), "signature": d.signature_id,
                              "reference": d.reference,
                              **signatures_for_request(session, d.signature_id)})
        manifest = {
            "format": "edc-extract/1", "extract_id": req.id, "study": req.study_code,
            "tier": req.tier,
            "request": {"purpose": req.purpose, "requested_by": req.requested_by,
                        "requested_at": req.requested_at.isoformat(),
                        "recipient_org": req.recipient_org, "recipient_key": req.recipient_key,
                        "recipients": req.recipients, "cross_border": req.cross_border},
            "approvals": decisions,
            "data_use_agreement": list(service.DUA_TERMS) if tier.needs_dua else None,
            "fields": [{"name": f, "classification": items[f].classification,
                        "treatment": built.treatments.get(f),
                        "clause": built.clauses.get(f)} for f in study_fields]
            + [{"name": f"identity.{f}", "classification": "direct_identifier",
                "treatment": "code index (RIF)"} for f in identity_fields],
            "snapshot": {"as_of": as_of.isoformat(), "ledger_seq": checkpoint.tree_size,
                         "ledger_root": checkpoint.root_hash.hex()},
            "deidentification": built.deid,
            "exclusions": exclusions, "checks": checks, "odm_schema_valid": odm_valid,
            "files": files, "rows": total_rows,
            "period_of_use": {"from": req.use_from.isoformat(), "until": req.use_until.isoformat()},
            "expiry": req.use_until.isoformat(),
            "destruction_certificate_due": (req.use_until + dt.timedelta(
                days=service.DESTRUCTION_DAYS)).isoformat(),
            "generated_at": now.isoformat(),
            "signer_key_id": f"{int.from_bytes(pkg.key_id(keys.signing_key), 'little'):016X}",
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
        (root / pkg.MANIFEST).write_bytes(data)
        msha = hashlib.sha256(data).hexdigest()
        comment = (f"extract:{req.id} manifest_sha256:{msha} "
                   f"ledger_checkpoint:{checkpoint.tree_size}:{checkpoint.root_hash.hex()}")
        (root / pkg.SIGNATURE).write_bytes(pkg.sign(data, keys.signing_key,
                                                    trusted_comment=comment))
        progress(80)
        names = [pkg.MANIFEST, pkg.SIGNATURE] + [f["name"] for f in files]
        partial = Path(tmp) / "package.tar.age"
        digest = pkg.encrypt_directory(root, names, partial, req.recipient_key)
        size = partial.stat().st_size
        os.replace(partial, final)
    progress(100)
    code_to_id = {r[1]: r[0] for rows in snap.rows.values() for r in rows}
    released = {code_to_id[c] for c in built.released if c in code_to_id}
    if tier.treatment is not Treatment.AGGREGATE:
        for sid in sorted(released):
            session.add(Disclosure(subject_id=sid, request_id=req.id, study_code=req.study_code,
                                   recipient_org=req.recipient_org, tier=req.tier,
                                   fields=list(req.fields), disclosed_at=now))
    req.build_state = "done" if checks["passed"] else "blocked"
    if checks["passed"]:
        req.status = "built"
    req.progress = 100
    req.built_at, req.package_file = now, final.name
    req.package_sha256, req.package_size, req.manifest_sha256 = digest, size, msha
    req.snapshot_seq, req.row_count = checkpoint.tree_size, total_rows
    req.checks, req.exclusions = checks, exclusions
    session.add(ExtractTransfer(request_id=req.id, event="built",
                                actor=req.build_requested_by or "system", sha256=digest,
                                note=f"manifest {msha}"))
    session.flush()
    ledger.append(session, actor=req.build_requested_by or "system", action=Action.EXTRACT_BUILD,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  changes=[Change("package_sha256", None, digest),
                           Change("manifest_sha256", None, msha),
                           Change("snapshot_seq", None, checkpoint.tree_size),
                           Change("rows", None, total_rows),
                           Change("exclusions", None, exclusions),
                           Change("checks_passed", None, checks["passed"]),
                           Change("subjects_released", None, len(released)),
                           Change("subjects_sha256", None, hashlib.sha256(
                               "\n".join(sorted(released)).encode()).hexdigest())])
    return req

