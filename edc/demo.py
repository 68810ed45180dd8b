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
    lines += load_extract_request(session, state)
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


# ── A sponsor's extract request (issue 9) ───────────────────────────────────────────────────

def load_extract_request(session: Session, state: AppState) -> list[str]:
    """A pending LDS request by demo.sponsor for the demo study's non-identifying fields, to an
    age key written to ``<extract dir>/demo-sponsor.key`` (demo only). Skipped while the demo
    study has no forms, and when the request exists already (safe to run twice)."""
    import datetime as dt
    import os

    import pyrage
    from sqlalchemy import select

    from studies.errors import DomainError
    from studies.extracts import service as ex
    from studies.extracts.models import ExtractRequest
    from studies.registry.models import Study

    study = session.execute(select(Study).where(Study.code == DEMO_STUDY)).scalar()
    user = accounts.find_user(session, "demo.sponsor")
    if study is None or user is None:
        return []
    existing = session.execute(select(ExtractRequest).where(
        ExtractRequest.study_id == study.id, ExtractRequest.requested_by_id == user.id)).scalar()
    if existing is not None:
        return [f"Demo extract request: /extracts/{existing.id} ({existing.status})"]
    fields = [f.name for f in ex.field_catalogue(session, study.id).values()
              if f.classification in ("clinical", "quasi_identifier")
              and not f.name.startswith("identity.")][:6]
    if not fields:
        return ["Demo extract request: skipped (the demo study has no eCRF fields yet)"]
    ident = pyrage.x25519.Identity.generate()
    key_file = state.settings.extract_dir / "demo-sponsor.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"# public key: {ident.to_public()}\n{ident}\n")
    pub = next(line.split(": ", 1)[1] for line in key_file.read_text().splitlines()
               if line.startswith("# public key:"))
    sponsor = accounts.actor_for(session, user, client="demo")
    try:
        with session.begin_nested():
            req = ex.create_request(session, state.ledger, actor=sponsor, study_code=DEMO_STUDY,
                                    data=ex.RequestIn(
                                        purpose="Demo: efficacy analysis by age band and sex",
                                        fields=fields, tier="lds",
                                        recipient_org="Demo Pharma 演示药企", recipient_key=pub,
                                        use_from=dt.date.today(),
                                        use_until=dt.date.today() + dt.timedelta(days=365)))
    except DomainError as exc:
        return [f"Demo extract request not made: {exc.message}"]
    return [f"Demo extract request: /extracts/{req.id} (LDS, pending the committee); "
            f"the sponsor's age key is {key_file}"]
