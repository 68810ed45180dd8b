"""Pages of the retention review (§11.3.4.6 a4): the data security office's list of studies due
for their five-yearly review, a signed decision form per study (a signing mistake is a 422 on
the same page, the session kept and the refusal audited), the decisions recorded; and the
study's end date, set from the study set-up page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routes.clock import now
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.inputs import local_date
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import sign_error, signature_fields
from studies.accounts import signatures
from studies.kernel.errors import InvalidInput, SignatureRefused
from studies.kernel.i18n import _, _l, pick
from studies.kernel.roles import Perm
from studies.retention import service as retention

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
DECISION_LABELS = {"keep": _l("Keep"), "archive": _l("Archive"),
                   "destroy": _l("Destroy")}


def _decision_form(request: Request, d: retention.DueReview, first: bool, needs_totp: bool,
                   error: InvalidInput | None) -> h.Element:
    code = d.study.code
    problem = sign_error(error)
    return h.form(".decision", method="post", action=f"/retention/{quote(code)}")[
        csrf_field(request),
        h.input(type="hidden", name="due_on", value=d.due_on.isoformat()),
        problem,
        h.label(for_=f"decision-{code}")[_("Decision")],
        dropdown(id=f"decision-{code}", name="decision")[
            [h.option(value=k)[v] for k, v in DECISION_LABELS.items()]],
        h.label(for_=f"reason-{code}")[_("Reason")],
        h.textarea(id=f"reason-{code}", name="reason", required=True, maxlength="4000",
                   rows="3"),
        *signature_fields(request, first=first, needs_totp=needs_totp),
        h.p[h.button(type="submit")[_("Sign and record the decision")]]]


def _review_page(request: Request, session: SessionDep, actor: CurrentActor, auth: AuthDep,
                 failed: tuple[str, InvalidInput] | None = None) -> Response:
    due = retention.due_reviews(session, actor=actor, today=now().date())
    first, needs_totp = signatures.signing_needs(session, actor=actor, config=auth)
    items = [h.section(".due", id=f"due-{d.study.code}")[
        h.h3[f"{d.study.code} — {pick(d.study.title_zh, d.study.title_en)}"],
        h.dl[h.dt[_("End date")], h.dd(".ended")[d.ended_on.isoformat()],
             h.dt[_("Review due")], h.dd(".due-on")[d.due_on.isoformat()],
             h.dt[_("Review number")], h.dd(".number")[str(d.review_number)],
             h.dt[_("Previous decision")],
             h.dd[DECISION_LABELS.get(d.last_decision or "", "—")]],
        _decision_form(request, d, first, needs_totp,
                       failed[1] if failed and failed[0] == d.study.code else None)]
        for d in due]
    if failed is not None and failed[0] not in {d.study.code for d in due}:
        items.insert(0, h.div(".sign-error", role="alert")[
            h.p(".error")[f"{failed[0]}: {failed[1].message}"],
            h.p[_("field: {field}").format(field=failed[1].field)] if failed[1].field else None])
    done = [h.tr[h.td[r.study.code], h.td[r.review.due_on.isoformat()],
                 h.td(".decision")[DECISION_LABELS.get(r.review.decision, r.review.decision)],
                 h.td[r.review.reason], h.td(".signature")[r.signature]]
            for r in retention.recorded_reviews(session, actor=actor)]
    resp = page(
        request, _("Retention review (§11.3.4.6 a4)"),
        h.p[_("Five years after a study ends, and every five years on, the security and use of "
              "its data are reviewed and the decision is recorded with a signature.")],
        h.h2[_("Reviews due")], *items or [h.p(".none")[_("None")]],
        h.h2[_("Decisions recorded")],
        h.table(".decisions")[
            h.thead[h.tr[h.th[_("Study")], h.th[_("Review due")],
                         h.th[_("Decision")], h.th[_("Reason")],
                         h.th[_("Signature")]]],
            h.tbody[done or h.tr[h.td(colspan="5")[_("None")]]]])
    if failed is not None:
        resp.status_code = 422
    return resp


@router.get("/retention", dependencies=[requires(Perm.RETENTION_REVIEW)])
def review_list(request: Request, session: SessionDep, actor: CurrentActor,
                auth: AuthDep) -> Response:
    return _review_page(request, session, actor, auth)


@router.post("/retention/{study}", dependencies=[requires(Perm.RETENTION_REVIEW), Csrf])
def review_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor, auth: AuthDep,
                  due_on: Annotated[str, Form(max_length=20)] = "",
                  decision: Annotated[str, Form(max_length=20)] = "",
                  reason: Annotated[str, Form(max_length=4000)] = "",
                  password: Annotated[str, Form(max_length=1000)] = "",
                  username: Annotated[str, Form(max_length=100)] = "",
                  totp: Annotated[str | None, Form(max_length=20)] = None) -> Response:
    """The signed decision; a signing mistake or a missing reason is shown at the study's form
    on this page (422), nothing recorded but the audited refusal."""
    try:
        retention.decide(session, ledger, actor=actor, study_code=study,
                         due_on=local_date(due_on, "due_on"), decision=decision,
                         reason=reason, username=username, password=password,
                         totp=totp or None, today=now().date(), config=auth)
    except SignatureRefused as exc:
        signatures.record_refusal(session, ledger, exc)
        return _review_page(request, session, actor, auth, failed=(study, InvalidInput(
            exc.message, field=exc.field)))
    except InvalidInput as exc:
        if not session.is_active:  # refused while writing (a NUL in the text): roll it all back
            raise
        return _review_page(request, session, actor, auth, failed=(study, exc))
    return redirect(request, "/retention", _("{study}: decision signed and recorded").format(
                                               study=study))


@router.post("/studies/{study}/end-date", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
def end_date_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, ended_on: Annotated[str, Form(max_length=20)] = "",
                    reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    row = retention.set_end_date(session, ledger, actor=actor, study_code=study,
                                 ended_on=local_date(ended_on, "ended_on"), reason=reason,
                                 today=now().date())
    return redirect(request, f"/studies/{quote(study)}",
                    _("end date {value} recorded; first retention review due {value2}").format(
                        value=row.ended_on.isoformat(), value2=retention.review_due(row.ended_on,
                                                                                    1).isoformat()))
