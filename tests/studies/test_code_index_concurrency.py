"""An enrolment that arrives while a key rotation runs waits for it and is then refused (its
keys are stale), so no entry is ever written under the old key behind the rotation's back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import nacl.utils
import pytest
from factories import consent_to, make_active_study, make_user, synthetic_identity
from sqlalchemy import select

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from studies.accounts.service import actor_for
from studies.kernel.roles import Role
from studies.subjects import code_index
from studies.subjects import service as svc
from studies.subjects.crypto import key_id
from studies.subjects.errors import CodeIndexKeyError
from studies.subjects.identity import validate_identity
from studies.subjects.models import CodeIndexEntry


@pytest.mark.slow
def test_enrolment_during_rotation_waits_and_is_refused(fresh_url: str, key_dir: Path) -> None:
    keys = keyring.load(key_dir).code_index_keys()
    ledger = Ledger(signer=keyring.load(key_dir).signer, checkpoint_every=1000)
    engine = make_engine(fresh_url)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        study, (site,) = make_active_study(s, "CONC-2026-01", ledger=ledger)
        inv = actor_for(s, make_user(s, ledger, "inv.c", Role.INVESTIGATOR,
                                     study="CONC-2026-01"), client="t")
        cust = actor_for(s, make_user(s, ledger, "cust.c", Role.CUSTODIAN), client="t")
        for n in range(1, 4):
            svc.enrol(s, ledger, actor=inv, keys=keys, study_id=study.id, site_id=site.id,
                      identity=validate_identity(**synthetic_identity(n)),
                      consent=consent_to(s, study))
    new_key = nacl.utils.random(32)
    started = threading.Event()
    outcome: dict[str, object] = {}

    def rotate() -> None:
        def slow(i: int) -> None:
            if i == 0:
                started.set()
                time.sleep(1.0)  # hold the rotation open while the enrolment arrives
        with sessions() as s, s.begin():
            code_index.rotate_code_index(s, ledger, actor=cust, keys=keys, new_key=new_key,
                                  on_entry=slow)
            # taken before the commit: the enrolment may finish between the commit and any
            # statement after the block, so only the moment before it is an ordering fact
            outcome["rotated_at"] = time.monotonic()

    def enrol() -> None:
        try:
            with sessions() as s, s.begin():
                svc.enrol(s, ledger, actor=inv, keys=keys, study_id=study.id, site_id=site.id,
                          identity=validate_identity(**synthetic_identity(9)),
                          consent=consent_to(s, study))
            outcome["enrol"] = "written"
        except CodeIndexKeyError:
            outcome["enrol"] = "refused"
        outcome["enrol_at"] = time.monotonic()

    a = threading.Thread(target=rotate)
    a.start()
    assert started.wait(30)
    b = threading.Thread(target=enrol)
    b.start()
    a.join(60)
    b.join(60)
    try:
        assert outcome["enrol"] == "refused"
        assert outcome["enrol_at"] >= outcome["rotated_at"]  # type: ignore[operator]
        with sessions() as s:
            kids = set(s.execute(select(CodeIndexEntry.key_id)).scalars())
        assert kids == {key_id(new_key)}
    finally:
        engine.dispose()
