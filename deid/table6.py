"""GB/T 39725-2020 Table 6 (表6) as the floor of every released value, and the generalisation
hierarchies the k-anonymity search climbs from that floor, by *kind* of value.

A kind is what a field holds, as far as de-identification cares. The extract pipeline names
the kind of each released field (``studies.extracts.deidentify.kind_of``, read off the field's
data type in ``studies.forms.datatypes.DATA_TYPES`` and, for ages, birth dates and postcodes,
its text format or name); this module owns what each kind becomes:

========== =============================================== =====================================
kind       floor (Table 6) — never released finer          levels above the floor (each nests)
========== =============================================== =====================================
direct     never released (names, ID/record numbers,       —
           phones, e-mails, accounts, addresses)
age        ``<25, 25-29, …, 85-89, >89`` (never finer       10-year, 20-year, ``<=89/>89``, ``*``
           above 89)
birth_date the age at the snapshot date, in the age bands  as ``age``
date       a quasi-identifier: the year; otherwise          5-year span, decade, ``*``
           shifted by the study's secret offset
datetime   as ``date`` (the time is never released)        as ``date``
postcode   the first three digits (``100080 → 100***``)    ``10****``, ``******``
number     as recorded                                     nesting bands (1, 5, 10, 50, 100 × w)
coded      as recorded                                     ``*``
text       scrubbed (:mod:`deid.freetext`)                 ``*``
========== =============================================== =====================================

:func:`floor_hierarchy` gives, for a quasi-identifier, a :class:`~deid.hierarchy.Hierarchy`
whose level 0 *is* the floor, so no search can pick anything finer; every level merges whole
groups of the level below (the search and :meth:`Hierarchy.encode` check that they nest).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from deid.hierarchy import Hierarchy
from deid.transforms import AGE_BAND_LEVELS, age_band_label

Kind = Literal["direct", "age", "birth_date", "date", "datetime", "postcode", "number",
               "coded", "text"]
KINDS: tuple[Kind, ...] = ("direct", "age", "birth_date", "date", "datetime", "postcode",
                           "number", "coded", "text")
SUPPRESSED = "*"
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_POSTCODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Rule:
    """One row of Table 6 as this module applies it: the treatment and its clause."""

    kind: Kind
    treatment: str
    clause: str


RULES: dict[Kind, Rule] = {r.kind: r for r in (
    Rule("direct", "never released (direct identifier)", "Table 6 (标识符); §10.2 a–d"),
    Rule("age", "age bands <25, 25-29, …, 85-89, >89", "Table 6 (年龄)"),
    Rule("birth_date", "birth date → age band at the snapshot date", "Table 6 (出生日期)"),
    Rule("date", "date → year", "Table 6 (日期)"),
    Rule("datetime", "date-time → year", "Table 6 (日期)"),
    Rule("postcode", "postcode truncated to 3 digits (100080 → 100***)", "Table 6 (号码/地址)"),
    Rule("number", "as recorded", "§10.2 e"),
    Rule("coded", "as recorded", "§10.2 e"),
    Rule("text", "free text scrubbed of names (given, staff and in general), ID and record "
         "numbers, phones, e-mails", "§10.2 d; Table 6"),
)}
SHIFT_RULE = Rule("date", "shifted by the study's secret offset (intervals exact)",
                  "Table 6 (日期); Appendix G")


# ── floors ──────────────────────────────────────────────────────────────────────────────────

def age_in_years(birth: str, on: _dt.date) -> int | None:
    """Whole years from an ISO birth date to ``on``; None if ``birth`` is not a date."""
    m = _DATE.match(birth)
    if m is None:
        return None
    try:
        b = _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    years = on.year - b.year - ((on.month, on.day) < (b.month, b.day))
    return years if years >= 0 else None


def _age_of(value: str) -> int | None:
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0:
        return None
    return int(d)


def _age_label(age: int | None, level: int) -> str:
    """Label of an age at a level of :func:`deid.transforms.age_band_label` (level ≥ 1)."""
    return SUPPRESSED if age is None else age_band_label(age, level)


def _year_span(year: int, width: int) -> str:
    lo = year - year % width
    return f"{lo}-{lo + width - 1}"


def _date_label(value: str, level: int) -> str:
    """A date (or date-time) at a level: 0 the year, 1 a 5-year span, 2 a decade, 3 ``*``."""
    m = _DATE.match(value)
    if m is None or level >= 3:
        return SUPPRESSED
    year = int(m[1])
    return str(year) if level == 0 else _year_span(year, 5 if level == 1 else 10)


def _postcode_label(value: str, level: int) -> str:
    """A postcode at a level: 0 ``100***``, 1 ``10****``, 2 ``******``."""
    v = value.strip()
    if not _POSTCODE.match(v):
        return SUPPRESSED
    keep = max(0, 3 - level) if level < 2 else 0
    return v[:keep] + "*" * (6 - keep)


def band_width(values: Iterable[str]) -> Decimal:
    """The narrowest band of a number's hierarchy: a power of ten near a twentieth of the
    values' range (1 for a range under 20), so five levels span the data."""
    nums = [d for d in (_number(v) for v in values) if d is not None]
    if len(nums) < 2:
        return Decimal(1)
    span = float(max(nums) - min(nums))
    if span <= 0:
        return Decimal(1)
    return Decimal(10) ** max(-6, math.floor(math.log10(span / 20))) if span >= 1e-6 \
        else Decimal(1)


