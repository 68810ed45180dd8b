"""Pages: extract requests (sponsors), approvals (officer, committee, ethics), builds (data
manager), downloads (named recipients). Thin: one domain call per route; works without JS
(the detail page follows a running build: htmx polls its progress fragment every 2 s; without
JavaScript the page reloads itself every 3 s)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import htpy as h
from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import authenticated, requires
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from studies.accounts import signatures
from studies.extracts import custody as extract_custody
from studies.extracts import recipients as extract_recipients
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.models import TIER_LABELS
from studies.extracts.schemas import DecisionIn, RequestIn
from studies.kernel.errors import SignatureRefused
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
CLASS_LABELS = {"direct_identifier": _l("direct identifier"),
                "quasi_identifier": _l("quasi-identifier"),
                "sensitive": _l("sensitive"), "clinical": _l("clinical")}


@router.get("/extracts", dependencies=[authenticated()])
def extract_list(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/extracts/{r.id}")[r.id[:8]]], h.td[r.study_code],
                 h.td[r.tier.upper()], h.td[r.recipient_org], h.td(".status")[label(r.status)],
                 h.td[label(r.build_state)]]
            for r in ex.list_requests(session, actor=actor)]
    return page(request, _("Extract requests"), h.table(".extracts")[
        h.thead[h.tr[h.th[_("Id")], h.th[_("Study")], h.th[_("Tier")],
                     h.th[_("Recipient")], h.th[_("Status")],
                     h.th[_("Build")]]],
        h.tbody[rows or h.tr[h.td(colspan="6")[_("None")]]]])


@router.get("/studies/{study}/extracts/new", dependencies=[requires(Perm.EXTRACT_REQUEST)])
def request_form(study: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    fields = ex.fields_for(session, actor=actor, study_code=study)
    organisations = ex.recipient_choices(session)
    today = dt.date.today()
    return page(
        request, _("Request an extract — {study}").format(study=study),
        h.form(method="post", action=f"/studies/{study}/extracts")[
            csrf_field(request),
            h.label(for_="purpose")[_("Purpose")],
            h.textarea(id="purpose", name="purpose", required=True, maxlength="4000"),
            h.fieldset[h.legend[_("Fields (minimum necessary)")],
                       [h.label[h.input(type="checkbox", name="fields", value=f.name),
                                f" {f.name} — {f.label} ",
                                h.span(class_=f"cls {f.classification}")[
                                    f"[{CLASS_LABELS.get(f.classification, '')}]"]]
                        for f in fields]],
            h.label(for_="tier")[_("Tier")],
            dropdown(id="tier", name="tier")[[h.option(value=k)[v]
                                              for k, v in TIER_LABELS.items()]],
            h.label(for_="recipient_org")[_("Recipient organisation")],
            dropdown(id="recipient_org", name="recipient_org", required=True)[
                [h.option(value=o.code)[
                    f"{o.label} ({o.country}" + (", " + _("abroad") if abroad else "") + ")"]
                 for o, abroad in organisations]],
            h.p(".hint")[_("Whether the data leave the country follows from the organisation's "
                           "registered country (§7 p); a RIF goes only to the hospital itself "
                           "(§11.3.4.6).")],
            h.label(for_="recipient_key")[_("Recipient age public key (age1…)")],
            h.input(id="recipient_key", name="recipient_key", required=True, maxlength="100"),
            h.label(for_="use_from")[_("Use from")],
            h.input(id="use_from", name="use_from", type="date", value=today.isoformat()),
            h.label(for_="use_until")[_("Until")],
            h.input(id="use_until", name="use_until", type="date",
                    value=(today + dt.timedelta(days=365)).isoformat()),
            h.p[h.button(type="submit")[_("Submit")]]])


@router.post("/studies/{study}/extracts", dependencies=[requires(Perm.EXTRACT_REQUEST), Csrf])
def request_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, purpose: Annotated[str, Form(max_length=4000)],
                   tier: Annotated[str, Form(max_length=3)],
                   recipient_org: Annotated[str, Form(max_length=200)],
                   recipient_key: Annotated[str, Form(max_length=100)],
                   use_from: Annotated[dt.date, Form()], use_until: Annotated[dt.date, Form()],
                   fields: Annotated[list[str] | None, Form(max_length=500)] = None,
                   ) -> Response:
    req = ex.create_request(session, ledger, actor=actor, study_code=study, data=RequestIn(
        purpose=purpose, fields=fields or [], tier=tier, recipient_org=recipient_org,
        recipient_key=recipient_key, use_from=use_from, use_until=use_until))
    return redirect(request, f"/extracts/{req.id}", _("request submitted"))


def _cross_border(d: dict[str, Any]) -> str:
    r = d["recipient"]
    text = _("yes") if d["cross_border"] else _("no")
    if r is None:
        return text
    limit = (f"/ {r['cross_border_limit']}" if r["cross_border_limit"] is not None
             else _("(authority approval {authority_approval})").format(
                      authority_approval=r['authority_approval']))
    return f"{text} — {r['country']}; " + _(
        "recipient's cross-border total: {total} {limit} persons (§7 p)").format(
            total=r["cross_border_total"], limit=limit)


APPROVAL_LABELS = {"officer": _l("first review (data security office)"),
                   "committee": _l("committee vote"), "dua": _l("DUA"),
                   "ethics": _l("ethics")}


def _dl(d: dict[str, Any]) -> h.Element:
    b, a = d["build"], d["approvals"]
    return h.dl[
        h.dt[_("Study")], h.dd[d["study"]], h.dt[_("Tier")], h.dd[d["tier"].upper()],
        h.dt[_("Purpose")], h.dd[d["purpose"]],
        h.dt[_("Recipient")], h.dd[f"{d['recipient_org']} ({', '.join(d['recipients'])})"],
        h.dt[_("Period of use")], h.dd[f"{d['use_from']} – {d['use_until']}"],
        h.dt[_("Cross-border")], h.dd(".cross-border")[_cross_border(d)],
        h.dt[_("Status")], h.dd(".status")[label(d["status"])],
        h.dt[_("Approvals")], h.dd(".approvals")[" → ".join(
            f"{APPROVAL_LABELS.get(n, n)}: {'✓' if a['done'].get(n) else '…'}"
            for n in a["needs"])
            + (" " + _("committee: {yes} yes / {no} no of {committee_members} on the roll frozen "
                       "when the request opened")
                     .format(yes=a['yes'], no=a['no'], committee_members=a['committee_members'])
               + (f", {a['committee_left']} left without voting" if a["committee_left"]
                  else "") + "; more than two thirds needed, Appendix C)"
               if "committee" in a["needs"] else "")],
        h.dt[_("Problem")], h.dd(".problem")[a["problem"] or "—"],
        h.dt[_("Build")], build_progress(d["id"], b),
        h.dt[_("Package SHA-256")], h.dd[h.code[b["package_sha256"] or "—"]]]


BUILDING = ("queued", "running")


def build_progress(request_id: str, b: dict[str, Any]) -> h.Element:
    """The build's state and progress; while it runs htmx replaces it every 2 s with
    ``/extracts/<id>/progress`` (the same element, fresh), and stops when the build ends."""
    running = b["state"] in BUILDING
    return h.dd(".build", id="build-progress", role="status", aria_live="polite",
                hx_get=f"/extracts/{request_id}/progress" if running else None,
                hx_trigger="every 2s" if running else None,
                hx_swap="outerHTML" if running else None)[
        f"{label(b['state'])} {b['progress']}%" + (f" — {b['error']}" if b["error"] else ""),
        h.progress(max="100", value=str(b["progress"])) if running else None]


def _agreement(dua: dict[str, Any]) -> h.Element:
    """The data-use agreement in full, with the hashes the signature binds."""
    return h.section(".agreement")[
        h.h2[_("Data-use agreement (Appendix E.3)")],
        h.pre(".terms")[dua["text"]],
        h.p[_("Terms SHA-256:") + " ", h.code(".terms-hash")[dua["terms_sha256"]]],
        h.p[_("Request SHA-256:") + " ", h.code(".request-hash")[dua["request_sha256"]]],
        h.p[_("Signed content (hash over both):") + " ",
            h.code(".content-hash")[dua["content_sha256"]]]]


def _extract_page(request: Request, session: SessionDep, actor: CurrentActor,
                  request_id: str, error: SignatureRefused | None = None) -> Response:
    d = extract_review.detail(session, actor=actor, request_id=request_id)
    dua = extract_review.agreement_view(session, actor=actor, request_id=request_id)
    fields = h.ul(".fields")[[h.li[f, " ", h.span(class_=f"cls {c}")[
        f"[{CLASS_LABELS.get(c or '', '?')}]"]] for f, c in d["field_classes"].items()]]
    history = None
    if "applicant_history" in d:
        history = h.section[
            h.h2[_("The applicant's earlier requests (§11.4.2.2)")],
            h.table(".history")[h.tbody[[h.tr[h.td[x["id"][:8]], h.td[x["study"]],
                                              h.td[x["tier"]], h.td[", ".join(x["fields"])],
                                              h.td[_("received") if x["received"]
                                                   else _("not received")]]
                                         for x in d["applicant_history"]]
                                        or h.tr[h.td[_("none")]]]],
            h.p(".overlap")[_("Fields already received:") + " ",
                            ", ".join(d["already_received_fields"]) or "—"]]
    problem = None
    if error is not None:
        problem = h.div(".sign-error", role="alert")[
            h.p(".error")[error.message],
            h.p[_("field: {field}").format(field=error.field)] if error.field else None]
    sign = h.form(method="post", action=f"/extracts/{request_id}/decisions")[
        csrf_field(request),
        h.input(type="hidden", name="terms_sha256", value=dua["terms_sha256"]),
        h.label(for_="kind")[_("Kind")],
        dropdown(id="kind", name="kind")[[h.option(value=k)[APPROVAL_LABELS.get(
            "committee" if k == "vote" else k, k)] for k in ("officer", "vote", "ethics", "dua")]],
        h.label(for_="approve")[_("Decision")],
        dropdown(id="approve", name="approve")[h.option(value="1")[_("approve")],
                                               h.option(value="0")[_("refuse")]],
        h.label(for_="reference")[_("Ethics approval id (RIF)")],
        h.input(id="reference", name="reference", maxlength="100"),
        h.label(for_="username")[_("Username")],
        h.input(id="username", name="username", maxlength="100", autocomplete="username"),
        h.label(for_="password")[_("Password (electronic signature)")],
        h.input(id="password", name="password", type="password", required=True,
                maxlength="200"),
        h.label(for_="totp")[_("TOTP")],
        h.input(id="totp", name="totp", maxlength="12", autocomplete="one-time-code"),
        h.p[h.button(type="submit")[_("I have read the agreement and the request above and sign")]]]
    actions: list[h.Node] = []
    if actor.can(Perm.EXTRACT_BUILD, d["study"]) and d["status"] == "approved":
        actions.append(h.form(method="post", action=f"/extracts/{request_id}/build")[
            csrf_field(request), h.button(type="submit")[_("Build package")]])
    if d["build"]["state"] == "done" and actor.username in d["recipients"]:
        actions.append(h.p[h.a(".download", href=f"/extracts/{request_id}/package")[
            _("Download the encrypted package")]])
    custody = h.table(".custody")[h.tbody[[h.tr[h.td[t["event"]], h.td[t["actor"]],
                                                h.td[t["at"]], h.td[h.code[t["sha256"] or ""]]]
                                           for t in d["transfers"]]]]
    building = d["build"]["state"] in BUILDING  # without JavaScript: reload to follow it
    resp = page(request, _("Extract request {value}").format(value=request_id[:8]), _dl(d), fields,
                history, _agreement(dua), h.h2[_("Sign")], problem, sign, *actions,
                h.h2[_("Chain of custody")], custody,
                head=h.noscript[h.meta(http_equiv="refresh", content="3")] if building
                else None)
    if error is not None:
        resp.status_code = 422
    return resp


@router.get("/extracts/{request_id}", dependencies=[authenticated()])
def extract_page(request_id: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    return _extract_page(request, session, actor, request_id)


@router.get("/extracts/{request_id}/progress", dependencies=[authenticated()])
def build_progress_fragment(request_id: str, request: Request, session: SessionDep,
                            actor: CurrentActor) -> Response:
    """The progress fragment htmx polls; once the build has ended the whole page is reloaded
    (``HX-Refresh``), since what it offers (the download) changes with it."""
    b = ex.build_status(session, actor=actor, request_id=request_id)
    done = b["state"] not in BUILDING and request.headers.get("HX-Request")
    return HTMLResponse(str(build_progress(request_id, b)),
                        headers={"HX-Refresh": "true"} if done else None)


@router.post("/extracts/{request_id}/decisions", dependencies=[authenticated(), Csrf])
def decision_submit(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, auth: AuthDep,
                    kind: Annotated[str, Form(max_length=10)],
                    password: Annotated[str, Form(max_length=200)],
                    username: Annotated[str, Form(max_length=100)] = "",
                    approve: Annotated[str, Form(max_length=1)] = "1",
                    reference: Annotated[str | None, Form(max_length=100)] = None,
                    totp: Annotated[str | None, Form(max_length=12)] = None,
                    terms_sha256: Annotated[str | None, Form(max_length=64)] = None) -> Response:
    """One signed approval act; a signing mistake is shown on this page (422), the session
    kept and the refusal audited."""
    try:
        extract_review.decide(session, ledger, actor=actor, request_id=request_id,
                              data=DecisionIn(
            kind=kind, approve=approve == "1", password=password, username=username,
            totp=totp or None, reference=reference or None,
            terms_sha256=terms_sha256 or None), config=auth)
    except SignatureRefused as exc:
        signatures.record_refusal(session, ledger, exc)
        return _extract_page(request, session, actor, request_id, error=exc)
    return redirect(request, f"/extracts/{request_id}", _("signed"))


@router.post("/extracts/{request_id}/build", dependencies=[requires(Perm.EXTRACT_BUILD), Csrf])
def build_submit(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    extract_custody.queue_build(session, ledger, actor=actor, request_id=request_id)
    worker = getattr(request.app.state, "job_runner", None)
    if worker is not None:
        worker.wake()
    return redirect(request, f"/extracts/{request_id}", _("build queued"))


@router.get("/extracts/{request_id}/package", dependencies=[requires(Perm.EXTRACT_DOWNLOAD)])
def package_download(request_id: str, session: SessionDep, ledger: LedgerDep, state: StateDep,
                     actor: CurrentActor) -> Response:
    req = extract_custody.authorise_download(session, ledger, actor=actor, request_id=request_id)
    return FileResponse(state.settings.extract_dir / str(req.package_file),
                        media_type="application/octet-stream",
                        filename=f"extract-{req.id}.tar.age")


# ---- cross-border running totals and authority approvals (§7 p) ------------------------------

@router.get("/cross-border", dependencies=[requires(Perm.EXTRACT_APPROVE)])
def cross_border_list(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/cross-border/{o.code}")[o.code]], h.td[o.label],
                 h.td[o.country], h.td[_("yes") if st.abroad else _("no")],
                 h.td(".total")[str(st.total)],
                 h.td[str(st.limit) if st.limit is not None else
                      f"— ({st.approval_reference})"]]
            for o, st in extract_recipients.overview(session, actor=actor)]
    return page(request, _("Data leaving the country (§7 p)"),
                h.p[_("Records about persons sent abroad, cumulative per recipient organisation "
                      "across requests and studies.")],
                h.table(".cross-border")[
                    h.thead[h.tr[h.th[_("Code")], h.th[_("Organisation")],
                                 h.th[_("Country")], h.th[_("Abroad")],
                                 h.th[_("Total")], h.th[_("Limit")]]],
                    h.tbody[rows or h.tr[h.td(colspan="6")[_("None")]]]])


@router.get("/cross-border/{organisation}", dependencies=[requires(Perm.EXTRACT_APPROVE)])
def cross_border_page(organisation: str, request: Request, session: SessionDep,
                      actor: CurrentActor) -> Response:
    org, rows = extract_recipients.approvals_of(session, actor=actor, organisation=organisation)
    st = extract_recipients.status_of(session, org)
    return page(
        request, _("Data leaving the country — {label}").format(label=org.label),
        h.p(".total")[_("Total: {total} persons; limit: {limit}").format(
            total=st.total, limit=st.limit if st.limit is not None else "—")],
        h.table(".approvals")[
            h.thead[h.tr[h.th[_("Reference")], h.th[_("Date")],
                         h.th[_("Document SHA-256")], h.th[_("Recorded by")]]],
            h.tbody[[h.tr[h.td[a.reference], h.td[a.approved_on.isoformat()],
                          h.td[h.code[a.document_sha256]], h.td[a.recorded_by]] for a in rows]
                    or h.tr[h.td(colspan="4")[_("None")]]]],
        h.h2[_("Record an approval of the relevant authority")],
        h.form(method="post", action=f"/cross-border/{org.code}",
               enctype="multipart/form-data")[
            csrf_field(request),
            h.label(for_="reference")[_("Reference")],
            h.input(id="reference", name="reference", required=True, maxlength="100"),
            h.label(for_="approved_on")[_("Date of the approval")],
            h.input(id="approved_on", name="approved_on", type="date", required=True),
            h.label(for_="document")[_("Approval document")],
            h.input(id="document", name="document", type="file", required=True),
            h.p[h.button(type="submit")[_("Record")]]])


@router.post("/cross-border/{organisation}", dependencies=[requires(Perm.EXTRACT_APPROVE), Csrf])
async def cross_border_record(organisation: str, request: Request, document: UploadFile,
                              session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                              reference: Annotated[str, Form(max_length=100)],
                              approved_on: Annotated[dt.date, Form()]) -> Response:
    data = await document.read(extract_recipients.MAX_DOCUMENT + 1)
    extract_recipients.record_authority_approval(
        session, ledger, actor=actor, organisation=organisation, reference=reference,
        approved_on=approved_on, document=data, filename=document.filename or "")
    return redirect(request, f"/cross-border/{organisation}",
                    _("approval recorded"))
