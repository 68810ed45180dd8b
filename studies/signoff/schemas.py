"""Output shapes of the team inbox."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class InboxItemOut(BaseModel):
    study: str | None
    kind: str
    text: str
    link: str | None
    at: dt.datetime
    by: str
