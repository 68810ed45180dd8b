"""Randomisation, blinding and unblinding (SPEC §6, §11.3.4.7 a).

Permuted blocks: for each stratum (site, plus up to two factors read from the subject's form
data) the allocation sequence is a series of blocks; block ``b`` of stratum ``s`` takes its size
from the configured sizes and its order from a shuffle, both drawn from a generator seeded with
HMAC-SHA256(secret, study | stratum | b). The secret is derived from the key directory
(:func:`keys_from`), so the sequence can be reproduced by whoever holds the key directory, and
by nobody who holds only the database. Or the statistician imports an allocation list (CSV:
``stratum,seq,arm``) prepared outside; its rows are stored sealed.

Each assignment is a ledger entry. In a blinded study the arm is sealed (XSalsa20-Poly1305
under a key derived from the key directory) and the ledger holds only a commitment
(HMAC-SHA256 of subject and arm), so no role sees the allocation until the study is locked and
an unblinding is signed by the principal investigator and the statistician. In an emergency
the PI may unblind one subject, with a reason and an electronic signature: audited loudly
(its own ledger entry and a signed checkpoint) and the data manager is told in the inbox.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import io
import random
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.service import DEFAULT_CONFIG
from studies.entry.models import CurrentValue, FormRecord
from studies.forms.models import Form, Item
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import Msg, _, _l, bilingual
from studies.kernel.labels import label
from studies.kernel.roles import UNBLIND_SIGNERS, Perm, Role
from studies.locks.models import DataLock
from studies.randomisation.models import (
    Allocation,
    AllocationSlot,
    RandomisationScheme,
    Unblinding,
)
from studies.randomisation.schemas import SchemeIn
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.signoff import service as sign_off
from studies.subjects.models import Subject

CLAUSE = "§11.3.4.7 a"
SEALED = _l("sealed")
UNBLIND_ROLES: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.STATISTICIAN)
MAX_LIST_ROWS = 100_000


@dataclass(frozen=True)
class RandomisationKeys:
    seed: bytes   # seeds the permuted blocks
    seal: bytes   # seals arms at rest and keys the commitments


def keys_from(deid_key: bytes) -> RandomisationKeys:
    """Derive the randomisation secrets from the key directory's de-identification key with
    HMAC and a label each (domain separation: neither can be used for the other)."""
    return RandomisationKeys(
        seed=hmac.new(deid_key, b"edc randomisation seed v1", hashlib.sha256).digest(),
        seal=hmac.new(deid_key, b"edc allocation seal v1", hashlib.sha256).digest())


def _seal(keys: RandomisationKeys, arm: str) -> str:
    return base64.b64encode(nacl.secret.SecretBox(keys.seal).encrypt(arm.encode())).decode()


def _unseal(keys: RandomisationKeys, sealed: str) -> str:
    try:
        return nacl.secret.SecretBox(keys.seal).decrypt(base64.b64decode(sealed)).decode()
    except nacl.exceptions.CryptoError:
        raise RuleViolation(_("the allocation cannot be unsealed with this key directory"),
                            clause=CLAUSE) from None


def commitment(keys: RandomisationKeys, subject_id: str, arm: str) -> str:
    return hmac.new(keys.seal, f"{subject_id}|{arm}".encode(), hashlib.sha256).hexdigest()


# ---- the scheme -------------------------------------------------------------------------------

def configure(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
              data: SchemeIn) -> RandomisationScheme:
    """Set the study's scheme (the statistician). Refused once anyone is randomised."""
    require(actor, Perm.RANDOMISATION_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    arms = [a.strip() for a in data.arms]
    if any(not a or len(a) > 40 for a in arms) or len(set(arms)) != len(arms):
        raise InvalidInput(_("arms: distinct names of 1–40 characters"),
                           field="arms")
    ratio = data.ratio or [1] * len(arms)
    if len(ratio) != len(arms) or any(r < 1 or r > 10 for r in ratio):
        raise InvalidInput(_("ratio: one whole number 1–10 per arm"), field="ratio")
    unit = sum(ratio)
    if data.method == "blocks":
        if not data.block_sizes or any(b < unit or b > 100 or b % unit for b in data.block_sizes):
            raise InvalidInput(_("block_sizes: multiples of {unit} (the sum of the ratio), at "
                                 "most 100").format(unit=unit), field="block_sizes")
    for f in data.factors:
        form = session.execute(select(Form).where(col(Form.study_id) == study.id,
                                                  col(Form.name) == f.form)).scalar_one_or_none()
        if form is None:
            raise InvalidInput(_("factors: no form {form!r}").format(form=f.form), field="factors")
        if session.execute(select(col(Item.id)).where(
                col(Item.name) == f.item).limit(1)).first() is None:
            raise InvalidInput(_("factors: no field {item!r}").format(item=f.item), field="factors")
    if session.execute(select(col(Allocation.id)).where(col(Allocation.study_id) == study.id)
                       .limit(1)).first():
        raise Conflict(_("subjects have been randomised; the scheme cannot change"), field="method")
    scheme = session.get(RandomisationScheme, study.id)
    if scheme is None:
        scheme = RandomisationScheme(study_id=study.id, method=data.method,
                                     created_by=actor.username)
        session.add(scheme)
    scheme.method, scheme.arms, scheme.ratio = data.method, arms, ratio
    scheme.block_sizes = sorted(set(data.block_sizes)) if data.method == "blocks" else []
    scheme.factors = [f.model_dump() for f in data.factors]
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.RANDOMISATION_CONFIGURE, entity_type="randomisation_scheme",
                  entity_id=study.id, study=study.code,
                  changes=[Change("method", None, scheme.method), Change("arms", None, arms),
                           Change("ratio", None, ratio),
                           Change("block_sizes", None, scheme.block_sizes),
                           Change("factors", None, scheme.factors)])
    return scheme


