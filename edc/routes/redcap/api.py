"""REDCap's API at ``POST /api/``: a form-encoded ``token``, ``content``, ``format`` and
``returnFormat``, as REDCap documents and PyCap / REDCapR send it (docs/api-redcap.md).

The token is one of this system's API tokens (issued in REDCap's shape); each content is one
domain function (``studies.entry.redcap_api``) that checks its permission and scope. Errors
answer in REDCap's form (``{"error": "…"}``, or ``ERROR: …`` in CSV, ``<hash><error>`` in XML)
with this system's status codes (``edc.errors``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.deps import LedgerDep, SessionDep, client_address
from edc.errors import REDCAP_PATH
from edc.policy import token_in_body
from edc.routing import Route
from studies.accounts import tokens
from studies.entry import redcap_api as rc
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _

router = APIRouter(tags=["REDCap-compatible API"], route_class=Route)


class RedcapForm:
    """The request's form fields; ``fields[0]=a&fields[1]=b`` and ``fields=a,b`` are lists."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        for k, v in items:
            if "[" in k and k.endswith("]"):
                self.lists.setdefault(k[: k.index("[")], []).append(v)
            else:
                self.values[k] = v

    def one(self, key: str, default: str = "") -> str:
        return self.values.get(key, default).strip()

    def many(self, key: str) -> list[str] | None:
        if key in self.lists:
            return [v.strip() for v in self.lists[key] if v.strip()] or None
        text = self.values.get(key, "")
        return [v.strip() for v in text.split(",") if v.strip()] or None

    def flag(self, key: str) -> bool:
        return self.one(key).lower() in ("true", "1", "yes")


async def redcap_form(request: Request) -> RedcapForm:
    form = await request.form()
    found = RedcapForm([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    # the format errors are answered in (PyCap reads returnFormat first, then format)
    request.state.redcap_format = (found.one("returnFormat") or found.one("format")
                                   or "xml").lower()
    return found


FormDep = Annotated[RedcapForm, Depends(redcap_form)]


def token_actor(request: Request, form: FormDep, session: SessionDep,
                ledger: LedgerDep) -> Actor:
    """The actor of the form's ``token`` (every use audited, as for a bearer token)."""
    actor = tokens.authenticate(session, ledger, token=form.one("token")[:200],
                                client=client_address(request), method=request.method,
                                path=request.url.path)
    request.state.actor = actor
    return actor


TokenActor = Annotated[Actor, Depends(token_actor)]


def _when(text: str, field: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_("{field}: must be YYYY-MM-DD HH:MM:SS").format(field=field),
                           field=field) from None


def _answer(form: RedcapForm, data: Any, columns: list[str] | None = None) -> Response:
    fmt = form.one("format", "xml").lower() or "xml"
    if fmt == "json":
        return JSONResponse(data)
    if fmt == "csv":
        rows = data if isinstance(data, list) else [data]
        return PlainTextResponse(rc.to_csv(rows, columns), media_type="text/csv; charset=utf-8")
    raise InvalidInput(_("format: supported formats are json and csv"),
                       field="format")


def _records(form: RedcapForm, session: Session, ledger: Ledger, actor: Actor) -> Response:
    action = form.one("action", "export")
    if action == "delete":
        raise InvalidInput(_("action: records are never deleted here; correct a value with a "
                             "reason instead"), field="action")
    if "data" in form.values:
        ids = rc.import_records(session, ledger, actor=actor, data=form.values["data"],
                                fmt=form.one("format", "xml").lower(),
                                overwrite=form.one("overwriteBehavior", "normal"),
                                date_format=form.one("dateFormat", "YMD"),
                                force_auto_number=form.flag("forceAutoNumber"))
        what = form.one("returnContent", "count")
        out: Any = {"count": len(ids)} if what in ("count", "auto_ids") else (
            ids if what == "ids" else {})
        fmt = (form.one("returnFormat") or "json").lower()
        if fmt == "csv":
            text = (f"count\n{len(ids)}\n" if isinstance(out, dict)
                    else "id\n" + "".join(f"{i}\n" for i in ids))
            return PlainTextResponse(text, media_type="text/csv; charset=utf-8")
        return JSONResponse(out)
    q = rc.RecordQuery(type=form.one("type", "flat").lower(), records=form.many("records"),
                       fields=form.many("fields"), forms=form.many("forms"),
                       events=form.many("events"),
                       labels=form.one("rawOrLabel", "raw").lower() == "label",
                       filter_logic=form.one("filterLogic") or None)
    rows = rc.export_records(session, ledger, actor=actor, q=q)
    return _answer(form, rows)


@router.post(REDCAP_PATH, dependencies=[token_in_body(token_actor)], response_class=Response,
             include_in_schema=False)
def redcap_api(form: FormDep, actor: TokenActor, session: SessionDep,
               ledger: LedgerDep) -> Response:
    """One REDCap API call; ``content`` names what (see the module doc)."""
    content = form.one("content")
    if content == "version":
        return PlainTextResponse(rc.REDCAP_VERSION)
    if content == "record":
        return _records(form, session, ledger, actor)
    if content == "project":
        return _answer(form, rc.project(session, actor=actor))
    if content == "metadata":
        return _answer(form, rc.metadata(session, actor=actor, fields=form.many("fields"),
                                         form_names=form.many("forms")))
    if content == "instrument":
        return _answer(form, rc.instruments(session, actor=actor))
    if content == "exportFieldNames":
        return _answer(form, rc.export_field_names(session, actor=actor,
                                                   field=form.one("field") or None))
    if content == "event":
        return _answer(form, rc.events(session, actor=actor))
    if content == "formEventMapping":
        return _answer(form, rc.form_event_mapping(session, actor=actor))
    if content == "user":
        return _answer(form, rc.users(session, actor=actor))
    if content == "log":
        return _answer(form, rc.log(session, actor=actor, user=form.one("user") or None,
                                    record=form.one("record") or None,
                                    begin=_when(form.one("beginTime"), "beginTime"),
                                    end=_when(form.one("endTime"), "endTime"),
                                    log_type=form.one("logtype") or None))
    raise InvalidInput(_("content: {content!r} is not supported here (supported: version, "
                         "project, metadata, instrument, exportFieldNames, event, "
                         "formEventMapping, record, log, user)").format(content=content),
                       field="content")
