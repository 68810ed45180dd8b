"""Nothing lost when a REDCap dictionary comes in: each validation becomes a check enforced at
entry and the right ODM DataType / SignificantDigits; "中文 English" labels are split; dates
and sex are proposed as quasi-identifiers; phones and resident ID numbers are checked with
phonenumbers and python-stdnum."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from studies.forms import odm, redcap
from studies.forms.datatypes import DATA_TYPES
from studies.forms.spec import ItemSpec

HEADER = ('"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
          '"Choices, Calculations, OR Slider Labels","Field Note",'
          '"Text Validation Type OR Show Slider Number","Text Validation Min",'
          '"Text Validation Max",Identifier?,"Branching Logic (Show field only if...)",'
          '"Required Field?"\n')
ROWS = """record_id,visit,,text,Record ID,,,,,,,,
visit_date,visit,,text,访视日期 Visit date,,,date_ymd,,,,,
sample_date,visit,,text,采样日期 Sample date,,,date_ymd,,,,,
sex,visit,,radio,性别 Sex,"1, 男 Male | 2, 女 Female",,,,,,,
dose_time,visit,,text,给药时间 Time of dose,,,time,,,,,
ecg_time,visit,,text,心电图时间,,,time_hh_mm_ss,,,,,
walk,visit,,text,步行用时 Walk time,,,time_mm_ss,,,,,
weight,visit,,text,体重 Weight,,kg,number_1dp,,,,,
glucose,visit,,text,血糖 Glucose,,,number_2dp,,,,,
zip,visit,,text,邮编 Postcode,,,zipcode,,,,,
postcode,visit,,text,邮政编码 Postcode,,,postalcode_china,,,,,
mobile,visit,,text,手机 Mobile,,,phone,,,,,
"""
TODAY = dt.date(2026, 12, 1)


def _items() -> dict[str, ItemSpec]:
    d = redcap.parse_dictionary(HEADER + ROWS)
    return {i.name: i for f in d.forms for i in f.items()}


def _ok(item: ItemSpec, value: str) -> Any:
    return DATA_TYPES[item.data_type].parse(item, value, TODAY)


def _refused(item: ItemSpec, value: str) -> str:
    with pytest.raises(ValueError) as exc:
        _ok(item, value)
    return str(exc.value)


def test_time_validations_are_enforced() -> None:
    items = _items()
    assert _ok(items["dose_time"], "08:30") == "08:30"
    for bad in ("25:99", "abc", "8:30:00"):
        assert "HH:MM" in _refused(items["dose_time"], bad)
    assert _ok(items["ecg_time"], "23:59:59") == "23:59:59"
    _refused(items["ecg_time"], "23:59")
    assert _ok(items["walk"], "05:30") == "05:30"
    _refused(items["walk"], "5 min")


def test_number_precision_is_enforced() -> None:
    items = _items()
    assert _ok(items["weight"], "70.5") == "70.5" and _ok(items["weight"], "70") == "70"
    assert "1 decimal place(s)" in _refused(items["weight"], "70.55")
    assert _ok(items["glucose"], "4.12") == "4.12"
    assert "2 decimal place(s)" in _refused(items["glucose"], "4.123")


def test_postcodes_and_phones_are_enforced() -> None:
    items = _items()
    assert _ok(items["zip"], "100005") == "100005"  # REDCap's zipcode: a Chinese postcode
    for bad in ("abc", "1234567", "12345-6789"):
        assert "6 digits" in _refused(items["zip"], bad)
    assert _ok(items["postcode"], "100005") == "100005"
    for bad in ("abc", "1234567", "10000"):
        _refused(items["postcode"], bad)
    assert _ok(items["mobile"], "13800138000") and _ok(items["mobile"], "+44 20 7946 0958")
    for bad in ("12345678901", "123-456", "phone"):
        _refused(items["mobile"], bad)


def test_resident_id_numbers_are_checked_with_stdnum() -> None:
    item = ItemSpec(name="idno", field_type="text", data_type="text", label_zh="身份证号",
                    label_en="ID", text_format="id_number")
    assert _ok(item, "11010519491231002X")
    _refused(item, "110105194912310021")  # wrong check character


def test_odm_has_the_time_type_and_the_digits() -> None:
    d = redcap.parse_dictionary(HEADER + ROWS)
    data = odm.export_metadata(study_code="T-1", title_zh="研究", title_en="Study",
                               protocol_label="1.0", mdv_name="v1", forms=d.forms, events=[],
                               now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    root = etree.fromstring(data)
    assert odm.load_schema().validate(root)
    defs = {e.get("Name"): e for e in root.iter(f"{{{odm.NS}}}ItemDef")}
    assert defs["dose_time"].get("DataType") == "time"
    assert defs["weight"].get("DataType") == "float"
    assert defs["weight"].get("SignificantDigits") == "1"
    assert defs["glucose"].get("SignificantDigits") == "2"
    back = {i.name: i for f in odm.parse_metadata(data).forms for i in f.items()}
    assert (back["dose_time"].data_type, back["weight"].text_format) == ("time", "1dp")


def test_bilingual_labels_without_a_slash_are_split() -> None:
    items = _items()
    assert (items["visit_date"].label_zh, items["visit_date"].label_en) == ("访视日期",
                                                                            "Visit date")
    assert items["sex"].choices[0] == {"code": "1", "label_zh": "男", "label_en": "Male"}
    assert (items["ecg_time"].label_zh, items["ecg_time"].label_en) == ("心电图时间", "心电图时间")


def test_dates_and_sex_are_proposed_as_quasi_identifiers() -> None:
    items = _items()
    for name in ("visit_date", "sample_date", "sex"):
        assert items[name].classification == "quasi_identifier", name
        assert not items[name].classification_confirmed  # proposed, for the administrator
    assert items["weight"].classification == "clinical"


CHOICES = '"1, 无困难 None | 2, 有困难 Some"'
MATRIX = f"""record_id,qol,,text,Record ID,,,,,,,,,,,
mobility,qol,生活质量 Quality of life,radio,行动能力 Mobility,{CHOICES},,,,,,,,,,qol_matrix
selfcare,qol,,radio,自我照顾 Self-care,{CHOICES},,,,,,,,,,qol_matrix
"""
MATRIX_HEADER = HEADER.rstrip("\n") + ',"Custom Alignment","Question Number (surveys only)",' \
    '"Matrix Group Name"\n'


def test_a_matrix_group_is_kept_through_the_dictionary_and_odm() -> None:
    d = redcap.parse_dictionary(MATRIX_HEADER + MATRIX)
    items = {i.name: i for f in d.forms for i in f.items()}
    assert items["mobility"].matrix_group == items["selfcare"].matrix_group == "qol_matrix"
    rows = {r["field_name"]: r for r in redcap.dictionary_rows(d.forms)}
    assert rows["selfcare"]["matrix_group_name"] == "qol_matrix"
    again = redcap.parse_dictionary(redcap.dictionary_csv(d.forms))
    assert [i.matrix_group for f in again.forms for i in f.items()] == ["qol_matrix"] * 2
    data = odm.export_metadata(study_code="T-1", title_zh="研究", title_en="Study",
                               protocol_label="1.0", mdv_name="v1", forms=d.forms, events=[],
                               now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    back = {i.name: i for f in odm.parse_metadata(data).forms for i in f.items()}
    assert back["mobility"].matrix_group == "qol_matrix"


def test_a_matrix_of_text_fields_is_refused_with_its_line() -> None:
    bad = MATRIX.replace("selfcare,qol,,radio", "selfcare,qol,,text")
    with pytest.raises(redcap.DictionaryError) as exc:
        redcap.parse_dictionary(MATRIX_HEADER + bad)
    assert "line 4: selfcare: a matrix group holds radio or checkbox fields" in str(exc.value)
