"""Reading posted forms into domain input models (parsing only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from edc.web.timefmt import local_input
from studies.kernel.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


MESSAGES: dict[str, str] = {
    "missing": "必填 / required",
    "string_too_short": "至少 {min_length} 个字符 / at least {min_length} characters",
    "string_too_long": "最多 {max_length} 个字符 / at most {max_length} characters",
    "string_pattern_mismatch": "格式不正确 / not in the expected format",
    "int_parsing": "须为整数 / must be a whole number",
    "int_type": "须为整数 / must be a whole number",
    "int_from_float": "须为整数 / must be a whole number",
    "float_parsing": "须为数字 / must be a number",
    "greater_than": "须大于 {gt} / must be greater than {gt}",
    "greater_than_equal": "不得小于 {ge} / must be at least {ge}",
    "less_than": "须小于 {lt} / must be less than {lt}",
    "less_than_equal": "不得大于 {le} / must be at most {le}",
    "date_parsing": "须为日期 YYYY-MM-DD / must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "须为日期 YYYY-MM-DD / must be a date (YYYY-MM-DD)",
    "datetime_parsing": "须为日期时间 / must be a date and time",
    "datetime_from_date_parsing": "须为日期时间 / must be a date and time",
    "literal_error": "须为以下之一 / must be one of: {expected}",
    "enum": "须为以下之一 / must be one of: {expected}",
    "bool_parsing": "须为是或否 / must be yes or no",
}


def message_of(error: Any) -> str:
    """A pydantic error in Chinese and English, naming the rule (its limit)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if error.get("input", "") is None or kind == "missing":
        return MESSAGES["missing"]
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return MESSAGES["missing"]
    template = MESSAGES.get(kind)
    if template is None:
        return str(error.get("msg", "invalid")).removeprefix("Value error, ")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


def build(model: type[M], prefix: str = "", rename: dict[str, str] | None = None,
          **values: Any) -> M:
    """A domain input model from form fields. Every problem is reported at once (422,
    ``details.errors`` maps each form field to its message, bilingual); ``prefix`` or
    ``rename`` (a loc prefix → the form's name prefix) give the form field's name."""
    try:
        return model(**values)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = ".".join(str(x) for x in err.get("loc", ()))
            for old, new in (rename or {}).items():
                if name.startswith(old):
                    name = new + name.removeprefix(old)
                    break
            else:
                name = prefix + name
            errors.setdefault(name, message_of(err))
        field, first = next(iter(errors.items()))
        failed = InvalidInput(f"{field}: {first}", field=field or None)
        failed.details = {"errors": errors}  # type: ignore[attr-defined]
        raise failed from None


def text(form: FormData, name: str) -> str:
    v = form.get(name)
    return v.strip() if isinstance(v, str) else ""


def opt(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def local_time(value: str, field: str) -> dt.datetime:
    """A time typed on a page, in the display time zone (``EDC_DISPLAY_TIMEZONE``)."""
    try:
        return local_input(value)
    except ValueError:
        raise InvalidInput(f"{field}: 时间格式不正确 / not a date and time", field=field) from None


def local_date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field}: not a date (YYYY-MM-DD) / 日期格式不正确（年-月-日）",
                           field=field) from None
