"""A copy of the database alone reveals nothing (§11.3.4.6 a 1): after enrolling subjects with
known identities (committed), neither the raw SQLite file and its WAL nor a ``pg_dump`` of
PostgreSQL contains any of their names, ID numbers, phones, record numbers or addresses —
as text, as UTF-8 bytes, or hex-encoded as a dump writes binary columns."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from factories import consent_to, make_active_study, make_user, synthetic_identity
from sqlalchemy.engine import make_url

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from studies.accounts.service import actor_for
from studies.kernel.roles import Role
from studies.subjects import code_index
from studies.subjects import service as svc
from studies.subjects.identity import validate_identity

PEOPLE = [
    synthetic_identity(101, name="欧阳明月", address="上海市徐汇区漕溪北路 600 号"),
    synthetic_identity(102, name="Zhang Weiguo", address="广州市越秀区中山二路 58 号"),
    synthetic_identity(103, name="司马青", medical_record_number="ZY2026-000731"),
]


def secrets_of(people: list[dict[str, str]]) -> list[bytes]:
    out = []
    for p in people:
        ident = validate_identity(**p)
        for value in (*p.values(), ident.date_of_birth.isoformat()):
            out.append(value.encode())
    return out


def enrol_and_look_up(url: str, key_dir: Path) -> list[str]:
    keys = keyring.load(key_dir)
    ledger = Ledger(signer=keys.signer, checkpoint_every=2)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            study, (site,) = make_active_study(session, "REST-2026-01", ledger=ledger)
            inv = actor_for(session, make_user(session, ledger, "inv.rest", Role.INVESTIGATOR,
                                               study="REST-2026-01"), client="t")
            cust = actor_for(session, make_user(session, ledger, "cust.rest", Role.CUSTODIAN),
                             client="t")
            made = [svc.enrol(session, ledger, actor=inv, keys=keys.code_index_keys(),
                              study_id=study.id, site_id=site.id,
                              identity=validate_identity(**p),
                              consent=consent_to(session, study)) for p in PEOPLE]
        with session_factory(engine)() as session, session.begin():
            # lookups, a refused duplicate and an export leave no identity behind either
            code_index.lookup_identity(session, ledger, actor=cust, keys=keys.code_index_keys(),
                                code=made[0].code, reason="adverse event follow-up")
            code_index.lookup_code(session, ledger, actor=cust, keys=keys.code_index_keys(),
                            resident_id=PEOPLE[1]["resident_id"], reason="patient at desk")
            code_index.export_subject(session, ledger, actor=cust, keys=keys.code_index_keys(),
                               code=made[2].code, reason="subject request", fmt="json")
    finally:
        engine.dispose()
    return [m.code for m in made]


def assert_absent(blob: bytes, what: str) -> None:
    found = [s.decode() for s in secrets_of(PEOPLE)
             if s in blob or s.hex().encode() in blob.lower()]
    assert found == [], f"identity found in {what}"


def test_raw_sqlite_file_and_wal_hold_no_identity(fresh_url: str, key_dir: Path) -> None:
    if make_url(fresh_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite run")
    path = Path(make_url(fresh_url).database or "")
    engine = make_engine(fresh_url)
    engine.dispose()
    codes = enrol_and_look_up(fresh_url, key_dir)
    blob = path.read_bytes() + (Path(f"{path}-wal").read_bytes()
                                if Path(f"{path}-wal").exists() else b"")
    assert len(blob) > 10_000
    assert all(c.encode() in blob for c in codes)  # the scan does see the committed rows
    assert_absent(blob, "the SQLite file")


def test_pg_dump_holds_no_identity(fresh_url: str, key_dir: Path) -> None:
    u = make_url(fresh_url)
    if u.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL run")
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is required for this test"
    codes = enrol_and_look_up(fresh_url, key_dir)
    dsn = u.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run([pg_dump, "--no-owner", dsn], capture_output=True, check=True,
                          timeout=120, env={**os.environ, "PGCONNECT_TIMEOUT": "10"}).stdout
    assert all(c.encode() in dump for c in codes)  # the dump does hold the committed rows
    assert_absent(dump, "pg_dump")
