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
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.inputs import build, flag, opt, text
from edc.web.labels import label
from edc.web.layout import page, redirect
from edc.web.widgets import banner, checkbox, choice, field, post_form
from studies.ethics import service as ethics
from studies.ethics.models import AFFILIATIONS, GENDERS
from studies.ethics.schemas import ApprovalIn, CommitteeIn, MemberIn, WaiverDecisionIn, WaiverIn
from studies.kernel.i18n import _, pick
from studies.kernel.roles import Perm
from studies.overview import service as overview

router = APIRouter(route_class=Route)


@router.post("/studies/{study}/waivers", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def waiver(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.request_waiver(session, ledger, actor=actor, study_code=study, data=build(
        WaiverIn, ground=text(form, "ground"), justification=text(form, "justification"),
        data_deidentified=flag(form, "data_deidentified"),
        prior_consent_reference=opt(form, "prior_consent_reference")))
    return redirect(request, f"/studies/{quote(study)}",
                    _("waiver requested; the ethics committee decides"))


@router.get("/ethics", dependencies=[requires(Perm.ETHICS_RECORD)])
def ethics_page(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    o = overview.ethics_overview(session, actor=actor, at=now())
    committees = o["committees"]
    content: list[h.Node] = [h.h2[_("Committees (§11.3.2 e)")]]
    for c in committees:
        status = (h.p(".ok")[_("✔ meets §11.3.2 e")] if c["meets_11_3_2_e"]
                  else h.p(".bad", role="alert")["✘ ", "; ".join(c["problems"])])
        content += [h.h3[f"{c['name']} — {c['institution']}"], status,
                    h.table[h.tbody[[h.tr[h.td[m["name"]], h.td[m["gender"]],
                                          h.td[m["affiliation"]], h.td[m["expertise"]],
                                          h.td["" if m["active"] else "inactive"]]
                                     for m in c["members"]]]],
                    h.details[h.summary[_("Add a member")], post_form(
                        f"/ethics/committees/{c['id']}/members", request,
                        field(_("Name"), "name"),
                        choice(_("Gender"), "gender", [(g, g) for g in GENDERS]),
                        choice(_("Affiliation"), "affiliation",
                               [(a, a) for a in AFFILIATIONS]),
                        field(_("Expertise"), "expertise"), button=_("Add"))]]
    content.append(h.details[h.summary[_("Register a committee")], post_form(
        "/ethics/committees", request, field(_("Name"), "name"),
        field(_("Institution"), "institution"), button=_("Register"))])
    content.append(h.h2[_("Studies")])
    options = [(c["id"], c["name"]) for c in committees]
    for st in o["studies"]:
        s = st["study"]
        code = quote(s["code"])
        content += [h.h3[f"{s['code']} — {pick(s['title_zh'], s['title_en'])}"],
                    banner(st["readiness"]),
                    h.ul[[h.li[f"protocol {a['protocol_label']}: "
                               f"{ethics.DECISION_LABELS[a['decision']]} {a['reference']} "
                               f"({a['decided_on']}"
                               + (f" – {a['expires_on']}" if a["expires_on"] else "") + ")"
                               + (" " + _("· covers identifiable use")
                                  if a["identifiable_use"] else "")]
                          for a in st["approvals"]]]]
        if st["protocol_versions"] and options:
            content.append(h.details[h.summary[_("Record a decision")], post_form(
                f"/ethics/studies/{code}/approvals", request,
                choice(_("Protocol version"), "protocol_version",
                       [(str(p["number"]), f"{p['label']} ({p['version_date']})")
                        for p in reversed(st["protocol_versions"])]),
                choice(_("Committee"), "committee_id", options),
                choice(_("Decision"), "decision", list(ethics.DECISION_LABELS.items())),
                field(_("Reference"), "reference"),
                field(_("Decided on"), "decided_on", type_="date"),
                field(_("Expires on"), "expires_on", type_="date", required=False),
                field(_("Conditions"), "conditions", textarea=True, required=False),
                checkbox(_("Approves identifiable use of the data (RIF extracts, §11.3.4.2)"),
                         "identifiable_use"),
                button=_("Record"))])
        for w in st["waivers"]:
            content.append(h.p[_("Waiver {clause} {value}: {status} — {justification}").format(
                clause=w['clause'], value=ethics.WAIVER_LABELS[w['ground']],
                status=label(w['status']), justification=w['justification'])])
            if w["status"] == "requested" and options:
                content.append(post_form(
                    f"/ethics/studies/{code}/waivers/{w['id']}/decision", request,
                    choice(_("Committee"), "committee_id", options),
                    choice(_("Decision"), "decision",
                           [("approved", _("Approved")), ("rejected", _("Rejected"))]),
                    field(_("Reference"), "reference"),
                    field(_("Decided on"), "decided_on", type_="date"),
                    button=_("Record")))
    return page(request, _("Ethics committee"), *content)


@router.post("/ethics/committees", dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_committee(request: Request, session: SessionDep, ledger: LedgerDep,
                        actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.create_committee(session, ledger, actor=actor, data=build(
        CommitteeIn, name=text(form, "name"), institution=text(form, "institution")))
    return redirect(request, "/ethics", _("committee registered"))


@router.post("/ethics/committees/{committee_id}/members",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_member(committee_id: str, request: Request, session: SessionDep,
                     ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.add_member(session, ledger, actor=actor, committee_id=committee_id, data=build(
        MemberIn, name=text(form, "name"), gender=text(form, "gender"),
        affiliation=text(form, "affiliation"), expertise=text(form, "expertise")))
    return redirect(request, "/ethics", _("member added"))


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
    return redirect(request, "/ethics", _("decision recorded"))


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
    return redirect(request, "/ethics", _("waiver decision recorded"))
