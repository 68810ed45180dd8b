"""Enrolment and the hospital-held code index (SPEC §3; §11.3.4.4 d, §11.3.4.6 a 1, §10.2 f–h).

The clinical tables know a subject only by a random code. Who the subject is lives in the code
index, encrypted under a key from the key directory; only the code-index custodian can look it
up, always with a reason, and every lookup is a ledger entry (actor, reason, result). Ledger
entries written here never carry identity: no name, ID number, phone or blind index.

Functions follow the project's conventions: keyword-only dependencies, ``flush()`` but never
``commit()``, no settings or globals; keys are passed in as :class:`CodeIndexKeys`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger
from studies import guards
from studies.consent import service as consents
from studies.consent.service import ConsentIn
from studies.ethics import service as ethics
from studies.guards import assert_writable
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.roles import Perm
from studies.registry.models import Site, Study
from studies.subjects import codes
from studies.subjects.crypto import (
    CodeIndexKeyError,
    CodeIndexKeys,
    blind_index,
    decrypt_identity,
    encrypt_identity,
)
from studies.subjects.identity import (
    Identity,
    normalise_resident_id,
    validate_identity,
    validate_resident_id,
)
from studies.subjects.models import CodeIndexEntry, Subject

CLAUSE_CODE = "§11.3.4.4 d"
CLAUSE_LOOKUP = "§11.3.4.6 a"
CLOSED_STATUSES = frozenset({"closed", "terminated", "completed", "archived"})
MIN_REASON = 5
MAX_REASON = 500
CODE_TRIES = 50
LOOKUP_ACTIONS = ("code_index.lookup_identity", "code_index.lookup_code", "subject.export",
                  "code_index.rotate_key")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ── The eligibility gate ──────────────────────────────────────────────────────────────────────


def check_enrolment_allowed(session: Session, *, study_id: str, at: dt.datetime,
                            site_id: str | None = None, actor: Actor | None = None) -> Study:
    """May a subject be enrolled in ``study_id`` at time ``at``? Raises if not; returns the study.

    Checks: the study exists and is not closed; when given, the site belongs to the study and
    the actor holds the enrolling (investigator) permission on the study; and the study has a
    current ethics approval of its current protocol version at ``at`` — none, expired, or an
    amended protocol not yet approved stops enrolment (§11.3.4.2,
    :func:`studies.consent.service.assert_enrolment_allowed`). The subject's own consent or
    waiver is checked by :func:`enrol` (it needs the consent itself). This function is the one
    place ``enrol`` asks whether the study is open for enrolment.
    """
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound("study does not exist / 研究不存在", field="study")
    if study.status in CLOSED_STATUSES:
        raise RuleViolation(f"study {study.code} is {study.status}; no new subjects / "
                            "研究已关闭，不能入组", field="study", clause="§11.3.4.4")
    if actor is not None:
        require(actor, Perm.SUBJECT_ENROL, study=study.code)
    if site_id is not None:
        site = session.get(Site, site_id)
        if site is None or site.study_id != study.id:
            raise InvalidInput("site is not a site of this study / 该中心不属于本研究",
                               field="site")
    guards.assert_enrolment_allowed(session, study_id=study.id, at=at)
    return study


# ── Enrolment ─────────────────────────────────────────────────────────────────────────────────


def _index_keys_in_use(session: Session) -> tuple[set[str], set[str]]:
    rows = session.execute(
        select(col(CodeIndexEntry.key_id), col(CodeIndexEntry.blind_key_id)).distinct()).all()
    return {r[0] for r in rows}, {r[1] for r in rows}


def _lock_index(session: Session) -> None:
    """Serialise the writers of the code index (enrolment, key rotation) so that no entry is
    written under the old key while a rotation re-encrypts the rest. Readers are not blocked.
    SQLite needs nothing: its transactions begin IMMEDIATE, one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE code_index_entry IN SHARE ROW EXCLUSIVE MODE"))


