"""The REDCap data dictionary round trip: a study's forms downloaded as a REDCap dictionary
(UTF-8 with a byte-order mark, as the API and pages serve it) and imported into another study
give the same forms, field by field."""

from __future__ import annotations

import csv
import dataclasses

from factories import ENTRY_DICTIONARY, PASSWORD, SETUP, make_entry_study, make_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.forms import service as forms
from studies.kernel.roles import Role
from studies.registry import service as registry

STUDY = "ENT-2026-01"


def _specs(session: Session, code: str) -> list[dict[str, object]]:
    specs, _ = forms.current_specs(session, registry.get_study(session, code))
    out = []
    for s in specs:
        d = dataclasses.asdict(s)
        for g in d["groups"]:
            g.pop("name")  # named after the form
            for i in g["items"]:
                i.pop("line")  # the dictionary line it came from
        out.append(d)
    return out


def test_a_downloaded_dictionary_imports_as_the_same_forms(session: Session,
                                                          ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    data = forms.redcap_dictionary(session, ledger, actor=SETUP, study_code=STUDY)
    assert data.startswith(b"\xef\xbb\xbf")  # Excel on Chinese Windows reads it as UTF-8
    text = data.decode("utf-8-sig")
    assert next(csv.reader([text.splitlines()[0]])) == next(csv.reader(
        [ENTRY_DICTIONARY.read_text(encoding="utf-8").splitlines()[0]]))  # REDCap's columns
    make_study(session, ledger, "RT-2026-01")
    forms.import_redcap(session, ledger, actor=SETUP, study_code="RT-2026-01", text=text)
    original, again = _specs(session, STUDY), _specs(session, "RT-2026-01")
    assert [f["name"] for f in again] == ["demographics", "vital_signs", "labs"]
    for a, b in zip(original, again, strict=True):
        for ga, gb in zip(a["groups"], b["groups"], strict=True):  # type: ignore[call-overload]
            for ia, ib in zip(ga["items"], gb["items"], strict=True):
                assert ia == ib, ia["name"]
        assert a == b
    exported = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "metadata.export")).scalars().all()
    assert any("REDCap data dictionary" in (e.changes or "") for e in exported)


def test_the_dictionary_download_through_the_api(app_client: TestClient, session: Session,
                                                 ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "outsider", Role.INVESTIGATOR, study="OTHER-2026-01")
    app_client.post("/api/v1/auth/login", json={"username": "inv", "password": PASSWORD})
    r = app_client.get(f"/api/v1/studies/{STUDY}/redcap-dictionary.csv")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{STUDY}-DataDictionary.csv"')
    assert r.content.startswith(b"\xef\xbb\xbf")
    assert 'Sex' in r.content.decode("utf-8-sig")
    app_client.cookies.clear()
    app_client.post("/api/v1/auth/login", json={"username": "outsider", "password": PASSWORD})
    assert app_client.get(f"/api/v1/studies/{STUDY}/redcap-dictionary.csv").status_code == 403
