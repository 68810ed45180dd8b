"""Demo data for trying the system: one account per role, with printed passwords.

Safe to run twice: existing accounts are kept and printed again. Refused in production.
Privileged roles need the second factor at every login: their demo accounts are enrolled with
a fixed, printed TOTP secret (demo only) so that a person can add it to an authenticator app or
compute the current code with the printed command.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session
from sqlmodel import col

from edc.state import AppState
from studies.accounts import service as accounts
from studies.accounts import totp
from studies.consent.schemas import ConsentFormIn, ConsentIn
from studies.entry.schemas import QueryOpenIn, SaveIn, SdvIn
from studies.ethics.schemas import ApprovalIn, CommitteeIn, MemberIn
from studies.extracts.schemas import RequestIn
from studies.forms.schemas import EventIn, ItemUpdate
from studies.kernel.actor import SYSTEM, Actor
from studies.kernel.roles import PRIVILEGED, ROLE_LABELS, Role
from studies.randomisation.schemas import SchemeIn
from studies.registry.schemas import ProtocolIn, SiteIn, StudyIn

DEMO_STUDY = "DEMO-2026-01"


def demo_password(username: str) -> str:
    # not containing the username (the password policy refuses that)
    return f"Demo-{hashlib.sha256(username.encode()).hexdigest()[:10]}-2026"


def demo_totp_secret(username: str) -> str:
    """A fixed TOTP secret per demo account (never used outside the demo)."""
    return base64.b32encode(hashlib.sha256(b"edc-demo-totp:" + username.encode()).digest()[:20]
                            ).decode()


DEMO_COMMITTEE_EXTRA = 2
"""Committee members besides ``demo.committee_member``: a data security committee needs at
least three (Appendix C), so the demo's extract request can be voted on."""


def demo_accounts() -> list[tuple[str, str, Role]]:
    """One account per role, and three data security committee members."""
    out = [(f"demo.{role.value}", ROLE_LABELS[role].message + " (demo)", role)
           for role in Role]
    label = ROLE_LABELS[Role.COMMITTEE_MEMBER].message
    out += [(f"demo.{Role.COMMITTEE_MEMBER.value}{n}", f"{label} {n} (demo)",
             Role.COMMITTEE_MEMBER) for n in range(2, 2 + DEMO_COMMITTEE_EXTRA)]
    return out


def load(session: Session, state: AppState) -> list[str]:
    lines = ["Demo accounts (username / password / role):"]
    auth = state.auth
    enrolled = []
    for username, name, role in demo_accounts():
        user = accounts.find_user(session, username)
        if user is None:
            study = None if role in (Role.ADMIN, Role.AUDITOR, Role.CUSTODIAN,
                                     Role.SECURITY_OFFICER, Role.COMMITTEE_MEMBER,
                                     Role.ETHICS_MEMBER) else DEMO_STUDY
            user = accounts.create_user(session, state.ledger, actor=SYSTEM,
                                        username=username, display_name=name,
                                        password=demo_password(username), roles=[(role, study)],
                                        must_change_password=False, config=auth)
        if role in PRIVILEGED:
            if not user.totp_enabled:
                user.totp_secret = totp.seal(demo_totp_secret(username), auth)
                user.totp_enabled = True
                session.flush()
            enrolled.append(username)
        lines.append(f"  {username:32} {demo_password(username):40} {ROLE_LABELS[role]}"
                     + ("  [TOTP]" if role in PRIVILEGED else ""))
    if enrolled:
        lines += ["",
                  "Accounts marked [TOTP] need a second-factor code at login (privileged roles).",
                  "Add the secret to an authenticator app, or print the current code with:",
                  "  .venv/bin/python -c \"import pyotp,sys; print(pyotp.TOTP(sys.argv[1]).now())\""
                  " SECRET"]
        lines += [f"  {u:32} TOTP secret {demo_totp_secret(u)}" for u in enrolled]
    lines += load_study(session, state)
    lines += load_subjects(session, state)
    lines += load_entry(session, state)
    lines += load_extract_request(session, state)
    lines += load_randomisation(session, state)
    return lines


