"""Pages of internal exports (§11.3.4.1 c, §11.3.4.9 b): the study's export page (ask for an
export, see its approval, download each form and the whole study as CSV, ODM, SPSS, Stata,
SAS and the R script) and the approvers' page (the PI's and the data security office's signed
decisions). A refused request or signature comes back on the same page (422) with the error
at its field; nothing is recorded but the audited refusal."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.forms import submit
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import sign_error, signature_fields
from edc.web.timefmt import local_minute
from edc.web.widgets import checkbox, field, field_error
from studies.accounts import signatures
from studies.entry import export_approval, odm_export
from studies.entry.export_approval import RequestView
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput, SignatureRefused
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm
from studies.registry import service as registry

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries

STAT_LINKS = (("csv", _l("CSV (codes)")), ("csv_labels", _l("CSV (labels)")),
              ("sav", "SPSS .sav"), ("dta", "Stata .dta"), ("xpt", "SAS .xpt"),
              ("r", _l("R script")))


async def form_data(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(form_data)]


def _scope(v: RequestView) -> str:
    return ", ".join(v.row.forms) if v.row.forms else _("whole study")


def _qi(raw: bool) -> str:
    return (_("raw quasi-identifiers") if raw
            else _("quasi-identifiers left out"))


def _decision_form(request: Request, v: RequestView, first: bool, needs_totp: bool,
                   back: str, error: InvalidInput | None) -> h.Element:
    problem = sign_error(error)
    return h.form(".export-decision", method="post",
                  action=f"/export-requests/{quote(v.row.id)}/decision")[
        csrf_field(request), h.input(type="hidden", name="back", value=back), problem,
        h.label(for_=f"decision-{v.row.id}")[_("Decision")],
        dropdown(id=f"decision-{v.row.id}", name="decision")[
            h.option(value="approve")[_("Approve")],
            h.option(value="reject")[_("Reject")]],
        h.label(for_=f"note-{v.row.id}")[_("Note (required to reject)")],
        h.textarea(id=f"note-{v.row.id}", name="note", maxlength="2000", rows="2"),
        *signature_fields(request, first=first, needs_totp=needs_totp),
        h.p[h.button(type="submit")[_("Sign and record the decision")]]]


def _requests_table(request: Request, session: Session, actor: Actor, views: list[RequestView],
                    auth: AuthDep, back: str,
                    failed: tuple[str, InvalidInput] | None) -> h.Element:
    first, needs_totp = signatures.signing_needs(session, actor=actor, config=auth)
    rows = []
    for v in views:
        r = v.row
        decision: h.Node = h.span(".signature")[v.signature] if v.signature else "—"
        if v.may_decide:
            decision = _decision_form(request, v, first, needs_totp, back,
                                      failed[1] if failed and failed[0] == r.id else None)
        rows.append(h.tr(".export-request", id=f"request-{r.id}")[
            h.td[v.study], h.td[local_minute(r.created_at)], h.td[r.requested_by],
            h.td(".scope")[_scope(v)], h.td(".qi")[_qi(r.raw_quasi_identifiers)],
            h.td[r.purpose], h.td(".status")[label(r.status)],
            h.td[local_minute(r.expires_at) if r.expires_at else "—"],
            h.td[r.decision_note or ""], h.td[decision]])
    return h.table("#export-requests")[
        h.thead[h.tr[h.th[_("Study")], h.th[_("Requested")],
                     h.th[_("By")], h.th[_("Scope")],
                     h.th[_("Quasi-identifiers")], h.th[_("Purpose")],
                     h.th[_("Status")], h.th[_("Valid until")],
                     h.th[_("Note")], h.th[_("Decision")]]],
        h.tbody[rows or h.tr[h.td(colspan="10")[_("None")]]]]


def _exports_page(request: Request, session: Session, actor: Actor, auth: AuthDep,
                  study: str, failed: tuple[str, InvalidInput] | None = None) -> Response:
    names = odm_export.exportable_forms(session, actor=actor, study_code=study)
    s = registry.get_study(session, study)
    approval = export_approval.covering(session, actor=actor, study=s, form_names=None,
                                        required=False)
    views = export_approval.requests_of_study(session, actor=actor, study_code=study)
    api = f"/api/v1/studies/{quote(study)}/export"

    def stat(fmt: str, form: str | None = None) -> str:
        return f"{api}/statistics/{fmt}" + (f"?form={quote(form)}" if form else "")

    current = (h.p("#current-approval")[
        _("You hold an approved export:") + " ",
        ", ".join(approval.forms) if approval.forms else _("whole study"), " · ",
        _qi(approval.raw_quasi_identifiers), " · ",
        _("{decided_by} · valid until {expires_at}").format(
            decided_by=approval.decided_by, expires_at=local_minute(approval.expires_at))]
        if approval is not None else h.p("#current-approval.none")[
            _("You hold no approved export of the whole study; downloads are refused until a "
              "request is approved (§11.3.4.1 c).")])
    request_form = h.form("#export-request-form", method="post",
                          action=f"/studies/{quote(study)}/export-requests")[
        csrf_field(request),
        h.fieldset[h.legend[_("Scope (none ticked: the whole study)")],
                   [checkbox(n, "forms", value=n) for n in names],
                   field_error("forms", _("Forms"))],
        checkbox(_("Include raw quasi-identifiers (dates of birth, sex, visit dates…; approved by "
                   "the data security officer)"), "raw_quasi_identifiers"),
        field_error("raw_quasi_identifiers", _("Quasi-identifiers")),
        field(_("Purpose"), "purpose", textarea=True, maxlength="2000"),
        field(_("Days valid"), "valid_days", type_="number", value="30", min="1",
              max=str(export_approval.MAX_DAYS)),
        h.p[h.button(type="submit")[_("Request the export")]]]
    per_form = [h.tr[h.td[n],
                     h.td[h.a(href=f"{api}/forms/{quote(n)}.csv", download="")["CSV (Excel)"]],
                     [h.td[h.a(href=stat(fmt, n), download="")[text]]
                      for fmt, text in STAT_LINKS]] for n in names]
    resp = page(
        request, _("Export data — {study}").format(study=study),
        h.p[_("An internal export needs an approval (§11.3.4.1 c): the PI's signature, or the "
              "data security officer's when it includes raw quasi-identifiers. Every download is "
              "recorded in the audit trail with the approval it used; direct identifiers are "
              "never exported.")],
        h.h2[_("Export approval")], current,
        h.h3[_("Request an export")], request_form,
        h.h3[_("Export requests")],
        _requests_table(request, session, actor, views, auth, f"/studies/{quote(study)}/exports",
                        failed),
        h.h2[_("The whole study")],
        h.ul("#whole-study")[
            [h.li[h.a(href=stat(fmt), download="")[text]] for fmt, text in STAT_LINKS],
            h.li[h.a(href=f"{api}/odm", download="")[
                _("CDISC ODM 1.3.2, with audit records (XML)")]]],
        h.h2[_("Per form")],
        h.table("#per-form")[
            h.thead[h.tr[h.th[_("Form")], h.th["CSV (Excel)"],
                         [h.th[text] for _x, text in STAT_LINKS]]],
            h.tbody[per_form or h.tr[h.td(colspan="8")["—"]]]],
        h.p[_("CSV files are UTF-8 with a byte-order mark (Excel on Chinese Windows reads them); "
              "the R script reads the CSV of the same export with its labels.")],
        h.p[h.a(href="/account")[_("API tokens for scripted exports (REDCap shape)")]])
    if failed is not None:
        resp.status_code = 422
    return resp


@router.get("/studies/{study}/exports", dependencies=[requires(Perm.ENTRY_EXPORT)])
def exports_page(study: str, request: Request, session: SessionDep, actor: CurrentActor,
                 auth: AuthDep) -> Response:
    """Ask for an export, see its approval, download (each download audited)."""
    return _exports_page(request, session, actor, auth, study)


@router.post("/studies/{study}/export-requests",
             dependencies=[requires(Perm.ENTRY_EXPORT), Csrf])
def request_export(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, auth: AuthDep, posted: Posted) -> Response:
    def act() -> Response:
        days = str(posted.get("valid_days") or "").strip()
        if not days.isdigit() or len(days) > 4:
            raise InvalidInput(_("valid_days: a whole number of days, 1–{MAX_DAYS}").format(
                                   MAX_DAYS=export_approval.MAX_DAYS), field="valid_days")
        export_approval.request_export(
            session, ledger, actor=actor, study_code=study,
            form_names=[str(f)[:64] for f in posted.getlist("forms")][:500],
            raw_quasi_identifiers=posted.get("raw_quasi_identifiers") == "on",
            purpose=str(posted.get("purpose") or "")[:4000], valid_days=int(days))
        return redirect(request, f"/studies/{quote(study)}/exports",
                        _("export requested; awaiting approval"))

    return submit(session, posted, act, lambda: _exports_page(request, session, actor, auth,
                                                              study))


def _approvals_page(request: Request, session: Session, actor: Actor, auth: AuthDep,
                    failed: tuple[str, InvalidInput] | None = None) -> Response:
    views = export_approval.waiting_for(session, actor=actor)
    resp = page(
        request, _("Export approvals (§11.3.4.1 c)"),
        h.p[_("The PI approves exports without raw quasi-identifiers; the data security officer "
              "approves those with them. Nobody approves their own request.")],
        _requests_table(request, session, actor, views, auth, "/export-approvals", failed))
    if failed is not None:
        resp.status_code = 422
    return resp


@router.get("/export-approvals", dependencies=[requires(Perm.EXPORT_APPROVE)])
def approvals_page(request: Request, session: SessionDep, actor: CurrentActor,
                   auth: AuthDep) -> Response:
    return _approvals_page(request, session, actor, auth)


@router.post("/export-requests/{request_id}/decision",
             dependencies=[requires(Perm.EXPORT_APPROVE), Csrf])
def decide(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor, auth: AuthDep,
           decision: Annotated[str, Form(max_length=10)] = "",
           note: Annotated[str, Form(max_length=2000)] = "",
           back: Annotated[str, Form(max_length=200)] = "",
           password: Annotated[str, Form(max_length=1000)] = "",
           username: Annotated[str, Form(max_length=100)] = "",
           totp: Annotated[str | None, Form(max_length=20)] = None) -> Response:
    """The signed decision; a signing mistake or a missing note is shown at the request's form
    on the page it came from (422), the session kept."""
    request_id = request_id[:36]
    study_back = back.startswith("/studies/") and back.endswith("/exports")

    def again(exc: InvalidInput) -> Response:
        if study_back:
            return _exports_page(request, session, actor, auth,
                                 back.removeprefix("/studies/").removesuffix("/exports"),
                                 failed=(request_id, exc))
        return _approvals_page(request, session, actor, auth, failed=(request_id, exc))

    try:
        if decision not in ("approve", "reject"):
            raise InvalidInput(_("decision: approve or reject"),
                               field="decision")
        row = export_approval.decide(session, ledger, actor=actor, request_id=request_id,
                                     approve=decision == "approve", note=note,
                                     username=username, password=password, totp=totp or None,
                                     config=auth)
    except SignatureRefused as exc:
        signatures.record_refusal(session, ledger, exc)
        return again(InvalidInput(exc.message, field=exc.field))
    except InvalidInput as exc:
        if not session.is_active:
            raise
        return again(exc)
    return redirect(request, back if study_back else "/export-approvals",
                    _("export request approved") if row.status == "approved"
                    else _("export request rejected"))