def _scheme(session: Session, study: Study) -> RandomisationScheme:
    scheme = session.get(RandomisationScheme, study.id)
    if scheme is None:
        raise RuleViolation(_("the study has no randomisation scheme yet"),
                            field="study", clause=CLAUSE)
    return scheme


def import_list(session: Session, ledger: Ledger, *, actor: Actor, keys: RandomisationKeys,
                study_code: str, text: str) -> int:
    """Import the statistician's allocation list (CSV with header ``stratum,seq,arm``; seq
    1, 2, … within each stratum). Stored sealed; the ledger keeps the SHA-256 of the file and
    the row count, not the arms. Refused once anyone is randomised; nothing is written if any
    row is wrong (422 naming the row)."""
    require(actor, Perm.RANDOMISATION_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    scheme = _scheme(session, study)
    if scheme.method != "list":
        raise RuleViolation(_("the scheme is not an imported list"),
                            field="method", clause=CLAUSE)
    if session.execute(select(col(Allocation.id)).where(col(Allocation.study_id) == study.id)
                       .limit(1)).first():
        raise Conflict(_("subjects have been randomised; the list cannot change"), field="file")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    if header != ["stratum", "seq", "arm"]:
        raise InvalidInput(_("file: the header must be stratum,seq,arm"),
                           field="file")
    rows: dict[tuple[str, int], str] = {}
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 3:
            raise InvalidInput(_("file: row {n} needs 3 columns").format(n=n), field="file")
        stratum, seq_s, arm = (c.strip() for c in row)
        if not stratum or len(stratum) > 300:
            raise InvalidInput(_("file: row {n}: stratum is empty or too long").format(n=n),
                               field="file")
        if not (seq_s.isascii() and seq_s.isdigit()) or int(seq_s) < 1:
            raise InvalidInput(_("file: row {n}: seq must be a positive whole number").format(n=n),
                               field="file")
        if arm not in scheme.arms:
            raise InvalidInput(_("file: row {n}: arm {arm!r} is not one of the scheme's "
                                 "arms").format(n=n, arm=arm), field="file")
        if (stratum, int(seq_s)) in rows:
            raise InvalidInput(_("file: row {n}: duplicate stratum and seq").format(n=n),
                               field="file")
        rows[(stratum, int(seq_s))] = arm
        if len(rows) > MAX_LIST_ROWS:
            raise InvalidInput(_("file: at most {MAX_LIST_ROWS} rows").format(
                                   MAX_LIST_ROWS=MAX_LIST_ROWS), field="file")
    if not rows:
        raise InvalidInput(_("file: the list is empty"), field="file")
    session.execute(AllocationSlot.__table__.delete().where(  # type: ignore[attr-defined]
        AllocationSlot.__table__.c.study_id == study.id))  # type: ignore[attr-defined]
    session.add_all([AllocationSlot(study_id=study.id, stratum=s, seq=q, arm_sealed=_seal(keys, a))
                     for (s, q), a in sorted(rows.items())])
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.RANDOMISATION_LIST_IMPORT, entity_type="randomisation_scheme",
                  entity_id=study.id, study=study.code,
                  changes=[Change("list_sha256", None,
                                  hashlib.sha256(text.encode("utf-8")).hexdigest()),
                           Change("rows", None, len(rows))])
    return len(rows)


