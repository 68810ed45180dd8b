"""The field data types: one :class:`DataType` per type in :data:`DATA_TYPES`.

**A new data type is one entry here.** Everything the system does differently by data type is
a field of its entry: how an entered value is checked and stored (with the bilingual reason it
is refused), range bounds, the ODM 1.3.2 ``DataType`` written and read, the REDCap field types
and text validations that import as it, the HTML input, and how an extract treats it (the
generalisation of a quasi-identifier, the LDS treatment, its part in a PUF aggregate). The
importers, the entry checks, the ODM export, the entry page and the extract build look the
type up here instead of comparing names.

Field *kinds* (``descriptive``, ``calc``, ``notes``, ``dropdown`` … — :data:`FIELD_TYPES` in
:mod:`studies.forms.models`) are a different axis: how a field is shown and whether it is
entered or computed. Each field type (REDCap's names) holds one data type (``field_types``),
except that a ``text`` field's REDCap validation may make it a number or a date.

Pure: imports nothing of the project, so every domain after ``forms`` may use it. Phone
numbers are checked with ``phonenumbers`` (Google's libphonenumber; China by default) and
resident ID numbers with ``python-stdnum`` (``cn.ric``, GB 11643).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import phonenumbers
from stdnum.cn import ric

from studies.kernel.i18n import LazyText, _, _l

MAX_TEXT = 10000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,}$")


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda s: compiled.match(s) is not None


def _phone(s: str) -> bool:
    """A valid phone number (libphonenumber): a Chinese one, or any with its +country code."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(s, "CN"))
    except phonenumbers.NumberParseException:
        return False


# A text format checked at entry: its check and the reason a value is refused.
TEXT_FORMAT_CHECKS: dict[str, tuple[Callable[[str], bool], LazyText]] = {
    "email": (_matches(_EMAIL.pattern), _l("not an e-mail address")),
    "phone": (_phone, _l("not a phone number")),
    "postcode": (_matches(r"^[0-9]{6}$"), _l("not a postcode: 6 digits")),
    "postcode_ca": (_matches(r"^[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9]$"),
                    _l("not a Canadian postal code: A1A 1A1")),
    "id_number": (ric.is_valid, _l("not a valid resident ID number (GB 11643)")),
    "mm_ss": (_matches(r"^[0-5][0-9]:[0-5][0-9]$"), _l("must be minutes:seconds MM:SS")),
    "alpha": (_matches(r"^[A-Za-z]+$"), _l("letters only")),
}
# Decimal places a number format allows (REDCap's number_1dp … number_4dp): at most that many;
# written to ODM as the ItemDef's SignificantDigits.
DECIMAL_PLACES: dict[str, int] = {f"{n}dp": n for n in range(1, 5)}
_TIME = {None: (re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
                _l("must be a time HH:MM")),
         "hh_mm_ss": (re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"),
                      _l("must be a time HH:MM:SS"))}
YES_NO: tuple[dict[str, str], ...] = ({"code": "1", "label_zh": "是", "label_en": "Yes"},
                                      {"code": "0", "label_zh": "否", "label_en": "No"})

# How an extract treats a type: the kind of value it holds for de-identification, a
# ``deid.table6.Kind`` — which Table 6 floor it gets and which hierarchy the k-anonymity search
# climbs (the rows of ``deid/table6.py``). The extract refines it by the item's text format and
# name (an age, a birth date, a postcode: ``studies.extracts.deidentify.kind_of``).
DeidKind = Literal["direct", "number", "date", "datetime", "coded", "text"]


class EnteredItem(Protocol):
    """What checking an entered value reads of its item (a stored ``Item``)."""

    @property
    def choices(self) -> list[dict[str, str]]: ...
    @property
    def multiple(self) -> bool: ...
    @property
    def range_min(self) -> str | None: ...
    @property
    def range_max(self) -> str | None: ...
    @property
    def text_format(self) -> str | None: ...


Parse = Callable[[EnteredItem, Any, dt.date], Any]