# ---- the demo study: protocol, sites, ethics committee, approval, consent form, forms -----------

DEMO_DICTIONARY = Path(__file__).parent / "demo_data" / "redcap_dictionary.csv"
DEMO_CONSENT_ZH = (
    "您被邀请参加“高血压患者降压治疗的真实世界研究”。\n"
    "您在研究中的个人资料均属保密，数据库中以受试者代码代替您的姓名。\n"
    "伦理委员会、药品监督管理部门或申办者在工作需要时，可按规定查阅您的研究资料。\n"
    "您可以随时撤回同意，撤回后不再录入您的新数据。")
DEMO_CONSENT_EN = (
    "You are invited to take part in a real-world study of antihypertensive treatment.\n"
    "Your personal information is kept confidential; the database uses a subject code instead "
    "of your name.\n"
    "The ethics committee, the drug regulator or the sponsor may consult your study records "
    "when their work requires it.\n"
    "You may withdraw at any time; after withdrawal no new data about you is entered.")


def load_study(session: Session, state: AppState) -> list[str]:
    """The demo study DEMO-2026-01 set up end to end. Safe to run twice (skipped if present)."""
    import datetime as dt

    from sqlalchemy import select

    from studies.consent import service as consent
    from studies.ethics import service as ethics
    from studies.ethics.models import EthicsCommittee
    from studies.forms import service as forms
    from studies.kernel.actor import Actor
    from studies.registry import service as registry
    from studies.registry.models import Study

    summary = [f"Demo study {DEMO_STUDY}: 2 sites, ethics approval EC-2026-001 by a committee "
               "of 7 meeting §11.3.2 e, consent form 1.0, forms demographics, vital_signs and "
               "adverse_events published (see /studies)"]
    if session.execute(select(col(Study.id)).where(col(Study.code) == DEMO_STUDY)).first():
        return summary
    actor = Actor(user_id="demo", username="demo.setup", display_name="Demo set-up",
                  grants=((Role.PRINCIPAL_INVESTIGATOR, None), (Role.ETHICS_MEMBER, None)),
                  client="cli")
    ledger = state.ledger
    today = dt.datetime.now(dt.UTC).date()
    registry.register_study(session, ledger, actor=actor, data=StudyIn(
        code=DEMO_STUDY, title_zh="高血压患者降压治疗的真实世界研究",
        title_en="Real-world study of antihypertensive treatment", sponsor="示例制药 / Demo Pharma",
        design="prospective", real_world_data=True, post_market=True,
        protocol=ProtocolIn(
            label="1.0", version_date=today - dt.timedelta(days=60),
            purpose="评估 A 药在真实世界中的降压效果 / Effect of drug A on blood pressure",
            legal_basis="受试者知情同意与伦理委员会批准 / Informed consent and ethics approval",
            research_content="前瞻性队列，随访 12 个月 / Prospective cohort, 12-month follow-up",
            data_types="人口学、生命体征、不良事件 / Demographics, vital signs, adverse events",
            planned_subjects=300, planned_records=3600,
            expected_results="收缩压平均下降 10 mmHg / Mean SBP reduction of 10 mmHg",
            data_sharing_plan="去标识化数据在论文发表后按申请共享 / De-identified data shared "
                              "on request after publication"),
        sites=[SiteIn(code="S01", hospital="示例市第一人民医院 / First People's Hospital",
                               department="心内科 / Cardiology", medical_group="高血压组"),
               SiteIn(code="S02", hospital="示例市中心医院 / Central Hospital",
                               department="全科 / General practice", medical_group=None)]))
    committee = session.execute(select(EthicsCommittee).where(
        col(EthicsCommittee.name) == "示例市第一人民医院医学伦理委员会")).scalar_one_or_none()
    if committee is None:
        committee = ethics.create_committee(session, ledger, actor=actor, data=CommitteeIn(
            name="示例市第一人民医院医学伦理委员会", institution="示例市第一人民医院"))
        for name, gender, affiliation, expertise in [
                ("王医生", "male", "internal", "心血管内科 / Cardiology"),
                ("李医生", "female", "internal", "临床药理 / Clinical pharmacology"),
                ("张护士长", "female", "internal", "护理 / Nursing"),
                ("陈教授", "male", "external", "医学伦理学 / Medical ethics"),
                ("刘律师", "female", "external", "法学 / Law"),
                ("赵研究员", "male", "external", "社会学 / Sociology"),
                ("孙女士", "female", "external", "社区代表 / Lay member"),
        ]:
            ethics.add_member(session, ledger, actor=actor, committee_id=committee.id,
                              data=MemberIn(name=name, gender=gender,
                                                   affiliation=affiliation, expertise=expertise))
    approval = ethics.record_approval(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                      data=ApprovalIn(
                                          protocol_version=1, committee_id=committee.id,
                                          reference="EC-2026-001", decision="approved",
                                          decided_on=today - dt.timedelta(days=30),
                                          expires_on=today + dt.timedelta(days=335)))
    consent.add_consent_form(session, ledger, actor=actor, study_code=DEMO_STUDY,
                             data=ConsentFormIn(
                                 version="1.0", consent_type="informed",
                                 text_zh=DEMO_CONSENT_ZH, text_en=DEMO_CONSENT_EN,
                                 approval_id=approval.id))
    result = forms.import_redcap(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                 text=DEMO_DICTIONARY.read_text(encoding="utf-8"))
    study = registry.get_study(session, DEMO_STUDY)
    for f in forms.forms_of(session, study.id):
        v = forms.current_version(session, f)
        assert v is not None
        for item in forms.items_of(session, v.id):
            if not item.classification_confirmed:
                forms.update_item(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                  form_name=f.name, number=v.number, item_name=item.name,
                                  data=ItemUpdate(confirm_classification=True))
        forms.publish_version(session, ledger, actor=actor, study_code=DEMO_STUDY,
                              form_name=f.name, number=v.number)
    forms.define_event(session, ledger, actor=actor, study_code=DEMO_STUDY, data=EventIn(
        name="baseline", label_zh="基线", label_en="Baseline",
        form_names=["demographics", "vital_signs"]))
    forms.define_event(session, ledger, actor=actor, study_code=DEMO_STUDY, data=EventIn(
        name="month_3", label_zh="第 3 个月", label_en="Month 3",
        form_names=["vital_signs", "adverse_events"]))
    assert len(result.forms) == 3
    return summary


