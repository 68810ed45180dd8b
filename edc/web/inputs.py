"""Reading posted forms into domain input models (parsing only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from edc.web.timefmt import local_input
from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import LazyText, _, _l

M = TypeVar("M", bound=BaseModel)


MESSAGES: dict[str, LazyText] = {
    "missing": _l("required"),
    "string_too_short": _l("at least {min_length} characters"),
    "string_too_long": _l("at most {max_length} characters"),
    "string_pattern_mismatch": _l("not in the expected format"),
    "int_parsing": _l("must be a whole number"),
    "int_type": _l("must be a whole number"),
    "int_from_float": _l("must be a whole number"),
    "float_parsing": _l("must be a number"),
    "greater_than": _l("must be greater than {gt}"),
    "greater_than_equal": _l("must be at least {ge}"),
    "less_than": _l("must be less than {lt}"),
    "less_than_equal": _l("must be at most {le}"),
    "date_parsing": _l("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": _l("must be a date (YYYY-MM-DD)"),
    "datetime_parsing": _l("must be a date and time"),
    "datetime_from_date_parsing": _l("must be a date and time"),
    "literal_error": _l("must be one of: {expected}"),
    "enum": _l("must be one of: {expected}"),
    "bool_parsing": _l("must be yes or no"),
}


def message_of(error: Any) -> str:
    """A pydantic error in Chinese and English, naming the rule (its limit)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if error.get("input", "") is None or kind == "missing":
        return str(MESSAGES["missing"])
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return str(MESSAGES["missing"])
    template = MESSAGES.get(kind)
    if template is None:
        return str(error.get("msg", "invalid")).removeprefix("Value error, ")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return str(template)


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
        raise InvalidInput(_("{field}: not a date and time").format(field=field),
                           field=field) from None


def local_date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(_("{field}: not a date (YYYY-MM-DD)").format(field=field),
                           field=field) from None
