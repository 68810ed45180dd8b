"""Plain descriptions of forms, built by the importers and written to tables by the service.

Keeping the parsed shape apart from the tables lets an import check a whole file before
anything is written (nothing half-imported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studies.forms.datatypes import DATA_TYPES

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CODE_RE = re.compile(r"^-?[A-Za-z0-9_.]{1,40}$")


@dataclass
class ItemSpec:
    name: str
    field_type: str
    data_type: str
    label_zh: str
    label_en: str
    line: int | None = None
    help_zh: str | None = None
    help_en: str | None = None
    unit: str | None = None
    text_format: str | None = None
    range_min: str | None = None
    range_max: str | None = None
    required: bool = False
    multiple: bool = False
    choices: list[dict[str, str]] = field(default_factory=list)
    show_if: str | None = None
    calc: str | None = None
    source_logic: str | None = None
    logic_problem: str | None = None
    matrix_group: str | None = None
    classification: str = "clinical"
    classification_confirmed: bool = True
    data_category: str = "health_status"
    level: int = 3


@dataclass
class GroupSpec:
    name: str
    label_zh: str
    label_en: str
    repeating: bool = False
    items: list[ItemSpec] = field(default_factory=list)


@dataclass
class FormSpec:
    name: str
    label_zh: str
    label_en: str
    groups: list[GroupSpec] = field(default_factory=list)

    def items(self) -> list[ItemSpec]:
        return [i for g in self.groups for i in g.items]


@dataclass
class EventSpec:
    name: str
    label_zh: str
    label_en: str
    repeating: bool = False
    form_names: list[str] = field(default_factory=list)


@dataclass
class Dictionary:
    """What an importer read: forms (and, from ODM, events), plus line-numbered warnings."""

    forms: list[FormSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# "中文 English": Chinese (with its own punctuation and digits) first, then text with no Chinese.
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_ZH_THEN_EN = re.compile(rf"^(.*[{_CJK}][^A-Za-z]*?)\s+([A-Za-z][^{_CJK}]*)$")


def split_label(text: str) -> tuple[str, str]:
    """``"出生日期 / Date of birth"`` or ``"出生日期 Date of birth"`` → (zh, en); a label in
    one language serves both."""
    text = (text or "").strip()
    if " / " in text:
        zh, en = text.split(" / ", 1)
        return zh.strip(), en.strip()
    m = _ZH_THEN_EN.match(text)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return text, text


_DIRECT = re.compile(r"(^|_)(name|full_?name|first_?name|last_?name|surname|id_?(no|num|number|"
                     r"card)|idcard|ssn|mrn|medical_record|phone|mobile|tel|email|address|"
                     r"street)(_|$)|姓名|身份证|手机|电话|住址|病历号|邮箱", re.I)
_QUASI = re.compile(r"(^|_)(dob|birth_?date|date_?of_?birth|birth|zip|zip_?code|postcode|"
                    r"postal_?code|post_?code|city|county|district|ethnic(ity)?|occupation|"
                    r"admission_?date|visit_?date|discharge_?date|sex|gender)(_|$)|出生|邮编|"
                    r"邮政编码|民族|职业|县|区|性别", re.I)
_SENSITIVE = re.compile(r"hiv|aids|hepatitis|hbsag|hcv|syphilis|乙肝|丙肝|梅毒|艾滋|性病|"
                        r"psychiatric|精神|genetic|基因", re.I)


def propose_classification(item: ItemSpec, identifier_flag: bool) -> None:
    """Classify an imported item (§11.3.4.4 a, Table 1, §6.2).

    An item flagged as an identifier is a confirmed direct identifier. Names, ID numbers,
    phones, dates of birth, postcodes and the like, and sensitive diagnoses (HIV, hepatitis…)
    are *proposed* for the administrator to confirm before the form can be published.
    """
    text = f"{item.name} {item.label_zh} {item.label_en}"
    if identifier_flag:
        item.classification, item.classification_confirmed = "direct_identifier", True
    elif item.text_format in ("email", "phone", "id_number") or _DIRECT.search(text):
        item.classification, item.classification_confirmed = "direct_identifier", False
    elif (item.text_format in ("postcode", "postcode_ca") or _QUASI.search(text)
          or DATA_TYPES[item.data_type].deid_kind in ("date", "datetime")):
        item.classification, item.classification_confirmed = "quasi_identifier", False
    elif _SENSITIVE.search(text):
        item.classification, item.classification_confirmed = "sensitive", False
    else:
        item.classification, item.classification_confirmed = "clinical", True
    item.data_category, item.level = default_category_level(item.classification)


def default_category_level(classification: str) -> tuple[str, int]:
    return {"direct_identifier": ("personal_attributes", 4),
            "quasi_identifier": ("personal_attributes", 3),
            "sensitive": ("health_status", 5)}.get(classification, ("health_status", 3))
