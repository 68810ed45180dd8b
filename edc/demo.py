"""Demo data for trying the system: one account per role, with printed passwords.

Safe to run twice: existing accounts are kept and printed again. Refused in production.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from edc.state import AppState
from studies.accounts import service as accounts
from studies.accounts.roles import ROLE_LABELS, Role

DEMO_STUDY = "DEMO-2026-01"


def demo_password(username: str) -> str:
    return f"Demo-{username}-2026"


def demo_accounts() -> list[tuple[str, str, Role]]:
    return [(f"demo.{role.value}", ROLE_LABELS[role].split(" / ")[1] + " (demo)", role)
            for role in Role]


def load(session: Session, state: AppState) -> list[str]:
    lines = ["Demo accounts (username / password / role):"]
    for username, name, role in demo_accounts():
        if accounts.find_user(session, username) is None:
            study = None if role in (Role.ADMIN, Role.AUDITOR, Role.CUSTODIAN,
                                     Role.SECURITY_OFFICER, Role.COMMITTEE_MEMBER,
                                     Role.ETHICS_MEMBER) else DEMO_STUDY
            accounts.create_user(session, state.ledger, actor=accounts.SYSTEM,
                                 username=username, display_name=name,
                                 password=demo_password(username), roles=[(role, study)],
                                 must_change_password=False)
        lines.append(f"  {username:32} {demo_password(username):40} {ROLE_LABELS[role]}")
    prepare_entry_study(session, state)
    lines += load_subjects(session, state)
    lines += load_entry(session, state)
    return lines


# ── Subjects with synthetic identities (issue 4) ────────────────────────────────────────────

DEMO_PEOPLE = [  # made-up people; the ID numbers are well formed but belong to no one
    ("演示患者甲", "110105", (1962, 3, 14), 11, "13900000001", "DEMO-MRN-0001"),
    ("演示患者乙", "310104", (1975, 8, 2), 22, "13900000002", "DEMO-MRN-0002"),
    ("演示患者丙", "440106", (1988, 12, 30), 33, "13900000003", "DEMO-MRN-0003"),
]


def load_subjects(session: Session, state: AppState) -> list[str]:
    """Enrol the demo people in the demo study (creating a minimal study and site only if no
    study ``DEMO-2026-01`` exists yet). Safe to run twice: a person already enrolled is
    skipped (the blind index finds them)."""
    import datetime as dt

    from sqlalchemy import select

    from studies.errors import Conflict, DomainError
    from studies.registry.models import Site, Study
    from studies.subjects import service as subjects
    from studies.subjects.identity import compose_resident_id, validate_identity

    study = session.execute(select(Study).where(Study.code == DEMO_STUDY)).scalar()
    if study is None:
        study = Study(code=DEMO_STUDY, title_zh="演示研究", title_en="Demo study")
        session.add(study)
        session.flush()
    site = session.execute(select(Site).where(Site.study_id == study.id)
                           .order_by(Site.code)).scalars().first()
    if site is None:
        site = Site(study_id=study.id, code="S01", hospital="演示医院 / Demo hospital")
        session.add(site)
        session.flush()
    user = accounts.find_user(session, "demo.investigator")
    assert user is not None
    investigator = accounts.actor_for(session, user, client="demo")
    keys = state.keys.code_index_keys()
    for name, region, (y, m, d), seq, phone, mrn in DEMO_PEOPLE:
        identity = validate_identity(
            name=name, resident_id=compose_resident_id(region, dt.date(y, m, d), seq),
            phone=phone, medical_record_number=mrn, address="演示市演示路 1 号")
        try:
            with session.begin_nested():
                subjects.enrol(session, state.ledger, actor=investigator, keys=keys,
                               study_id=study.id, site_id=site.id, identity=identity)
        except Conflict:
            continue  # enrolled by an earlier run
        except DomainError as exc:  # e.g. the study lacks a current ethics approval
            return [f"Demo subjects not enrolled: {exc.message}"]
    rows = subjects.list_subjects(session, actor=investigator, study_code=DEMO_STUDY)
    return [f"Demo subjects in {DEMO_STUDY} (synthetic identities; custodian: "
            f"demo.custodian at /code-index): " + ", ".join(r.code for r in rows)]


# ── Data entry, SDV and queries (issue 5) ────────────────────────────────────────────────────

_DICT_HEADER = ('"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
                '"Choices, Calculations, OR Slider Labels","Field Note",'
                '"Text Validation Type OR Show Slider Number","Text Validation Min",'
                '"Text Validation Max",Identifier?,"Branching Logic (Show field only if...)",'
                '"Required Field?"')
_DICT_ROWS = (
    'record_id,vital_signs,,text,"Record ID",,,,,,,,',  # REDCap's record id: not an item
    'visit_date,vital_signs,"生命体征 / Vital signs",text,"访视日期 / Visit date",,,date_ymd,'
    '2020-01-01,today,,,y',
    'height,vital_signs,,text,"身高 / Height",,cm,number,50,250,,,y',
    'weight,vital_signs,,text,"体重 / Weight",,kg,number_1dp,2,300,,,y',
    'bmi,vital_signs,,calc,"体重指数 / BMI","round([weight]/(([height]/100)^2),1)",kg/m2,,,,,,',
    'sbp,vital_signs,,text,"收缩压 / Systolic blood pressure",,mmHg,integer,60,260,,,y',
    'smoker,vital_signs,,yesno,"吸烟 / Current smoker",,,,,,,,y',
    'cigs_per_day,vital_signs,,text,"每日吸烟支数 / Cigarettes per day",,,integer,0,100,,'
    '"[smoker] = \'1\'",y',
    'symptoms,vital_signs,,checkbox,"当前症状 / Current symptoms",'
    '"1, 发热 / Fever | 2, 咳嗽 / Cough | 3, 乏力 / Fatigue",,,,,,,',
    'hba1c,labs,"实验室检查 / Laboratory",text,"糖化血红蛋白 / HbA1c",,%,number_1dp,3,20,,,',
    'lab_comment,labs,,notes,"备注 / Comment",,,,,,,,',
)
DEMO_DICTIONARY = "\n".join((_DICT_HEADER, *_DICT_ROWS)) + "\n"
DEMO_SETUP_ROLES = ("principal_investigator", "ethics_member", "investigator")


def _setup_actor() -> accounts.Actor:
    return accounts.Actor(user_id="demo-setup", username="demo.setup",
                          display_name="Demo setup", client="demo",
                          grants=tuple((Role(r), None) for r in DEMO_SETUP_ROLES))


def prepare_entry_study(session: Session, state: AppState) -> None:
    """Give the demo study what data entry needs — a protocol, an approving ethics decision,
    forms and events, a consent form — creating only what is missing (safe to run twice)."""
    import datetime as dt

    from sqlalchemy import select

    from studies.consent import service as consent
    from studies.ethics import service as ethics
    from studies.ethics.models import EthicsCommittee
    from studies.forms import service as forms
    from studies.registry import service as registry
    from studies.registry.models import Study

    actor, ledger = _setup_actor(), state.ledger
    protocol = registry.ProtocolIn(
        label="1.0", version_date=dt.date(2026, 1, 5), purpose="演示 / Demonstration",
        legal_basis="知情同意 / Informed consent", research_content="演示数据录入 / Demo entry",
        data_types="vital signs, labs", planned_subjects=30, planned_records=300,
        expected_results="none (demo)", data_sharing_plan="none (demo)")
    study = session.execute(select(Study).where(Study.code == DEMO_STUDY)).scalar()
    if study is None:
        study = registry.register_study(session, ledger, actor=actor, data=registry.StudyIn(
            code=DEMO_STUDY, title_zh="演示研究", title_en="Demo study", sponsor="Demo",
            design="prospective", protocol=protocol,
            sites=[registry.SiteIn(code="S01", hospital="演示医院 / Demo hospital",
                                   department="Cardiology", medical_group="Group 1")]))
    elif not registry.protocol_versions(session, study.id):
        registry.amend_protocol(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                protocol=protocol, summary="first protocol of the demo")
    now = dt.datetime.now(dt.UTC)
    approval, _problem = ethics.approval_status(session, study_id=study.id, at=now)
    if approval is None:
        name = "演示伦理委员会 / Demo ethics committee"
        committee = session.execute(select(EthicsCommittee).where(
            EthicsCommittee.name == name)).scalar()
        if committee is None:
            committee = ethics.create_committee(session, ledger, actor=actor, data=(
                ethics.CommitteeIn(name=name, institution="演示医院 / Demo hospital")))
            for n in range(7):
                ethics.add_member(session, ledger, actor=actor, committee_id=committee.id,
                                  data=ethics.MemberIn(
                                      name=f"委员 {n + 1} / Member {n + 1}",
                                      gender=("female", "male")[n % 2],
                                      affiliation="external" if n == 0 else "internal",
                                      expertise=["medicine", "ethics", "law", "sociology"][n % 4]))
        pv = registry.protocol_versions(session, study.id)[-1]
        approval = ethics.record_approval(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                          data=ethics.ApprovalIn(
                                              protocol_version=pv.number,
                                              committee_id=committee.id,
                                              reference="DEMO-EC-1", decision="approved",
                                              decided_on=now.date() - dt.timedelta(days=1)))
    if not forms.forms_of(session, study.id):
        forms.import_redcap(session, ledger, actor=actor, study_code=DEMO_STUDY,
                            text=DEMO_DICTIONARY)
        forms.define_event(session, ledger, actor=actor, study_code=DEMO_STUDY,
                           data=forms.EventIn(name="baseline", label_zh="基线",
                                              label_en="Baseline",
                                              form_names=["vital_signs", "labs"]))
        forms.define_event(session, ledger, actor=actor, study_code=DEMO_STUDY,
                           data=forms.EventIn(name="followup", label_zh="随访",
                                              label_en="Follow-up", repeating=True,
                                              form_names=["vital_signs"]))
    if not consent.consent_forms(session, study.id):
        consent.add_consent_form(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                 data=consent.ConsentFormIn(
                                     version="1.0", consent_type="informed",
                                     text_zh="演示知情同意书", text_en="Demo consent form",
                                     approval_id=approval.id))


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

    study = session.execute(select(Study).where(Study.code == DEMO_STUDY)).scalar()
    if study is None:
        return []
    actor, ledger = _setup_actor(), state.ledger
    codes = list(session.execute(select(Subject.code, Subject.id).where(
        Subject.study_id == study.id).order_by(Subject.enrolled_at, Subject.code)))
    forms_ = consent.consent_forms(session, study.id)
    for _code, sid in codes:
        if forms_ and not consent._records(session, sid):
            consent.record_consent(session, ledger, actor=actor, study_code=DEMO_STUDY,
                                   subject_id=sid, data=consent.ConsentIn(
                                       consent_type="informed", form_id=forms_[0].id,
                                       scopes=["study", "deidentified_future"],
                                       given_at=dt.datetime.now(dt.UTC)
                                       - dt.timedelta(minutes=5)))
    has_records = session.execute(select(FormRecord.id).where(
        FormRecord.study_id == study.id)).first() is not None
    inv_user = accounts.find_user(session, "demo.investigator")
    mon_user = accounts.find_user(session, "demo.monitor")
    if codes and not has_records and inv_user and mon_user:
        inv = accounts.actor_for(session, inv_user, client="demo")
        mon = accounts.actor_for(session, mon_user, client="demo")
        today = dt.date.today().isoformat()
        for n, (code, _sid) in enumerate(codes[:2]):
            vitals = {"visit_date": today, "height": str(165 + 5 * n), "weight": "68.5",
                      "sbp": str(118 + 6 * n), "smoker": "0", "symptoms": ["2"]}
            entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                            subject_code=code, event_name="baseline", form_name="vital_signs",
                            data=entry.SaveIn(base_version=0, values=vitals))
            entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                            subject_code=code, event_name="baseline", form_name="labs",
                            data=entry.SaveIn(base_version=0, values={"hba1c": "6.2"}))
        first, second = codes[0][0], codes[min(1, len(codes) - 1)][0]
        entry.save_form(session, ledger, actor=inv, study_code=DEMO_STUDY,
                        subject_code=first, event_name="baseline", form_name="labs",
                        data=entry.SaveIn(base_version=1, values={"hba1c": "6.4"},
                                          reasons={"hba1c": "transcription_error"}))
        monitoring.verify(session, ledger, actor=mon, study_code=DEMO_STUDY,
                          data=monitoring.SdvIn(subject=first, event="baseline",
                                                form="vital_signs"))
        monitoring.open_query(session, ledger, actor=mon, study_code=DEMO_STUDY,
                              data=monitoring.QueryOpenIn(
                                  subject=second, event="baseline", form="vital_signs",
                                  item="sbp", text="原始病历为 126，请核实 / Source shows "
                                                   "126, please check"))
    n_rec = session.execute(select(func.count()).select_from(FormRecord).where(
        FormRecord.study_id == study.id)).scalar()
    n_q = session.execute(select(func.count()).select_from(DataQuery).where(
        DataQuery.study_id == study.id, DataQuery.status != "closed")).scalar()
    if not n_rec:
        return []
    return [f"Demo data entry in {DEMO_STUDY}: {n_rec} form records, {n_q} open query(ies) "
            f"(investigator: /studies/{DEMO_STUDY}/entry, monitor: "
            f"/studies/{DEMO_STUDY}/monitor)"]
