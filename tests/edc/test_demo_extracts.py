"""The demo completes the sponsor's part of the README tour (issue 14): its limited data set
builds at k = 5 over 66 subjects at two sites with follow-up visits, and what goes out holds no
name the investigator typed into an adverse-event term."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.extracts import build as builder
from studies.extracts import custody
from studies.extracts.models import ExtractRequest
from studies.kernel.actor import Actor
from studies.kernel.roles import Role


@pytest.mark.slow
def test_the_demo_lds_builds_at_k_5_and_scrubs_the_names_typed_in(
        session: Session, ledger: Ledger, state: Any, tmp_path: Path) -> None:
    from edc import demo

    state.settings.extract_dir = tmp_path / "extracts"
    out = demo.load(session, state)
    assert any("66 enrolled" in line and "S01: 3" in line for line in out), out
    req = session.execute(select(ExtractRequest).where(ExtractRequest.tier == "lds")).scalar_one()
    req.status = "approved"  # the votes and the agreement are the approval tests' business
    session.flush()
    dm = Actor(user_id="dm", username="demo.data_manager", display_name="DM",
               grants=((Role.DATA_MANAGER, None),))
    custody.queue_build(session, ledger, actor=dm, request_id=req.id)
    built = builder.build(session, ledger, request_id=req.id, out_dir=state.settings.extract_dir,
                          keys=builder.BuildKeys(deid_key=state.keys.deid_key,
                                                 signing_key=state.keys.signing_key,
                                                 code_index=state.keys.code_index_keys()))
    assert (built.status, built.build_state) == ("built", "done"), built.checks
    plain = subprocess.run(["age", "-d", "-i", str(state.settings.extract_dir /
                                                     "demo-sponsor.key"),
                            str(state.settings.extract_dir / built.package_file)],
                           check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tar.extractall(tmp_path / "open", filter="data")
    root = tmp_path / "open/extract"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["deidentification"]["achieved_k"] >= 5
    assert manifest["deidentification"]["free_text_masks"]["name"] >= 1
    text = (root / "data/adverse_events.csv").read_text(encoding="utf-8")
    odm = (root / "odm.xml").read_text(encoding="utf-8")
    assert "[姓名]" in text and "[电话]" in text
    for name, _region, _birth, _seq, phone, mrn in demo.demo_cohort():
        assert name not in text + odm and phone not in text + odm and mrn not in text + odm
