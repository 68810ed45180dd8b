"""Identity fields of a subject, validated at entry (SPEC §3, §11.3.4.4 d).

These values exist only in memory and, encrypted, in the code index: never in a clinical table,
a ledger entry or a log line. Every error names the field at fault and never echoes the value.

Resident ID numbers (居民身份证号码) follow GB 11643-1999: 6 digits of region (GB/T 2260), 8 digits
of date of birth (YYYYMMDD), 3 digits of sequence, one check character. The check character is
``"10X98765432"[sum(d_i * w_i) mod 11]`` with weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2 (ISO 7064
MOD 11-2). The region part is checked at province level (the first two digits must be a
province-level code of GB/T 2260; the county table changes yearly and is not shipped), and the
prefecture and county digits must not both be zero.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import phonenumbers
from stdnum.cn import ric

from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _

CLAUSE = "§11.3.4.4 d"
ID_CHECK_CHARS = "10X98765432"  # every check character GB 11643 has
# Province-level codes of GB/T 2260 (incl. 71 Taiwan, 81 Hong Kong, 82 Macao, 83 residence
# permits for Taiwan residents).
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83",
})
_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
MAX_NAME = 100
MAX_MRN = 50
MAX_ADDRESS = 300


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits (``python-stdnum``'s ``cn.ric``)."""
    return str(ric.calc_check_digit(first17 + "0"))  # it ignores the last character


def normalise_resident_id(raw: str) -> str:
    """Full-width characters folded, spaces removed, ``x`` upper-cased (no validation)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", raw)).upper()


def validate_resident_id(raw: str, *, today: dt.date | None = None,
                         field: str = "resident_id") -> str:
    """Return the normalised ID number or raise InvalidInput naming ``field`` and the rule."""
    value = normalise_resident_id(raw)
    if len(value) != 18:
        raise InvalidInput(_("resident ID number must have 18 characters"),
                           field=field, clause=CLAUSE)
    if not _ID_SHAPE.match(value):
        raise InvalidInput(_("resident ID number: 17 digits and a digit or X"), field=field,
                           clause=CLAUSE)
    if value[:2] not in PROVINCES or value[2:6] == "0000":
        raise InvalidInput(_("resident ID number: the region part is not valid"),
                           field=field, clause=CLAUSE)
    birth = _birth_date(value)
    today = today or dt.date.today()
    if birth is None or birth.year < 1900 or birth > today:
        raise InvalidInput(_("resident ID number: the date of birth part is not a valid date"),
                           field=field, clause=CLAUSE)
    if id_check_char(value[:17]) != value[17]:
        raise InvalidInput(_("resident ID number: the check digit is wrong (GB 11643)"),
                           field=field, clause=CLAUSE)
    return value


def _birth_date(value: str) -> dt.date | None:
    try:
        return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def birth_date_of(resident_id: str) -> dt.date:
    """The date of birth encoded in a *validated* ID number."""
    d = _birth_date(resident_id)
    assert d is not None
    return d


def validate_mobile(raw: str, *, field: str = "phone") -> str:
    """A mainland China mobile number: 11 digits starting 13–19; ``+86``/``0086`` prefix, spaces
    and hyphens accepted and removed. Returns the 11 digits."""
    value = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", raw))
    if value.startswith("0086"):
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        number = None
    if (number is None or number.country_code != 86 or not phonenumbers.is_valid_number(number)
            or phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE):
        raise InvalidInput(_("phone: a mainland mobile number of 11 digits starting 13–19"),
                           field=field, clause=CLAUSE)
    return str(number.national_number)


def _text(raw: str | None, *, field: str, max_len: int, required: bool, label: str) -> str | None:
    value = unicodedata.normalize("NFC", raw or "").strip()
    value = re.sub(r"\s+", " ", value)
    if not value:
        if required:
            raise InvalidInput(_("{label} is required").format(label=label),
                               field=field, clause=CLAUSE)
        return None
    if len(value) > max_len:
        raise InvalidInput(_("{label} is longer than {max_len} characters").format(
                               max_len=max_len, label=label),
                           field=field)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in value):
        raise InvalidInput(_("{label} contains control characters").format(label=label),
                           field=field)
    return value


@dataclass(frozen=True)
class Identity:
    """Who a subject is. Built only through :func:`validate_identity`."""

    name: str
    resident_id: str
    phone: str | None
    medical_record_number: str | None
    date_of_birth: dt.date
    address: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "resident_id": self.resident_id, "phone": self.phone,
                "medical_record_number": self.medical_record_number,
                "date_of_birth": self.date_of_birth.isoformat(), "address": self.address}

    @classmethod
    def from_json(cls, d: dict[str, str | None]) -> Identity:
        dob = d["date_of_birth"]
        assert isinstance(dob, str) and isinstance(d["name"], str)
        assert isinstance(d["resident_id"], str)
        return cls(name=d["name"], resident_id=d["resident_id"], phone=d.get("phone"),
                   medical_record_number=d.get("medical_record_number"),
                   date_of_birth=dt.date.fromisoformat(dob), address=d.get("address"))


def validate_identity(*, name: str, resident_id: str, phone: str | None = None,
                      medical_record_number: str | None = None,
                      date_of_birth: str | dt.date | None = None, address: str | None = None,
                      today: dt.date | None = None) -> Identity:
    """Validate every identity field at entry and report every problem at once (the first
    raised, ``details.errors`` naming each field). The date of birth, when given, must agree
    with the one in the ID number; when omitted it is taken from it."""
    errors: dict[str, str] = {}
    clause: list[str | None] = []

    def check(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except InvalidInput as exc:
            errors.setdefault(exc.field or "", exc.message)
            clause.append(exc.clause)
            return None

    clean_name = check(_text, name, field="name", max_len=MAX_NAME, required=True,
                       label=_("Name"))
    rid = check(validate_resident_id, resident_id, today=today)
    clean_phone = check(validate_mobile, phone) if phone and phone.strip() else None
    mrn = check(_text, medical_record_number, field="medical_record_number", max_len=MAX_MRN,
                required=False, label=_("Medical record number"))
    addr = check(_text, address, field="address", max_len=MAX_ADDRESS, required=False,
                 label=_("Address"))
    from_id = birth_date_of(rid) if rid else None
    if date_of_birth is not None and date_of_birth != "":
        check(_matching_birth_date, date_of_birth, from_id)
    if errors:
        field, message = next(iter(errors.items()))
        failed = InvalidInput(message, field=field, clause=next((c for c in clause if c), None))
        failed.details = {"errors": errors}  # type: ignore[attr-defined]
        raise failed
    assert clean_name is not None and rid is not None and from_id is not None
    return Identity(name=clean_name, resident_id=rid, phone=clean_phone,
                    medical_record_number=mrn, date_of_birth=from_id, address=addr)


def _matching_birth_date(date_of_birth: str | dt.date, from_id: dt.date | None) -> None:
    if isinstance(date_of_birth, str):
        try:
            dob = dt.date.fromisoformat(date_of_birth.strip())
        except ValueError as exc:
            raise InvalidInput(_("date_of_birth: use YYYY-MM-DD"),
                               field="date_of_birth") from exc
    else:
        dob = date_of_birth
    if from_id is not None and dob != from_id:
        raise InvalidInput(_("date_of_birth does not match the resident ID number"),
                           field="date_of_birth", clause=CLAUSE)


def compose_resident_id(region: str, birth: dt.date, sequence: int) -> str:
    """A well-formed ID number for synthetic data (demo, tests): region (6 digits), birth date,
    3-digit sequence, and the check character."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("region must be 6 digits and sequence 0–999")
    return first17 + id_check_char(first17)
