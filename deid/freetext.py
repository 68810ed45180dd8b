"""Scrub direct identifiers out of free text (§10.2 a, Table 6 "free-text fields scrubbed").

Finds and masks, in this order:

* ``id_number`` - 18-character resident identity numbers (GB 11643-1999) whose check character
  is right: weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2 on the first 17 digits, check character
  ``"10X98765432"[sum % 11]``. 18-digit strings with a wrong check character (order numbers,
  sample barcodes) are left alone;
* ``phone`` - mainland mobile numbers (``1[3-9]`` + 9 digits, optional ``+86``/``86`` prefix and
  ``-``/space separators as 3-4-4) and landlines with an area code (``010-12345678``,
  ``0755 1234567``);
* ``email`` - e-mail addresses;
* ``name`` - every name in a supplied list (subjects, relatives, staff). Chinese names are
  matched as substrings, Latin names as whole words, case-insensitively.

Each kind is replaced by a bracketed placeholder and counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl
from stdnum.cn import ric

from deid._util import require_columns
from deid.errors import ColumnTypeError

__all__ = [
    "DEFAULT_MASKS",
    "ScrubResult",
    "id_check_char",
    "is_valid_resident_id",
    "scrub_column",
    "scrub_text",
]


DEFAULT_MASKS: Mapping[str, str] = {
    "id_number": "[身份证号]",
    "phone": "[电话]",
    "email": "[邮箱]",
    "name": "[姓名]",
}

_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?![0-9])")
_LANDLINE = re.compile(
    r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3})[-\s]?[2-9]\d{6,7}(?:-\d{1,5})?(?![0-9])"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    return str(ric.calc_check_digit(first17 + "0"))  # python-stdnum cn.ric; ignores the last


def is_valid_resident_id(s: str) -> bool:
    """True if ``s`` is 18 characters with a correct GB 11643 check character."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    return id_check_char(s[:17]) == s[17].upper()


@dataclass(frozen=True)
class ScrubResult:
    """Masked text and how many of each kind were masked."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


def _name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alts = []
    for n in cleaned:
        esc = re.escape(n)
        alts.append(rf"(?<![A-Za-z]){esc}(?![A-Za-z])" if n.isascii() else esc)
    return re.compile("|".join(alts), re.IGNORECASE)


def _scrub(text: str, names_re: re.Pattern[str] | None, masks: Mapping[str, str]) -> ScrubResult:
    counts = {"id_number": 0, "phone": 0, "email": 0, "name": 0}

    def repl_id(m: re.Match[str]) -> str:
        if is_valid_resident_id(m.group(1)):
            counts["id_number"] += 1
            return masks["id_number"]
        return m.group(0)

    def counter(kind: str) -> Callable[[re.Match[str]], str]:
        def f(_m: re.Match[str]) -> str:
            counts[kind] += 1
            return masks[kind]

        return f

    out = _ID_CANDIDATE.sub(repl_id, text)
    out = _EMAIL.sub(counter("email"), out)
    out = _MOBILE.sub(counter("phone"), out)
    out = _LANDLINE.sub(counter("phone"), out)
    if names_re is not None:
        out = names_re.sub(counter("name"), out)
    return ScrubResult(out, counts)


def scrub_text(
    text: str, names: Iterable[str] = (), *, masks: Mapping[str, str] | None = None
) -> ScrubResult:
    """Mask ID numbers, phone numbers, e-mails and the given names in one text.

    >>> r = scrub_text("患者张三，电话13812345678", names=["张三"])
    >>> r.text, r.counts["name"], r.counts["phone"]
    ('患者[姓名]，电话[电话]', 1, 1)
    """
    m = {**DEFAULT_MASKS, **(masks or {})}
    return _scrub(text, _name_pattern(names), m)


def scrub_column(
    df: pl.DataFrame,
    column: str,
    names: Iterable[str] = (),
    *,
    masks: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Scrub a free-text column; return the new table and the totals masked per kind."""
    rule = "free-text"
    require_columns(df, [column], rule)
    if df.schema[column] != pl.String:
        raise ColumnTypeError(f"expected String, got {df.schema[column]}", column=column, rule=rule)
    m = {**DEFAULT_MASKS, **(masks or {})}
    pat = _name_pattern(names)
    totals = {"id_number": 0, "phone": 0, "email": 0, "name": 0}
    out: list[str | None] = []
    for v in df.get_column(column).to_list():
        if v is None:
            out.append(None)
            continue
        r = _scrub(v, pat, m)
        out.append(r.text)
        for k, n in r.counts.items():
            totals[k] += n
    return df.with_columns(pl.Series(column, out, dtype=pl.String)), totals
