"""Small factories for test data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.config import AuthConfig, parse_networks
from studies.accounts.models import User
from studies.consent.schemas import ConsentFormIn, ConsentIn
from studies.entry.schemas import SaveIn, SettingsIn
from studies.ethics.schemas import ApprovalIn, CommitteeIn, MemberIn
from studies.forms.schemas import EventIn
from studies.kernel.actor import SYSTEM, Actor
from studies.kernel.roles import Role
from studies.registry.models import Site, Study
from studies.registry.schemas import ProtocolIn, SiteIn, StudyIn
from studies.subjects.models import Subject

PASSWORD = "correct horse battery staple"


@contextmanager
def statements_run(session: Session) -> Iterator[list[str]]:
    """The SQL statements the session's engine runs inside the block, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def make_user(session: Session, ledger: Ledger, username: str, *roles: Role,
              study: str | None = None, must_change_password: bool = False) -> User:
    return accounts.create_user(
        session, ledger, actor=SYSTEM, username=username,
        display_name=username.title(), password=PASSWORD,
        roles=[(r, study) for r in roles], must_change_password=must_change_password)


def strict_auth(**overrides: object) -> AuthConfig:
    """An authentication policy with the second factor enforced and 10.0.0.0/8 as the
    hospital network (tests of accounts; the app fixtures turn enforcement off)."""
    base: dict[str, object] = dict(hospital_networks=parse_networks("10.0.0.0/8"),
                                   second_factor_enforced=True, totp_key=b"k" * 32)
    base.update(overrides)
    return AuthConfig(**base)  # type: ignore[arg-type]


def enrol_totp(session: Session, user: User, config: AuthConfig) -> str:
    """Enrol a TOTP secret for ``user`` directly; returns the plain secret."""
    from studies.accounts import totp

    secret = totp.begin_enrolment(user, config=config)
    user.totp_enabled = True
    session.flush()
    return secret


# ---- studies, ethics, consent (issue 3) ---------------------------------------------------------

SETUP = Actor(user_id="setup", username="setup", display_name="Setup",
                       grants=((Role.PRINCIPAL_INVESTIGATOR, None), (Role.ETHICS_MEMBER, None),
                               (Role.INVESTIGATOR, None)))

def make_study(session: Session, ledger: Ledger, code: str = "ONC-2026-01", *,
               design: str = "prospective", post_market: bool = False,
               public_interest: bool = False, sites: tuple[str, ...] = ("S01",)) -> Study:
    """A registered study (draft) with protocol version 1.0 and sites."""
    import datetime as dt

    from studies.registry import service as registry

    return registry.register_study(session, ledger, actor=SETUP, data=(
        StudyIn(
            code=code, title_zh="示例研究", title_en="Example study", sponsor="Example Pharma",
            design=design, post_market=post_market, public_interest=public_interest,
            protocol=ProtocolIn(
                label="1.0", version_date=dt.date(2026, 1, 5), purpose="Efficacy of X",
                legal_basis="Consent; ethics approval", research_content="RCT of X vs placebo",
                data_types="demographics, vital signs, labs", planned_subjects=120,
                planned_records=2400, expected_results="X lowers BP",
                data_sharing_plan="De-identified data shared on request after publication"),
            sites=[SiteIn(code=s, hospital="Example Hospital",
                                   department="Cardiology", medical_group="Group 1")
                   for s in sites])))


def make_protocol(label: str) -> Any:
    import datetime as dt


    return ProtocolIn(label=label, version_date=dt.date(2026, 1, 5), purpose="p",
                               legal_basis="l", research_content="r", data_types="d",
                               planned_subjects=150, planned_records=3000,
                               expected_results="e", data_sharing_plan="s")


def make_committee(session: Session, ledger: Ledger, *, members: int = 7,
                   genders: tuple[str, ...] = ("female", "male"),
                   external: bool = True, name: str = "Example Hospital Ethics Committee") -> Any:
    from studies.ethics import service as ethics

    c = ethics.create_committee(session, ledger, actor=SETUP,
                                data=CommitteeIn(name=name, institution="Example Hospital"))
    for n in range(members):
        ethics.add_member(session, ledger, actor=SETUP, committee_id=c.id,
                          data=MemberIn(
                              name=f"Member {n + 1}", gender=genders[n % len(genders)],
                              affiliation="external" if external and n == 0 else "internal",
                              expertise=["medicine", "ethics", "law", "sociology"][n % 4]))
    return c


