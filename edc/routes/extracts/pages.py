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
from studies.kernel.roles import Perm

router = APIRouter()
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
CLASS_LABELS = {"direct_identifier": "直接标识符 / direct identifier",
                "quasi_identifier": "准标识符 / quasi-identifier",
                "sensitive": "敏感 / sensitive", "clinical": "临床 / clinical"}


@router.get("/extracts", dependencies=[authenticated()])
def extract_list(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/extracts/{r.id}")[r.id[:8]]], h.td[r.study_code],
                 h.td[r.tier.upper()], h.td[r.recipient_org], h.td(".status")[label(r.status)],
                 h.td[label(r.build_state)]]
            for r in ex.list_requests(session, actor=actor)]
    return page(request, "数据提取申请 / Extract requests", h.table(".extracts")[
        h.thead[h.tr[h.th["编号 / Id"], h.th["研究 / Study"], h.th["级别 / Tier"],
                     h.th["接收方 / Recipient"], h.th["状态 / Status"],
                     h.th["生成 / Build"]]],
        h.tbody[rows or h.tr[h.td(colspan="6")["暂无 / None"]]]])


@router.get("/studies/{study}/extracts/new", dependencies=[requires(Perm.EXTRACT_REQUEST)])
def request_form(study: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    fields = ex.fields_for(session, actor=actor, study_code=study)
    organisations = ex.recipient_choices(session)
    today = dt.date.today()
    return page(
        request, f"申请数据提取 / Request an extract — {study}",
        h.form(method="post", action=f"/studies/{study}/extracts")[
            csrf_field(request),
            h.label(for_="purpose")["用途 / Purpose"],
            h.textarea(id="purpose", name="purpose", required=True, maxlength="4000"),
            h.fieldset[h.legend["字段（最少必要）/ Fields (minimum necessary)"],
                       [h.label[h.input(type="checkbox", name="fields", value=f.name),
                                f" {f.name} — {f.label} ",
                                h.span(class_=f"cls {f.classification}")[
                                    f"[{CLASS_LABELS.get(f.classification, '')}]"]]
                        for f in fields]],
            h.label(for_="tier")["级别 / Tier"],
            dropdown(id="tier", name="tier")[[h.option(value=k)[v]
                                              for k, v in TIER_LABELS.items()]],
            h.label(for_="recipient_org")["接收机构 / Recipient organisation"],
            dropdown(id="recipient_org", name="recipient_org", required=True)[
                [h.option(value=o.code)[
                    f"{o.label} ({o.country}{', 境外 / abroad' if abroad else ''})"]
                 for o, abroad in organisations]],
            h.p(".hint")["是否出境由接收机构的登记国家决定（§7 p）；"
                         "RIF 只提供给本院（§11.3.4.6）。 / "
                         "Whether the data leave the country follows from the organisation's "
                         "registered country (§7 p); a RIF goes only to the hospital itself "
                         "(§11.3.4.6)."],
            h.label(for_="recipient_key")["接收方 age 公钥 / Recipient age public key (age1…)"],
            h.input(id="recipient_key", name="recipient_key", required=True, maxlength="100"),
            h.label(for_="use_from")["使用期限自 / Use from"],
            h.input(id="use_from", name="use_from", type="date", value=today.isoformat()),
            h.label(for_="use_until")["至 / Until"],
            h.input(id="use_until", name="use_until", type="date",
                    value=(today + dt.timedelta(days=365)).isoformat()),
            h.p[h.button(type="submit")["提交申请 / Submit"]]])


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
    return redirect(request, f"/extracts/{req.id}", "request submitted / 申请已提交")


def _cross_border(d: dict[str, Any]) -> str:
    r = d["recipient"]
    text = "是 / yes" if d["cross_border"] else "否 / no"
    if r is None:
        return text
    limit = (f"/ {r['cross_border_limit']}" if r["cross_border_limit"] is not None
             else f"(主管部门批准 / authority approval {r['authority_approval']})")
    return (f"{text} — {r['country']}; 该机构出境累计 / recipient's cross-border total: "
            f"{r['cross_border_total']} {limit} 人 / persons (§7 p)")


APPROVAL_LABELS = {"officer": "初审 / first review (data security office)",
                   "committee": "委员会表决 / committee vote", "dua": "数据使用协议 / DUA",
                   "ethics": "伦理 / ethics"}


def _dl(d: dict[str, Any]) -> h.Element:
    b, a = d["build"], d["approvals"]
    return h.dl[
        h.dt["研究 / Study"], h.dd[d["study"]], h.dt["级别 / Tier"], h.dd[d["tier"].upper()],
        h.dt["用途 / Purpose"], h.dd[d["purpose"]],
        h.dt["接收方 / Recipient"], h.dd[f"{d['recipient_org']} ({', '.join(d['recipients'])})"],
        h.dt["使用期限 / Period of use"], h.dd[f"{d['use_from']} – {d['use_until']}"],
        h.dt["出境 / Cross-border"], h.dd(".cross-border")[_cross_border(d)],
        h.dt["状态 / Status"], h.dd(".status")[label(d["status"])],
        h.dt["审批 / Approvals"], h.dd(".approvals")[" → ".join(
            f"{APPROVAL_LABELS.get(n, n)}: {'✓' if a['done'].get(n) else '…'}"
            for n in a["needs"])
            + (f" (委员会 / committee: {a['yes']} yes / {a['no']} no of "
               f"{a['committee_members']} on the roll frozen when the request opened"
               + (f", {a['committee_left']} left without voting" if a["committee_left"]
                  else "") + "; more than two thirds needed, Appendix C)"
               if "committee" in a["needs"] else "")],
        h.dt["问题 / Problem"], h.dd(".problem")[a["problem"] or "—"],
        h.dt["生成 / Build"], build_progress(d["id"], b),
        h.dt["数据包 SHA-256 / Package SHA-256"], h.dd[h.code[b["package_sha256"] or "—"]]]


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
        h.h2["数据使用协议 / Data-use agreement (Appendix E.3)"],
        h.pre(".terms")[dua["text"]],
        h.p["条款 SHA-256 / Terms SHA-256: ", h.code(".terms-hash")[dua["terms_sha256"]]],
        h.p["申请 SHA-256 / Request SHA-256: ", h.code(".request-hash")[dua["request_sha256"]]],
        h.p["签署内容（两者之哈希）/ Signed content (hash over both): ",
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
            h.h2["申请方以往申请 / The applicant's earlier requests (§11.4.2.2)"],
            h.table(".history")[h.tbody[[h.tr[h.td[x["id"][:8]], h.td[x["study"]],
                                              h.td[x["tier"]], h.td[", ".join(x["fields"])],
                                              h.td["已接收 / received" if x["received"]
                                                   else "未接收 / not received"]]
                                         for x in d["applicant_history"]]
                                        or h.tr[h.td["无 / none"]]]],
            h.p(".overlap")["已接收过的字段 / Fields already received: ",
                            ", ".join(d["already_received_fields"]) or "—"]]
    problem = None
    if error is not None:
        problem = h.div(".sign-error", role="alert")[
            h.p(".error")[error.message],
            h.p[f"字段 / field: {error.field}"] if error.field else None]
    sign = h.form(method="post", action=f"/extracts/{request_id}/decisions")[
        csrf_field(request),
        h.input(type="hidden", name="terms_sha256", value=dua["terms_sha256"]),
        h.label(for_="kind")["签署类型 / Kind"],
        dropdown(id="kind", name="kind")[[h.option(value=k)[APPROVAL_LABELS.get(
            "committee" if k == "vote" else k, k)] for k in ("officer", "vote", "ethics", "dua")]],
        h.label(for_="approve")["决定 / Decision"],
        dropdown(id="approve", name="approve")[h.option(value="1")["同意 / approve"],
                                               h.option(value="0")["反对 / refuse"]],
        h.label(for_="reference")["伦理批准编号（RIF）/ Ethics approval id (RIF)"],
        h.input(id="reference", name="reference", maxlength="100"),
        h.label(for_="username")["用户名 / Username"],
        h.input(id="username", name="username", maxlength="100", autocomplete="username"),
        h.label(for_="password")["密码（电子签名）/ Password (electronic signature)"],
        h.input(id="password", name="password", type="password", required=True,
                maxlength="200"),
        h.label(for_="totp")["动态口令 / TOTP"],
        h.input(id="totp", name="totp", maxlength="12", autocomplete="one-time-code"),
        h.p[h.button(type="submit")["我已阅读上述协议与申请全文并签署 / I have read the agreement "
                                    "and the request above and sign"]]]
    actions: list[h.Node] = []
    if actor.can(Perm.EXTRACT_BUILD, d["study"]) and d["status"] == "approved":
        actions.append(h.form(method="post", action=f"/extracts/{request_id}/build")[
            csrf_field(request), h.button(type="submit")["生成数据包 / Build package"]])
    if d["build"]["state"] == "done" and actor.username in d["recipients"]:
        actions.append(h.p[h.a(".download", href=f"/extracts/{request_id}/package")[
            "下载加密数据包 / Download the encrypted package"]])
    custody = h.table(".custody")[h.tbody[[h.tr[h.td[t["event"]], h.td[t["actor"]],
                                                h.td[t["at"]], h.td[h.code[t["sha256"] or ""]]]
                                           for t in d["transfers"]]]]
    building = d["build"]["state"] in BUILDING  # without JavaScript: reload to follow it
    resp = page(request, f"数据提取申请 / Extract request {request_id[:8]}", _dl(d), fields,
                history, _agreement(dua), h.h2["签署 / Sign"], problem, sign, *actions,
                h.h2["交接记录 / Chain of custody"], custody,
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
    return redirect(request, f"/extracts/{request_id}", "signed / 已签署")


@router.post("/extracts/{request_id}/build", dependencies=[requires(Perm.EXTRACT_BUILD), Csrf])
def build_submit(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    extract_custody.queue_build(session, ledger, actor=actor, request_id=request_id)
    worker = getattr(request.app.state, "job_runner", None)
    if worker is not None:
        worker.wake()
    return redirect(request, f"/extracts/{request_id}", "build queued / 已排队生成")


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
                 h.td[o.country], h.td["是 / yes" if st.abroad else "否 / no"],
                 h.td(".total")[str(st.total)],
                 h.td[str(st.limit) if st.limit is not None else
                      f"— ({st.approval_reference})"]]
            for o, st in extract_recipients.overview(session, actor=actor)]
    return page(request, "数据出境 / Data leaving the country (§7 p)",
                h.p["累计出境个人信息（人数）按接收机构计，跨申请、跨研究。 / "
                    "Records about persons "
                    "sent abroad, cumulative per recipient organisation across requests and "
                    "studies."],
                h.table(".cross-border")[
                    h.thead[h.tr[h.th["代码 / Code"], h.th["机构 / Organisation"],
                                 h.th["国家 / Country"], h.th["境外 / Abroad"],
                                 h.th["累计 / Total"], h.th["上限 / Limit"]]],
                    h.tbody[rows or h.tr[h.td(colspan="6")["暂无 / None"]]]])


@router.get("/cross-border/{organisation}", dependencies=[requires(Perm.EXTRACT_APPROVE)])
def cross_border_page(organisation: str, request: Request, session: SessionDep,
                      actor: CurrentActor) -> Response:
    org, rows = extract_recipients.approvals_of(session, actor=actor, organisation=organisation)
    st = extract_recipients.status_of(session, org)
    return page(
        request, f"数据出境 / Data leaving the country — {org.label}",
        h.p(".total")[f"累计 / Total: {st.total} 人 / persons; 上限 / limit: "
                      f"{st.limit if st.limit is not None else '—'}"],
        h.table(".approvals")[
            h.thead[h.tr[h.th["批准文号 / Reference"], h.th["批准日期 / Date"],
                         h.th["文件 SHA-256 / Document SHA-256"], h.th["记录人 / Recorded by"]]],
            h.tbody[[h.tr[h.td[a.reference], h.td[a.approved_on.isoformat()],
                          h.td[h.code[a.document_sha256]], h.td[a.recorded_by]] for a in rows]
                    or h.tr[h.td(colspan="4")["暂无 / None"]]]],
        h.h2["记录主管部门批准 / Record an approval of the relevant authority"],
        h.form(method="post", action=f"/cross-border/{org.code}",
               enctype="multipart/form-data")[
            csrf_field(request),
            h.label(for_="reference")["批准文号 / Reference"],
            h.input(id="reference", name="reference", required=True, maxlength="100"),
            h.label(for_="approved_on")["批准日期 / Date of the approval"],
            h.input(id="approved_on", name="approved_on", type="date", required=True),
            h.label(for_="document")["批准文件 / Approval document"],
            h.input(id="document", name="document", type="file", required=True),
            h.p[h.button(type="submit")["记录 / Record"]]])


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
                    "approval recorded / 已记录主管部门批准")
