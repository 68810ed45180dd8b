"""Pages of the audit trail: the ledger's status, the auditor's search and export (reads are
``read.*`` entries) and the abnormal-access flags with their acknowledgement."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import htpy as h
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response, StreamingResponse

from audit_trail import service as ledger_service
from audit_trail.errors import LedgerIntegrityError
from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import requires
from edc.routes.audit.api import export_response
from edc.routes.clock import now
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.forms import submit
from edc.web.layout import csrf_field, page, redirect
from edc.web.timefmt import local_minute
from edc.web.widgets import field, labelled_input
from studies.accounts import audit
from studies.kernel.errors import InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm
from studies.kernel.schemas import DB_BIGINT_MAX
from studies.oversight import service as oversight
from studies.oversight.models import AccessFlag

router = APIRouter(route_class=Route)


@router.get("/audit", dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_status(request: Request, session: SessionDep, state: StateDep,
                 actor: CurrentActor) -> Response:
    try:
        report = ledger_service.verify(session, vkey=state.keys.signer.vkey)
        verdict = h.p(".ok")["✔ " + report.summary()]
    except LedgerIntegrityError as exc:
        verdict = h.p(".bad", role="alert")[f"✘ {exc}"]
    drill = ledger_service.latest_entry(session, action=Action.BACKUP_DRILL)
    if drill is None:
        drill_line = h.p(".bad")[_("✘ No restore drill yet: run edc backup drill (§11.3.4.6: at "
                                   "least yearly)")]
    else:
        age = dt.datetime.now(dt.UTC) - dt.datetime.strptime(
            drill.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        good = drill.outcome == "success" and age <= dt.timedelta(days=365)
        drill_line = h.p(".ok" if good else ".bad")[
            ("✔ " if good else "✘ ") + _("Last restore drill: {value}Z, {value2}").format(
                value=drill.ts[:19], value2=drill.reason or drill.outcome)
            + ("" if age <= dt.timedelta(days=365) else " " + _("— over a year ago"))]
    cps = ledger_service.list_checkpoints(session)
    rows = [h.tr[h.td[str(c.tree_size)], h.td[c.root_hash.hex()[:32] + "…"], h.td[c.reason],
                 h.td[c.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")]] for c in cps[-20:]]
    return page(request, _("Audit trail"), verdict,
                h.p[_("Verifier key:") + " ", h.code[state.keys.signer.vkey]],
                drill_line,
                h.h2[_("Latest signed checkpoints")],
                h.table[h.thead[h.tr[h.th[_("Size")], h.th[_("Root")],
                                     h.th[_("Reason")], h.th[_("Time")]]],
                        h.tbody[rows]])


def _parse_time(value: str, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(_("{field}: a date or date-time (YYYY-MM-DD[THH:MM])").format(
                               field=field),
                           field=field) from exc
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d


def page_filter(user: str = Query("", max_length=200), action: str = Query("", max_length=100),
                study: str = Query("", max_length=100), subject: str = Query("", max_length=100),
                since: str = Query("", max_length=40),
                until: str = Query("", max_length=40)) -> audit.AuditFilter:
    return audit.AuditFilter(user=user or None, action=action or None, study=study or None,
                             subject=subject or None, since=_parse_time(since, "since"),
                             until=_parse_time(until, "until"))


PageFilter = Annotated[audit.AuditFilter, Depends(page_filter)]


@router.get("/audit/entries", dependencies=[requires(Perm.AUDIT_READ)])
def audit_entries(request: Request, filters: PageFilter, session: SessionDep,
                  actor: CurrentActor,
                  before_seq: int | None = Query(None, ge=1, le=DB_BIGINT_MAX)) -> Response:
    rows = audit.search(session, actor=actor, filters=filters, before_seq=before_seq, limit=100)
    q = request.query_params

    def box(name: str, label: str) -> list[h.Node]:
        return labelled_input(f"f_{name}", label, name=name, value=q.get(name, ""))

    body = [h.tr[h.td[str(r["seq"])], h.td[r["ts"]], h.td[r["actor"]], h.td[r["action"]],
                 h.td[f"{r['entity_type']}:{r['entity_id']}"], h.td[r["study"] or ""],
                 h.td[r["subject"] or ""], h.td[r["outcome"]], h.td[r["client"] or ""],
                 h.td[r["reason"] or ""]] for r in rows]
    kept = {k: v for k, v in q.items() if k in ("user", "action", "study", "subject", "since",
                                                  "until") and v}
    from urllib.parse import urlencode

    more = None
    if len(rows) == 100:
        more = h.a(href="/audit/entries?" + urlencode({**kept, "before_seq": rows[-1]["seq"]}))[
            _("Older →")]
    return page(
        request, _("Audit trail"),
        h.form(method="get", action="/audit/entries")[
            *box("user", _("User")), *box("action", _("Action (* suffix)")),
            *box("study", _("Study")), *box("subject", _("Subject code")),
            *box("since", _("From (YYYY-MM-DD)")), *box("until", _("To (YYYY-MM-DD)")),
            h.p[h.button(type="submit")[_("Filter")]]],
        h.p[h.a(href="/audit/entries?action=read.*")[_("Reads only")], " · ",
            h.a(href="/audit/flags")[_("Abnormal access")]],
        h.p[_("Export this filter:") + " ",
            h.a(href="/audit/export?" + urlencode({**kept, "format": "csv"}))["CSV"], " · ",
            h.a(href="/audit/export?" + urlencode({**kept, "format": "odm"}))[
                "CDISC ODM 1.3.2"]],
        h.table(".audit")[h.thead[h.tr[
            h.th["#"], h.th[_("Time (UTC)")], h.th[_("User")], h.th[_("Action")],
            h.th[_("Target")], h.th[_("Study")], h.th[_("Subject")],
            h.th[_("Outcome")], h.th[_("Client")], h.th[_("Reason")]]],
            h.tbody[body]],
        h.p[more] if more else None)


@router.get("/audit/export", dependencies=[requires(Perm.AUDIT_READ)])
def audit_export(request: Request, filters: PageFilter, session: SessionDep,
                 ledger: LedgerDep,
                 actor: CurrentActor,
                 format: str = Query("csv", pattern="^(csv|odm)$")) -> StreamingResponse:
    return export_response(request, session, ledger, actor, filters, format)


def _flag_row(f: AccessFlag) -> h.Node:
    state = (f"✔ {f.acknowledged_by}, {local_minute(f.acknowledged_at)}: {f.note}"
             if f.acknowledged_at else h.a(href=f"/audit/flags/{f.id}")[_("Acknowledge")])
    return h.tr[h.td[local_minute(f.seen_at)], h.td[oversight.RULE_LABELS[f.rule]],
                h.td[f.username], h.td[f.study or "—"], h.td[f.client or "—"], h.td[f.detail],
                h.td[state]]


FLAG_HEAD = h.thead[h.tr[h.th[_l("When")], h.th[_l("Rule")], h.th[_l("User")],
                         h.th[_l("Study")], h.th[_l("Client")], h.th[_l("Seen")],
                         h.th[_l("Acknowledged")]]]


@router.get("/audit/flags", dependencies=[requires(Perm.ACCESS_FLAG_READ)])
def access_flags(request: Request, session: SessionDep, actor: CurrentActor,
                 open_only: bool = Query(False, alias="open")) -> Response:
    """The abnormal-access flags (§11.1.2.4, §11.3.4.9 d), newest first."""
    rows = oversight.flags(session, actor=actor, open_only=open_only)
    return page(
        request, _("Abnormal access"),
        h.p[_("Access from outside the hospital network, out of working hours, bulk reads and "
              "repeated refusals are each flagged once until the data security officer "
              "acknowledges the flag.")],
        h.p[h.a(href="/audit/flags?open=true")[_("Open only")], " · ",
            h.a(href="/audit/flags")[_("All")], " · ",
            h.a(href="/audit/entries?action=read.*")[_("Reads in the audit trail")]],
        h.table(".audit")[FLAG_HEAD, h.tbody[[_flag_row(f) for f in rows]]]
        if rows else h.p[_("No abnormal access flagged")])


def _flag_page(request: Request, session: SessionDep, actor: CurrentActor,
               flag_id: str) -> Response:
    f = oversight.flag(session, actor=actor, flag_id=flag_id)
    form = None if f.acknowledged_at else h.form(
        method="post", action=f"/audit/flags/{f.id}/acknowledge")[
        csrf_field(request),
        field(_("Note (what you found and did)"), "note", textarea=True),
        h.p[h.button(type="submit")[_("Acknowledge")]]]
    return page(request, _("Abnormal access"),
                h.table(".audit")[FLAG_HEAD, h.tbody[_flag_row(f)]], form,
                h.p[h.a(href=f"/audit/entries?user={f.username}")[
                    _("This user's audit trail")]])


@router.get("/audit/flags/{flag_id}", dependencies=[requires(Perm.ACCESS_FLAG_READ)])
def access_flag(flag_id: str, request: Request, session: SessionDep,
                actor: CurrentActor) -> Response:
    return _flag_page(request, session, actor, flag_id)


@router.post("/audit/flags/{flag_id}/acknowledge",
             dependencies=[requires(Perm.ACCESS_FLAG_ACK), Csrf])
def acknowledge_flag(flag_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                     actor: CurrentActor,
                     note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    def act() -> Response:
        oversight.acknowledge(session, ledger, actor=actor, flag_id=flag_id, note=note,
                              now=now())
        return redirect(request, "/audit/flags", _("Flag acknowledged"))

    return submit(session, {"note": note}, act,
                  lambda: _flag_page(request, session, actor, flag_id))