def approve(session: Session, ledger: Ledger, study: Study, committee: Any, *,
            protocol_version: int = 1, decision: str = "approved",
            expires_on: Any = None, decided_on: Any = None,
            identifiable_use: bool = False) -> Any:
    import datetime as dt

    from studies.ethics import service as ethics

    return ethics.record_approval(
        session, ledger, actor=SETUP, study_code=study.code,
        data=ApprovalIn(protocol_version=protocol_version, committee_id=committee.id,
                               reference=f"EC-{protocol_version}-{decision[:3]}",
                               decision=decision,
                               decided_on=decided_on or dt.date.today() - dt.timedelta(days=1),
                               expires_on=expires_on,
                               conditions="Report SAEs in 24 h"
                               if decision == "approved_with_conditions" else None,
                               identifiable_use=identifiable_use))


def make_subject(session: Session, study: Study, code: str = "S01-7Q4K2") -> Subject:
    """A subject row made directly (enrolment itself belongs to studies.subjects)."""
    from sqlalchemy import select

    site = session.execute(select(Site).where(Site.study_id == study.id)).scalars().first()
    assert site is not None
    subject = Subject(study_id=study.id, site_id=site.id, code=code, enrolled_by="test")
    session.add(subject)
    session.flush()
    return subject

# ── Subjects and the code index (issue 4) ───────────────────────────────────────────────────

import datetime as dt  # noqa: E402

from studies.subjects import service as subjects_service  # noqa: E402
from studies.subjects.crypto import CodeIndexKeys  # noqa: E402
from studies.subjects.identity import compose_resident_id, validate_identity  # noqa: E402


def make_active_study(session: Session, code: str = "CI-2026-01", *,
                      sites: tuple[str, ...] = ("S01",),
                      status: str = "active",
                      ledger: Ledger | None = None) -> tuple[Study, list[Site]]:
    """A study open for enrolment, set up as the rules require: registered (protocol 1.0 and
    ``sites``), approved by an ethics committee (made for it) yesterday, with consent form 1.0
    (informed). ``status="closed"`` closes it afterwards."""
    from sqlalchemy import select

    from studies.consent import service as consent_service

    ledger = ledger or _factory_ledger()
    study = make_study(session, ledger, code, sites=sites)
    committee = make_committee(session, ledger, name=f"Ethics Committee of {code}")
    approval = approve(session, ledger, study, committee)
    consent_service.add_consent_form(session, ledger, actor=SETUP, study_code=code,
                                     data=ConsentFormIn(
                                         version="1.0", consent_type="informed",
                                         text_zh="我自愿参加本研究。",
                                         text_en="I agree to take part.",
                                         approval_id=approval.id))
    if status != study.status:
        study.status = status
        session.flush()
    made = list(session.execute(select(Site).where(Site.study_id == study.id)
                                .order_by(Site.code)).scalars())
    return study, made


def _factory_ledger() -> Ledger:
    """A ledger for set-up by a factory that is not given one (its signer would only sign
    checkpoints, which it never reaches)."""
    from nacl.signing import SigningKey

    from audit_trail.service import CheckpointSigner

    return Ledger(signer=CheckpointSigner(origin="factory", key=SigningKey.generate()),
                  checkpoint_every=10**9)


def consent_to(session: Session, study: Study, *, consent_type: str = "informed",
               scopes: tuple[str, ...] = ("study",), given_at: dt.datetime | None = None,
               **overrides: Any) -> Any:
    """A valid consent to ``study``'s newest consent form of ``consent_type`` (as enrolment
    takes it), or, with ``consent_type="waiver"``, coverage by ``waiver_id=``."""
    from sqlalchemy import select

    from studies.consent.models import ConsentForm
    from studies.consent.schemas import ConsentIn

    values: dict[str, Any] = dict(consent_type=consent_type, scopes=list(scopes),
                                  given_at=given_at or dt.datetime.now(dt.UTC))
    if consent_type != "waiver" and "form_id" not in overrides:
        form = session.execute(select(ConsentForm).where(
            ConsentForm.study_id == study.id, ConsentForm.consent_type == consent_type)
            .order_by(ConsentForm.number.desc())).scalars().first()
        assert form is not None, "the study has no consent form of this type"
        values["form_id"] = form.id
    values.update(overrides)
    return ConsentIn(**values)