def _require_usable_keys(session: Session, keys: CodeIndexKeys, *,
                         writing: bool = False) -> None:
    """Refuse before anything is decrypted or written if the key directory does not match the
    index: an encryption key id in use that we lack, or a blind-index key other than the one
    the index was built with (which would silently miss duplicates). Before writing, also
    refuse if no entry uses the current key (an interrupted rotation left the index under the
    pending key): new entries must not scatter the index over several keys."""
    kids, blind_ids = _index_keys_in_use(session)
    keys.require_all(kids)
    if writing and kids and keys.current_id not in kids:
        raise CodeIndexKeyError(
            "the code index is encrypted under a key other than code_index.key (an interrupted "
            "key rotation?); run `edc keys rotate-code-index` to finish it / 密钥轮换未完成",
            clause=CLAUSE_LOOKUP)
    if blind_ids - {keys.blind_id}:
        raise CodeIndexKeyError(
            "blind_index.key is not the key the code index was built with; restore it from the "
            "key backup / 盲索引密钥与索引不符，请从备份恢复", clause=CLAUSE_LOOKUP)


def enrol(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
          study_id: str, site_id: str, identity: Identity, consent: ConsentIn,
          at: dt.datetime | None = None) -> Subject:
    """Enrol a subject with their consent, in one step: issue a random code, write the
    encrypted code-index entry and the consent record (informed or broad consent on a form
    version of this study, or coverage by an approved waiver), audit both.

    Enrolment needs a current ethics approval of the current protocol version and a valid
    consent or approved waiver (§11.3.4.2). Every check that needs nothing written is made
    first; the writes run in one savepoint, so a refusal at any point leaves no subject, no
    code-index entry, no consent and no ledger entry behind.

    Keeps: the subject row (code, site, status, who, when), the encrypted identity and the
    consent record; the ledger entries name the code and site only. Refuses a duplicate (same
    ID number in this study, found by the blind index) with 409: the existing code is named
    only to an actor who may look up the code index; anyone else is told just "already
    enrolled in this study". Not idempotent: each successful call enrols one subject.
    """
    at = at or _now()
    # ═══ ELIGIBILITY GATE — the one check of whether the study is open for enrolment
    # ═══ (study, site, role, current ethics approval; §11.3.4.2).
    study = check_enrolment_allowed(session, study_id=study_id, at=at, site_id=site_id,
                                    actor=actor)
    # ═══ CONSENT — the subject's consent or approved waiver, checked before anything is written.
    require(actor, Perm.CONSENT_RECORD, study=study.code)
    consents.check_consent(session, study_id=study.id, data=consent)
    site = session.get(Site, site_id)
    assert site is not None
    _lock_index(session)
    assert_writable(session, study_id=study.id, site_id=site.id, at=at, actor=actor.username,
                    client=actor.client, kind="enrolment")
    _require_usable_keys(session, keys, writing=True)

    bidx = blind_index(identity.resident_id, key=keys.blind)
    existing = session.execute(
        select(col(CodeIndexEntry.code)).where(col(CodeIndexEntry.study_id) == study.id,
                                               col(CodeIndexEntry.blind_index) == bidx)).scalar()
    if existing is not None:
        raise _duplicate(actor, study, existing)

    code = _fresh_code(session, site.code)
    subject = Subject(study_id=study.id, site_id=site.id, code=code, status="enrolled",
                      enrolled_at=at, enrolled_by=actor.username)
    kid, nonce, ct = encrypt_identity(identity, code=code, key=keys.current)
    entry = CodeIndexEntry(subject_id=subject.id, study_id=study.id, code=code, key_id=kid,
                           nonce=nonce, ciphertext=ct, blind_index=bidx,
                           blind_key_id=keys.blind_id, created_at=at, encrypted_at=at)
    with session.begin_nested():  # all or nothing: subject, index entry, consent, ledger
        try:
            with session.begin_nested():
                session.add(subject)
                session.flush()
                session.add(entry)
                session.flush()
        except IntegrityError as exc:
            if "code_index_study_blind" in str(exc.orig):  # a concurrent enrolment of this person
                raise _duplicate(actor, study, None) from exc
            raise Conflict("could not issue a unique subject code; try again / "  # a collision
                           "无法生成唯一代码，请重试") from exc
        ledger.append(session, actor=actor.username, action=Action.SUBJECT_ENROL,
                      entity_type="subject", entity_id=subject.id, study=study.code,
                      subject=code, client=actor.client,
                      changes=[Change("code", None, code), Change("site", None, site.code),
                               Change("status", None, "enrolled"),
                               Change("code_index.key_id", None, kid)])
        consents.record_consent(session, ledger, actor=actor, study_code=study.code,
                                subject_id=subject.id, data=consent)
    return subject


