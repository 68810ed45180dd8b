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
from edc.web.csrf import Csrf
from edc.web.layout import csrf_field, page, redirect
from edc.web.timefmt import local_minute
from studies.consent.models import SCOPE_LABELS
from studies.kernel.roles import Perm
from studies.subjects import requests as subject_requests

router = APIRouter()
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
Text = Annotated[str, Form(max_length=4000)]


def custodian_form(request: Request) -> list[h.Node]:
    """The section of the code-index page where the custodian records a subject's request."""
    return [
        h.h2["受试者的请求 / A subject's request (§7 f, §7 h)"],
        h.form("#subject-request", method="post", action="/code-index/requests")[
            csrf_field(request),
            h.label(for_="request-code")["受试者代码 / Subject code"],
            h.input(id="request-code", name="code", required=True, maxlength="40",
                    autocomplete="off"),
            h.label(for_="request-kind")["类型 / Kind"],
            dropdown(id="request-kind", name="kind")[
                [h.option(value=k)[v] for k, v in subject_requests.KIND_LABELS.items()]],
            h.label(for_="request-text")["受试者的请求（原话）/ The request, in the subject's "
                                         "words"],
            h.textarea(id="request-text", name="text", required=True, maxlength="4000",
                       rows="3"),
            h.label(for_="request-reason")["记录理由 / Reason for recording"],
            h.input(id="request-reason", name="reason", required=True, minlength="5",
                    maxlength="500", autocomplete="off"),
            h.p[h.button(type="submit")["记录并转交研究团队 / Record and route to the study "
                                        "team"]]]]


@router.post("/code-index/requests", dependencies=[requires(Perm.CODE_INDEX_EXPORT), Csrf])
def record(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
           code: Annotated[str, Form(max_length=40)], text: Text,
           reason: Annotated[str, Form(max_length=500)],
           kind: Annotated[str, Form(max_length=20)] = "correction") -> Response:
    row = subject_requests.record(session, ledger, actor=actor, code=code, kind=kind,
                                  text=text, reason=reason)
    return redirect(request, "/code-index", f"{row.reference} recorded and routed to the study "
                                            "team / 已记录并转交研究团队")


def _item(request: Request, study: str, v: subject_requests.RequestView,
          may_decline: bool) -> h.Element:
    r = v.request
    base = f"/studies/{quote(study)}/subject-requests/{quote(r.id)}"
    if r.kind == "correction":
        how: list[h.Node] = [
            h.p["先在表单中更正数据，理由中注明 ", h.code[r.reference], "，再在此确认。 / Correct "
                "the data on the form first, with a reason naming ", h.code[r.reference],
                ", then confirm here. ",
                h.a(href=f"/studies/{quote(study)}/subjects/{quote(v.subject_code)}")[
                    "受试者 / Subject " + v.subject_code]]]
    else:
        how = [h.fieldset[h.legend["撤回的同意范围 / Consent scopes to withdraw"],
                          [h.label[h.input(type="checkbox", name="scopes", value=k), " ", lab]
                           for k, lab in SCOPE_LABELS.items()]]]
    return h.section(".subject-request", id=f"request-{r.reference}")[
        h.h3[f"{r.reference} — {subject_requests.KIND_LABELS[r.kind]}"],
        h.dl[h.dt["受试者 / Subject"], h.dd(".subject")[f"{v.subject_code} ({v.site_code})"],
             h.dt["请求 / Request"], h.dd(".text")[r.text],
             h.dt["记录于 / Recorded"], h.dd[f"{local_minute(r.created_at)} · {r.recorded_by}"]],
        h.form(".resolve", method="post", action=f"{base}/resolve")[
            csrf_field(request), *how,
            h.label(for_=f"note-{r.reference}")["处理说明 / What was done"],
            h.textarea(id=f"note-{r.reference}", name="note", required=True, rows="2",
                       maxlength="4000"),
            h.p[h.button(type="submit")["完成 / Resolve"]]],
        h.form(".decline", method="post", action=f"{base}/decline")[
            csrf_field(request),
            h.label(for_=f"decline-{r.reference}")["拒绝理由 / Why it is declined"],
            h.textarea(id=f"decline-{r.reference}", name="note", required=True, rows="2",
                       maxlength="4000"),
            h.p[h.button(type="submit")["拒绝 / Decline"]]] if may_decline else None]


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
        request, f"{study} — 受试者的请求 / Subjects' requests",
        h.p["受试者通过代码索引管理员提出的更正或限制请求（§7 f、h）。 / Requests subjects made "
            "through the code-index custodian to correct their data or restrict its use."],
        *[_item(request, study, v, may_decline) for v in open_]
        or [h.p(".none")["暂无待处理 / Nothing open"]],
        h.h2["已处理 / Closed"],
        h.table(".closed")[h.thead[h.tr[h.th["编号 / Ref"], h.th["受试者 / Subject"],
                                        h.th["类型 / Kind"], h.th["状态 / Status"],
                                        h.th["处理 / Resolution"], h.th["处理人 / By"]]],
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
                    f"{req.reference} resolved / 已处理")


@router.post("/studies/{study}/subject-requests/{request_id}/decline",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
def decline(study: str, request_id: str, request: Request, session: SessionDep,
            ledger: LedgerDep, actor: CurrentActor, note: Text = "") -> Response:
    req = subject_requests.decline(session, ledger, actor=actor, study_code=study,
                                   request_id=request_id, note=note, now=now())
    return redirect(request, f"/studies/{quote(study)}/subject-requests",
                    f"{req.reference} declined / 已拒绝")
