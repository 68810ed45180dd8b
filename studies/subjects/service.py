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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.consent import service as consents
from studies.consent.schemas import ConsentIn
from studies.ethics import service as ethics
from studies.guards import assert_writable
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry.models import Site, Study
from studies.subjects import codes
from studies.subjects.crypto import CodeIndexKeys, blind_index, encrypt_identity
from studies.subjects.errors import CodeIndexKeyError
from studies.subjects.identity import (
    Identity,
    validate_identity,
)
from studies.subjects.models import CodeIndexEntry, Subject

CLAUSE_CODE = "§11.3.4.4 d"
CLAUSE_LOOKUP = "§11.3.4.6 a"
CLOSED_STATUSES = frozenset({"closed", "terminated", "completed", "archived"})
CODE_TRIES = 50
def now_utc() -> dt.datetime:
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
        raise NotFound(_("study does not exist"), field="study")
    if study.status in CLOSED_STATUSES:
        raise RuleViolation(_("study {code} is {status}; no new subjects").format(
                                code=study.code, status=study.status), field="study",
                            clause="§11.3.4.4")
    if actor is not None:
        require(actor, Perm.SUBJECT_ENROL, study=study.code)
    if site_id is not None:
        if actor is not None:  # the enrolling permission at this very site
            guards.require_for_site(session, actor, Perm.SUBJECT_ENROL, study=study,
                                    site_id=site_id)
        else:
            site = session.get(Site, site_id)
            if site is None or site.study_id != study.id:
                raise InvalidInput(_("site is not a site of this study"),
                                   field="site")
    guards.assert_enrolment_allowed(session, study_id=study.id, at=at)
    return study


# ── Enrolment ─────────────────────────────────────────────────────────────────────────────────


def _index_keys_in_use(session: Session) -> tuple[set[str], set[str]]:
    rows = session.execute(
        select(col(CodeIndexEntry.key_id), col(CodeIndexEntry.blind_key_id)).distinct()).all()
    return {r[0] for r in rows}, {r[1] for r in rows}


def lock_index(session: Session) -> None:
    """Serialise the writers of the code index (enrolment, key rotation) so that no entry is
    written under the old key while a rotation re-encrypts the rest. Readers are not blocked.
    SQLite needs nothing: its transactions begin IMMEDIATE, one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE code_index_entry IN SHARE ROW EXCLUSIVE MODE"))


def require_usable_keys(session: Session, keys: CodeIndexKeys, *,
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
            _("the code index is encrypted under a key other than code_index.key (an interrupted "
              "key rotation?); run `edc keys rotate-code-index` to finish it"),
            clause=CLAUSE_LOOKUP)
    if blind_ids - {keys.blind_id}:
        raise CodeIndexKeyError(
            _("blind_index.key is not the key the code index was built with; restore it from the "
              "key backup"), clause=CLAUSE_LOOKUP)


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
    at = at or now_utc()
    # ═══ ELIGIBILITY GATE — the one check of whether the study is open for enrolment
    # ═══ (study, site, role, current ethics approval; §11.3.4.2).
    study = check_enrolment_allowed(session, study_id=study_id, at=at, site_id=site_id,
                                    actor=actor)
    # ═══ CONSENT — the subject's consent or approved waiver, checked before anything is written.
    site = guards.require_for_site(session, actor, Perm.CONSENT_RECORD, study=study,
                                   site_id=site_id)
    consents.check_consent(session, study_id=study.id, data=consent)
    lock_index(session)
    assert_writable(session, study_id=study.id, site_id=site.id, at=at, actor=actor.username,
                    client=actor.client, kind="enrolment")
    require_usable_keys(session, keys, writing=True)

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
            raise Conflict(_("could not issue a unique subject code; try again")) from exc
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
        return Conflict(_("this person is already enrolled in this study as {existing}").format(
                            existing=existing), field="resident_id",
                        clause=CLAUSE_CODE, audit=audit)
    return Conflict(_("already enrolled in this study"), field="resident_id",
                    clause=CLAUSE_CODE, audit=audit)


def _fresh_code(session: Session, site_code: str) -> str:
    for _x in range(CODE_TRIES):
        code = codes.new_code(site_code)
        if session.execute(select(col(Subject.id)).where(
                col(Subject.code) == code)).first() is None:
            return code
    raise Conflict(_("could not issue a unique subject code; try again"))


def plain_text(value: str, *, field: str, max_len: int) -> str:
    """Refuse control characters (a NUL would fail on PostgreSQL) and over-long values before
    they reach a query."""
    if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(_("{field}: not a valid value").format(field=field), field=field)
    return value


def study_by_code(session: Session, study_code: str) -> Study:
    plain_text(study_code, field="study", max_len=100)
    study = session.execute(select(Study).where(col(Study.code) == study_code)).scalar_one_or_none()
    if study is None:
        raise NotFound(_("study {study_code!r} does not exist").format(study_code=study_code),
                       field="study")
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
        raise InvalidInput(_("consent: enrolment needs the subject's consent or an approved "
                             "waiver"), field="consent",
                           clause=consents.CLAUSE_CONSENT)
    site_code = plain_text(site_code.strip(), field="site", max_len=10)
    site = session.execute(select(Site).where(col(Site.study_id) == study.id,
                                              col(Site.code) == site_code)).scalar()
    if site is None:
        raise InvalidInput(_("site: no site with this code in the study"),
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
    """Subjects of a study, by code only (no identity): those of the sites where the actor
    holds ``subject.read``."""
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_READ, study=study.code)
    sites = actor.sites(Perm.SUBJECT_READ, study.code)
    rows = session.execute(
        select(Subject, col(Site.code)).join(Site, col(Site.id) == Subject.site_id)
        .where(col(Subject.study_id) == study.id)
        .order_by(col(Subject.enrolled_at), col(Subject.code))).all()
    return [SubjectRow(s.code, study.code, site_code, s.status, s.enrolled_at, s.enrolled_by)
            for s, site_code in rows if sites is None or site_code in sites]


def list_sites(session: Session, *, actor: Actor, study_code: str) -> list[Site]:
    """The sites where the actor may enrol."""
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_ENROL, study=study.code)
    sites = actor.sites(Perm.SUBJECT_ENROL, study.code)
    return [s for s in session.execute(select(Site).where(col(Site.study_id) == study.id)
                                       .order_by(col(Site.code))).scalars()
            if sites is None or s.code in sites]


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
    """One subject of the study; 403 (audited) when it is at a site outside the actor's
    scope."""
    code = codes.normalise_code(plain_text(code, field="code", max_len=40))
    study = study_by_code(session, study_code)
    require(actor, Perm.SUBJECT_READ, study=study.code)
    subject = session.execute(select(Subject).where(
        col(Subject.study_id) == study.id, col(Subject.code) == code)).scalar_one_or_none()
    if subject is None:
        raise NotFound(_("no subject with this code in the study"), field="code")
    site = guards.require_for_subject(session, actor, Perm.SUBJECT_READ, study=study,
                                      subject=subject)
    return SubjectRow(subject.code, study.code, site.code, subject.status, subject.enrolled_at,
                      subject.enrolled_by)


# ── The custodian: lookups, history, subject access ─────────────────────────────────────────


# ── Keys: verification and rotation ─────────────────────────────────────────────────────────


__all__ = [
    "CodeIndexKeyError", "CodeIndexKeys", "PermissionDenied", "check_enrolment_allowed", "enrol",
    "enrol_new_subject", "list_subjects",
]