def _duplicate(actor: Actor, study: Study, existing: str | None) -> Conflict:
    audit = dict(actor=actor.username, action=Action.SUBJECT_ENROL, entity_type="study",
                 entity_id=study.id, study=study.code, subject=existing, outcome="failure",
                 reason="duplicate enrolment (blind index match)", client=actor.client)
    if existing and actor.can(Perm.CODE_INDEX_LOOKUP, study.code):
        return Conflict(f"this person is already enrolled in this study as {existing} / "
                        f"此人已在本研究入组，代码 {existing}", field="resident_id",
                        clause=CLAUSE_CODE, audit=audit)
    return Conflict("already enrolled in this study / 此人已在本研究入组", field="resident_id",
                    clause=CLAUSE_CODE, audit=audit)


def _fresh_code(session: Session, site_code: str) -> str:
    for _ in range(CODE_TRIES):
        code = codes.new_code(site_code)
        if session.execute(select(col(Subject.id)).where(
                col(Subject.code) == code)).first() is None:
            return code
    raise Conflict("could not issue a unique subject code; try again / 无法生成唯一代码")


def _plain(value: str, *, field: str, max_len: int) -> str:
    """Refuse control characters (a NUL would fail on PostgreSQL) and over-long values before
    they reach a query."""
    if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{field}: not a valid value / {field} 无效", field=field)
    return value


def study_by_code(session: Session, study_code: str) -> Study:
    _plain(study_code, field="study", max_len=100)
    study = session.execute(select(Study).where(col(Study.code) == study_code)).scalar_one_or_none()
    if study is None:
        raise NotFound(f"study {study_code!r} does not exist / 研究不存在", field="study")
    return study


def enrol_new_subject(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                      study_code: str, site_code: str, name: str, resident_id: str,
                      phone: str | None = None, medical_record_number: str | None = None,
                      date_of_birth: str | None = None, address: str | None = None,
                      consent: ConsentIn | None, at: dt.datetime | None = None) -> Subject:
    """What the enrol page and API call: check permission, validate the identity fields (errors
    name the field), require the consent, find the site by its code, then :func:`enrol`
    (which checks the ethics approval and the consent before writing anything)."""
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_ENROL, study=study.code)
    identity = validate_identity(name=name, resident_id=resident_id, phone=phone,
                                 medical_record_number=medical_record_number,
                                 date_of_birth=date_of_birth, address=address)
    if consent is None:
        raise InvalidInput("consent: enrolment needs the subject's consent or an approved waiver "
                           "/ 入组须有受试者的知情同意或经批准的豁免", field="consent",
                           clause=consents.CLAUSE_CONSENT)
    site_code = _plain(site_code.strip(), field="site", max_len=10)
    site = session.execute(select(Site).where(col(Site.study_id) == study.id,
                                              col(Site.code) == site_code)).scalar()
    if site is None:
        raise InvalidInput("site: no site with this code in the study / 本研究无此中心",
                           field="site")
    return enrol(session, ledger, actor=actor, keys=keys, study_id=study.id, site_id=site.id,
                 identity=identity, consent=consent, at=at)


@dataclass(frozen=True)
class SubjectRow:
    code: str
    study: str
    site: str
    status: str
    enrolled_at: dt.datetime
    enrolled_by: str


