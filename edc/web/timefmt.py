"""Times as people read them: in the display time zone (``EDC_DISPLAY_TIMEZONE``, default
Asia/Shanghai), to the minute (or the second), never with microseconds. The API keeps ISO
8601 in UTC; only pages use this."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_zone: list[ZoneInfo] = [ZoneInfo("Asia/Shanghai")]


def set_zone(name: str) -> None:
    """The display zone of this process (``create_app`` sets it from the settings)."""
    _zone[0] = ZoneInfo(name)


def zone() -> ZoneInfo:
    return _zone[0]


def to_local(value: dt.datetime | str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:  # stored as UTC; SQLite hands it back without a zone
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(zone())


def _offset(when: dt.datetime) -> str:
    off = when.utcoffset() or dt.timedelta()
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_minute(value: dt.datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-05-01 16:30 (UTC+8)``; "—" for no time."""
    if value is None or value == "":
        return "—"
    try:
        when = to_local(value)
    except ValueError:
        return str(value)
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + \
        f" ({_offset(when)})"


def local_input(value: str) -> dt.datetime:
    """A time typed on a page (``datetime-local``: no zone) in the display zone."""
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=zone())
