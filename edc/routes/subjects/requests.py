"""Pages of a subject's requests (§7 f correction, §7 h restriction): the custodian records
the request on the code-index page; the study team at the subject's site sees it, by subject
code only, on ``/studies/{study}/subject-requests`` and resolves it — a correction after the
data were corrected on the form with a reason naming the request, a restriction by withdrawing
consent scopes against it; the PI may decline with a note."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routes.clock import now
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.layout import csrf_field, page, redirect
from edc.web.timefmt import local_minute
from studies.consent.models import SCOPE_LABELS
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.subjects import requests as subject_requests

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
Text = Annotated[str, Form(max_length=4000)]


def custodian_form(request: Request) -> list[h.Node]:
    """The section of the code-index page where the custodian records a subject's request."""
    return [
        h.h2[_("A subject's request (§7 f, §7 h)")],
        h.form("#subject-request", method="post", action="/code-index/requests")[
            csrf_field(request),
            h.label(for_="request-code")[_("Subject code")],
            h.input(id="request-code", name="code", required=True, maxlength="40",
                    autocomplete="off"),
            h.label(for_="request-kind")[_("Kind")],
            dropdown(id="request-kind", name="kind")[
                [h.option(value=k)[v] for k, v in subject_requests.KIND_LABELS.items()]],
            h.label(for_="request-text")[_("The request, in the subject's words")],
            h.textarea(id="request-text", name="text", required=True, maxlength="4000",
                       rows="3"),
            h.label(for_="request-reason")[_("Reason for recording")],
            h.input(id="request-reason", name="reason", required=True, minlength="5",
                    maxlength="500", autocomplete="off"),
            h.p[h.button(type="submit")[_("Record and route to the study team")]]]]


@router.post("/code-index/requests", dependencies=[requires(Perm.CODE_INDEX_EXPORT), Csrf])
def record(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
           code: Annotated[str, Form(max_length=40)], text: Text,
           reason: Annotated[str, Form(max_length=500)],
           kind: Annotated[str, Form(max_length=20)] = "correction") -> Response:
    row = subject_requests.record(session, ledger, actor=actor, code=code, kind=kind,
                                  text=text, reason=reason)
    return redirect(request, "/code-index",
                    _("{reference} recorded and routed to the study "
                      "team").format(reference=row.reference))


def _item(request: Request, study: str, v: subject_requests.RequestView,
          may_decline: bool) -> h.Element:
    r = v.request
    base = f"/studies/{quote(study)}/subject-requests/{quote(r.id)}"
    if r.kind == "correction":
        how: list[h.Node] = [
            h.p[_("Correct the data on the form first, with a reason naming") + " ",
                h.code[r.reference], _(", then confirm here."), " ",
                h.a(href=f"/studies/{quote(study)}/subjects/{quote(v.subject_code)}")[
                    _("Subject") + " " + v.subject_code]]]
    else:
        how = [h.fieldset[h.legend[_("Consent scopes to withdraw")],
                          [h.label[h.input(type="checkbox", name="scopes", value=k), " ", lab]
                           for k, lab in SCOPE_LABELS.items()]]]
    return h.section(".subject-request", id=f"request-{r.reference}")[
        h.h3[f"{r.reference} — {subject_requests.KIND_LABELS[r.kind]}"],
        h.dl[h.dt[_("Subject")], h.dd(".subject")[f"{v.subject_code} ({v.site_code})"],
             h.dt[_("Request")], h.dd(".text")[r.text],
             h.dt[_("Recorded")], h.dd[f"{local_minute(r.created_at)} · {r.recorded_by}"]],
        h.form(".resolve", method="post", action=f"{base}/resolve")[
            csrf_field(request), *how,
            h.label(for_=f"note-{r.reference}")[_("What was done")],
            h.textarea(id=f"note-{r.reference}", name="note", required=True, rows="2",
                       maxlength="4000"),
            h.p[h.button(type="submit")[_("Resolve")]]],
        h.form(".decline", method="post", action=f"{base}/decline")[
            csrf_field(request),
            h.label(for_=f"decline-{r.reference}")[_("Why it is declined")],
            h.textarea(id=f"decline-{r.reference}", name="note", required=True, rows="2",
                       maxlength="4000"),
            h.p[h.button(type="submit")[_("Decline")]]] if may_decline else None]


@router.get("/studies/{study}/subject-requests", dependencies=[requires(Perm.ENTRY_WRITE)])
def study_requests(study: str, request: Request, session: SessionDep,
                   actor: CurrentActor) -> Response:
    open_ = subject_requests.for_study(session, actor=actor, study_code=study)
    done = subject_requests.for_study(session, actor=actor, study_code=study, status=None)
    may_decline = actor.can(Perm.STUDY_MANAGE, study)
    closed = [h.tr[h.td[v.request.reference], h.td[v.subject_code],
                   h.td[subject_requests.KIND_LABELS[v.request.kind]],
                   h.td(".status")[v.request.status], h.td[v.request.resolution or ""],
                   h.td[v.request.resolved_by or ""]]
              for v in done if v.request.status != "open"]
    return page(
        request, _("{study} — Subjects' requests").format(study=study),
        h.p[_("Requests subjects made through the code-index custodian to correct their data or "
              "restrict its use.")],
        *[_item(request, study, v, may_decline) for v in open_]
        or [h.p(".none")[_("Nothing open")]],
        h.h2[_("Closed")],
        h.table(".closed")[h.thead[h.tr[h.th[_("Ref")], h.th[_("Subject")],
                                        h.th[_("Kind")], h.th[_("Status")],
                                        h.th[_("Resolution")], h.th[_("By")]]],
                           h.tbody[closed or h.tr[h.td(colspan="6")["—"]]]])


@router.post("/studies/{study}/subject-requests/{request_id}/resolve",
             dependencies=[requires(Perm.ENTRY_WRITE), Csrf])
async def resolve(study: str, request_id: str, request: Request, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    note = str(form.get("note") or "")[:4000]
    scopes = [str(s)[:40] for s in form.getlist("scopes")][:10]
    req = subject_requests.get(session, study_code=study, request_id=request_id)
    if req.kind == "restriction":
        subject_requests.resolve_restriction(session, ledger, actor=actor, study_code=study,
                                             request_id=request_id, scopes=scopes, note=note,
                                             now=now())
    else:
        subject_requests.resolve_correction(session, ledger, actor=actor, study_code=study,
                                            request_id=request_id, note=note, now=now())
    return redirect(request, f"/studies/{quote(study)}/subject-requests",
                    _("{reference} resolved").format(reference=req.reference))


@router.post("/studies/{study}/subject-requests/{request_id}/decline",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
def decline(study: str, request_id: str, request: Request, session: SessionDep,
            ledger: LedgerDep, actor: CurrentActor, note: Text = "") -> Response:
    req = subject_requests.decline(session, ledger, actor=actor, study_code=study,
                                   request_id=request_id, note=note, now=now())
    return redirect(request, f"/studies/{quote(study)}/subject-requests",
                    _("{reference} declined").format(reference=req.reference))