# ---- randomising ------------------------------------------------------------------------------

def block(keys: RandomisationKeys, scheme: RandomisationScheme, stratum: str,
          index: int) -> list[str]:
    """Block ``index`` of a stratum: its size and order drawn from the seeded generator."""
    digest = hmac.new(keys.seed, f"{scheme.study_id}|{stratum}|{index}".encode(),
                      hashlib.sha256).digest()
    rng = random.Random(digest)
    size = rng.choice(sorted(scheme.block_sizes))
    per = size // sum(scheme.ratio)
    arms = [a for a, r in zip(scheme.arms, scheme.ratio, strict=True) for _x in range(r * per)]
    rng.shuffle(arms)
    return arms


def arm_at(keys: RandomisationKeys, scheme: RandomisationScheme, stratum: str, seq: int) -> str:
    """The arm of the ``seq``-th (1-based) subject of a stratum under permuted blocks."""
    index, pos = 0, seq - 1
    while True:
        b = block(keys, scheme, stratum, index)
        if pos < len(b):
            return b[pos]
        pos -= len(b)
        index += 1


def stratum_of(session: Session, scheme: RandomisationScheme, subject: Subject,
               site: Site) -> str:
    parts = [site.code]
    for f in scheme.factors:
        value = session.execute(
            select(col(CurrentValue.value))
            .join(FormRecord, col(FormRecord.id) == CurrentValue.record_id)
            .join(Form, col(Form.id) == FormRecord.form_id)
            .where(col(FormRecord.subject_id) == subject.id, col(Form.name) == f["form"],
                   col(CurrentValue.item_name) == f["item"], col(CurrentValue.value).is_not(None))
            .order_by(col(FormRecord.created_at))).scalars().first()
        if value is None or value == "":
            raise InvalidInput(_("the stratification factor {form}.{item} has not been entered "
                                 "for this subject").format(form=f['form'], item=f['item']),
                               field="subject")
        parts.append(f"{f['item']}={value}")
    return "|".join(parts)


@dataclass(frozen=True)
class AllocationView:
    subject: str
    site: str
    stratum: str
    seq: int
    arm: str
    randomised_by: str
    randomised_at: dt.datetime


def _subject(session: Session, study: Study, code: str) -> tuple[Subject, Site]:
    row = session.execute(select(Subject, Site).join(Site, col(Site.id) == Subject.site_id)
                          .where(col(Subject.code) == code)).first()
    if row is None or row[0].study_id != study.id:
        raise NotFound(_("no subject {code!r} in this study").format(code=code), field="subject")
    return row[0], row[1]


def study_unblinded(session: Session, study: Study) -> bool:
    return not study.blinded or session.execute(select(col(Unblinding.id)).where(
        col(Unblinding.study_id) == study.id, col(Unblinding.kind) == "study",
        col(Unblinding.status) == "effective").limit(1)).first() is not None


def _visible(session: Session, actor: Actor, study: Study, site: Site, a: Allocation) -> bool:
    if not actor.can(Perm.ALLOCATION_READ, study.code, site.code):
        return False
    if study_unblinded(session, study):
        return True
    return actor.can(Perm.UNBLIND_EMERGENCY, study.code, site.code) and session.execute(
        select(col(Unblinding.id)).where(col(Unblinding.subject_id) == a.subject_id,
                                         col(Unblinding.kind) == "emergency",
                                         col(Unblinding.status) == "effective")
        .limit(1)).first() is not None


