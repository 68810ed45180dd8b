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
    lines += load_subjects(session, state)
    lines += load_randomisation(session, state)
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


# ── Randomisation (issue 7) ───────────────────────────────────────────────────────────────────

def load_randomisation(session: Session, state: AppState) -> list[str]:
    """An open-label 1:1 permuted-block scheme (sizes 2 and 4) in the demo study, and the demo
    subjects randomised. Safe to run twice: the scheme is set once, subjects once."""
    from sqlalchemy import select

    from studies.errors import DomainError
    from studies.randomisation import service as rnd
    from studies.randomisation.models import Allocation, RandomisationScheme
    from studies.registry.models import Study
    from studies.subjects.models import Subject

    study = session.execute(select(Study).where(Study.code == DEMO_STUDY)).scalar()
    stat = accounts.find_user(session, "demo.statistician")
    inv = accounts.find_user(session, "demo.investigator")
    if study is None or stat is None or inv is None:
        return []
    keys = rnd.keys_from(state.keys.deid_key)
    if session.execute(select(Subject.id).where(Subject.study_id == study.id,
                                                Subject.status == "enrolled")).first() is None:
        return []  # nothing to randomise (e.g. the demo study has no approval yet)
    try:
        with session.begin_nested():
            if session.get(RandomisationScheme, study.id) is None:
                rnd.configure(session, state.ledger,
                              actor=accounts.actor_for(session, stat, client="demo"),
                              study_code=DEMO_STUDY, data=rnd.SchemeIn(
                                  method="blocks", arms=["X", "Placebo"], block_sizes=[2, 4]))
            done = set(session.execute(select(Allocation.subject_id)).scalars())
            actor = accounts.actor_for(session, inv, client="demo")
            for s in session.execute(select(Subject).where(Subject.study_id == study.id)
                                     .order_by(Subject.enrolled_at)).scalars():
                if s.id not in done and s.status == "enrolled":
                    rnd.randomise(session, state.ledger, actor=actor, keys=keys,
                                  study_code=DEMO_STUDY, subject_code=s.code)
    except DomainError as exc:
        return [f"Demo randomisation not done: {exc.message}"]
    return [f"Demo randomisation and lock panel: /studies/{DEMO_STUDY}/randomisation, "
            f"/studies/{DEMO_STUDY}/locks (demo.data_manager)"]
