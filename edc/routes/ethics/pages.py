"""Pages of the ethics committee's desk (committees, approvals, waivers) and a study's
request for a consent waiver."""

from __future__ import annotations

from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Request
from fastapi.responses import Response

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routes.clock import now
from edc.web.csrf import Csrf
from edc.web.inputs import build, flag, opt, text
from edc.web.layout import page, redirect
from edc.web.widgets import banner, checkbox, choice, field, post_form
from studies.ethics import service as ethics
from studies.ethics.models import AFFILIATIONS, GENDERS
from studies.ethics.schemas import ApprovalIn, CommitteeIn, MemberIn, WaiverDecisionIn, WaiverIn
from studies.kernel.roles import Perm
from studies.overview import service as overview

router = APIRouter()


@router.post("/studies/{study}/waivers", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def waiver(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.request_waiver(session, ledger, actor=actor, study_code=study, data=build(
        WaiverIn, ground=text(form, "ground"), justification=text(form, "justification"),
        data_deidentified=flag(form, "data_deidentified"),
        prior_consent_reference=opt(form, "prior_consent_reference")))
    return redirect(request, f"/studies/{quote(study)}",
                    "waiver requested; the ethics committee decides / 豁免申请已提交")


@router.get("/ethics", dependencies=[requires(Perm.ETHICS_RECORD)])
def ethics_page(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    o = overview.ethics_overview(session, actor=actor, at=now())
    committees = o["committees"]
    content: list[h.Node] = [h.h2["伦理委员会 / Committees (§11.3.2 e)"]]
    for c in committees:
        status = (h.p(".ok")["✔ 符合 §11.3.2 e / meets §11.3.2 e"] if c["meets_11_3_2_e"]
                  else h.p(".bad", role="alert")["✘ ", "; ".join(c["problems"])])
        content += [h.h3[f"{c['name']} — {c['institution']}"], status,
                    h.table[h.tbody[[h.tr[h.td[m["name"]], h.td[m["gender"]],
                                          h.td[m["affiliation"]], h.td[m["expertise"]],
                                          h.td["" if m["active"] else "inactive"]]
                                     for m in c["members"]]]],
                    h.details[h.summary["添加委员 / Add a member"], post_form(
                        f"/ethics/committees/{c['id']}/members", request,
                        field("姓名 / Name", "name"),
                        choice("性别 / Gender", "gender", [(g, g) for g in GENDERS]),
                        choice("单位 / Affiliation", "affiliation",
                               [(a, a) for a in AFFILIATIONS]),
                        field("专业 / Expertise", "expertise"), button="添加 / Add")]]
    content.append(h.details[h.summary["登记伦理委员会 / Register a committee"], post_form(
        "/ethics/committees", request, field("名称 / Name", "name"),
        field("机构 / Institution", "institution"), button="登记 / Register")])
    content.append(h.h2["研究 / Studies"])
    options = [(c["id"], c["name"]) for c in committees]
    for st in o["studies"]:
        s = st["study"]
        code = quote(s["code"])
        content += [h.h3[f"{s['code']} — {s['title_zh']} / {s['title_en']}"],
                    banner(st["readiness"]),
                    h.ul[[h.li[f"protocol {a['protocol_label']}: "
                               f"{ethics.DECISION_LABELS[a['decision']]} {a['reference']} "
                               f"({a['decided_on']}"
                               + (f" – {a['expires_on']}" if a["expires_on"] else "") + ")"
                               + (" · 涵盖可标识数据使用 / covers identifiable use"
                                  if a["identifiable_use"] else "")]
                          for a in st["approvals"]]]]
        if st["protocol_versions"] and options:
            content.append(h.details[h.summary["记录审查决定 / Record a decision"], post_form(
                f"/ethics/studies/{code}/approvals", request,
                choice("方案版本 / Protocol version", "protocol_version",
                       [(str(p["number"]), f"{p['label']} ({p['version_date']})")
                        for p in reversed(st["protocol_versions"])]),
                choice("伦理委员会 / Committee", "committee_id", options),
                choice("决定 / Decision", "decision", list(ethics.DECISION_LABELS.items())),
                field("批件号 / Reference", "reference"),
                field("决定日期 / Decided on", "decided_on", type_="date"),
                field("有效期至 / Expires on", "expires_on", type_="date", required=False),
                field("条件 / Conditions", "conditions", textarea=True, required=False),
                checkbox("批准可标识数据使用（RIF 数据提取，§11.3.4.2）/ Approves identifiable use "
                         "of the data (RIF extracts, §11.3.4.2)", "identifiable_use"),
                button="记录 / Record")])
        for w in st["waivers"]:
            content.append(h.p[f"豁免 / Waiver {w['clause']} "
                               f"{ethics.WAIVER_LABELS[w['ground']]}: {w['status']} — "
                               f"{w['justification']}"])
            if w["status"] == "requested" and options:
                content.append(post_form(
                    f"/ethics/studies/{code}/waivers/{w['id']}/decision", request,
                    choice("伦理委员会 / Committee", "committee_id", options),
                    choice("决定 / Decision", "decision",
                           [("approved", "批准 / Approved"), ("rejected", "不批准 / Rejected")]),
                    field("批件号 / Reference", "reference"),
                    field("决定日期 / Decided on", "decided_on", type_="date"),
                    button="记录 / Record"))
    return page(request, "伦理委员会 / Ethics committee", *content)


@router.post("/ethics/committees", dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_committee(request: Request, session: SessionDep, ledger: LedgerDep,
                        actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.create_committee(session, ledger, actor=actor, data=build(
        CommitteeIn, name=text(form, "name"), institution=text(form, "institution")))
    return redirect(request, "/ethics", "committee registered / 伦理委员会已登记")


@router.post("/ethics/committees/{committee_id}/members",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_member(committee_id: str, request: Request, session: SessionDep,
                     ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.add_member(session, ledger, actor=actor, committee_id=committee_id, data=build(
        MemberIn, name=text(form, "name"), gender=text(form, "gender"),
        affiliation=text(form, "affiliation"), expertise=text(form, "expertise")))
    return redirect(request, "/ethics", "member added / 委员已添加")


@router.post("/ethics/studies/{study}/approvals",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_approval(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.record_approval(session, ledger, actor=actor, study_code=study, data=build(
        ApprovalIn, protocol_version=text(form, "protocol_version"),
        committee_id=text(form, "committee_id"), reference=text(form, "reference"),
        decision=text(form, "decision"), decided_on=text(form, "decided_on") or None,
        expires_on=opt(form, "expires_on"), conditions=opt(form, "conditions"),
        identifiable_use=flag(form, "identifiable_use")))
    return redirect(request, "/ethics", "decision recorded / 审查决定已记录")


@router.post("/ethics/studies/{study}/waivers/{waiver_id}/decision",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def waiver_decision(study: str, waiver_id: str, request: Request, session: SessionDep,
                          ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.decide_waiver(session, ledger, actor=actor, study_code=study, waiver_id=waiver_id,
                         data=build(WaiverDecisionIn,
                                    committee_id=text(form, "committee_id"),
                                    decision=text(form, "decision"),
                                    reference=text(form, "reference"),
                                    decided_on=text(form, "decided_on") or None))
    return redirect(request, "/ethics", "waiver decision recorded / 豁免审查决定已记录")
