"""eCRF metadata (§11.3.4.4 a): REDCap and ODM import, ODM 1.3.2 export validated against the
official schema, versions, publishing, and the logic honoured at entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from factories import SETUP, make_study
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.forms import checks as form_checks
from studies.forms import odm
from studies.forms import service as forms
from studies.forms.models import Form, FormVersion, Item
from studies.forms.schemas import EventIn, ItemUpdate
from studies.kernel.errors import InvalidInput, Locked, RuleViolation
from studies.registry import service as registry

ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = ROOT / "tests" / "data" / "redcap_dictionary.csv"
TODAY = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def schema() -> Any:
    return odm.load_schema()


def imported(session: Session, ledger: Ledger, code: str = "ONC-2026-01") -> forms.ImportResult:
    return forms.import_redcap(session, ledger, actor=SETUP, study_code=code,
                               text=DICTIONARY.read_text(encoding="utf-8"))


def item(session: Session, name: str) -> Item:
    return session.execute(select(Item).where(Item.name == name)).scalars().one()


def count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_real_redcap_dictionary_with_every_common_type_imports(session: Session,
                                                                 ledger: Ledger) -> None:
    make_study(session, ledger)
    result = imported(session, ledger)
    assert [(f["form"], f["items"]) for f in result.forms] == [
        ("demographics", 9), ("vital_signs", 11), ("labs", 5)]
    types = {i.name: (i.field_type, i.data_type) for i in session.execute(select(Item)).scalars()}
    assert types["dob"] == ("text", "date")
    assert types["sbp"] == ("text", "integer")
    assert types["height"] == ("text", "decimal")
    assert types["email"] == ("text", "text") and item(session, "email").text_format == "email"
    assert types["ethnicity"] == ("dropdown", "codelist")
    assert types["symptoms"] == ("checkbox", "codelist") and item(session, "symptoms").multiple
    assert types["pregnant"] == ("yesno", "boolean")
    assert types["smoker"] == ("truefalse", "boolean")
    assert types["bmi"] == ("calc", "decimal")
    assert types["lab_comment"] == ("notes", "text")
    assert types["consent_note"][0] == "descriptive"
    assert types["pain_score"] == ("slider", "integer")
    assert types["lab_report"] == ("file", "file")
    sex = item(session, "sex")
    assert sex.choices[1] == {"code": "2", "label_zh": "女", "label_en": "Female"}
    assert (sex.label_zh, sex.label_en, sex.required) == ("性别", "Sex", True)
    height = item(session, "height")
    assert (height.unit, height.range_min, height.range_max) == ("cm", "50", "250")
    assert item(session, "dob").range_max == "today"
    assert any("record identifier" in w for w in result.warnings)
    [entry] = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "form.import", LedgerEntry.entity_id == item(
            session, "dob").form_version_id)).scalars()
    assert entry.study == "ONC-2026-01"


def test_identifier_flag_makes_a_confirmed_direct_identifier(session: Session,
                                                             ledger: Ledger) -> None:
    imported(session, ledger)
    name = item(session, "patient_name")
    assert (name.classification, name.classification_confirmed, name.data_category,
            name.level) == ("direct_identifier", True, "personal_attributes", 4)


def test_birth_dates_and_postcodes_are_proposed_as_quasi_identifiers(session: Session,
                                                                    ledger: Ledger) -> None:
    imported(session, ledger)
    for name in ("dob", "postcode"):
        i = item(session, name)
        assert (i.classification, i.classification_confirmed) == ("quasi_identifier", False)
    assert item(session, "phone").classification == "direct_identifier"
    hbsag = item(session, "hbsag")
    assert (hbsag.classification, hbsag.level) == ("sensitive", 5)
    assert item(session, "sbp").classification == "clinical"


def test_branching_and_calculations_are_translated_into_the_own_language(
        session: Session, ledger: Ledger) -> None:
    imported(session, ledger)
    assert item(session, "pregnant").show_if == 'sex = "2"'
    assert item(session, "symptoms_other").show_if == 'checked(symptoms, "4") = "1"'
    assert item(session, "bmi").calc == "round(weight / (height / 100) ^ 2, 1)"
    assert item(session, "age_at_visit").calc == 'rounddown(datediff(dob, visit_date, "y"), 0)'


def test_untranslatable_logic_is_reported_by_line_and_kept(session: Session,
                                                           ledger: Ledger) -> None:
    result = imported(session, ledger)
    [warning] = [w for w in result.warnings if "followup_days" in w]
    assert warning.startswith("line 27: followup_days: calculation:")
    i = item(session, "followup_days")
    assert i.source_logic == "datediff([visit_date],'today','d','ymd')"
    assert i.logic_problem and i.calc is None


BAD_TYPE = ('"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
            '"Choices, Calculations, OR Slider Labels"\n'
            'record_id,f,,text,ID,\n'
            'a,f,,text,A,\n'
            'b,f,,sql,B,"select 1"\n'
            'c,f,,radio,C,"1 Male"\n')


def test_unknown_types_and_bad_choices_are_refused_by_line_and_nothing_is_written(
        session: Session, ledger: Ledger) -> None:
    make_study(session, ledger)
    before = (count(session, Form), count(session, Item), count(session, LedgerEntry))
    with pytest.raises(InvalidInput) as e:
        forms.import_redcap(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                            text=BAD_TYPE)
    assert e.value.field == "file"
    assert "line 4: b: unknown REDCap field type 'sql'" in e.value.message
    assert "line 5: c: choice '1 Male' must be 'code, label'" in e.value.message
    assert (count(session, Form), count(session, Item), count(session, LedgerEntry)) == before


@pytest.mark.parametrize("text,expected", [
    ("", "line 1: the file is empty"),
    ("a,b,c\n1,2,3\n", "line 1: not a REDCap data dictionary"),
    ('"Variable / Field Name","Form Name","Field Type","Field Label"\nrecord_id,f,text,"ID\n',
     "line 2: malformed CSV"),
    ('"Variable / Field Name","Form Name","Field Type","Field Label"\nrecord_id,f,text,ID\n'
     "Bad Name,f,text,x\n", "line 3: variable name 'Bad Name'"),
    ('"Variable / Field Name","Form Name","Field Type","Field Label"\nrecord_id,f,text,ID\n'
     "a,f,text,x\na,f,text,y\n", "line 4: variable 'a' is already defined on line 3"),
])
def test_malformed_files_get_a_line_numbered_error(session: Session, ledger: Ledger,
                                                   text: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as e:
        forms.import_redcap(session, ledger, actor=SETUP, study_code="ONC-2026-01", text=text)
    assert expected in e.value.message
    assert count(session, Form) == 0


def test_importing_into_a_missing_study_creates_it_as_a_draft(session: Session,
                                                              ledger: Ledger) -> None:
    result = imported(session, ledger, code="NEW-2026-9")
    assert result.study_created
    study = registry.get_study(session, "NEW-2026-9")
    assert study.status == "draft"
    assert registry.protocol_versions(session, study.id) == []


def test_odm_export_validates_against_the_official_schema(session: Session, ledger: Ledger,
                                                          schema: Any) -> None:
    make_study(session, ledger)
    imported(session, ledger)
    forms.define_event(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                       data=EventIn(name="baseline", label_zh="基线", label_en="Baseline",
                                          form_names=["demographics", "vital_signs", "labs"]))
    data = forms.export_odm(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                            now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    doc = etree.fromstring(data)
    schema.assertValid(doc)
    ns = {"o": odm.NS}
    assert doc.get("ODMVersion") == "1.3.2"
    idef = doc.find(".//o:ItemDef[@OID='I.vital_signs.bmi']", ns)
    assert idef.get("DataType") == "float"
    method = doc.find(".//o:MethodDef[@OID='MT.vital_signs.bmi']/o:FormalExpression", ns)
    assert method.text == "round(weight / (height / 100) ^ 2, 1)"
    cond = doc.find(".//o:ConditionDef[@OID='CD.demographics.pregnant']/o:FormalExpression", ns)
    assert cond.text == 'not sex = "2"'
    assert session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "metadata.export")).scalar_one().study == "ONC-2026-01"


def test_odm_round_trip_keeps_types_classification_and_logic(session: Session, ledger: Ledger,
                                                             schema: Any) -> None:
    make_study(session, ledger)
    imported(session, ledger)
    data = forms.export_odm(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                            now=dt.datetime.now(dt.UTC))
    forms.import_odm(session, ledger, actor=SETUP, study_code="COPY-1", data=data)
    copy = registry.get_study(session, "COPY-1")
    again = forms.export_odm(session, ledger, actor=SETUP, study_code="COPY-1",
                             now=dt.datetime.now(dt.UTC))
    schema.assertValid(etree.fromstring(again))
    [f] = [f for f in forms.forms_of(session, copy.id) if f.name == "vital_signs"]
    v = forms.current_version(session, f)
    assert v is not None
    items = {i.name: i for i in forms.items_of(session, v.id)}
    assert items["bmi"].calc == "round(weight / (height / 100) ^ 2, 1)"
    assert items["symptoms_other"].show_if == 'checked(symptoms, "4") = "1"'
    assert items["symptoms"].multiple and items["height"].unit == "cm"
    assert (items["height"].range_min, items["height"].range_max) == ("50", "250")
    [d] = [f for f in forms.forms_of(session, copy.id) if f.name == "demographics"]
    dv = forms.current_version(session, d)
    assert dv is not None
    ditems = {i.name: i for i in forms.items_of(session, dv.id)}
    assert (ditems["dob"].classification, ditems["dob"].classification_confirmed) == (
        "quasi_identifier", False)
    assert ditems["patient_name"].label_zh == "姓名"


@pytest.mark.parametrize("data,expected", [
    (b"<ODM", "line 1: not well-formed XML"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
     b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><Study OID="S"><MetaDataVersion OID="M" '
     b'Name="m"><FormDef OID="F.a" Name="&e;" Repeating="No"/></MetaDataVersion></Study></ODM>',
     "line"),
    (b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3">\n<Study OID="S">\n<MetaDataVersion '
     b'OID="M" Name="m">\n<FormDef OID="F.a" Name="A" Repeating="No">\n<ItemGroupRef '
     b'ItemGroupOID="IG.x" Mandatory="Yes"/>\n</FormDef></MetaDataVersion></Study></ODM>',
     "line 5: ItemGroupRef to unknown 'IG.x'"),
    (b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><Study OID="S"><MetaDataVersion OID="M" '
     b'Name="m"><FormDef OID="F.a" Name="A" Repeating="No"><ItemGroupRef ItemGroupOID="IG.g" '
     b'Mandatory="Yes"/></FormDef><ItemGroupDef OID="IG.g" Name="g" Repeating="No"><ItemRef '
     b'ItemOID="I.x" Mandatory="No"/></ItemGroupDef>\n<ItemDef OID="I.x" Name="x" '
     b'DataType="integer"><RangeCheck Comparator="GE" SoftHard="Hard"><CheckValue>lots'
     b'</CheckValue></RangeCheck></ItemDef></MetaDataVersion></Study></ODM>',
     "item 'x' (line 2): range bounds must be numbers"),
])
def test_bad_odm_files_are_refused_by_line(session: Session, ledger: Ledger, data: bytes,
                                           expected: str) -> None:
    with pytest.raises(InvalidInput) as e:
        forms.import_odm(session, ledger, actor=SETUP, study_code="ONC-2026-01", data=data)
    assert expected in e.value.message
    assert count(session, Form) == 0
    assert "root:" not in e.value.message


def _confirm_all(session: Session, ledger: Ledger, form: str) -> None:
    v = session.execute(select(FormVersion).join(Form, Form.id == FormVersion.form_id).where(
        Form.name == form)).scalars().first()
    assert v is not None
    for i in forms.items_of(session, v.id):
        if not i.classification_confirmed:
            forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                              form_name=form, number=v.number, item_name=i.name,
                              data=ItemUpdate(confirm_classification=True))


def test_publishing_needs_confirmed_classifications_and_translated_logic(
        session: Session, ledger: Ledger) -> None:
    make_study(session, ledger)
    imported(session, ledger)
    with pytest.raises(RuleViolation) as e:
        forms.publish_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                              form_name="demographics", number=1)
    assert "dob: classification quasi_identifier is only proposed" in e.value.message
    assert e.value.clause == "§11.3.4.4 a"
    _confirm_all(session, ledger, "demographics")
    v = forms.publish_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                              form_name="demographics", number=1)
    assert v.status == "published"
    with pytest.raises(RuleViolation, match="followup_days: untranslated logic"):
        forms.publish_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                              form_name="labs", number=1)
    forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01", form_name="labs",
                      number=1, item_name="followup_days",
                      data=ItemUpdate(calc='datediff(visit_date, lab_date, "d")'
                                            .replace("lab_date", "visit_date")))
    _confirm_all(session, ledger, "labs")
    forms.publish_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="labs", number=1)


def test_published_versions_are_immutable_and_changes_make_a_new_version(
        session: Session, ledger: Ledger) -> None:
    make_study(session, ledger)
    imported(session, ledger)
    _confirm_all(session, ledger, "demographics")
    forms.publish_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="demographics", number=1)
    with pytest.raises(Locked) as e:
        forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="demographics", number=1, item_name="sex",
                          data=ItemUpdate(required=False))
    assert e.value.clause == "§11.3.4.4 a"
    v2 = forms.new_version(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                           form_name="demographics")
    assert v2.number == 2 and v2.status == "draft"
    forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                      form_name="demographics", number=2, item_name="sex",
                      data=ItemUpdate(required=False))
    # a re-import lands in the open draft and leaves the published version alone
    result = imported(session, ledger)
    assert result.forms[0] == {"form": "demographics", "version": 2, "items": 9,
                               "status": "draft"}
    v1_items = forms.items_of(session, forms.get_version(
        session, forms.get_form(session, registry.get_study(session, "ONC-2026-01"),
                                "demographics"), 1).id)
    assert len(v1_items) == 9


def test_item_logic_edits_are_parsed_and_unknown_fields_refused(session: Session,
                                                                ledger: Ledger) -> None:
    make_study(session, ledger)
    imported(session, ledger)
    with pytest.raises(InvalidInput) as e:
        forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="vital_signs", number=1, item_name="sbp",
                          data=ItemUpdate(show_if="__import__('os').system('x')"))
    assert e.value.field == "show_if"
    with pytest.raises(InvalidInput, match="unknown field 'nope'"):
        forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="vital_signs", number=1, item_name="sbp",
                          data=ItemUpdate(show_if="nope = 1"))
    with pytest.raises(InvalidInput, match="level must be 1–5"):
        forms.update_item(session, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="vital_signs", number=1, item_name="sbp",
                          data=ItemUpdate(level=9))


def _check(session: Session, form: str, values: dict[str, Any]) -> form_checks.EntryCheck:
    v = session.execute(select(FormVersion).join(Form, Form.id == FormVersion.form_id).where(
        Form.name == form)).scalars().first()
    assert v is not None
    return form_checks.check_entry(session, form_version_id=v.id, values=values, today=TODAY)


def test_a_hidden_field_is_not_required_and_not_stored(session: Session,
                                                       ledger: Ledger) -> None:
    imported(session, ledger)
    base = {"patient_name": "x", "dob": "1980-05-01", "sex": "1"}
    check = _check(session, "demographics", {**base, "pregnant": "1"})
    assert check.ok and "pregnant" in check.hidden and "pregnant" not in check.values
    check = _check(session, "demographics", {**base, "sex": "2"})
    assert check.errors == {"pregnant": 'required'}


def test_a_calculated_field_is_computed_by_the_server(session: Session,
                                                      ledger: Ledger) -> None:
    imported(session, ledger)
    check = _check(session, "vital_signs", {
        "visit_date": "2026-05-01", "height": "175", "weight": "70.0", "sbp": "120",
        "bmi": "99", "smoker": "0", "symptoms": ["1", "4"], "symptoms_other": "rash"})
    assert check.errors == {}
    assert check.values["bmi"] == "22.9"
    assert check.values["symptoms"] == ["1", "4"] and check.values["symptoms_other"] == "rash"
    assert "cigs_per_day" in check.hidden


def test_entry_checks_give_field_level_errors(session: Session, ledger: Ledger) -> None:
    imported(session, ledger)
    check = _check(session, "vital_signs", {
        "visit_date": "2019-12-31", "height": "abc", "weight": "900", "sbp": "120.5",
        "smoker": "maybe", "symptoms": ["9"], "nonexistent": "1"})
    assert check.errors == {
        "visit_date": 'must be on or after 2020-01-01',
        "height": 'must be a number',
        "weight": 'must be at most 300',
        "sbp": 'must be a whole number',
        "smoker": 'must be yes or no',
        "symptoms": "'9' is not one of the choices",
        "nonexistent": 'no such field on this form'}
    check = _check(session, "demographics", {"patient_name": "x", "dob": "2026-07-01",
                                             "sex": "1", "email": "not-an-email"})
    assert check.errors == {"dob": 'must be on or before 2026-06-01',
                            "email": 'not an e-mail address'}


def _statements(engine: Any) -> list[str]:
    """The SQL statements ``engine`` runs from now on."""
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, stmt, *a: seen.append(stmt))
    return seen


def _committed_study(url: str, ledger: Ledger) -> tuple[Any, Any]:
    """An engine on ``url`` and its sessions, with the study's dictionary imported and the
    demographics form ready to publish, committed."""
    from edc.db import make_engine, session_factory

    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        make_study(s, ledger)
        imported(s, ledger)
        _confirm_all(s, ledger, "demographics")
    return engine, sessions


def test_a_published_versions_design_is_read_once_a_drafts_every_time(
        fresh_url: str, ledger: Ledger) -> None:
    """Data entry reads a form version's design (items, groups) on every view, live check and
    save: a published version's is kept once a transaction that read it has committed, a
    draft's is read again each time, so an edit to the draft shows at once."""
    engine, sessions = _committed_study(fresh_url, ledger)
    with sessions() as s, s.begin():
        published = forms.publish_version(s, ledger, actor=SETUP, study_code="ONC-2026-01",
                                          form_name="demographics", number=1).id
        draft = forms.get_version(s, forms.get_form(s, registry.get_study(s, "ONC-2026-01"),
                                                    "labs"), 1).id
    seen = _statements(engine)
    design_reads = lambda: [q for q in seen if "FROM crf_" in q]  # noqa: E731
    with sessions() as s, s.begin():
        d = forms.design(s, published)
        assert forms.design(s, published) is d  # kept in the transaction already
    assert len(design_reads()) == 3  # the version, its items, its groups: once
    assert d.version.status == "published" and len(d.items) == 9
    assert d.groups and {i.group_id for i in d.items} <= {g.id for g in d.groups}
    # shared by every request of the process, so read-only all the way down
    shown = d.public_groups[0]["items"][0]
    assert shown["name"] == d.items[0].name
    with pytest.raises(TypeError):
        shown["name"] = "changed"  # type: ignore[index]
    with pytest.raises(AttributeError):
        d.public_groups[0]["items"].append(shown)  # type: ignore[attr-defined]
    seen.clear()
    with sessions() as s, s.begin():
        assert forms.design(s, published) is d
        assert [i.name for i in forms.item_rows(s, published)] == [i.name for i in d.items]
        assert not design_reads()  # kept for the process once that transaction committed
        assert forms.design(s, draft).version.status == "draft"
        assert forms.design(s, draft) is not forms.design(s, draft)
    assert len(design_reads()) == 9  # the draft's, read each of the three times
    with sessions() as s, s.begin():
        forms.update_item(s, ledger, actor=SETUP, study_code="ONC-2026-01", form_name="labs",
                          number=1, item_name="hba1c", data=ItemUpdate(required=True))
    with sessions() as s, s.begin():
        assert {i.name: i.required for i in forms.design(s, draft).items}["hba1c"] is True
    engine.dispose()


def test_a_publishing_that_rolls_back_leaves_the_draft_read_afresh(
        fresh_url: str, ledger: Ledger) -> None:
    """A transaction that publishes a draft, reads its design and then rolls back keeps
    nothing: the version is a draft again, and its edits show."""
    engine, sessions = _committed_study(fresh_url, ledger)
    with sessions() as s:
        s.begin()
        vid = forms.publish_version(s, ledger, actor=SETUP, study_code="ONC-2026-01",
                                    form_name="demographics", number=1).id
        assert forms.design(s, vid).version.status == "published"
        s.rollback()
    with sessions() as s, s.begin():
        forms.update_item(s, ledger, actor=SETUP, study_code="ONC-2026-01",
                          form_name="demographics", number=1, item_name="sex",
                          data=ItemUpdate(required=False))
    with sessions() as s, s.begin():
        d = forms.design(s, vid)
        assert d.version.status == "draft"
        assert {i.name: i.required for i in d.items}["sex"] is False
    engine.dispose()