def _view(session: Session, actor: Actor, keys: RandomisationKeys, study: Study, subject: Subject,
          site: Site, a: Allocation) -> AllocationView:
    arm = _unseal(keys, a.arm_sealed) if _visible(session, actor, study, site, a) else str(SEALED)
    return AllocationView(subject.code, site.code, a.stratum, a.seq, arm, a.randomised_by,
                          a.randomised_at)


def randomise(session: Session, ledger: Ledger, *, actor: Actor, keys: RandomisationKeys,
              study_code: str, subject_code: str,
              now: dt.datetime | None = None) -> AllocationView:
    """Randomise an enrolled subject (see the module doc). Refused: without ``randomise`` for
    the subject's site (403); no scheme, or an exhausted list (422); already randomised (409);
    locked data (423)."""
    now = now or dt.datetime.now(dt.UTC)
    require(actor, Perm.RANDOMISE, study=study_code)
    study = registry.get_study(session, study_code)
    subject, site = _subject(session, study, subject_code)
    require(actor, Perm.RANDOMISE, study=study_code, site=site.code)
    if subject.status != "enrolled":
        raise RuleViolation(_("only an enrolled subject can be randomised (this one is "
                              "{status})").format(status=subject.status), field="subject",
                            clause=CLAUSE)
    scheme = _scheme(session, study)
    guards.assert_writable(session, study_id=study.id, subject_id=subject.id, at=now,
                          actor=actor.username, client=actor.client, kind="randomisation")
    guards.serialise(session)
    if session.execute(select(col(Allocation.id)).where(
            col(Allocation.subject_id) == subject.id)).first() is not None:
        raise Conflict(_("subject {code} is already randomised").format(code=subject.code),
                       field="subject")
    stratum = stratum_of(session, scheme, subject, site)
    seq = int(session.execute(select(func.count()).select_from(Allocation).where(
        col(Allocation.study_id) == study.id, col(Allocation.stratum) == stratum)).scalar_one()) + 1
    if scheme.method == "blocks":
        arm = arm_at(keys, scheme, stratum, seq)
    else:
        slot = session.execute(select(AllocationSlot).where(
            col(AllocationSlot.study_id) == study.id, col(AllocationSlot.stratum) == stratum,
            col(AllocationSlot.seq) == seq)).scalar_one_or_none()
        if slot is None:
            raise RuleViolation(_("the allocation list has no entry {seq} for stratum "
                                  "{stratum!r}").format(seq=seq, stratum=stratum), field="subject",
                                clause=CLAUSE)
        arm = _unseal(keys, slot.arm_sealed)
    commit = commitment(keys, subject.id, arm)
    entry = ledger.append(
        session, actor=actor.username, client=actor.client, action=Action.RANDOMISATION_ASSIGN,
        entity_type="allocation", entity_id=subject.id, study=study.code, subject=subject.code,
        changes=[Change("stratum", None, stratum), Change("seq", None, seq),
                 Change("arm_commitment", None, commit) if study.blinded
                 else Change("arm", None, arm)])
    a = Allocation(study_id=study.id, subject_id=subject.id, stratum=stratum, seq=seq,
                   arm_sealed=_seal(keys, arm), commitment=commit, randomised_by=actor.username,
                   randomised_at=now, ledger_seq=entry.seq)
    session.add(a)
    session.flush()
    return _view(session, actor, keys, study, subject, site, a)


def allocations(session: Session, *, actor: Actor, keys: RandomisationKeys,
                study_code: str) -> list[AllocationView]:
    """Every allocation the actor may list (by site); arms shown only where visible."""
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    sites = actor.sites(Perm.LOCK_READ, study.code)
    rows = session.execute(select(Allocation, Subject, Site)
                           .join(Subject, col(Subject.id) == Allocation.subject_id)
                           .join(Site, col(Site.id) == Subject.site_id)
                           .where(col(Allocation.study_id) == study.id)
                           .order_by(col(Allocation.randomised_at))).all()
    return [_view(session, actor, keys, study, s, site, a) for a, s, site in rows
            if sites is None or site.code in sites]