# ── Subjects with synthetic identities (issue 4) ────────────────────────────────────────────

DEMO_PEOPLE = [  # made-up people; the ID numbers are well formed but belong to no one
    ("演示患者甲", "110105", (1962, 3, 14), 11, "13900000001", "DEMO-MRN-0001"),
    ("演示患者乙", "310104", (1975, 8, 2), 22, "13900000002", "DEMO-MRN-0002"),
    ("演示患者丙", "440106", (1988, 12, 30), 33, "13900000003", "DEMO-MRN-0003"),
]


_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许"
_GIVEN = "明华强丽静敏军伟芳娜秀英"
DEMO_COHORT_SIZE = 63


def demo_cohort() -> list[tuple[str, str, tuple[int, int, int], int, str, str]]:
    """The demo people (:data:`DEMO_PEOPLE`) and a made-up cohort after them: 66 in all, so that
    a limited data set of the demo study reaches k = 5 (names begin with 演示, the ID numbers
    are well formed but belong to no one)."""
    out = list(DEMO_PEOPLE)
    for i in range(DEMO_COHORT_SIZE):
        name = f"演示{_SURNAMES[i % len(_SURNAMES)]}{_GIVEN[(i // 3) % len(_GIVEN)]}"
        birth = (1945 + (i * 7) % 50, 1 + i % 12, 1 + (i * 5) % 28)
        out.append((name, "110105", birth, 100 + i, f"139{10000000 + i:08d}",
                    f"DEMO-MRN-{1000 + i:04d}"))
    return out


