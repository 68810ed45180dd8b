"""Small factories for test data."""

from __future__ import annotations

from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.models import User
from studies.accounts.roles import Role

PASSWORD = "correct horse battery staple"


def make_user(session: Session, ledger: Ledger, username: str, *roles: Role,
              study: str | None = None, must_change_password: bool = False) -> User:
    return accounts.create_user(
        session, ledger, actor=accounts.SYSTEM, username=username,
        display_name=username.title(), password=PASSWORD,
        roles=[(r, study) for r in roles], must_change_password=must_change_password)


# ── Subjects and the code index (issue 4) ───────────────────────────────────────────────────

import datetime as dt  # noqa: E402

from studies.accounts.service import Actor  # noqa: E402
from studies.registry.models import Site, Study  # noqa: E402
from studies.subjects import service as subjects_service  # noqa: E402
from studies.subjects.crypto import CodeIndexKeys  # noqa: E402
from studies.subjects.identity import compose_resident_id, validate_identity  # noqa: E402
from studies.subjects.models import Subject  # noqa: E402


def make_study(session: Session, code: str = "CI-2026-01", *, sites: tuple[str, ...] = ("S01",),
               status: str = "active") -> tuple[Study, list[Site]]:
    study = Study(code=code, title_zh="代码索引测试研究", title_en="Code index test study",
                  status=status)
    session.add(study)
    session.flush()
    made = [Site(study_id=study.id, code=s, hospital=f"Test hospital {s}") for s in sites]
    session.add_all(made)
    session.flush()
    return study, made


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
                  study: Study, site: Site, n: int = 1, **overrides: str) -> Subject:
    return subjects_service.enrol(
        session, ledger, actor=actor, keys=keys, study_id=study.id, site_id=site.id,
        identity=validate_identity(**synthetic_identity(n, **overrides)))