def list_subjects(session: Session, *, actor: Actor, study_code: str) -> list[SubjectRow]:
    """Subjects of a study, by code only (no identity)."""
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_READ, study=study.code)
    rows = session.execute(
        select(Subject, col(Site.code)).join(Site, col(Site.id) == Subject.site_id)
        .where(col(Subject.study_id) == study.id)
        .order_by(col(Subject.enrolled_at), col(Subject.code))).all()
    return [SubjectRow(s.code, study.code, site_code, s.status, s.enrolled_at, s.enrolled_by)
            for s, site_code in rows]


def list_sites(session: Session, *, actor: Actor, study_code: str) -> list[Site]:
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_ENROL, study=study.code)
    return list(session.execute(
        select(Site).where(col(Site.study_id) == study.id).order_by(col(Site.code))).scalars())


@dataclass(frozen=True)
class EnrolmentForm:
    """What the enrol page shows: the sites, whether the study is open for enrolment (and why
    not), the current consent form of each type (text in full) and the approved waivers."""
    sites: list[Site]
    readiness: dict[str, Any]
    forms: list[dict[str, Any]]
    waivers: list[dict[str, Any]]


def enrolment_form(session: Session, *, actor: Actor, study_code: str,
                   at: dt.datetime) -> EnrolmentForm:
    """The enrol page's data (read-only). "Current" consent form: the newest version of each
    consent type; the subject signs that one."""
    sites = list_sites(session, actor=actor, study_code=study_code)
    study = study_by_code(session, study_code)
    newest: dict[str, Any] = {}
    for f in consents.consent_forms(session, study.id):  # ordered by number
        newest[f.consent_type] = f
    return EnrolmentForm(
        sites=sites, readiness=consents.study_readiness(session, study_code=study.code, at=at),
        forms=[consents.consent_form_public(f) for f in newest.values()],
        waivers=[ethics.waiver_public(w) for w in ethics.waivers_of(session, study.id)
                 if w.status == "approved"])


def get_subject(session: Session, *, actor: Actor, study_code: str, code: str) -> SubjectRow:
    code = _plain(code, field="code", max_len=40)
    for row in list_subjects(session, actor=actor, study_code=study_code):
        if row.code == codes.normalise_code(code):
            return row
    raise NotFound("no subject with this code in the study / 本研究无此受试者", field="code")


# ── The custodian: lookups, history, subject access ─────────────────────────────────────────


def _reason(reason: str | None) -> str:
    value = " ".join((reason or "").split())
    _plain(value, field="reason", max_len=10_000)
    if len(value) < MIN_REASON:
        raise InvalidInput(f"reason is required (at least {MIN_REASON} characters) / "
                           "须说明查询理由", field="reason", clause=CLAUSE_LOOKUP)
    if len(value) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters / 理由过长",
                           field="reason")
    return value


def _code(raw: str) -> str:
    code = codes.normalise_code(raw)
    if not re.fullmatch(r"[A-Z0-9]{1,10}-[A-Z0-9]{1,9}", code):
        raise InvalidInput("code: a subject code such as S01-7Q4K2M / 请输入受试者代码",
                           field="code")
    return code


def _entry_by_code(session: Session, code: str) -> tuple[CodeIndexEntry, Study] | None:
    row = session.execute(
        select(CodeIndexEntry, Study).join(Study, col(Study.id) == CodeIndexEntry.study_id)
        .where(col(CodeIndexEntry.code) == code)).first()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class IdentityLookup:
    code: str
    found: bool
    study: str | None = None
    identity: Identity | None = None


def lookup_identity(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                    code: str, reason: str) -> IdentityLookup:
    """Re-identify: the identity behind a subject code. Custodian only, reason required; the
    ledger records actor, reason and result (found / not found), never the identity."""
    require(actor, Perm.CODE_INDEX_LOOKUP)
    why = _reason(reason)
    code = _code(code)
    hit = _entry_by_code(session, code)
    if hit is not None:
        require(actor, Perm.CODE_INDEX_LOOKUP, study=hit[1].code)
        keys.require_all([hit[0].key_id])
        identity = decrypt_identity(code=code, kid=hit[0].key_id, nonce=hit[0].nonce,
                                    ciphertext=hit[0].ciphertext, keys=keys)
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_LOOKUP_IDENTITY,
                  entity_type="code_index", entity_id=code, study=hit[1].code if hit else None,
                  subject=code if hit else None, reason=why, client=actor.client,
                  changes=[Change("result", None, "found" if hit else "not_found")])
    if hit is None:
        return IdentityLookup(code=code, found=False)
    return IdentityLookup(code=code, found=True, study=hit[1].code, identity=identity)