def load_subjects(session: Session, state: AppState) -> list[str]:
    """Enrol the demo people in the demo study, each with informed consent to the study's
    consent form (enrolment takes the consent in the same step, §11.3.4.2). Safe to run twice:
    a person already enrolled is skipped (the blind index finds them), nothing is written."""
    import datetime as dt

    from sqlalchemy import select

    from studies.consent.models import ConsentForm
    from studies.kernel.errors import Conflict, DomainError
    from studies.registry.models import Site, Study
    from studies.subjects import service as subjects
    from studies.subjects.identity import compose_resident_id, validate_identity

    study = session.execute(select(Study).where(col(Study.code) == DEMO_STUDY)).scalar()
    sites = list(session.execute(select(Site).where(col(Site.study_id) == study.id)
                                 .order_by(col(Site.code))).scalars()) if study else []
    site = sites[0] if sites else None
    form = study and session.execute(select(ConsentForm).where(
        col(ConsentForm.study_id) == study.id, col(ConsentForm.consent_type) == "informed")
        .order_by(col(ConsentForm.number).desc())).scalars().first()
    if study is None or site is None or form is None:
        return [f"Demo subjects not enrolled: {DEMO_STUDY} has no site or consent form"]
    user = accounts.find_user(session, "demo.investigator")
    assert user is not None
    investigator = accounts.actor_for(session, user, client="demo")
    keys = state.keys.code_index_keys()
    for n, (name, region, (y, m, d), seq, phone, mrn) in enumerate(demo_cohort()):
        site = sites[0] if n < len(DEMO_PEOPLE) else sites[n % len(sites)]
        identity = validate_identity(
            name=name, resident_id=compose_resident_id(region, dt.date(y, m, d), seq),
            phone=phone, medical_record_number=mrn, address="演示市演示路 1 号")
        signed = ConsentIn(consent_type="informed", form_id=form.id,
                                   scopes=["study", "deidentified_future"],
                                   given_at=dt.datetime.now(dt.UTC))
        try:
            with session.begin_nested():
                subjects.enrol(session, state.ledger, actor=investigator, keys=keys,
                               study_id=study.id, site_id=site.id, identity=identity,
                               consent=signed)
        except Conflict:
            continue  # enrolled by an earlier run
        except DomainError as exc:  # e.g. the study lacks a current ethics approval
            return [f"Demo subjects not enrolled: {exc.message}"]
    rows = subjects.list_subjects(session, actor=investigator, study_code=DEMO_STUDY)
    by_site = {s.code: sum(1 for r in rows if r.site == s.code) for s in sites}
    return [f"Demo subjects in {DEMO_STUDY}: {len(rows)} enrolled with consent to form "
            f"{cast(ConsentForm, form).version} ("
            + ", ".join(f"{c}: {k}" for c, k in by_site.items())
            + "; synthetic identities; custodian: demo.custodian at /code-index), e.g. "
            + ", ".join(r.code for r in rows[:3])]


# ── Data entry, SDV and queries (issue 5) ────────────────────────────────────────────────────

DEMO_SETUP_ROLES = ("principal_investigator", "ethics_member", "investigator")


def _setup_actor() -> Actor:
    return Actor(user_id="demo-setup", username="demo.setup",
                          display_name="Demo setup", client="demo",
                          grants=tuple((Role(r), None) for r in DEMO_SETUP_ROLES))