def synthetic_identity(n: int, **overrides: str) -> dict[str, str]:
    """Identity fields of a made-up person (valid ID number and mobile phone)."""
    birth = dt.date(1960 + n % 40, 1 + n % 12, 1 + n % 28)
    fields = {"name": f"测试者{n:03d}号",
              "resident_id": compose_resident_id("110105", birth, n % 1000),
              "phone": f"139{n:08d}", "medical_record_number": f"MRN-T{n:06d}",
              "address": f"北京市朝阳区测试路{n}号"}
    fields.update(overrides)
    return fields


def enrol_subject(session: Session, ledger: Ledger, keys: CodeIndexKeys, *, actor: Actor,
                  study: Study, site: Site, n: int = 1, consent: Any = None,
                  **overrides: str) -> Subject:
    """Enrol synthetic person ``n`` with a valid consent to the study's consent form (unless
    ``consent`` is given)."""
    return subjects_service.enrol(
        session, ledger, actor=actor, keys=keys, study_id=study.id, site_id=site.id,
        identity=validate_identity(**synthetic_identity(n, **overrides)),
        consent=consent if consent is not None else consent_to(session, study))


# ── Data entry (issue 5) ─────────────────────────────────────────────────────────────────────

ENTRY_DICTIONARY = Path(__file__).resolve().parent / "data" / "redcap_dictionary.csv"


