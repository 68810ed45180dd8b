"""Record-level transforms of GB/T 39725-2020 Table 6 (表6) and Appendix G.

Every function takes a :class:`polars.DataFrame`, returns a new one (inputs are never mutated)
and raises a :class:`deid.errors.DeidError` subclass naming the column and the rule when it
cannot apply the rule.

Rule names used in errors (``rule=``) are the Table 6 rows: ``direct-identifier``,
``birth-date``, ``age-band``, ``date-generalise``, ``date-shift``, ``postcode``, ``address``,
``keyed-token``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Literal

import polars as pl

from deid._util import as_list, check_project_id, require_columns, secret_bytes
from deid.errors import ColumnTypeError, InvalidValueError, ParameterError

__all__ = [
    "AGE_BAND_LEVELS",
    "address_to_county",
    "age_band",
    "age_band_label",
    "birth_date_to_age",
    "birth_date_to_year",
    "date_to_year",
    "date_to_year_month",
    "drop_identifiers",
    "keyed_token",
    "postcode_label",
    "project_date_offset",
    "pseudonymise",
    "shift_dates",
    "truncate_address",
    "truncate_postcode",
]

# ---------------------------------------------------------------------------------------------
# Direct identifiers
# ---------------------------------------------------------------------------------------------


def drop_identifiers(
    df: pl.DataFrame, columns: str | Sequence[str], *, mode: Literal["drop", "blank"] = "drop"
) -> pl.DataFrame:
    """Remove direct identifiers (Table 6 "建议删除或置空": delete or blank).

    Use for names of subjects, family members, investigators and doctors; ID, social-security,
    medical-insurance, hospitalisation and account numbers; phone/fax numbers; e-mails; photos;
    address parts below county level (township/street, village/road, house number, G.1).

    ``mode="drop"`` removes the columns; ``mode="blank"`` keeps them (so a fixed extract layout
    survives) but sets every value to null.
    """
    cols = as_list(columns)
    require_columns(df, cols, "direct-identifier")
    if mode == "drop":
        return df.drop(cols)
    if mode == "blank":
        return df.with_columns(pl.lit(None, dtype=df.schema[c]).alias(c) for c in cols)
    raise ParameterError(f"mode must be 'drop' or 'blank', got {mode!r}", rule="direct-identifier")


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


def _date_expr(df: pl.DataFrame, column: str, rule: str) -> pl.Expr:
    """Expression yielding ``column`` as Date/Datetime; ISO ``YYYY-MM-DD`` strings are parsed."""
    dtype = df.schema[column]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return pl.col(column)
    if dtype == pl.String:
        parsed = df.get_column(column).str.to_date("%Y-%m-%d", strict=False)
        bad = df.get_column(column).is_not_null() & parsed.is_null()
        if bad.any():
            example = df.get_column(column).filter(bad)[0]
            raise InvalidValueError(
                f"value {example!r} is not an ISO date (YYYY-MM-DD)", column=column, rule=rule
            )
        return pl.col(column).str.to_date("%Y-%m-%d", strict=False)
    raise ColumnTypeError(
        f"expected a Date, Datetime or ISO-date String column, got {dtype}",
        column=column,
        rule=rule,
    )


def birth_date_to_age(
    df: pl.DataFrame,
    column: str,
    reference: _dt.date | str,
    *,
    new_column: str = "age",
    keep_birth_date: bool = False,
) -> pl.DataFrame:
    """Replace a birth date by the age in completed years at ``reference`` (Table 6 出生日期).

    ``reference`` is either a fixed :class:`datetime.date` (e.g. the extract's cut-off date) or
    the name of a date column in the same row (e.g. the enrolment date), so the age at that event
    is computed. The birth-date column is dropped unless ``keep_birth_date``.
    """
    rule = "birth-date"
    require_columns(df, [column], rule)
    born = _date_expr(df, column, rule)
    if isinstance(reference, str):
        require_columns(df, [reference], rule)
        ref = _date_expr(df, reference, rule)
    elif isinstance(reference, _dt.date):
        ref = pl.lit(reference)
    else:
        raise ParameterError("reference must be a date or a column name", column=column, rule=rule)

    def month_day(e: pl.Expr) -> pl.Expr:
        return e.dt.month().cast(pl.Int32) * 100 + e.dt.day().cast(pl.Int32)

    before_birthday = month_day(ref) < month_day(born)
    age = (
        ref.dt.year().cast(pl.Int32)
        - born.dt.year().cast(pl.Int32)
        - before_birthday.cast(pl.Int32)
    ).cast(pl.Int32)
    out = df.with_columns(age.alias(new_column))
    negative = out.get_column(new_column) < 0
    if negative.any():
        raise InvalidValueError(
            "birth date lies after the reference date", column=column, rule=rule
        )
    if not keep_birth_date and new_column != column:
        out = out.drop(column)
    return out


def birth_date_to_year(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """Replace a birth date by its year only (Table 6 出生日期, generalisation)."""
    return date_to_year(df, column)


def date_to_year(df: pl.DataFrame, columns: str | Sequence[str]) -> pl.DataFrame:
    """Generalise dates to the year only (§10.2 c 3, Table 6 日期 "只保留年"); Int32 result."""
    cols = as_list(columns)
    require_columns(df, cols, "date-generalise")
    return df.with_columns(
        _date_expr(df, c, "date-generalise").dt.year().cast(pl.Int32).alias(c) for c in cols
    )


def date_to_year_month(df: pl.DataFrame, columns: str | Sequence[str]) -> pl.DataFrame:
    """Generalise dates to year and month, ``"YYYY-MM"`` (Table 6 日期 "只保留年月")."""
    cols = as_list(columns)
    require_columns(df, cols, "date-generalise")
    return df.with_columns(
        _date_expr(df, c, "date-generalise").dt.strftime("%Y-%m").alias(c) for c in cols
    )


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"\x1f".join(parts), hashlib.sha256).digest()


def project_date_offset(project_id: str, secret: bytes | str, *, max_days: int = 365) -> int:
    """The secret per-project date offset in days: non-zero, within ``±max_days``.

    Derived with HMAC-SHA256 from the project secret, so the same project and secret always give
    the same offset, a different project gives an unrelated one, and the offset cannot be
    computed without the secret (§10.2 g: the parameters stay inside the hospital).
    """
    rule = "date-shift"
    if max_days < 1:
        raise ParameterError(f"max_days must be >= 1, got {max_days}", rule=rule)
    digest = _hmac(
        secret_bytes(secret, rule), b"deid/date-offset/v1", check_project_id(project_id, rule)
    )
    x = int.from_bytes(digest[:8], "big")
    magnitude = 1 + (x >> 1) % max_days
    return magnitude if x & 1 else -magnitude


def shift_dates(
    df: pl.DataFrame,
    columns: str | Sequence[str],
    *,
    project_id: str,
    secret: bytes | str,
    max_days: int = 365,
    subject_column: str | None = None,
) -> pl.DataFrame:
    """Shift dates by the secret project offset (Table 6 日期 "时间偏移方法").

    All listed columns of a row move by the same number of days, so every interval is exact:
    admission 2018-01-01 and discharge 2018-04-01 shifted by +100 become 2018-04-11 and
    2018-07-10, still 90 days apart. With ``subject_column`` each subject gets its own offset
    (derived from the project secret and the subject's identifier), which still keeps every
    interval *within* a subject exact but hides the calendar alignment between subjects.
    """
    rule = "date-shift"
    cols = as_list(columns)
    require_columns(df, cols, rule)
    exprs = [_date_expr(df, c, rule) for c in cols]
    if subject_column is None:
        off = project_date_offset(project_id, secret, max_days=max_days)
        return df.with_columns(
            (e + pl.duration(days=off)).alias(c) for e, c in zip(exprs, cols, strict=True)
        )
    require_columns(df, [subject_column], rule)
    key = secret_bytes(secret, rule)
    pid = check_project_id(project_id, rule)
    subjects = df.get_column(subject_column).drop_nulls().unique().cast(pl.String)
    offsets = []
    for s in subjects.to_list():
        x = int.from_bytes(_hmac(key, b"deid/date-offset/v1/subject", pid, s.encode())[:8], "big")
        m = 1 + (x >> 1) % max_days
        offsets.append(m if x & 1 else -m)
    mapping = pl.DataFrame({"__subj": subjects, "__off": pl.Series(offsets, dtype=pl.Int64)})
    tmp = df.with_columns(pl.col(subject_column).cast(pl.String).alias("__subj")).join(
        mapping, on="__subj", how="left", maintain_order="left"
    )
    return tmp.with_columns(
        (e + pl.duration(days=pl.col("__off"))).alias(c) for e, c in zip(exprs, cols, strict=True)
    ).drop("__subj", "__off")


# ---------------------------------------------------------------------------------------------
# Ages
# ---------------------------------------------------------------------------------------------

#: Number of generalisation levels above the exact age produced by :func:`age_band_label`.
AGE_BAND_LEVELS = 5


def age_band_label(age: int, level: int = 1) -> str:
    """Label of ``age`` at a generalisation level (never finer than ``>89`` above 89).

    ===== =============================================================
    level bands
    ===== =============================================================
    0     the exact age (``"38"``); ages above 89 are still ``">89"``
    1     Table 6: ``<25, 25-29, 30-34, ..., 85-89, >89``
    2     ``<30, 30-39, 40-49, ..., 80-89, >89``
    3     ``<30, 30-49, 50-69, 70-89, >89``
    4     Table 6 coarse form: ``<=89, >89``
    5     ``*``
    ===== =============================================================

    Each level merges whole bands of the level below, so the levels form a generalisation
    hierarchy usable in the k-anonymity search.
    """
    if level < 0 or level > AGE_BAND_LEVELS:
        raise ParameterError(
            f"age level must be 0..{AGE_BAND_LEVELS}, got {level}", rule="age-band"
        )
    if age < 0:
        raise InvalidValueError(f"negative age {age}", rule="age-band")
    if level == AGE_BAND_LEVELS:
        return "*"
    if age > 89:
        return ">89"
    if level == 0:
        return str(age)
    if level == 1:
        if age < 25:
            return "<25"
        lo = age - age % 5
        return f"{lo}-{lo + 4}"
    if level == 2:
        if age < 30:
            return "<30"
        lo = age - age % 10
        return f"{lo}-{lo + 9}"
    if level == 3:
        if age < 30:
            return "<30"
        lo = 30 + ((age - 30) // 20) * 20
        return f"{lo}-{lo + 19}"
    return "<=89"


def age_band(df: pl.DataFrame, column: str, *, level: int = 1) -> pl.DataFrame:
    """Replace integer ages by band labels at ``level`` (Table 6 年龄; level 1 = Table 6 bands)."""
    rule = "age-band"
    require_columns(df, [column], rule)
    s = df.get_column(column)
    if not s.dtype.is_integer():
        raise ColumnTypeError(f"expected integer ages, got {s.dtype}", column=column, rule=rule)
    if (s < 0).any():
        raise InvalidValueError("negative age", column=column, rule=rule)
    if level < 0 or level > AGE_BAND_LEVELS:
        raise ParameterError(
            f"age level must be 0..{AGE_BAND_LEVELS}, got {level}", column=column, rule=rule
        )
    uniq = s.drop_nulls().unique().to_list()
    labels = [age_band_label(int(a), level) for a in uniq]
    return df.with_columns(
        s.replace_strict(uniq, labels, default=None, return_dtype=pl.String).alias(column)
    )


# ---------------------------------------------------------------------------------------------
# Postcodes and addresses
# ---------------------------------------------------------------------------------------------

_POSTCODE = re.compile(r"^\d{6}$")


def postcode_label(code: str, masked_digits: int) -> str:
    """``postcode_label("100080", 3) == "100***"``: mask the lowest ``masked_digits`` digits."""
    if not _POSTCODE.match(code):
        raise InvalidValueError(f"{code!r} is not a 6-digit postcode", rule="postcode")
    if not 0 <= masked_digits <= 6:
        raise ParameterError(f"masked_digits must be 0..6, got {masked_digits}", rule="postcode")
    return code[: 6 - masked_digits] + "*" * masked_digits


def truncate_postcode(df: pl.DataFrame, column: str, *, masked_digits: int = 3) -> pl.DataFrame:
    """Truncate 6-digit postcodes with ``*`` (Table 6 号码: 100080 -> 100***). Nulls stay null."""
    rule = "postcode"
    require_columns(df, [column], rule)
    if not 0 <= masked_digits <= 6:
        raise ParameterError(
            f"masked_digits must be 0..6, got {masked_digits}", column=column, rule=rule
        )
    s = df.get_column(column).cast(pl.String)
    bad = s.is_not_null() & ~s.str.contains(r"^\d{6}$")
    if bad.any():
        raise InvalidValueError(
            f"{s.filter(bad)[0]!r} is not a 6-digit postcode", column=column, rule=rule
        )
    keep = 6 - masked_digits
    return df.with_columns((s.str.slice(0, keep) + "*" * masked_digits).alias(column))


_MUNICIPALITY = r"(?:北京市|天津市|上海市|重庆市)"
_NAME = r"[^省市区县旗路街道巷弄号镇村组\d\s,，]"
_PROVINCE = re.compile(rf"^\s*(?P<p>{_MUNICIPALITY}|{_NAME}{{1,10}}?(?:省|自治区|特别行政区))")
_CITY = re.compile(rf"(?P<c>{_NAME}{{1,12}}?(?:自治州|地区|盟|市))")
_COUNTY = re.compile(
    rf"(?P<x>(?:{_NAME}{{1,12}}?(?:自治县|自治旗|林区|特区|新区|区|县|旗|市))|市中区)"
)


def truncate_address(address: str) -> str | None:
    """Keep only the province/city/county part of a Chinese address (Table 6 联系方式).

    ``"广东省广州市天河区天河路385号"`` -> ``"广东省广州市天河区"``;
    ``"北京市海淀区中关村大街27号"`` -> ``"北京市海淀区"``. Returns ``None`` if no administrative
    unit can be recognised (the caller then has nothing safe to keep). Best effort on free-form
    text: prefer structured address fields and :func:`drop_identifiers` for township, village and
    house-number columns (Appendix G DE02.01.009.04-06).
    """
    pos = 0
    parts: list[str] = []
    m = _PROVINCE.match(address)
    if m:
        parts.append(m.group("p"))
        pos = m.end()
    municipality = m is not None and re.fullmatch(_MUNICIPALITY, m.group("p")) is not None
    if not municipality:
        m2 = _CITY.match(address, pos)
        if m2:
            parts.append(m2.group("c"))
            pos = m2.end()
    m3 = _COUNTY.match(address, pos)
    if m3:
        parts.append(m3.group("x"))
    return "".join(parts) or None


def address_to_county(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """Cut free-form addresses after the county (县/区) level; see :func:`truncate_address`."""
    rule = "address"
    require_columns(df, [column], rule)
    if df.schema[column] != pl.String:
        raise ColumnTypeError(f"expected String, got {df.schema[column]}", column=column, rule=rule)
    s = df.get_column(column)
    uniq = s.drop_nulls().unique().to_list()
    return df.with_columns(
        s.replace_strict(
            uniq, [truncate_address(a) for a in uniq], default=None, return_dtype=pl.String
        ).alias(column)
    )


# ---------------------------------------------------------------------------------------------
# Keyed pseudonymous tokens
# ---------------------------------------------------------------------------------------------


def keyed_token(value: str, *, project_id: str, secret: bytes | str, length: int = 32) -> str:
    """HMAC-SHA256 token of ``value`` under a key derived from the secret and the project.

    Same value + same project + same secret -> same token (linkage within a project); another
    project gives an unrelated token, and without the secret a token cannot be recomputed from a
    guessed ID number (Table 6 号码 "基于原数据的随机化产生唯一标识进行替换", §10.2 f/g).
    ``length`` hex characters (16..64) are kept; the default 32 is 128 bits.
    """
    rule = "keyed-token"
    if not 16 <= length <= 64:
        raise ParameterError(f"token length must be 16..64 hex chars, got {length}", rule=rule)
    project_key = _hmac(
        secret_bytes(secret, rule), b"deid/token-key/v1", check_project_id(project_id, rule)
    )
    return hmac.new(project_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def pseudonymise(
    df: pl.DataFrame,
    columns: str | Sequence[str],
    *,
    project_id: str,
    secret: bytes | str,
    length: int = 32,
) -> pl.DataFrame:
    """Replace linkage identifiers (ID number, hospitalisation number...) by keyed tokens.

    Values are compared as text after stripping surrounding spaces; nulls stay null.
    """
    rule = "keyed-token"
    cols = as_list(columns)
    require_columns(df, cols, rule)
    secret_bytes(secret, rule)
    check_project_id(project_id, rule)
    out = []
    for c in cols:
        s = df.get_column(c).cast(pl.String).str.strip_chars()
        uniq = s.drop_nulls().unique().to_list()
        toks = [keyed_token(v, project_id=project_id, secret=secret, length=length) for v in uniq]
        out.append(s.replace_strict(uniq, toks, default=None, return_dtype=pl.String).alias(c))
    return df.with_columns(out)