# ---- unblinding -------------------------------------------------------------------------------

def _study_locked(session: Session, study: Study, at: dt.datetime) -> bool:
    locked = session.execute(select(col(DataLock.id)).where(
        col(DataLock.study_id) == study.id,
        col(DataLock.scope) == "study").limit(1)).first() is not None
    return locked and not guards.active_unlocks(session, study.id, at)


def unblinding_content(u: Unblinding, study: Study) -> str:
    return (f"揭盲 / Unblinding {u.id}\n研究 / Study: {study.code}\n"
            f"范围 / Scope: whole study / 全部受试者\n理由 / Reason: {u.reason}\n"
            f"申请人 / Requested by: {u.requested_by}\n")


def unblinding_text(session: Session, u: Unblinding) -> str:
    """What is shown (and, for a study unblinding, signed) for an unblinding."""
    study = session.get(Study, u.study_id)
    assert study is not None
    return unblinding_content(u, study) if u.kind == "study" else u.reason


def request_unblinding(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                       reason: str, now: dt.datetime | None = None) -> Unblinding:
    """Ask to unblind a blinded study. Refused: an open-label study, or one not locked
    (a study lock and no active unlock) — 422; a request already pending or done — 409."""
    require(actor, Perm.UNBLIND_SIGN, study=study_code)
    now = now or dt.datetime.now(dt.UTC)
    study = registry.get_study(session, study_code)
    text = (reason or "").strip()
    if not text or len(text) > 2000:
        raise InvalidInput(_("reason: 1–2000 characters"), field="reason")
    if not study.blinded:
        raise RuleViolation(_("the study is not blinded"), field="study",
                            clause=CLAUSE)
    if not _study_locked(session, study, now):
        raise RuleViolation(_("a blinded study is unblinded only after the database is locked"),
                            field="study", clause=CLAUSE)
    if session.execute(select(col(Unblinding.id)).where(
            col(Unblinding.study_id) == study.id, col(Unblinding.kind) == "study",
            col(Unblinding.status).in_(("pending", "effective")))).first():
        raise Conflict(_("an unblinding of this study is already pending or done"),
                       field="study")
    u = Unblinding(study_id=study.id, kind="study", reason=text, content_hash="",
                   status="pending", requested_by=actor.username, requested_at=now)
    u.content_hash = signatures.content_hash(unblinding_content(u, study).encode())
    session.add(u)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.UNBLINDING_REQUEST, entity_type="unblinding", entity_id=u.id,
                  study=study.code, reason=text,
                  changes=[Change("content_sha256", None, u.content_hash)])
    sign_off.notify(session, study=study, kind="unblinding.request", by=actor.username,
                 audience=UNBLIND_SIGNERS, link=f"/studies/{study.code}/unblinding/{u.id}",
                 text=Msg("an unblinding waits for your signature: {display_name} asks to unblind "
                          "the study: {text}", display_name=actor.display_name, text=text))
    return u


def get_unblinding(session: Session, *, actor: Actor, study_code: str,
                   unblinding_id: str) -> tuple[Unblinding, Study]:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    u = session.get(Unblinding, unblinding_id)
    if u is None or u.study_id != study.id:
        raise NotFound(_("no such unblinding in this study"), field="unblinding_id")
    return u, study


def list_unblindings(session: Session, *, actor: Actor, study_code: str) -> list[Unblinding]:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    return list(session.execute(select(Unblinding).where(col(Unblinding.study_id) == study.id)
                                .order_by(col(Unblinding.requested_at))).scalars())