_BAND_FACTORS = (1, 5, 10, 50, 100)


def _number(v: str) -> Decimal | None:
    try:
        d = Decimal(v.strip())
    except (InvalidOperation, AttributeError):
        return None
    return d if d.is_finite() else None


def _number_label(value: str, level: int, width: Decimal) -> str:
    """A number at a level: 0 as recorded, 1..5 in bands of 1, 5, 10, 50, 100 × ``width``
    (each a whole multiple of the one below, aligned at zero, so they nest), 6 ``*``."""
    if level == 0:
        return value
    d = _number(value)
    if d is None or level > len(_BAND_FACTORS):
        return SUPPRESSED
    w = width * _BAND_FACTORS[level - 1]
    lo = (d / w).to_integral_value(rounding="ROUND_FLOOR") * w
    hi = lo + w
    return f"[{_plain(lo)},{_plain(hi)})"


def _plain(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s


def floor_value(kind: Kind, value: str | None, *, on: _dt.date) -> str | None:
    """The Table 6 floor of one released value (``None`` stays ``None``). ``on`` is the
    snapshot date (ages from birth dates). Dates here become their year: the pipeline shifts
    the dates that are not quasi-identifiers instead. Free text is scrubbed elsewhere
    (:mod:`deid.freetext`); a direct identifier is never released."""
    if value is None:
        return None
    if kind == "direct":
        raise ValueError("a direct identifier is never released (Table 6)")
    if kind == "age":
        return _age_label(_age_of(value), 1)
    if kind == "birth_date":
        return _age_label(age_in_years(value, on), 1)
    if kind in ("date", "datetime"):
        return _date_label(value, 0)
    if kind == "postcode":
        return _postcode_label(value, 0)
    return value


def level_labels(kind: Kind, *, on: _dt.date,
                 values: Sequence[str] = ()) -> list[Callable[[str], str]]:
    """For a quasi-identifier of ``kind``: one function per level, from the Table 6 floor
    (level 0) up to ``*``, each mapping a *recorded* value to its label. ``values`` are the
    recorded values (a number's band width is read off them)."""
    def at(f: Callable[[str, int], str], i: int) -> Callable[[str], str]:
        return lambda v: f(v, i)

    if kind == "age":
        return [at(lambda v, i: _age_label(_age_of(v), i), i)
                for i in range(1, AGE_BAND_LEVELS + 1)]
    if kind == "birth_date":
        return [at(lambda v, i: _age_label(age_in_years(v, on), i), i)
                for i in range(1, AGE_BAND_LEVELS + 1)]
    if kind in ("date", "datetime"):
        return [at(_date_label, i) for i in range(4)]
    if kind == "postcode":
        return [at(_postcode_label, i) for i in range(3)]
    if kind == "number":
        w = band_width(values)
        return [at(lambda v, i: _number_label(v, i, w), i)
                for i in range(len(_BAND_FACTORS) + 1)]
    if kind == "direct":
        raise ValueError("a direct identifier is never released (Table 6)")
    return [lambda v: v, lambda v: SUPPRESSED]


def floor_hierarchy(kind: Kind, values: Sequence[str], *, on: _dt.date) -> Hierarchy:
    """The hierarchy of a quasi-identifier whose level 0 is the Table 6 floor of ``values``
    (the recorded values); see the module's table."""
    fs = level_labels(kind, on=on, values=values)
    rows = {}
    for v in values:
        labels = [f(v) for f in fs]
        rows[labels[0]] = labels
    if not rows:
        return Hierarchy.from_table([[SUPPRESSED, SUPPRESSED]])
    out = [r if r[-1] == SUPPRESSED else [*r, SUPPRESSED] for r in rows.values()]
    width = max(len(r) for r in out)
    return Hierarchy.from_table([r + [SUPPRESSED] * (width - len(r)) for r in out])
