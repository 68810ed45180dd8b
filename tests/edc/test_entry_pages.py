"""Entry and monitoring pages: rendered from metadata, usable without JavaScript (plain forms,
CSRF, post-redirect-get), reasons per changed field, field errors, conflicts, history, SDV
buttons, query threads and the worklist."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import VITALS, make_entry_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.service import Ledger
from studies.entry.models import ValueVersion
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
PAGE = f"/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs"


@pytest.fixture
def study(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)


def soup(r: Any) -> BeautifulSoup:
    return BeautifulSoup(r.text, "html.parser")


def post_form(client: TestClient, url: str, changes: dict[str, Any],
              drop: tuple[str, ...] = (), doc: BeautifulSoup | None = None) -> Any:
    """Submit the page's entry form as a browser would, with ``changes`` applied (the form
    of ``doc`` if given, as the page came back, else of the page got afresh)."""
    doc = doc if doc is not None else soup(client.get(url))
    form = doc.select_one("form.entry")
    data: list[tuple[str, str]] = []
    for el in form.select("input, select, textarea"):
        name = el.get("name")
        if not name or name in changes or name in drop:
            continue
        if el.name == "select":
            opt = el.select_one("option[selected]")
            data.append((name, opt["value"] if opt else ""))
        elif el.get("type") in ("checkbox", "radio"):
            if el.has_attr("checked"):
                data.append((name, el.get("value", "")))
        elif el.name == "textarea":
            data.append((name, el.get_text()))
        else:
            data.append((name, el.get("value", "")))
    for k, v in changes.items():
        for x in (v if isinstance(v, list) else [v]):
            data.append((k, x))
    body: dict[str, list[str]] = {}
    for k, v in data:
        body.setdefault(k, []).append(v)
    return client.post(form["action"], data=body, follow_redirects=False)


def test_the_form_is_rendered_from_metadata_and_saves_without_js(
        app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    doc = soup(app_client.get(PAGE))
    form = doc.select_one("form.entry")
    assert form["method"] == "post" and form.select_one("input[name=csrf_token]")
    assert form.select_one("input[name=visit_date]")["type"] == "date"
    assert doc.select_one("label[for=f-height] .unit").get_text() == " (cm)"
    assert 'Height (cm)' in doc.select_one("label[for=f-height]").get_text()
    assert [i["value"] for i in form.select("input[name=symptoms]")] == ["1", "2", "3", "4"]
    assert form.select_one("input[name=symptoms]")["type"] == "checkbox"
    assert form.select_one("output#f-bmi") is not None  # computed, not typed
    assert doc.select_one(".record-status").get_text() == 'not entered'
    r = post_form(app_client, PAGE, {**VITALS, "symptoms": ["1", "4"],
                                     "symptoms_other": "rash"})
    assert r.status_code == 303 and r.headers["location"] == PAGE, r.text[-800:]
    doc = soup(app_client.get(PAGE))
    assert doc.select_one(".flash").get_text() == 'saved as version 1'
    assert doc.select_one(".record-version").get_text() == "1"
    assert doc.select_one("output#f-bmi").get_text() == "22.9"
    assert [i["value"] for i in doc.select("input[name=symptoms][checked]")] == ["1", "4"]


def test_a_correction_needs_a_reason_per_changed_field(app_client: TestClient,
                                                       session: Session, study: None) -> None:
    login(app_client, "inv")
    post_form(app_client, PAGE, VITALS)
    r = post_form(app_client, PAGE, {"sbp": "133"})
    assert r.status_code == 422
    doc = soup(r)
    assert doc.select_one("#field-sbp .field-error").get_text() == \
        'a reason is required for this change'
    assert doc.select_one("input[name=sbp]")["value"] == "133"  # what was typed is kept
    # the reason box is shown at the changed field only
    shown = [d.find_parent(class_="field")["id"] for d in doc.select(".reason:not([hidden])")]
    assert shown == ["field-sbp"]
    assert session.execute(select(func.count()).select_from(ValueVersion).where(
        ValueVersion.version == 2)).scalar() == 0
    r = post_form(app_client, PAGE, {"sbp": "133", "reason.sbp": "transcription_error"})
    assert r.status_code == 303
    hist = soup(app_client.get(PAGE + "/history?item=sbp"))
    rows = [[td.get_text() for td in tr.select("td")] for tr in hist.select("table tbody tr")]
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("1", "inv", 'first entry', "—", "120"),
        ("2", "inv", "转录错误 / Transcription error", "120", "133")]
    timeline = soup(app_client.get(PAGE + "/history"))
    assert len(timeline.select("ol.timeline > li")) == 2


def test_field_errors_are_shown_under_each_field(app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    r = post_form(app_client, PAGE, {**VITALS, "weight": "900", "height": "abc"})
    assert r.status_code == 422
    doc = soup(r)
    assert doc.select_one("#field-weight .field-error").get_text() == \
        'must be at most 300'
    assert doc.select_one("#field-height .field-error").get_text() == 'must be a number'


def test_reason_boxes_are_hidden_until_a_field_differs_from_the_saved_value(
        app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    doc = soup(app_client.get(PAGE))
    assert doc.select(".reason") == []  # a first entry needs no reasons
    post_form(app_client, PAGE, VITALS)
    doc = soup(app_client.get(PAGE))
    boxes = doc.select("form.entry .reason")
    assert boxes and all(b.has_attr("hidden") for b in boxes)
    assert doc.select_one("#f-bmi").find_parent(class_="field").select(".reason") == []
    assert doc.select_one("script[src='/static/entry.js']") is not None
    # a range error elsewhere: reasons asked at the changed fields, not at the others
    r = post_form(app_client, PAGE, {"sbp": "133", "weight": "900"})
    assert r.status_code == 422
    doc = soup(r)
    shown = [d.find_parent(class_="field")["id"] for d in doc.select(".reason:not([hidden])")]
    assert shown == ["field-weight", "field-sbp"]


def _stale_form(client: TestClient) -> dict[str, Any]:
    """inv opens version 1, then someone else saves sbp = 150 (version 2)."""
    post_form(client, PAGE, VITALS)
    form = soup(client.get(PAGE)).select_one("form.entry")
    post_form(client, PAGE, {"sbp": "150", "reason.sbp": "transcription_error"})
    data = {el["name"]: el.get("value", "") for el in form.select("input[type=hidden]")}
    data.update(dict(VITALS))
    return data


def test_a_save_on_an_older_version_merges_when_the_fields_differ(
        app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    data = _stale_form(app_client)
    assert data["base_version"] == "1"
    data.update({"weight": "72", "reason.weight": "transcription_error"})
    r = app_client.post(PAGE, data=data, follow_redirects=False)
    assert r.status_code == 303
    doc = soup(app_client.get(PAGE))
    assert doc.select_one(".flash").get_text() == (
        "saved as version 3 (merged with others' changes since version 1)")
    assert doc.select_one("input[name=sbp]")["value"] == "150"  # theirs kept
    assert doc.select_one("input[name=weight]")["value"] == "72"  # mine saved


def test_a_real_conflict_shows_both_values_and_keeps_the_typing(
        app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    data = _stale_form(app_client)
    data.update({"sbp": "118", "reason.sbp": "transcription_error",
                 "weight": "72", "reason.weight": "transcription_error"})
    r = app_client.post(PAGE, data=data, follow_redirects=False)
    assert r.status_code == 409
    doc = soup(r)
    box = doc.select_one("#field-sbp .conflict-choice")
    assert (box.select_one(".theirs").get_text(), box.select_one(".yours").get_text()) == \
        ("150", "118")
    assert [i["value"] for i in box.select("input[type=radio][checked]")] == ["mine"]
    assert doc.select(".conflict-choice") == [box]  # weight was not changed by anyone else
    assert doc.select_one("input[name=sbp]")["value"] == "118"  # typing kept
    assert doc.select_one("input[name=weight]")["value"] == "72"
    assert doc.select_one("input[name=base_version]")["value"] == "2"
    assert doc.select_one(".record-version").get_text() == "2"
    # keep theirs for sbp: the save goes through with sbp 150, weight 72
    r = post_form(app_client, PAGE, {"keep.sbp": "theirs"}, doc=doc)
    assert r.status_code == 303, r.text[-600:]
    doc = soup(app_client.get(PAGE))
    assert doc.select_one("input[name=sbp]")["value"] == "150"
    assert doc.select_one("input[name=weight]")["value"] == "72"


def test_monitor_verifies_queries_and_sees_the_worklist(app_client: TestClient,
                                                        study: None) -> None:
    login(app_client, "inv")
    post_form(app_client, PAGE, VITALS)
    login(app_client, "mon")
    doc = soup(app_client.get(PAGE))
    assert doc.select_one("form.entry") is None  # monitors read, they do not type
    verify = [f for f in doc.select("section.monitor form")
              if "Verify whole form" in f.get_text()][0]
    r = app_client.post(verify["action"], data={i["name"]: i["value"]
                                                for i in verify.select("input")},
                        follow_redirects=False)
    assert r.status_code == 303
    doc = soup(app_client.get(PAGE))
    assert doc.select_one("#field-sbp .sdv.ok") is not None
    qform = doc.select_one("section.monitor form[action$='/queries']")
    data = {i["name"]: i["value"] for i in qform.select("input")}
    data.update({"item": "sbp", "text": "Source shows 128"})
    assert app_client.post(qform["action"], data=data, follow_redirects=False
                           ).status_code == 303
    login(app_client, "inv")
    doc = soup(app_client.get(PAGE))
    answer = doc.select_one("form[action$='/answer']")
    data = {i["name"]: i.get("value", "") for i in answer.select("input[type=hidden]")}
    data.update({"text": "Corrected", "change_value": "1", "value": "128"})
    assert app_client.post(answer["action"], data=data, follow_redirects=False
                           ).status_code == 303
    login(app_client, "mon")
    wl = soup(app_client.get(f"/studies/{STUDY}/monitor"))
    assert "requires verification: changed after SDV" in wl.select_one(
        "#changed-after-sdv").get_text()
    assert wl.select_one("#open-queries tbody td:nth-of-type(4)").get_text() == 'answered'
    doc = soup(app_client.get(PAGE))
    close = doc.select_one("form[action$='/close']")
    data = {i["name"]: i.get("value", "") for i in close.select("input[type=hidden]")}
    data["text"] = "Thank you"
    assert app_client.post(close["action"], data=data, follow_redirects=False
                           ).status_code == 303
    doc = soup(app_client.get(PAGE))
    assert doc.select_one(".query-status").get_text() == 'closed'
    kinds = [li.select_one("strong").get_text() for li in doc.select("ol.thread li")]
    assert kinds == ['opened', 'answered', 'closed']


def test_form_posts_need_the_csrf_token(app_client: TestClient, session: Session,
                                        study: None) -> None:
    login(app_client, "inv")
    r = app_client.post(PAGE, data={"base_version": "0", **VITALS, "csrf_token": "forged"},
                        follow_redirects=False)
    assert r.status_code == 403
    assert session.execute(select(func.count()).select_from(ValueVersion)).scalar() == 0