@dataclass(frozen=True)
class CodeLookup:
    found: bool
    matches: list[tuple[str, str]] = field(default_factory=list)  # (study code, subject code)


def lookup_code(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                resident_id: str, reason: str) -> CodeLookup:
    """The subject code(s) of a person, found by the blind index of the ID number (nothing is
    decrypted). Custodian only, reason required; audited with the result, not the ID number."""
    require(actor, Perm.CODE_INDEX_LOOKUP)
    why = _reason(reason)
    rid = normalise_resident_id(resident_id)
    if rid and rid in normalise_resident_id(why):
        raise InvalidInput("do not put the ID number in the reason (it is recorded) / "
                           "理由中不要填写身份证号", field="reason")
    rid = validate_resident_id(resident_id)
    _require_usable_keys(session, keys)
    bidx = blind_index(rid, key=keys.blind)
    rows = session.execute(
        select(col(CodeIndexEntry.code), col(Study.code))
        .join(Study, col(Study.id) == CodeIndexEntry.study_id)
        .where(col(CodeIndexEntry.blind_index) == bidx).order_by(col(Study.code))).all()
    matches = [(s, c) for c, s in rows if actor.can(Perm.CODE_INDEX_LOOKUP, s)]
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_LOOKUP_CODE,
                  entity_type="code_index", entity_id="(by resident ID number)",
                  subject=matches[0][1] if len(matches) == 1 else None, reason=why,
                  client=actor.client,
                  changes=[Change("result", None, "found" if matches else "not_found"),
                           Change("codes", None, [c for _, c in matches])])
    return CodeLookup(found=bool(matches), matches=matches)


@dataclass(frozen=True)
class LookupRecord:
    seq: int
    ts: str
    actor: str
    action: str
    code: str | None
    study: str | None
    reason: str | None
    result: str | None


def lookup_history(session: Session, *, actor: Actor, limit: int = 200) -> list[LookupRecord]:
    """The latest code-index lookups, exports and key rotations, newest first, in the studies
    the actor is custodian for."""
    require(actor, Perm.CODE_INDEX_HISTORY)
    rows = session.execute(
        select(LedgerEntry).where(col(LedgerEntry.action).in_(LOOKUP_ACTIONS))
        .order_by(col(LedgerEntry.seq).desc()).limit(max(1, min(limit, 1000)))).scalars()
    out = []
    for e in rows:
        if e.study and not actor.can(Perm.CODE_INDEX_HISTORY, e.study):
            continue  # a custodian of one study sees that study's lookups (and unscoped ones)
        result = None
        try:
            for ch in json.loads(e.changes or "[]"):
                if isinstance(ch, dict) and ch.get("field") == "result":
                    result = ch.get("after")
        except ValueError:
            pass
        code = e.subject or (e.entity_id if e.entity_type in ("code_index", "subject")
                             and e.action != "code_index.lookup_code" else None)
        out.append(LookupRecord(e.seq, e.ts, e.actor, e.action, code, e.study, e.reason,
                                result if isinstance(result, str) else None))
    return out


EXPORT_FORMATS = ("json", "text")
EXPORT_ACTION_PREFIXES = ("subject.", "consent.", "waiver.", "withdrawal.")


@dataclass(frozen=True)
class SubjectExport:
    filename: str
    media_type: str
    content: bytes