def load_entry(session: Session, state: AppState) -> list[str]:
    """Consent for the demo subjects, then (once) entered and corrected data, a verified form
    and an open query. Safe to run twice: nothing is entered when records exist."""
    import datetime as dt

    from sqlalchemy import func, select

    from studies.consent import service as consent
    from studies.entry import monitoring
    from studies.entry import service as entry
    from studies.entry.models import DataQuery, FormRecord
    from studies.registry.models import Study
    from studies.subjects.models import Subject

    study = session.execute(select(Study).where(col(Study.code) == DEMO_STUDY)).scalar()
    if study is None:
        return []
    actor, ledger = _setup_actor(), state.ledger
    codes = list(session.execute(select(col(Subject.code), col(Subject.id)).where(
        col(Subject.study_id) == study.id).order_by(col(Subject.enrolled_at), col(Subject.code))))
    forms_ = consent.consent_forms(session, study.id)
    for _code, sid in codes:
        if forms_ and not consent.records_of(session, sid):
            consent.record_consent(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                   subject_id=sid, data=ConsentIn(
                                       consent_type="informed", form_id=forms_[0].id,
                                       scopes=["study", "deidentified_future"],
                                       given_at=dt.datetime.now(dt.UTC)
                                       - dt.timedelta(minutes=5)))
    has_records = session.execute(select(col(FormRecord.id)).where(
        col(FormRecord.study_id) == study.id)).first() is not None
    inv_user = accounts.find_user(session, "demo.investigator")
    mon_user = accounts.find_user(session, "demo.monitor")
    if codes and not has_records and inv_user and mon_user:
        inv = accounts.actor_for(session, inv_user, client="demo")
        mon = accounts.actor_for(session, mon_user, client="demo")
        today = dt.date.today().isoformat()
        for n, (code, _sid) in enumerate(codes[:2]):
            vitals: dict[str, str | int | float | bool | list[str] | None] = {
                "visit_date": today, "height": str(165 + 5 * n), "weight": "68.5",
                "sbp": str(118 + 6 * n), "dbp": str(76 + 2 * n), "smoker": "0"}
            entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                            subject_code=code, event_name="baseline", form_name="vital_signs",
                            data=SaveIn(base_version=0, values=vitals))
            entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                            subject_code=code, event_name="baseline", form_name="demographics",
                            data=SaveIn(base_version=0, values={"birth_year": "1962",
                                                                      "sex": "1"}))
        first, second = codes[0][0], codes[min(1, len(codes) - 1)][0]
        entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                        subject_code=first, event_name="baseline", form_name="demographics",
                        data=SaveIn(base_version=1, values={"birth_year": "1963",
                                                                  "sex": "1"},
                                          reasons={"birth_year": "transcription_error"}))
        _enter_cohort(session, state, inv, codes)
        monitoring.verify(session, ledger, actor=mon, study_code=DEMO_STUDY,
                          data=SdvIn(subject=first, event="baseline",
                                                form="vital_signs"))
        monitoring.open_query(session, ledger, actor=mon, study_code=DEMO_STUDY,
                              data=QueryOpenIn(
                                  subject=second, event="baseline", form="vital_signs",
                                  item="sbp", text="原始病历为 126，请核实 / Source shows "
                                                   "126, please check"))
    n_rec = session.execute(select(func.count()).select_from(FormRecord).where(
        col(FormRecord.study_id) == study.id)).scalar()
    n_q = session.execute(select(func.count()).select_from(DataQuery).where(
        col(DataQuery.study_id) == study.id, col(DataQuery.status) != "closed")).scalar()
    if not n_rec:
        return []
    return [f"Demo data entry in {DEMO_STUDY}: {n_rec} form records, {n_q} open query(ies) "
            f"(investigator: /studies/{DEMO_STUDY}/entry, monitor: "
            f"/studies/{DEMO_STUDY}/monitor)"]



