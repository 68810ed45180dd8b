"""A limited data set as a sponsor receives it (issue 14): built through the API from data
holding ages over 89, birth dates, postcodes, visit dates, repeating follow-up visits and free
text naming the subject, a doctor, a phone and an e-mail; opened with the stock ``age -d`` and
tar; every file (CSV, Parquet, ODM) checked against Table 6, k checked by pycanon on every
table and on the subject-level join, and no name, number or address left."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pycanon.anonymity as pa
import pytest
from factories import (
    EXAMPLE_PHARMA,
    PASSWORD,
    SETUP,
    age_keys,
    consent_to,
    login_as,
    make_entry_study,
    make_user,
    publish_all,
    recipient_orgs,
    synthetic_identity,
)
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.extracts import build as builder
from studies.extracts import review as extract_review
from studies.extracts.schemas import DecisionIn
from studies.forms.models import Item
from studies.kernel.roles import Role
from studies.registry.models import Site
from studies.subjects import service as subjects
from studies.subjects.identity import validate_identity

STUDY = "T6-2026-01"
N = 64
DOCTOR = "王建国"
AGE_BANDS = {"<25", *(f"{a}-{a + 4}" for a in range(25, 90, 5)), ">89"}
COARSER_AGES = {"<30", "<=89", "*", *(f"{a}-{a + 9}" for a in range(30, 90, 10)),
                *(f"{a}-{a + 19}" for a in range(30, 90, 20))}
FIELDS = ["demographics.dob", "demographics.sex", "demographics.postcode",
          "vital_signs.visit_date", "vital_signs.weight", "vital_signs.age_at_visit",
          "labs.hbsag", "labs.hba1c", "labs.lab_comment"]
QIS = {"demographics": ["dob", "sex", "postcode"], "vital_signs": ["visit_date"]}


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def populate(session: Session, ledger: Ledger, keys: Any) -> list[dict[str, str]]:
    """64 subjects at two sites, enrolled through the code index, with baseline data, two
    follow-up visits each and lab comments that name them, their doctor, a phone, an e-mail."""
    made = make_entry_study(session, ledger, STUDY, subjects=(), allow_incomplete=True,
                            sites=("S01", "S02"))
    recipient_orgs(session, ledger)
    sites = list(session.execute(select(Site).where(Site.study_id == made["study"].id)
                                 .order_by(Site.code)).scalars())
    people = []
    for i in range(N):
        ident = synthetic_identity(i)
        s = subjects.enrol(session, ledger, actor=SETUP, keys=keys, study_id=made["study"].id,
                           site_id=sites[i % 2].id, identity=validate_identity(**ident),
                           consent=consent_to(session, made["study"],
                                              scopes=("study", "deidentified_future")))
        birth = dt.date(1928 + (i * 7) % 64, 1 + i % 12, 1 + i % 27)  # some over 89
        save = lambda event, form, values, repeat=1, s=s: entry.save_form(  # noqa: E731
            session, ledger, actor=SETUP, study_code=STUDY, subject_code=s.code,
            event_name=event, form_name=form,
            data=SaveIn(base_version=0, values=values, repeat=repeat))
        save("baseline", "demographics", {"dob": birth.isoformat(), "sex": str(1 + i % 2),
                                          "postcode": f"1000{80 + i % 9}", "ethnicity": "1",
                                          **({"pregnant": "0"} if i % 2 else {})})
        for n, event in enumerate(("baseline", "followup", "followup")):
            save(event, "vital_signs", {
                "visit_date": f"2025-{1 + (i + 4 * n) % 12:02d}-{1 + i % 28:02d}",
                "height": str(150 + i % 40), "weight": f"{50 + (i * 3 + n) % 50}.{n}",
                "sbp": str(100 + i % 60), "smoker": "0"}, repeat=max(1, n))
        save("baseline", "labs", {
            "hbsag": str(i % 2), "hba1c": f"{5 + (i % 30) / 10:.1f}",
            "lab_comment": f"{ident['name']}复查，{DOCTOR}医生嘱咐；联系电话{ident['phone']}，"
                           f"邮箱 p{i}@example.cn"})
        people.append(ident)
    for item in session.execute(select(Item).where(Item.name.in_(["visit_date", "sex"]))
                                ).scalars():  # the administrator classes them (Table 6)
        item.classification = "quasi_identifier"
    publish_all(session, ledger, STUDY)
    return people


def released_files(package: Path, ident: Path, dest: Path) -> Path:
    plain = subprocess.run(["age", "-d", "-i", str(ident), str(package)], check=True,
                           capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "extract"


def odm_values(path: Path) -> dict[str, list[str]]:
    ns = {"o": "http://www.cdisc.org/ns/odm/v1.3"}
    out: dict[str, list[str]] = {}
    for el in etree.parse(str(path)).iterfind(".//o:ItemData", ns):
        out.setdefault(el.get("ItemOID").split(".", 1)[1], []).append(el.get("Value"))
    return out


@pytest.mark.slow
def test_the_sponsor_receives_an_lds_that_holds_table_6_and_k_on_every_row(
        app_client: TestClient, session: Session, ledger: Ledger, state: Any,
        tmp_path: Path) -> None:
    state.settings.extract_dir = tmp_path / "extracts"
    people = populate(session, ledger, state.keys.code_index_keys())
    make_user(session, ledger, "sponsor1", Role.SPONSOR)
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    doctor = make_user(session, ledger, "wjg", Role.INVESTIGATOR, study=STUDY)
    doctor.display_name = DOCTOR
    members = [login_as(session, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER, study=STUDY)
               for i in range(3)]
    officer = login_as(session, ledger, "dso", Role.SECURITY_OFFICER, study=STUDY)
    ident, pub = age_keys(tmp_path)

    login(app_client, "sponsor1")
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts", json={
        "purpose": "Efficacy analysis by age band and visit", "tier": "lds", "k": 5,
        "fields": FIELDS, "recipient_org": EXAMPLE_PHARMA, "recipient_key": pub,
        "use_from": dt.date.today().isoformat(),
        "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat()})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "dua", "username": "sponsor1", "password": PASSWORD}).status_code == 201
    for m in [officer, *members]:  # the first review (初审), then the committee
        extract_review.decide(session, ledger, actor=m, request_id=rid, data=DecisionIn(
            kind="officer" if m is officer else "vote", approve=True, username=m.username,
            password=PASSWORD))
    login(app_client, "dm")
    assert app_client.post(f"/api/v1/extracts/{rid}/build", json={}).status_code == 202
    builder.build(session, ledger, request_id=rid, out_dir=state.settings.extract_dir,
                  keys=builder.BuildKeys(deid_key=state.keys.deid_key,
                                         signing_key=state.keys.signing_key,
                                         code_index=state.keys.code_index_keys()))
    login(app_client, "sponsor1")
    shown = app_client.get(f"/api/v1/extracts/{rid}").json()
    assert (shown["status"], shown["build"]["state"]) == ("built", "done"), shown["build"]
    r = app_client.get(f"/api/v1/extracts/{rid}/package")
    assert r.status_code == 200
    (tmp_path / "p.tar.age").write_bytes(r.content)
    root = released_files(tmp_path / "p.tar.age", ident, tmp_path / "open")
    assert app_client.get(f"/api/v1/extracts/{rid}").json()["status"] == "delivered"

    manifest = json.loads((root / "manifest.json").read_text())
    assert sorted(manifest["deidentification"]["quasi_identifiers"]) == sorted(
        f"{form}.{q}" for form, qs in QIS.items() for q in qs)
    fields = {f["name"]: f for f in manifest["fields"]}
    assert fields["demographics.dob"]["clause"].startswith("Table 6")
    assert "age band" in fields["demographics.dob"]["treatment"]
    assert fields["vital_signs.age_at_visit"]["clause"] == "Table 6 (年龄)"
    masks = manifest["deidentification"]["free_text_masks"]
    assert masks["name"] >= 2 * N and masks["phone"] >= N and masks["email"] >= N

    tables = {form: pl.read_csv(root / f"data/{form}.csv", infer_schema=False)
              for form in ("demographics", "vital_signs", "labs")}
    for form, df in tables.items():  # the Parquet files hold the same released values
        pq = pl.read_parquet(root / f"data/{form}.parquet").cast(pl.String)
        assert pq.fill_null("").equals(df.select(pq.columns).fill_null("")), form
    odm = odm_values(root / "odm.xml")

    # Table 6, in every file
    dob = tables["demographics"]["dob"].drop_nulls().to_list()
    age = tables["vital_signs"]["age_at_visit"].drop_nulls().to_list()
    for values in (dob, age, odm["demographics.dob"], odm["vital_signs.age_at_visit"]):
        assert values and set(values) <= AGE_BANDS | COARSER_AGES, set(values)
        assert not any(re.fullmatch(r"\d+|9\d-\d+|\d{4}-\d\d-\d\d", v) for v in values)
    assert ">89" in set(age) | set(dob) or "*" in set(age) | set(dob)  # the over-89s, unbanded
    for values in (tables["demographics"]["postcode"].to_list(), odm["demographics.postcode"]):
        assert values and all(re.fullmatch(r"\d{3}\*{3}|\d{2}\*{4}|\*{6}|\*", v) for v in values)
    for values in (tables["vital_signs"]["visit_date"].to_list(), odm["vital_signs.visit_date"]):
        assert values and all(re.fullmatch(r"\d{4}|\d{4}-\d{4}|\*", v) for v in values), values

    # k on every table's rows and on the subject-level join (pycanon), l on the sensitive item
    for form, qis in QIS.items():
        rows = pd.DataFrame(tables[form].to_dicts()).fillna("")
        assert pa.k_anonymity(rows, qis) >= 5, form
    per_subject: dict[str, dict[str, set[str]]] = {}
    for form, qis in QIS.items():
        for row in tables[form].iter_rows(named=True):
            rec = per_subject.setdefault(row["subject_token"], {})
            for q in qis:
                rec.setdefault(q, set()).add(row[q] or "")
    hbsag = dict(zip(tables["labs"]["subject_token"], tables["labs"]["hbsag"], strict=True))
    joined = pd.DataFrame([{**{q: "|".join(sorted(v)) for q, v in rec.items()},
                            "hbsag": hbsag.get(tok, "")} for tok, rec in per_subject.items()])
    quasi = [q for qs in QIS.values() for q in qs]
    assert len(joined) >= N * 0.95
    assert pa.k_anonymity(joined, quasi) >= 5
    assert pa.l_diversity(joined, quasi, ["hbsag"]) >= 2
    assert manifest["deidentification"]["achieved_k"] >= 5

    # no name, number or address left anywhere
    everything = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                           for p in root.rglob("*") if p.is_file()
                           and p.suffix in (".csv", ".xml", ".json"))
    everything += "\n".join(str(v) for form in tables for v in pl.read_parquet(
        root / f"data/{form}.parquet").to_dicts())
    for p in people:
        for f in ("name", "resident_id", "phone", "medical_record_number", "address"):
            assert p[f] not in everything, f
    assert DOCTOR not in everything and "@example.cn" not in everything
    comments = tables["labs"]["lab_comment"].to_list()
    assert all("[姓名]" in c and "[电话]" in c for c in comments)

    # the disclosure history (§7 g): the custodian sees this extract for a released subject
    login_as(session, ledger, "cust", Role.CUSTODIAN, study=STUDY)
    login(app_client, "cust")
    code = session.execute(select(subjects.Subject.code).order_by(subjects.Subject.code)
                           ).scalars().first()
    r = app_client.get(f"/api/v1/code-index/subjects/{code}/disclosures")
    assert r.status_code == 200, r.text
    got = r.json()
    assert [(d["request_id"], d["tier"], d["recipient_org"]) for d in got] == [
        (rid, "lds", "示例药企 / Example Pharma")]
    assert got[0]["fields"] == FIELDS
    page = app_client.get("/code-index").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    html = app_client.post("/code-index/disclosures",
                           data={"csrf_token": token, "code": code}).text
    assert "Example Pharma" in html and "limited data set" in html and rid[:8] in html
    assert 'action="/code-index/disclosures"' in page
    r = app_client.post("/api/v1/code-index/export", json={
        "code": code, "reason": "the subject asked for a copy of their data", "format": "json"})
    assert [d["request_id"] for d in r.json()["disclosures"]] == [rid]
    r = app_client.post("/api/v1/code-index/export", json={
        "code": code, "reason": "the subject asked for a copy of their data", "format": "text"})
    assert "To whom your data were disclosed" in r.text and "Example Pharma" in r.text


def test_a_build_that_cannot_reach_k_says_why_and_what_the_approver_can_do(
        session: Session, ledger: Ledger, state: Any, tmp_path: Path) -> None:
    from studies.extracts.deidentify import deidentify_lds, form_frames
    from studies.extracts.errors import BuildError
    from studies.extracts.service import items_by_field

    populate(session, ledger, state.keys.code_index_keys())
    study = session.execute(select(subjects.Subject.study_id)).scalars().first()
    assert study is not None
    items = items_by_field(session, study)
    snap = builder.take_snapshot(session, study, dt.datetime.now(dt.UTC), {"demographics"})
    frames = form_frames(snap, {"demographics": ["dob", "postcode"]},
                         {r[0] for r in snap.rows["demographics"]})
    with pytest.raises(BuildError) as e:
        deidentify_lds(frames, {f: items[f] for f in ("demographics.dob",
                                                      "demographics.postcode")},
                       k=N + 1, l_diversity=2, max_suppression=0.05, study_code=STUDY,
                       token_project="t", secret=b"s" * 32, on=dt.date.today())
    msg = str(e.value)
    assert f"k={N + 1}" in msg and f"only {N} subjects" in msg and "smaller k" in msg
    assert "demographics.dob, demographics.postcode" in msg


def test_a_draft_forms_field_and_a_k_under_5_are_refused_naming_them(
        app_client: TestClient, session: Session, ledger: Ledger, tmp_path: Path) -> None:
    from audit_trail.models import LedgerEntry
    from studies.extracts.models import ExtractRequest
    from studies.forms import service as forms

    made = make_entry_study(session, ledger, STUDY, subjects=())
    recipient_orgs(session, ledger)
    publish_all(session, ledger, STUDY)
    forms.new_version(session, ledger, actor=SETUP, study_code=STUDY, form_name="labs")
    forms.import_redcap(session, ledger, actor=SETUP, study_code=STUDY, text=(
        '"Variable / Field Name","Form Name","Field Type","Field Label"\n'
        'draft_note,draft_form,text,"草稿 / Draft note"\n'))
    assert made["study"].code == STUDY
    make_user(session, ledger, "sponsor1", Role.SPONSOR)
    _, pub = age_keys(tmp_path)
    login(app_client, "sponsor1")
    before = (session.query(ExtractRequest).count(), session.query(LedgerEntry).count())
    body = {"purpose": "Efficacy analysis by age band and visit", "tier": "lds", "k": 5,
            "recipient_org": EXAMPLE_PHARMA, "recipient_key": pub,
            "use_from": dt.date.today().isoformat(),
            "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat()}
    fields = app_client.get(f"/api/v1/studies/{STUDY}/extract-fields").json()
    assert "draft_form.draft_note" not in {f["name"] for f in fields}
    assert "labs.hba1c" in {f["name"] for f in fields}  # published, a new draft beside it
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts",
                        json={**body, "fields": ["draft_form.draft_note"]})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "fields" and "draft_form.draft_note" in err["message"]
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts",
                        json={**body, "k": 4, "fields": ["labs.hba1c"]})
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["field"], err["clause"]) == ("k", "§11.4.2.4") and "at least 5" in err["message"]
    assert (session.query(ExtractRequest).count(),
            session.query(LedgerEntry).count()) == before