def make_entry_study(session: Session, ledger: Ledger, code: str = "ENT-2026-01", *,
                     subjects: tuple[str, ...] = ("S01-ENT01",), allow_incomplete: bool = False,
                     sites: tuple[str, ...] = ("S01",),
                     identifiable_use: bool = False) -> dict[str, Any]:
    """A study ready for data entry: approved protocol (``identifiable_use``: the approval also
    covers identifiable use, as a RIF extract needs), the REDCap test dictionary's forms,
    events ``baseline`` (demographics, vital_signs, labs) and repeating ``followup``
    (vital_signs), subjects with informed consent."""
    from studies.consent import service as consent
    from studies.entry import service as entry
    from studies.forms import service as forms

    study = make_study(session, ledger, code, sites=sites)
    committee = make_committee(session, ledger, name=f"Ethics committee for {code}")
    approval = approve(session, ledger, study, committee, identifiable_use=identifiable_use)
    forms.import_redcap(session, ledger, actor=SETUP, study_code=code,
                        text=ENTRY_DICTIONARY.read_text(encoding="utf-8"))
    forms.define_event(session, ledger, actor=SETUP, study_code=code, data=EventIn(
        name="baseline", label_zh="基线", label_en="Baseline",
        form_names=["demographics", "vital_signs", "labs"]))
    forms.define_event(session, ledger, actor=SETUP, study_code=code, data=EventIn(
        name="followup", label_zh="随访", label_en="Follow-up", repeating=True,
        form_names=["vital_signs"]))
    cform = consent.add_consent_form(session, ledger, actor=SETUP, study_code=code,
                                     data=ConsentFormIn(
                                         version="1.0", consent_type="informed",
                                         text_zh="知情同意书", text_en="Consent",
                                         approval_id=approval.id))
    made = []
    for n, scode in enumerate(subjects):
        s = make_subject(session, study, scode)
        if len(sites) > 1:
            from sqlalchemy import select as _sel

            site = session.execute(_sel(Site).where(
                Site.study_id == study.id, Site.code == sites[n % len(sites)])).scalar_one()
            s.site_id = site.id
            session.flush()
        consent.record_consent(session, ledger, actor=SETUP, study_code=code, subject_id=s.id,
                               data=ConsentIn(
                                   consent_type="informed", form_id=cform.id,
                                   scopes=["study", "deidentified_future"],
                                   given_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        made.append(s)
    if allow_incomplete:
        entry.update_settings(session, ledger, actor=SETUP, study_code=code,
                              data=SettingsIn(allow_incomplete=True))
    return {"study": study, "subjects": made, "approval": approval, "consent_form": cform}


DEMOGRAPHICS = {"dob": "1980-05-01", "sex": "1", "ethnicity": "1"}
VITALS = {"visit_date": "2026-05-01", "height": "175", "weight": "70.0", "sbp": "120",
          "smoker": "0"}


# ── Extracts (issue 9) ───────────────────────────────────────────────────────────────────────

def age_keys(tmp: Path) -> tuple[Path, str]:
    """A recipient's key pair made by the stock ``age-keygen``: (identity file, public key)."""
    import subprocess

    ident = tmp / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(line.split(": ", 1)[1] for line in ident.read_text().splitlines()
               if line.startswith("# public key:"))
    return ident, pub


def publish_all(session: Session, ledger: Ledger, code: str) -> None:
    """Publish every draft form of a study, its proposed classifications accepted as they
    stand and untranslated calculations dropped (what the study administrator settles
    before publishing; an extract names only fields of published forms)."""
    from studies.forms import service as forms

    study = session.execute(select(Study).where(Study.code == code)).scalar_one()
    for form in forms.forms_of(session, study.id):
        v = forms.current_version(session, form)
        if v is None or v.status != "draft":
            continue
        for i in forms.items_of(session, v.id):
            i.classification_confirmed = True
            if i.logic_problem:
                i.calc = i.logic_problem = None
        session.flush()
        forms.publish_version(session, ledger, actor=SETUP, study_code=code,
                              form_name=form.name, number=v.number)


HOSPITAL_ORG = "hospital"
"""The hospital itself, the only recipient of a RIF (§11.3.4.6)."""
EXAMPLE_PHARMA = "example-pharma"
"""A domestic company (China), the usual recipient organisation of the tests' sponsors."""


def recipient_orgs(session: Session, ledger: Ledger) -> None:
    """Register the hospital itself and Example Pharma, both in China (safe to call twice)."""
    from studies.accounts import organisations as orgs
    from studies.accounts.models import Organisation

    for code, zh, en, kind in ((HOSPITAL_ORG, "本院", "The Hospital", orgs.OrgKind.HOSPITAL),
                               (EXAMPLE_PHARMA, "示例药企", "Example Pharma",
                                orgs.OrgKind.COMPANY)):
        if session.query(Organisation).filter_by(code=code).first() is None:
            orgs.register_organisation(session, ledger, actor=SYSTEM, code=code, name_zh=zh,
                                       name_en=en, kind=kind, country="CN")


def security_committee(session: Session, ledger: Ledger, n: int = 3) -> list[User]:
    """A data security committee of ``n`` members for every study (at least three decide,
    Appendix C), usernames ``committee1`` …"""
    return [make_user(session, ledger, f"committee{i + 1}", Role.COMMITTEE_MEMBER)
            for i in range(n)]


def affiliate(session: Session, ledger: Ledger, username: str, org: str) -> None:
    from studies.accounts import organisations as orgs

    orgs.affiliate(session, ledger, actor=SYSTEM, username=username, organisation=org)


def person(session: Session, ledger: Ledger, name: str, role: Role,
           org: str | None = None) -> Actor:
    """A user with one role (affiliated to ``org`` if given), logged in without a second factor."""
    make_user(session, ledger, name, role)
    if org:
        affiliate(session, ledger, name, org)
    _, actor = accounts.login(session, ledger, username=name, password=PASSWORD,
                              client="10.0.0.9", config=AuthConfig(second_factor_enforced=False))
    return actor


def make_extract_study(session: Session, ledger: Ledger, code: str = "EXT-2026-01", *,
                       n: int = 30, identifiable: tuple[int, ...] = (),
                       cross_border: tuple[int, ...] = (),
                       with_data: bool = True, prefix: str = "S01-X") -> dict[str, Any]:
    """A study with ``n`` subjects whose demographics and labs are entered; subjects listed in
    ``identifiable`` / ``cross_border`` (by index) also consented to those scopes; subject
    codes are ``prefix`` and a number (another prefix for a second study). Its ethics
    approval (``approval``) covers identifiable use of the current protocol version."""
    from studies.consent import service as consent
    from studies.entry import service as entry

    codes = tuple(f"{prefix}{i:04d}" for i in range(n))
    recipient_orgs(session, ledger)
    made = make_entry_study(session, ledger, code, subjects=codes, allow_incomplete=True,
                            identifiable_use=True)
    now = dt.datetime.now(dt.UTC)
    wider = consent.add_consent_form(session, ledger, actor=SETUP, study_code=code,
                                     data=ConsentFormIn(
                                         version="1.1", consent_type="informed",
                                         text_zh="知情同意书（含可标识使用、出境）",
                                         text_en="Consent incl. identifiable use, transfer",
                                         approval_id=made["approval"].id))
    for i, s in enumerate(made["subjects"]):
        extra = (["identifiable"] if i in identifiable else []) + (
            ["cross_border"] if i in cross_border else [])
        if extra:
            consent.record_consent(session, ledger, actor=SETUP, study_code=code,
                                   subject_id=s.id, data=ConsentIn(
                                       consent_type="informed",
                                       form_id=wider.id,
                                       scopes=["study", "deidentified_future", *extra],
                                       given_at=now - dt.timedelta(minutes=30)))
        if not with_data:
            continue
        entry.save_form(session, ledger, actor=SETUP, study_code=code, subject_code=s.code,
                        event_name="baseline", form_name="demographics",
                        data=SaveIn(base_version=0, values={
                            "dob": f"{1950 + (i * 7) % 40}-0{1 + i % 9}-1{i % 9}",
                            "sex": str(1 + i % 2), "postcode": f"10008{i % 3}",
                            "ethnicity": "1" if i % 4 else "2",
                            **({"pregnant": "0"} if i % 2 else {})}))
        entry.save_form(session, ledger, actor=SETUP, study_code=code, subject_code=s.code,
                        event_name="baseline", form_name="labs",
                        data=SaveIn(base_version=0, incomplete=False, values={
                            "hbsag": str(i % 2), "hba1c": f"{5 + (i % 30) / 10:.1f}",
                            "lab_comment": "=HYPERLINK(\"x\")" if i == 0 else f"ok {i}"}))
    publish_all(session, ledger, code)
    made["codes"] = codes
    return made

# ── Lock / unlock, randomisation (issue 7) ──────────────────────────────────────────────────

LOOSE_AUTH = strict_auth(second_factor_enforced=False)


def login_as(session: Session, ledger: Ledger, username: str, *roles: Role, study: str,
             config: AuthConfig = LOOSE_AUTH) -> Actor:
    """A user holding ``roles`` on ``study`` with an interactive session (so they can sign)."""
    make_user(session, ledger, username, *roles, study=study)
    _, actor = accounts.login(session, ledger, username=username, password=PASSWORD,
                              client="10.0.0.7", config=config)
    return actor


def make_lock_team(session: Session, ledger: Ledger, study: str) -> dict[str, Actor]:
    """Data manager, PI, statistician, investigator and monitor of ``study``, logged in."""
    return {"dm": login_as(session, ledger, "dm", Role.DATA_MANAGER, study=study),
            "pi": login_as(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study=study),
            "stat": login_as(session, ledger, "stat", Role.STATISTICIAN, study=study),
            "inv": login_as(session, ledger, "inv", Role.INVESTIGATOR, study=study),
            "mon": login_as(session, ledger, "mon", Role.MONITOR, study=study)}


def approved_export(session: Session, study_code: str, actor: Any = None, *,
                    raw_quasi_identifiers: bool = True, forms: list[str] | None = None) -> Any:
    """An approved export request of ``actor`` (an Actor or a User; SETUP by default) for the
    study, written
    directly, for tests of what an export holds (the approval's own workflow, with its
    signatures, is tested in tests/studies/test_export_approval.py)."""
    import datetime as dt

    from studies.entry.models import ExportRequest
    from studies.registry import service as registry

    actor = actor or SETUP
    now = dt.datetime.now(dt.UTC)
    row = ExportRequest(study_id=registry.get_study(session, study_code).id,
                        requester_id=getattr(actor, "user_id", None) or actor.id,
                        requested_by=actor.username,
                        requester_role="principal_investigator", forms=forms,
                        raw_quasi_identifiers=raw_quasi_identifiers, purpose="analysis",
                        valid_days=30, status="approved", decided_by="dso",
                        decided_role="security_officer", decided_at=now,
                        expires_at=now + dt.timedelta(days=30))
    session.add(row)
    session.flush()
    return row