def _enter_cohort(session: Session, state: AppState, inv: Actor,
                  codes: list[Any]) -> None:
    """Baseline data for every subject after the first two, and the month-3 visit (vital
    signs, adverse events) for everyone: enough rows for an LDS at k = 5. Some adverse-event
    terms name the subject, as people type them; an extract scrubs them."""
    import datetime as dt

    from sqlalchemy import select

    from studies.entry import service as entry
    from studies.subjects.crypto import decrypt_identity
    from studies.subjects.models import CodeIndexEntry

    today = dt.date.today()
    people = demo_cohort()
    keys = state.keys.code_index_keys()
    named = {}  # code -> (name, phone), read back from the code index (demo only)
    for e in session.execute(select(CodeIndexEntry)).scalars():
        ident = decrypt_identity(code=e.code, kid=e.key_id, nonce=e.nonce,
                                 ciphertext=e.ciphertext, keys=keys)
        named[e.code] = (ident.name, ident.phone or "")
    for n, (code, _sid) in enumerate(codes):
        def save(event: str, form: str, values: dict[str, Any], code: str = code) -> None:
            entry.save_form(session, state.ledger, actor=inv, study_code=DEMO_STUDY,
                            subject_code=code, event_name=event, form_name=form,
                            data=SaveIn(base_version=0, values=values))
        if n >= 2:
            birth = people[n][2] if n < len(people) else (1960, 1, 1)
            sex = str(1 + n % 2)
            save("baseline", "demographics", {"birth_year": str(birth[0]), "sex": sex,
                                              **({"pregnant": "0"} if sex == "2" else {})})
            save("baseline", "vital_signs", {
                "visit_date": (today - dt.timedelta(days=90 + n % 20)).isoformat(),
                "height": str(155 + n % 30), "weight": f"{55 + n % 35}.{n % 10}",
                "sbp": str(128 + n % 40), "dbp": str(78 + n % 20), "smoker": "0"})
        save("month_3", "vital_signs", {
            "visit_date": (today - dt.timedelta(days=n % 20)).isoformat(),
            "height": str(155 + n % 30), "weight": f"{54 + n % 35}.{n % 10}",
            "sbp": str(118 + n % 35), "dbp": str(74 + n % 18), "smoker": "0"})
        name, phone = named.get(code, ("", ""))
        ae = n % 4 == 0
        save("month_3", "adverse_events", {"ae_any": "1" if ae else "0", **({
            "ae_term": f"头晕（{name}自述，电话{phone}）" if n % 8 == 0 and name
            else "头痛", "ae_grade": "1"} if ae else {})})


# ── A sponsor's extract request (issue 9) ───────────────────────────────────────────────────

def load_extract_request(session: Session, state: AppState) -> list[str]:
    """Pending requests by demo.sponsor (:data:`DEMO_EXTRACTS`: an LDS and a PUF) for the demo
    study's non-identifying fields, to an age key written to
    ``<extract dir>/demo-sponsor.key`` (demo only). Skipped while the demo study has no forms,
    and when the requests exist already (safe to run twice). First the recipient
    organisations: the hospital itself (``demo-hospital``) and the sponsor's company
    (``demo-pharma``, in China), which demo.sponsor belongs to."""
    import datetime as dt
    import os

    import pyrage
    from sqlalchemy import select

    from studies.accounts import organisations as orgs
    from studies.accounts.models import Organisation
    from studies.extracts import service as ex
    from studies.extracts.models import ExtractRequest
    from studies.kernel.errors import DomainError
    from studies.registry.models import Study

    study = session.execute(select(Study).where(col(Study.code) == DEMO_STUDY)).scalar()
    user = accounts.find_user(session, "demo.sponsor")
    if study is None or user is None:
        return []
    for code, zh, en, kind in (
            ("demo-hospital", "示例医院", "Demo Hospital", orgs.OrgKind.HOSPITAL),
            ("demo-pharma", "示例制药", "Demo Pharma", orgs.OrgKind.COMPANY)):
        if session.execute(select(Organisation).where(col(Organisation.code) == code)).scalar() \
                is None and (kind is not orgs.OrgKind.HOSPITAL or orgs.hospital(session) is None):
            orgs.register_organisation(session, state.ledger, actor=SYSTEM, code=code,
                                       name_zh=zh, name_en=en, kind=kind, country="CN")
    if user.organisation_id is None:
        orgs.affiliate(session, state.ledger, actor=SYSTEM, username=user.username,
                       organisation="demo-pharma")
    existing = list(session.execute(select(ExtractRequest).where(
        col(ExtractRequest.study_id) == study.id,
        col(ExtractRequest.requested_by_id) == user.id)
        .order_by(col(ExtractRequest.requested_at))).scalars())
    key_file = state.settings.extract_dir / "demo-sponsor.key"
    if existing:
        return [_extract_line(r, key_file) for r in existing]
    catalogue = ex.field_catalogue(session, study.id)
    if not catalogue or all(f.startswith("identity.") for f in catalogue):
        return ["Demo extract request: skipped (the demo study has no eCRF fields yet)"]
    ident = pyrage.x25519.Identity.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"# public key: {ident.to_public()}\n{ident}\n")
    pub = next(line.split(": ", 1)[1] for line in key_file.read_text().splitlines()
               if line.startswith("# public key:"))
    sponsor = accounts.actor_for(session, user, client="demo")
    made = []
    for tier, purpose, fields in DEMO_EXTRACTS:
        try:
            with session.begin_nested():
                made.append(ex.create_request(
                    session, state.ledger, actor=sponsor, study_code=DEMO_STUDY,
                    data=RequestIn(purpose=purpose, fields=[f for f in fields if f in catalogue],
                                   tier=tier, recipient_org="demo-pharma",
                                   recipient_key=pub, use_from=dt.date.today(),
                                   use_until=dt.date.today() + dt.timedelta(days=365))))
        except DomainError as exc:
            return [f"Demo extract request not made: {exc.message}"]
    return [_extract_line(req, key_file) for req in made]


