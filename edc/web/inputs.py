"""Reading posted forms into domain input models (parsing only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from studies.kernel.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))  # times typed on pages are China Standard Time


def build(model: type[M], prefix: str = "", **values: Any) -> M:
    """A domain input model from form fields; a validation problem names the field (422)."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = prefix + ".".join(str(x) for x in first.get("loc", ()))
        raise InvalidInput(f"{field}: {first.get('msg')}", field=field or None) from None


def text(form: FormData, name: str) -> str:
    v = form.get(name)
    return v.strip() if isinstance(v, str) else ""


def opt(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def local_time(value: str, field: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: not a date and time / 时间格式不正确", field=field) from None
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


def local_date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field}: not a date (YYYY-MM-DD) / 日期格式不正确（年-月-日）",
                           field=field) from None