def sign_unblinding(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    unblinding_id: str, role: Role, username: str, password: str,
                    totp: str | None = None, config: AuthConfig = DEFAULT_CONFIG,
                    now: dt.datetime | None = None) -> Unblinding:
    """The PI and the statistician (two people) sign; the second signature unblinds, if the
    study is still locked."""
    require(actor, Perm.UNBLIND_SIGN, study=study_code)
    now = now or dt.datetime.now(dt.UTC)
    u, study = get_unblinding(session, actor=actor, study_code=study_code,
                              unblinding_id=unblinding_id)
    if u.status != "pending":
        raise Conflict(_("the unblinding is {status}").format(status=label(u.status)),
                       field="unblinding_id")
    if not _study_locked(session, study, now):
        raise RuleViolation(_("the study is no longer locked"),
                            field="study", clause=CLAUSE)
    n = sign_off.signoff(session, ledger, actor=actor, study=study, entity_type="unblinding",
                      entity_id=u.id, content_hash=u.content_hash, role=role,
                      roles=UNBLIND_ROLES, meaning=f"approve unblinding as {role.value} / 批准揭盲",
                      username=username, password=password, totp=totp, config=config)
    if n == len(UNBLIND_ROLES):
        u.status, u.effective_at = "effective", now
        session.flush()
        ledger.append(session, actor=actor.username, client=actor.client,
                      action=Action.UNBLINDING_EFFECTIVE, entity_type="unblinding", entity_id=u.id,
                      study=study.code, changes=[Change("status", "pending", "effective")])
        ledger.checkpoint(session, reason="unblinding")
        sign_off.notify(session, study=study, kind="unblinding.effective", by=actor.username,
                     link=f"/studies/{study.code}/randomisation",
                     text=Msg("study {code} is unblinded", code=study.code))
    return u


def emergency_unblind(session: Session, ledger: Ledger, *, actor: Actor,
                      keys: RandomisationKeys, study_code: str, subject_code: str, reason: str,
                      username: str, password: str, totp: str | None = None,
                      config: AuthConfig = DEFAULT_CONFIG,
                      now: dt.datetime | None = None) -> AllocationView:
    """The PI unblinds one subject in an emergency: a reason and an electronic signature;
    its own ledger entry and a signed checkpoint; the data manager is told in the inbox.
    Returns the allocation with the arm."""
    require(actor, Perm.UNBLIND_EMERGENCY, study=study_code)
    now = now or dt.datetime.now(dt.UTC)
    study = registry.get_study(session, study_code)
    subject, site = _subject(session, study, subject_code)
    require(actor, Perm.UNBLIND_EMERGENCY, study=study_code, site=site.code)
    if not sign_off.holds_role(actor, Role.PRINCIPAL_INVESTIGATOR, study.code):
        raise PermissionDenied(_("only the principal investigator may unblind in an emergency"),
                               field="role", clause=CLAUSE)
    text = (reason or "").strip()
    if not text or len(text) > 2000:
        raise InvalidInput(_("reason: 1–2000 characters"), field="reason")
    a = session.execute(select(Allocation).where(
        col(Allocation.subject_id) == subject.id)).scalar_one_or_none()
    if a is None:
        raise NotFound(_("the subject has not been randomised"),
                       field="subject")
    u = Unblinding(study_id=study.id, kind="emergency", subject_id=subject.id, reason=text,
                   content_hash="", status="effective", requested_by=actor.username,
                   requested_at=now, effective_at=now)
    u.content_hash = signatures.content_hash(
        f"emergency unblinding of {subject.code} in {study.code}: {text}\n".encode())
    signatures.sign(session, ledger, actor=actor, username=username, password=password,
                    totp=totp, meaning="emergency unblinding / 紧急揭盲",
                    content_hash=u.content_hash, entity_type="unblinding", entity_id=u.id,
                    study=study.code, config=config)
    session.add(u)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.UNBLINDING_EMERGENCY, entity_type="unblinding", entity_id=u.id,
                  study=study.code, subject=subject.code,
                  reason=bilingual("EMERGENCY UNBLINDING: {text}", text=text)[:2000],
                  changes=[Change("subject", None, subject.code),
                           Change("arm_commitment", None, a.commitment)])
    ledger.checkpoint(session, reason="emergency unblinding")
    sign_off.notify(session, study=study, kind="unblinding.emergency", by=actor.username,
                 audience=(Role.DATA_MANAGER,), link=f"/studies/{study.code}/randomisation",
                 text=Msg("EMERGENCY UNBLINDING of subject {code} by {display_name}: {text}",
                          code=subject.code, display_name=actor.display_name, text=text))
    return _view(session, actor, keys, study, subject, site, a)