DEMO_EXTRACTS = (
    ("lds", "Demo: efficacy analysis by birth year, sex and visit",
     ["demographics.birth_year", "demographics.sex", "vital_signs.visit_date",
      "vital_signs.sbp", "vital_signs.dbp", "vital_signs.weight", "adverse_events.ae_term",
      "adverse_events.ae_grade"]),
    ("puf", "Demo: blood pressure summary by sex for the annual report",
     ["demographics.sex", "vital_signs.sbp", "vital_signs.dbp"]),
)
"""The demo sponsor's requests: an LDS (the committee votes, the sponsor signs the
data-use agreement) and a PUF (the data security officer approves)."""


def _extract_line(req: Any, key_file: Path) -> str:
    """The same line on every run (the demo must print the same thing twice)."""
    from studies.extracts.tiers import TIER_RULES

    status = req.status
    if status == "pending":
        tier = TIER_RULES[req.tier]
        status = ("pending the data security office's first review, then the committee"
                  if tier.needs_committee else "pending the data security officer")
    return (f"Demo extract request: /extracts/{req.id} ({req.tier.upper()}, {status}); "
            f"the sponsor's age key is {key_file}")



# ── Randomisation (issue 7) ───────────────────────────────────────────────────────────────────

def load_randomisation(session: Session, state: AppState) -> list[str]:
    """An open-label 1:1 permuted-block scheme (sizes 2 and 4) in the demo study, and the demo
    subjects randomised. Safe to run twice: the scheme is set once, subjects once."""
    from sqlalchemy import select

    from studies.kernel.errors import DomainError
    from studies.randomisation import service as rnd
    from studies.randomisation.models import Allocation, RandomisationScheme
    from studies.registry.models import Study
    from studies.subjects.models import Subject

    study = session.execute(select(Study).where(col(Study.code) == DEMO_STUDY)).scalar()
    stat = accounts.find_user(session, "demo.statistician")
    inv = accounts.find_user(session, "demo.investigator")
    if study is None or stat is None or inv is None:
        return []
    keys = rnd.keys_from(state.keys.deid_key)
    if session.execute(select(col(Subject.id)).where(col(Subject.study_id) == study.id,
                                                col(Subject.status) == "enrolled")).first() is None:
        return []  # nothing to randomise (e.g. the demo study has no approval yet)
    try:
        with session.begin_nested():
            if session.get(RandomisationScheme, study.id) is None:
                rnd.configure(session, state.ledger,
                              actor=accounts.actor_for(session, stat, client="demo"),
                              study_code=DEMO_STUDY, data=SchemeIn(
                                  method="blocks", arms=["X", "Placebo"], block_sizes=[2, 4]))
            done = set(session.execute(select(col(Allocation.subject_id))).scalars())
            actor = accounts.actor_for(session, inv, client="demo")
            for s in session.execute(select(Subject).where(col(Subject.study_id) == study.id)
                                     .order_by(col(Subject.enrolled_at))).scalars():
                if s.id not in done and s.status == "enrolled":
                    rnd.randomise(session, state.ledger, actor=actor, keys=keys,
                                  study_code=DEMO_STUDY, subject_code=s.code)
    except DomainError as exc:
        return [f"Demo randomisation not done: {exc.message}"]
    return [f"Demo randomisation and lock panel: /studies/{DEMO_STUDY}/randomisation, "
            f"/studies/{DEMO_STUDY}/locks (demo.data_manager)"]
