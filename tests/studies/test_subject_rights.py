"""Subject rights (§7 d–e, g): the custodian's subject access export holds the subject's
clinical data — the current value of every item, per visit and form, with the item's bilingual
label and a choice's label instead of its code — and the disclosure history, as JSON, text and
a readable bilingual HTML page."""

from __future__ import annotations

import datetime as dt
import json

from factories import SETUP, enrol_subject, make_entry_study, make_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.keyring import Keyring
from studies.accounts.service import actor_for
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.extracts.models import ExtractRequest
from studies.kernel import i18n
from studies.kernel.roles import Role
from studies.registry.models import Site
from studies.subjects import code_index
from studies.subjects.models import Disclosure

STUDY = "SAR-2026"
NOW = dt.datetime.now(dt.UTC)


def test_the_subject_access_export_holds_clinical_data_and_disclosures(
        session: Session, ledger: Ledger, keys: Keyring) -> None:
    made = make_entry_study(session, ledger, STUDY, subjects=())
    study = made["study"]
    site = session.execute(select(Site).where(Site.study_id == study.id)).scalar_one()
    inv = actor_for(session, make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY),
                    client="test")
    cust = actor_for(session, make_user(session, ledger, "cust", Role.CUSTODIAN),
                     client="test")
    ck = keys.code_index_keys()
    s = enrol_subject(session, ledger, ck, actor=inv, study=study, site=site, n=3)
    entry.save_form(session, ledger, actor=SETUP, study_code=STUDY, subject_code=s.code,
                    event_name="baseline", form_name="demographics",
                    data=SaveIn(base_version=0, values={"dob": "1970-03-15", "sex": "2",
                                                        "ethnicity": "1", "postcode": "100080",
                                                        "pregnant": "0"}))
    req = ExtractRequest(study_id=study.id, study_code=STUDY, requested_by="sp",
                         requested_by_id="x", purpose="p", fields=["sex", "postcode"],
                         tier="LDS", recipient_org="示例药企 / Example Pharma",
                         recipient_key="age1x", use_from=NOW.date(), use_until=NOW.date(),
                         status="delivered")
    session.add(req)
    session.flush()
    session.add(Disclosure(subject_id=s.id, request_id=req.id, study_code=STUDY,
                           recipient_org="示例药企 / Example Pharma", tier="lds",
                           fields=["sex", "postcode"], disclosed_at=NOW))
    session.flush()

    doc = json.loads(code_index.export_subject(
        session, ledger, actor=cust, keys=ck, code=s.code, reason="the subject asked",
        fmt="json").content)
    [record] = doc["clinical_data"]
    assert (record["event"], record["repeat"], record["form"]) == ("baseline", 1,
                                                                   "demographics")
    shown = {v["label"]: v["value"] for v in record["values"]}
    assert shown["Sex"] == "Female"
    assert shown["Ethnicity"] == "Han"
    assert shown["Date of birth"] == "1970-03-15"
    assert shown["Postcode"] == "100080"
    assert [(d["recipient_org"], d["tier"], d["fields"]) for d in doc["disclosures"]] == [
        ("示例药企 / Example Pharma", "lds", ["sex", "postcode"])]

    text = code_index.export_subject(session, ledger, actor=cust, keys=ck, code=s.code,
                                     reason="the subject asked", fmt="text").content.decode()
    assert "  Sex: Female" in text.splitlines()

    page = code_index.export_subject(session, ledger, actor=cust, keys=ck, code=s.code,
                                     reason="the subject asked", fmt="html")
    assert page.filename.endswith(".html") and page.media_type.startswith("text/html")
    html = page.content.decode()
    assert "<h2>Your clinical data</h2>" in html
    assert "<td>Sex</td><td>Female</td>" in html
    assert "To whom your data were disclosed" in html
    assert "<td>示例药企 / Example Pharma</td><td>limited data set</td>" in html
    with i18n.language("zh"):  # the file is written in the custodian's language
        html = code_index.export_subject(session, ledger, actor=cust, keys=ck, code=s.code,
                                         reason="the subject asked", fmt="html").content.decode()
    assert "<td>性别</td><td>女</td>" in html and "Female" not in html
