"""The data-type registry (studies/forms/datatypes.py) is the one source of what differs by
data type: the importers produce only its types, the ODM export writes only its DataTypes,
each type's entered values round-trip, and no other module compares a data type to a name."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from studies.forms import models, odm, redcap
from studies.forms.datatypes import (
    BY_FIELD_TYPE,
    CODE_LIST,
    DATA_TYPES,
    ODM_IN,
    REDCAP_VALIDATIONS,
)
from studies.forms.models import Item
from studies.forms.spec import FormSpec, GroupSpec, ItemSpec
from studies.kernel import i18n

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 6, 1)
CHOICES = [{"code": "1", "label_zh": "是", "label_en": "Yes"},
           {"code": "2", "label_zh": "否", "label_en": "No"}]
# A value entered as typed → as stored, and one refused: a new type needs a line here.
SAMPLES: dict[str, tuple[Any, Any, Any]] = {
    "text": (" free text ", "free text", "x" * 10001),
    "integer": (" 42 ", "42", "4.2"),
    "decimal": ("36.60", "36.60", "abc"),
    "date": ("2026-05-01", "2026-05-01", "01/05/2026"),
    "datetime": ("2026-05-01T10:30", "2026-05-01T10:30", "2026-05-01 soon"),
    "time": (" 09:30 ", "09:30", "25:99"),
    "codelist": ("2", "2", "3"),
    "boolean": ("yes", "1", "maybe"),
    "file": ("report.pdf", "report.pdf", ["a", "b"]),
}


def item(data_type: str, **kw: Any) -> Item:
    return Item(name="a", field_type="text", data_type=data_type, label_zh="a", label_en="a",
                form_version_id="v", group_id="g", position=0, choices=CHOICES, **kw)


def test_every_type_has_a_sample_and_the_tables_use_the_registry() -> None:
    assert set(SAMPLES) == set(DATA_TYPES)
    assert models.DATA_TYPES == tuple(DATA_TYPES)


@pytest.mark.parametrize("name", list(DATA_TYPES))
def test_an_entered_value_round_trips(name: str) -> None:
    t = DATA_TYPES[name]
    entered, stored, refused = SAMPLES[name]
    assert t.parse(item(name), entered, TODAY) == stored
    assert t.parse(item(name), stored, TODAY) == stored  # a stored value enters unchanged
    with pytest.raises(ValueError) as refusal:  # refused with a reason in the reader's language
        t.parse(item(name), refused, TODAY)
    assert str(refusal.value) and not re.search(r"[\u4e00-\u9fff]", str(refusal.value))
    with i18n.language("zh"), pytest.raises(ValueError, match=r"[\u4e00-\u9fff]"):
        t.parse(item(name), refused, TODAY)


def test_range_bounds_exist_for_the_types_that_take_them() -> None:
    for name, t in DATA_TYPES.items():
        if t.read_bound is None:
            assert not t.bound_ok("1") and not t.bound_ok("today"), name
            continue
        bound = "today" if "date" in name else "10"
        assert t.bound_ok(t.read_bound(bound)), name
        with pytest.raises(ValueError):
            t.parse(item(name, range_max=t.read_bound("2000-01-01" if "date" in name else "1")),
                    SAMPLES[name][0], TODAY)


def test_every_type_the_redcap_importer_produces_is_an_entry() -> None:
    assert set(BY_FIELD_TYPE) == set(redcap.FIELD_TYPES) == set(models.FIELD_TYPES)
    assert redcap.VALIDATIONS is REDCAP_VALIDATIONS
    assert all(fmt is None or fmt in models.TEXT_FORMATS for _, fmt in REDCAP_VALIDATIONS.values())
    can = set(BY_FIELD_TYPE.values()) | {t for t, _ in REDCAP_VALIDATIONS.values()}
    assert can <= set(DATA_TYPES)
    d = redcap.parse_dictionary((ROOT / "tests/data/redcap_dictionary.csv").read_text("utf-8"))
    assert {i.data_type for f in d.forms for i in f.items()} <= can


def test_every_odm_datatype_written_is_an_entry_and_reads_back() -> None:
    items = [ItemSpec(name=f"i_{n}", field_type="dropdown" if t.code_list else "text",
                      data_type=n, label_zh=n, label_en=n,
                      choices=CHOICES if t.code_list else [dict(c) for c in t.choices])
             for n, t in DATA_TYPES.items()]
    form = FormSpec("f", "f", "f", [GroupSpec("g", "g", "g", items=items)])
    xml = odm.export_metadata(study_code="S", title_zh="t", title_en="t", protocol_label="1",
                              mdv_name="m", forms=[form], events=[],
                              now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    odm.load_schema().assertValid(etree.fromstring(xml))
    written = {d.get("Name"): d.get("DataType") for d in etree.fromstring(xml).iter(
        f"{{{odm.NS}}}ItemDef")}
    assert written == {f"i_{n}": t.odm for n, t in DATA_TYPES.items()}
    for n, t in DATA_TYPES.items():
        assert n == CODE_LIST or ODM_IN[t.odm] == n  # what a type writes reads back as it
    back = odm.parse_metadata(xml).forms[0].items()
    assert [i.data_type for i in back] == list(DATA_TYPES)


def _compares_data_type_to_a_name(tree: ast.AST) -> list[int]:
    def is_data_type(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "data_type") or (
            isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and node.slice.value == "data_type")

    def is_name(node: ast.AST) -> bool:
        return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or (
            isinstance(node, ast.Tuple | ast.List | ast.Set) and any(map(is_name, node.elts)))

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(is_data_type, sides)) and any(map(is_name, sides)):
                lines.append(node.lineno)
    return lines


def test_no_module_compares_a_data_type_to_a_name() -> None:
    found = []
    for path in sorted([*(ROOT / "studies").rglob("*.py"), *(ROOT / "edc").rglob("*.py")]):
        for line in _compares_data_type_to_a_name(ast.parse(path.read_text("utf-8"))):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == [], "look the type up in studies/forms/datatypes.py instead"
    assert _compares_data_type_to_a_name(ast.parse('x = i.data_type in ("date", "datetime")'))


def test_the_registry_imports_nothing_of_the_project() -> None:
    tree = ast.parse((ROOT / "studies/forms/datatypes.py").read_text("utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names} | {n.module or "" for n in ast.walk(tree)
                                     if isinstance(n, ast.ImportFrom)}
    imported -= {"studies.kernel.i18n"}  # the one home of translation, beneath every layer
    assert not {m.split(".")[0] for m in imported} & {"studies", "edc", "audit_trail", "deid"}