@dataclass(frozen=True)
class DataType:
    """One data type and everything that differs by it.

    ``parse(item, raw, today)`` turns a submitted value into the value stored (JSON-friendly),
    checking the item's choices, range and text format, or raises ``ValueError`` with the
    bilingual reason. ``read_bound`` normalises a range bound of an imported dictionary (or
    raises ``ValueError`` with what it is not); ``None`` means the type takes no range.
    ``bound_ok`` says whether a stored bound fits the type (checked before a form is stored).
    """

    name: str
    parse: Parse
    odm: str                                   # the ODM ItemDef DataType written
    odm_in: tuple[str, ...] = ()               # ODM DataTypes read as this type
    field_types: tuple[str, ...] = ()          # field types (REDCap's) holding this type
    redcap_validations: Mapping[str, str | None] = field(default_factory=dict)
    #                                            REDCap text validation → our text format
    read_bound: Callable[[str], str] | None = None
    bound_ok: Callable[[str], bool] = lambda value: False  # no range
    numeric: bool = False      # a quantity: may carry a unit; summarised in a PUF
    coded: bool = False        # one of fixed codes: radio buttons; a PUF dimension
    code_list: bool = False    # the codes are the item's own list: an ODM CodeList, may be
    #                            multiple or a dropdown, a label column in CSV exports
    choices: tuple[dict[str, str], ...] = ()   # fixed codes of the type (an item may relabel)
    html_input: str = "text"                   # the <input type> of the entry page
    html_attrs: Mapping[str, str] = field(default_factory=dict)
    deid_kind: DeidKind = "coded"              # in an extract: its Table 6 floor and hierarchy


# ---- parsing entered values ----------------------------------------------------------------

def _single(raw: Any) -> Any:
    if isinstance(raw, list | dict):
        raise ValueError(_("a single value is expected"))
    return raw


def _parse_code(item: EnteredItem, raw: Any, today: dt.date) -> Any:
    codes = {c["code"] for c in item.choices}
    if item.multiple:
        vals = raw if isinstance(raw, list) else [raw]
        vals = [str(x) for x in vals]
        bad = [x for x in vals if x not in codes]
        if bad:
            raise ValueError(_("{value!r} is not one of the choices").format(value=bad[0]))
        return sorted(set(vals), key=lambda c: [x["code"] for x in item.choices].index(c))
    if str(raw) not in codes:
        raise ValueError(_("{raw!r} is not one of the choices").format(raw=raw))
    return str(raw)


def _parse_boolean(item: EnteredItem, raw: Any, today: dt.date) -> Any:
    s = str(_single(raw)).strip().lower()
    if s in ("1", "true", "yes"):
        return "1"
    if s in ("0", "false", "no"):
        return "0"
    raise ValueError(_("must be yes or no"))


def _parse_number(integer: bool) -> Parse:
    def parse(item: EnteredItem, raw: Any, today: dt.date) -> Any:
        s = str(_single(raw)).strip()
        try:
            d = Decimal(s)
            if not d.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise ValueError(_("must be a number")) from None
        if integer and d != d.to_integral_value():
            raise ValueError(_("must be a whole number"))
        for bound, ok, rule in ((item.range_min, lambda b: d >= b, _l("must be at least {bound}")),
                                (item.range_max, lambda b: d <= b, _l("must be at most {bound}"))):
            if bound is not None and not ok(Decimal(bound)):
                raise ValueError(rule.format(bound=bound))
        places = DECIMAL_PLACES.get(item.text_format or "")
        exponent = d.as_tuple().exponent
        if places is not None and isinstance(exponent, int) and -exponent > places:
            raise ValueError(_("at most {places} decimal place(s)").format(places=places))
        return str(int(d)) if integer else s
    return parse


def _parse_time(item: EnteredItem, raw: Any, today: dt.date) -> Any:
    s = str(_single(raw)).strip()
    pattern, reason = _TIME.get(item.text_format, _TIME[None])
    if not pattern.match(s):
        raise ValueError(reason)
    return s


def _parse_when(with_time: bool) -> Parse:
    def parse(item: EnteredItem, raw: Any, today: dt.date) -> Any:
        s = str(_single(raw)).strip()
        try:
            day = dt.datetime.fromisoformat(s).date() if with_time else dt.date.fromisoformat(s)
        except ValueError:
            raise ValueError(_("must be an ISO date and time") if with_time
                             else _("must be a date YYYY-MM-DD")) from None
        for bound, is_min in ((item.range_min, True), (item.range_max, False)):
            if bound is None:
                continue
            limit = today if bound == "today" else dt.date.fromisoformat(bound[:10])
            if (is_min and day < limit) or (not is_min and day > limit):
                rule = _("must be on or after {day}") if is_min else _("must be on or before {day}")
                raise ValueError(rule.format(day=limit.isoformat()))
        return s
    return parse


def _parse_text(item: EnteredItem, raw: Any, today: dt.date) -> Any:
    s = str(_single(raw)).strip()
    if len(s) > MAX_TEXT:
        raise ValueError(_("longer than {MAX_TEXT} characters").format(MAX_TEXT=MAX_TEXT))
    check = TEXT_FORMAT_CHECKS.get(item.text_format or "")
    if check is not None and not check[0](s):
        raise ValueError(check[1])
    return s


# ---- range bounds ----------------------------------------------------------------------------