def export_subject(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                   code: str, reason: str, fmt: str = "json") -> SubjectExport:
    """Subject access (§7 d–e): the subject's own data as a readable file — identity, enrolment
    and the consent- and enrolment-related ledger entries about the subject. Custodian only,
    with a reason; audited (the entry holds the format, never the content)."""
    require(actor, Perm.CODE_INDEX_EXPORT)
    why = _reason(reason)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput("format: json or text / 格式须为 json 或 text", field="format")
    code = _code(code)
    hit = _entry_by_code(session, code)
    if hit is None:
        raise NotFound("no subject with this code / 无此受试者代码", field="code")
    entry, study = hit
    require(actor, Perm.CODE_INDEX_EXPORT, study=study.code)
    identity = decrypt_identity(code=code, kid=entry.key_id, nonce=entry.nonce,
                                ciphertext=entry.ciphertext, keys=keys)
    subject = session.get(Subject, entry.subject_id)
    site = session.get(Site, subject.site_id) if subject else None
    assert subject is not None and site is not None
    events = session.execute(
        select(LedgerEntry).where(col(LedgerEntry.subject) == code).order_by(col(LedgerEntry.seq))
    ).scalars()
    history = [{"time": e.ts, "action": e.action, "by": e.actor, "outcome": e.outcome,
                "reason": e.reason}
               for e in events if e.action.startswith(EXPORT_ACTION_PREFIXES)]
    generated = _now()
    doc: dict[str, object] = {
        "document": "Subject access export / 受试者个人数据副本 (GB/T 39725-2020 §7 d–e)",
        "generated_at": generated.isoformat(timespec="seconds"),
        "subject_code": code,
        "identity": identity.to_json(),
        "enrolment": {"study": study.code, "study_title_zh": study.title_zh,
                      "study_title_en": study.title_en, "site": site.code,
                      "hospital": site.hospital, "status": subject.status,
                      "enrolled_at": subject.enrolled_at.isoformat(timespec="seconds")},
        "history": history,
    }
    ledger.append(session, actor=actor.username,
                  action=Action.SUBJECT_EXPORT, entity_type="subject",
                  entity_id=subject.id, study=study.code, subject=code, reason=why,
                  client=actor.client, changes=[Change("format", None, fmt),
                                                Change("result", None, "found")])
    stamp = generated.strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        return SubjectExport(f"subject-{code}-{stamp}.json", "application/json",
                             json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n")
    return SubjectExport(f"subject-{code}-{stamp}.txt", "text/plain; charset=utf-8",
                         _as_text(doc).encode())


_LABELS = {
    "name": "姓名 / Name", "resident_id": "身份证号 / Resident ID number",
    "phone": "手机 / Phone", "medical_record_number": "病历号 / Medical record number",
    "date_of_birth": "出生日期 / Date of birth", "address": "地址 / Address",
    "study": "研究 / Study", "study_title_zh": "研究名称 / Title (zh)",
    "study_title_en": "Title (en)", "site": "中心 / Site", "hospital": "医院 / Hospital",
    "status": "状态 / Status", "enrolled_at": "入组时间 / Enrolled at (UTC)",
}


def _as_text(doc: dict[str, object]) -> str:
    lines = [str(doc["document"]), f"生成时间 / Generated (UTC): {doc['generated_at']}",
             f"受试者代码 / Subject code: {doc['subject_code']}", "",
             "身份信息 / Identity", "-" * 40]
    ident = doc["identity"]
    enrol_ = doc["enrolment"]
    assert isinstance(ident, dict) and isinstance(enrol_, dict)
    lines += [f"{_LABELS[k]}: {v if v is not None else '—'}" for k, v in ident.items()]
    lines += ["", "入组信息 / Enrolment", "-" * 40]
    lines += [f"{_LABELS[k]}: {v}" for k, v in enrol_.items()]
    lines += ["", "记录 / Records (enrolment and consent)", "-" * 40]
    hist = doc["history"]
    assert isinstance(hist, list)
    for h in hist:
        lines.append(f"{h['time']}  {h['action']}  {h['by']}  {h['outcome']}"
                     + (f"  ({h['reason']})" if h.get("reason") else ""))
    if not hist:
        lines.append("—")
    return "\n".join(lines) + "\n"


# ── Keys: verification and rotation ─────────────────────────────────────────────────────────


@dataclass(frozen=True)
class IndexCheck:
    entries: int
    by_key: dict[str, int]


def key_usage(session: Session) -> dict[str, int]:
    """How many entries each key id encrypted (no decryption)."""
    out: dict[str, int] = {}
    for kid in session.execute(select(col(CodeIndexEntry.key_id))).scalars():
        out[kid] = out.get(kid, 0) + 1
    return out


def verify_code_index(session: Session, *, keys: CodeIndexKeys) -> IndexCheck:
    """Decrypt every entry with ``keys`` (in memory only); raise CodeIndexKeyError naming the
    first entry that does not decrypt. Read-only."""
    by_key: dict[str, int] = {}
    n = 0
    for e in session.execute(select(CodeIndexEntry).order_by(col(CodeIndexEntry.code))).scalars():
        decrypt_identity(code=e.code, kid=e.key_id, nonce=e.nonce, ciphertext=e.ciphertext,
                         keys=keys)
        by_key[e.key_id] = by_key.get(e.key_id, 0) + 1
        n += 1
    return IndexCheck(entries=n, by_key=by_key)


@dataclass(frozen=True)
class RotationReport:
    entries: int
    old_key_ids: list[str]
    new_key_id: str


def rotate_code_index(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                      new_key: bytes, on_entry: Callable[[int], None] | None = None,
                      client: str | None = None) -> RotationReport:
    """Re-encrypt every code-index entry under ``new_key`` in the caller's ONE transaction,
    then check (before the caller commits) that every entry decrypts under ``new_key`` alone.

    All or nothing: if anything fails, the caller's rollback leaves every entry under its old
    key. Keeps: every identity unchanged (byte for byte after decryption), codes, blind indexes.
    Changes: nonce, ciphertext, key id, ``encrypted_at``. Idempotent in effect: rotating
    again to another key is another rotation. ``on_entry`` is called after each entry (tests
    use it to interrupt a rotation halfway).
    """
    require(actor, Perm.CODE_INDEX_ROTATE)
    new_keys = CodeIndexKeys(current=new_key, blind=keys.blind)
    if new_keys.current_id in keys.by_id():
        raise InvalidInput("the new key must differ from every key in use / 新密钥须与旧密钥不同",
                           field="new_key")
    _lock_index(session)
    entries = list(session.execute(
        select(CodeIndexEntry).order_by(col(CodeIndexEntry.code))).scalars())
    old_ids = sorted({e.key_id for e in entries})
    keys.require_all(old_ids)
    now = _now()
    for i, e in enumerate(entries):
        identity = decrypt_identity(code=e.code, kid=e.key_id, nonce=e.nonce,
                                    ciphertext=e.ciphertext, keys=keys)
        e.key_id, e.nonce, e.ciphertext = encrypt_identity(identity, code=e.code, key=new_key)
        e.encrypted_at = now
        if on_entry is not None:
            on_entry(i)
    session.flush()
    session.expire_all()
    check = verify_code_index(session, keys=new_keys)
    if check.entries != len(entries) or set(check.by_key) - {new_keys.current_id}:
        raise CodeIndexKeyError("re-encryption did not cover every entry; nothing is changed")
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_ROTATE_KEY,
                  entity_type="code_index", entity_id="(all entries)", client=client,
                  reason="key rotation", changes=[
                      Change("key_id", old_ids, new_keys.current_id),
                      Change("entries", None, len(entries)),
                      Change("result", None, "verified")])
    return RotationReport(entries=len(entries), old_key_ids=old_ids,
                          new_key_id=new_keys.current_id)


__all__ = [
    "CodeIndexKeyError", "CodeIndexKeys", "PermissionDenied", "check_enrolment_allowed", "enrol",
    "enrol_new_subject", "export_subject", "list_subjects", "lookup_code", "lookup_history",
    "lookup_identity", "rotate_code_index", "verify_code_index",
]