def _number_bound(integer: bool) -> Callable[[str], str]:
    def read(value: str) -> str:
        try:
            d = Decimal(value)
            if not d.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise ValueError("is not a number") from None
        if integer and d != d.to_integral_value():
            raise ValueError("is not an integer")
        return format(d.normalize(), "f")
    return read


def _number_bound_ok(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _when_bound(with_time: bool) -> Callable[[str], str]:
    def read(value: str) -> str:
        if value.lower() in ("today", "now"):
            return "today"
        try:
            if with_time:
                dt.datetime.fromisoformat(value)
            else:
                dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("is not a " + ("date and time" if with_time
                                            else "YYYY-MM-DD date")) from None
        return value
    return read


def _when_bound_ok(value: str) -> bool:
    if value == "today":
        return True
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


# ---- the registry ----------------------------------------------------------------------------

_ENTRIES = (
    DataType(
        "text", _parse_text, odm="text", odm_in=("text", "string"),
        field_types=("text", "notes", "descriptive"),
        redcap_validations={
            "email": "email", "phone": "phone", "phone_australia": "phone",
            # REDCap's zipcode is read as this system's postcode: a Chinese one, 6 digits
            "zipcode": "postcode", "postalcode_canada": "postcode_ca",
            "postalcode_china": "postcode", "alpha_only": "alpha", "time_mm_ss": "mm_ss"},
        deid_kind="text"),
    DataType(
        "integer", _parse_number(integer=True), odm="integer", odm_in=("integer",),
        field_types=("slider",), redcap_validations={"integer": None, "int": None},
        read_bound=_number_bound(integer=True), bound_ok=_number_bound_ok, numeric=True,
        html_attrs={"inputmode": "decimal"}, deid_kind="number"),
    DataType(
        "decimal", _parse_number(integer=False), odm="float", odm_in=("float", "double"),
        field_types=("calc",),
        redcap_validations={"number": None, "number_1dp": "1dp", "number_2dp": "2dp",
                            "number_3dp": "3dp", "number_4dp": "4dp",
                            "number_comma_decimal": None, "float": None},
        read_bound=_number_bound(integer=False), bound_ok=_number_bound_ok, numeric=True,
        html_attrs={"inputmode": "decimal"}, deid_kind="number"),
    DataType(
        "date", _parse_when(with_time=False), odm="date", odm_in=("date",),
        redcap_validations={"date_ymd": None, "date_mdy": None, "date_dmy": None},
        read_bound=_when_bound(with_time=False), bound_ok=_when_bound_ok,
        html_input="date",
        html_attrs={"placeholder": "YYYY-MM-DD", "pattern": r"\d{4}-\d{2}-\d{2}"},
        deid_kind="date"),
    DataType(
        "datetime", _parse_when(with_time=True), odm="datetime", odm_in=("datetime",),
        redcap_validations={"datetime_ymd": None, "datetime_mdy": None, "datetime_dmy": None,
                            "datetime_seconds_ymd": None, "datetime_seconds_mdy": None,
                            "datetime_seconds_dmy": None},
        read_bound=_when_bound(with_time=True), bound_ok=_when_bound_ok,
        html_input="datetime-local", deid_kind="datetime"),
    DataType(
        "time", _parse_time, odm="time", odm_in=("time",),
        redcap_validations={"time": None, "time_hh_mm_ss": "hh_mm_ss"},
        html_input="time", html_attrs={"placeholder": "HH:MM"}, deid_kind="text"),
    # ODM: a CodeListRef makes an item a codelist (its values are written as text).
    DataType(
        "codelist", _parse_code, odm="text",
        field_types=("dropdown", "radio", "checkbox"), coded=True, code_list=True),
    DataType(
        "boolean", _parse_boolean, odm="boolean", odm_in=("boolean",),
        field_types=("yesno", "truefalse"), coded=True, choices=YES_NO),
    # REDCap's file field: the value is the id of an upload (studies/entry/files.py).
    DataType(
        "file", _parse_text, odm="base64Binary", odm_in=("base64Binary",),
        field_types=("file",), deid_kind="direct"),
)
DATA_TYPES: dict[str, DataType] = {t.name: t for t in _ENTRIES}

# Derived look-ups for the importers.
CODE_LIST = next(t.name for t in _ENTRIES if t.code_list)  # an item with an ODM CodeListRef
ODM_IN: dict[str, str] = {o: t.name for t in _ENTRIES for o in t.odm_in}
BY_FIELD_TYPE: dict[str, str] = {f: t.name for t in _ENTRIES for f in t.field_types}
REDCAP_VALIDATIONS: dict[str, tuple[str, str | None]] = {
    v: (t.name, fmt) for t in _ENTRIES for v, fmt in t.redcap_validations.items()}
