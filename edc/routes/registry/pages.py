"""Pages of the study registry: home, the studies, and study set-up (study admin / PI
wizard: study → sites → protocol → consent → forms, on the study's page). Plain forms,
post-redirect-get; no JavaScript needed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import authenticated, requires
from edc.routes.clock import now
from edc.routes.registry.owner import owner_summary
from edc.routing import Route
from edc.web import charts
from edc.web.charts import bar_chart
from edc.web.csrf import Csrf
from edc.web.forms import submit
from edc.web.inputs import build, flag, opt, text
from edc.web.labels import STATE_LABELS, label
from edc.web.layout import page, redirect
from edc.web.menu import global_links, studies_of, study_links
from edc.web.timefmt import local_minute
from edc.web.widgets import banner, checkbox, choice, field, post_form
from studies.entry import export_approval
from studies.ethics import service as ethics
from studies.extracts import service as ex
from studies.kernel.i18n import _, pick
from studies.kernel.roles import ROLE_LABELS, Perm
from studies.overview import progress
from studies.overview import service as overview
from studies.registry import owner as owners
from studies.registry import service as registry
from studies.registry.schemas import ProtocolIn, SiteIn, StudyIn
from studies.retention import service as retention
from studies.signoff.service import inbox_for

router = APIRouter(route_class=Route)


@router.get("/", dependencies=[authenticated()])
def home(request: Request, actor: CurrentActor, session: SessionDep) -> Response:
    """Where each role starts: its work per study, what waits for it, its messages."""
    roles = [h.li[ROLE_LABELS[r] + (f" — {s}" if s else "") + (f" / {t}" if t else "")]
             for r, s, t in actor.scope_triples()]
    inbox = [h.li[h.a(href=m.link)[m.text] if m.link else m.text,
                  f" — {m.study or '—'} · {m.by} · {local_minute(m.at)}"]
             for m in inbox_for(session, actor=actor)]
    named = studies_of(actor)
    codes = named if named is not None else (
        [s.code for s in registry.list_studies(session, actor=actor)]
        if Perm.STUDY_READ in actor.perms else [])
    work: list[h.Node] = []
    for code in codes:
        links = study_links(actor, code)
        if links:
            work.append(h.section(".work")[h.h3[code], h.ul[[
                h.li[h.a(href=lk.href)[lk.label]] for lk in links]]])
    general = [lk for lk in global_links(actor) if lk.href not in ("/", "/account")]
    if general:
        work.append(h.section(".work")[h.h3[_("Across studies")], h.ul[[
            h.li[h.a(href=lk.href)[lk.label]] for lk in general]]])
    waiting: list[h.Node] = []
    if Perm.EXTRACT_REVIEW in actor.perms:
        pending = [r for r in ex.list_requests(session, actor=actor) if r.status == "pending"]
        waiting = [h.h2[_("Waiting for your decision")], h.ul(".waiting")[[
            h.li[h.a(href=f"/extracts/{r.id}")[f"{r.study_code} · {r.tier.upper()} · "
                                               f"{r.recipient_org}"],
                 f" — {label(r.status)}"] for r in pending] or h.li[_("Nothing waits")]]]
    if Perm.EXPORT_APPROVE in actor.perms:
        exports = export_approval.waiting_for(session, actor=actor)
        waiting += [h.h2[_("Exports waiting for your approval")],
                    h.ul(".waiting-exports")[[
                        h.li[h.a(href="/export-approvals")[
                            f"{v.study} · {v.row.requested_by} · "
                            + (", ".join(v.row.forms) if v.row.forms else _("all forms"))]]
                        for v in exports] or h.li[_("Nothing waits")]]]
    return page(request, _("Home"),
                h.p[_("Welcome, {display_name}.").format(display_name=actor.display_name)],
                h.h2[_("Your work")], *(work or [h.p["—"]]), *waiting,
                h.h2[_("Team inbox")], h.ul(".inbox")[inbox or h.li["—"]],
                h.h2[_("Your roles")], h.ul[roles or h.li["—"]])


def protocol_fields(prefix: str = "") -> list[h.Node]:
    return [
        field(_("Protocol version"), "label", value="1.0" if not prefix else None),
        field(_("Version date"), "version_date", type_="date"),
        field(_("Purpose"), "purpose", textarea=True),
        field(_("Legal basis"), "legal_basis", textarea=True),
        field(_("Research content"), "research_content", textarea=True),
        field(_("Data types collected"), "data_types", textarea=True),
        field(_("Planned subjects"), "planned_subjects", type_="number"),
        field(_("Planned records"), "planned_records", type_="number"),
        field(_("Expected results"), "expected_results", textarea=True),
        field(_("Data-sharing plan"), "data_sharing_plan", textarea=True),
    ]


def protocol_values(form: FormData) -> dict[str, Any]:
    return {k: text(form, k) or None for k in registry.PROTOCOL_FIELDS}


def protocol_in(form: FormData) -> ProtocolIn:
    return build(ProtocolIn, **protocol_values(form))


@router.get("/studies", dependencies=[authenticated()])
def studies_page(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/studies/{quote(s.code)}")[s.code]],
                 h.td[f"{pick(s.title_zh, s.title_en)}"], h.td[label(s.status)]]
            for s in registry.list_studies(session, actor=actor)]
    new = (h.p[h.a(href="/studies/new")[_("Register a study")]]
           if Perm.STUDY_MANAGE in actor.perms else None)
    return page(request, _("Studies"), new,
                h.table[h.thead[h.tr[h.th[_("Protocol no.")], h.th[_("Title")],
                                     h.th[_("Status")]]], h.tbody[rows]])


@router.get("/studies/new", dependencies=[requires(Perm.STUDY_MANAGE)])
def new_study_form(request: Request, actor: CurrentActor) -> Response:
    return page(request, _("Step 1: register the study"), post_form(
        "/studies/new", request,
        field(_("Protocol number"), "code"),
        field(_("Title (Chinese)"), "title_zh"),
        field(_("Title (English)"), "title_en"),
        field(_("Sponsor"), "sponsor"),
        h.fieldset[h.legend[_("Design (§11.3.1 a)")],
                   choice(_("Prospective or retrospective"), "design",
                          [("prospective", _("Prospective")),
                           ("retrospective", _("Retrospective"))]),
                   checkbox(_("Blinded"), "blinded"),
                   checkbox(_("Post-market study"), "post_market"),
                   checkbox(_("Real-world data"), "real_world_data"),
                   checkbox(_("Public-interest statistics or research"),
                            "public_interest")],
        h.fieldset[h.legend[_("Protocol (§11.3.4.2)")], *protocol_fields()],
        h.fieldset[h.legend[_("First site")],
                   field(_("Site code (S01)"), "site_code", value="S01"),
                   field(_("Hospital"), "site_hospital"),
                   field(_("Department"), "site_department", required=False),
                   field(_("Medical group"), "site_medical_group", required=False)],
        button=_("Register")))


@router.post("/studies/new", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def new_study_submit(request: Request, session: SessionDep, ledger: LedgerDep,
                           actor: CurrentActor) -> Response:
    form = await request.form()

    def register() -> Response:
        site = dict(code=text(form, "site_code"), hospital=text(form, "site_hospital"),
                    department=opt(form, "site_department"),
                    medical_group=opt(form, "site_medical_group"))
        data = build(StudyIn, rename={"protocol.": "", "sites.0.": "site_"},
                     code=text(form, "code"), title_zh=text(form, "title_zh"),
                     title_en=text(form, "title_en"), sponsor=text(form, "sponsor"),
                     design=text(form, "design"), blinded=flag(form, "blinded"),
                     post_market=flag(form, "post_market"),
                     real_world_data=flag(form, "real_world_data"),
                     public_interest=flag(form, "public_interest"),
                     protocol=protocol_values(form), sites=[site])
        study = registry.register_study(session, ledger, actor=actor, data=data)
        return redirect(request, f"/studies/{quote(study.code)}",
                        _("study registered; next: sites, ethics approval, consent, forms"))

    return submit(session, form, register, lambda: new_study_form(request, actor),
                  renamed={"sites.code": "site_code"})


@router.get("/studies/{study}", dependencies=[requires(Perm.STUDY_READ)])
def study_page(study: str, request: Request, session: SessionDep,
               actor: CurrentActor) -> Response:
    o = overview.study_overview(session, actor=actor, study_code=study, at=now())
    owner_view = owners.view(session, actor=actor, study_code=study, today=now().date())
    s = o["study"]
    base = f"/studies/{quote(study)}"
    manage = actor.can(Perm.STUDY_MANAGE, study)
    steps = [("1", _("Study"), True), ("2", _("Sites"), bool(o["sites"])),
             ("3", _("Protocol & approval"), o["readiness"]["open"]),
             ("4", _("Consent form"), bool(o["consent_forms"])),
             ("5", _("Forms"), any(v["status"] == "published"
                                      for f in o["forms"] for v in f["versions"])),
             ("6", _("Data owner"), owner_view.owner is not None)]
    wizard = h.ol(".wizard")[[h.li(class_="done" if done else "todo")[
        f"{'✔' if done else '○'} {label}"] for _x, label, done in steps]]
    flags = ", ".join(label(k) for k in ("blinded", "post_market", "real_world_data",
                                         "public_interest") if s[k])
    sections: list[h.Node] = [
        banner(o["readiness"]), wizard,
        h.p[_("Sponsor: {sponsor} · design: {design}").format(sponsor=s["sponsor"] or "—",
                                                                design=label(s["design"]))
            + (f" · {flags}" if flags else "") + " " + _("· status: {status}").format(
                                                     status=label(s['status']))],
        h.h2[_("Sites")],
        h.table[h.tbody[[h.tr[h.td[x["code"]], h.td[x["hospital"]], h.td[x["department"] or ""],
                               h.td[x["medical_group"] or ""]] for x in o["sites"]]]],
        h.h2[_("Data owner")], owner_summary(owner_view),
        h.p[h.a(href=f"{base}/owner")[_("Data owner and handovers")]],
    ]
    if manage:
        sections.append(post_form(
            f"{base}/sites", request, field(_("Site code"), "code"),
            field(_("Hospital"), "hospital"),
            field(_("Department"), "department", required=False),
            field(_("Medical group"), "medical_group", required=False),
            button=_("Add site")))
    sections += [
        h.h2[_("Protocol versions")],
        h.table[h.thead[h.tr[h.th["#"], h.th[_("Version")], h.th[_("Date")],
                             h.th[_("Amendment")]]],
                h.tbody[[h.tr[h.td[str(p["number"])], h.td[p["label"]], h.td[p["version_date"]],
                              h.td[p["amendment_summary"] or "—"]]
                         for p in o["protocol_versions"]]]],
        h.h2[_("Ethics decisions")],
        h.table[h.tbody[[h.tr[h.td[a["protocol_label"] or ""], h.td[a["committee"] or ""],
                              h.td[ethics.DECISION_LABELS[a["decision"]]],
                              h.td[a["decided_on"]], h.td[a["expires_on"] or "—"],
                              h.td[a["conditions"] or ""]] for a in o["approvals"]]]],
    ]
    if manage:
        sections.append(h.details[h.summary[_("Amend the protocol")], post_form(
            f"{base}/protocol", request,
            field(_("Summary of changes"), "summary", textarea=True),
            *protocol_fields("amend"), button=_("Record amendment"))])
        sections.append(h.details[h.summary[_("Request a consent waiver")],
                                  post_form(
            f"{base}/waivers", request,
            choice(_("Ground"), "ground",
                   [(g, f"{ethics.WAIVER_CLAUSES[g]} {lab}")
                    for g, lab in ethics.WAIVER_LABELS.items()]),
            field(_("Justification"), "justification", textarea=True),
            field(_("Signed consent covering this study (b 2)"),
                  "prior_consent_reference", required=False),
            checkbox(_("The data will be de-identified"), "data_deidentified"),
            button=_("Submit"))])
    sections.append(h.ul[[h.li[f"{w['clause']} {ethics.WAIVER_LABELS[w['ground']]} — "
                               f"{label(w['status'])}"] for w in o["waivers"]]])
    sections += [h.h2[_("Consent forms")],
                 h.ul[[h.li[f"{f['version']} ({label(f['consent_type'])})"
                            + (" " + _("— re-consent required")
                               if f["requires_reconsent"] else "")]
                       for f in o["consent_forms"]]]]
    approving = [a for a in o["approvals"]
                 if a["decision"] in ("approved", "approved_with_conditions")]
    if manage and approving:
        sections.append(h.details[h.summary[_("Add a consent form version")],
                                  post_form(
            f"{base}/consent-forms", request, field(_("Version"), "version"),
            choice(_("Type"), "consent_type", [("informed", _("Informed")),
                                                   ("broad", _("Broad"))]),
            field(_("Text (Chinese)"), "text_zh", textarea=True),
            field(_("Text (English)"), "text_en", textarea=True),
            choice(_("Ethics approval"), "approval_id",
                   [(a_id, label) for a_id, label in _approval_options(o)]),
            checkbox(_("Subjects on older versions must re-consent"),
                     "requires_reconsent"),
            button=_("Save"))])
    sections.append(h.h2[_("Case report forms")])
    rows = []
    for f in o["forms"]:
        for v in f["versions"]:
            link = f"{base}/forms/{quote(f['name'])}/versions/{v['number']}"
            rows.append(h.tr[h.td[h.a(href=link)[f["name"]]], h.td[str(v["number"])],
                             h.td[label(v["status"])],
                             h.td[f"{pick(v['label_zh'], v['label_en'])}"]])
    sections.append(h.table[h.thead[h.tr[h.th[_("Form")], h.th[_("Version")],
                                         h.th[_("Status")], h.th[_("Label")]]],
                            h.tbody[rows]])
    sections.append(h.p[h.a(href=f"/api/v1/studies/{quote(study)}/odm")[
        _("Export metadata as ODM 1.3.2")]])
    if manage:
        sections.append(post_form(
            f"{base}/forms/redcap", request,
            h.p[h.label(for_="file")[_("REDCap data dictionary (CSV)")],
                h.input(id="file", name="file", type="file", accept=".csv", required=True)],
            button=_("Import"), multipart=True))
        sections.append(post_form(
            f"{base}/forms/odm", request,
            h.p[h.label(for_="odm_file")[_("ODM 1.3.2 metadata (XML)")],
                h.input(id="odm_file", name="file", type="file", accept=".xml",
                        required=True)],
            button=_("Import ODM"), multipart=True))
    sections += _end_date(request, session, actor, study, manage)
    if actor.can(Perm.CONSENT_READ, study):
        sections.append(h.p[h.a(href=f"{base}/consent")[_("Consent of subjects")]])
    return page(request, f"{s['code']} — {pick(s['title_zh'], s['title_en'])}", *sections)


def _end_date(request: Request, session: SessionDep, actor: CurrentActor, study: str,
              manage: bool) -> list[h.Node]:
    """The study's end date and first retention review (§11.3.4.6 a4); set by ``study.manage``."""
    ended = retention.end_date(session, actor=actor, study_code=study)
    out: list[h.Node] = [
        h.h2[_("Study end and retention review")],
        h.p(".end-date")[
            _("End date: {end} · first retention review: {review}").format(
                end=ended.isoformat(), review=retention.review_due(ended, 1).isoformat())
            if ended is not None
            else _("The study has not ended")]]
    if manage:
        out.append(post_form(
            f"/studies/{quote(study)}/end-date", request,
            field(_("End date"), "ended_on", type_="date",
                  value=ended.isoformat() if ended is not None else None),
            field(_("Reason"), "reason", textarea=True),
            button=_("Record the end date")))
    return out


def _approval_options(o: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["id"], f"{a['reference']} — {a['committee']} — protocol {a['protocol_label']}")
            for a in o["approvals"] if a["decision"] in ("approved", "approved_with_conditions")]


@router.post("/studies/{study}/sites", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def add_site(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> Response:
    form = await request.form()
    registry.add_site(session, ledger, actor=actor, study_code=study, site=build(
        SiteIn, code=text(form, "code"), hospital=text(form, "hospital"),
        department=opt(form, "department"), medical_group=opt(form, "medical_group")))
    return redirect(request, f"/studies/{quote(study)}", _("site added"))


@router.post("/studies/{study}/protocol", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def amend(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor) -> Response:
    form = await request.form()
    pv = registry.amend_protocol(session, ledger, actor=actor, study_code=study,
                                 protocol=protocol_in(form), summary=text(form, "summary"))
    return redirect(request, f"/studies/{quote(study)}",
                    _("protocol {label} recorded; entry stops until the ethics committee approves "
                      "it").format(label=pv.label))


@router.get("/studies/{study}/dashboard", dependencies=[requires(Perm.ENTRY_READ)])
def dashboard(study: str, request: Request, session: SessionDep,
              actor: CurrentActor) -> Response:
    """Progress at a glance: enrolment over time by site, completeness and SDV per form,
    open queries by age — SVG charts with their numbers, no JavaScript."""
    p = progress.study_progress(session, actor=actor, study_code=study, at=now())
    months = [m["month"] for m in p["enrolment"]]
    enrol = bar_chart("chart-enrolment", _("Enrolment by month and site"),
                      months, [charts.Series(code, tuple(m["new"][code] for m in p["enrolment"]),
                                             charts.PALETTE[n % len(charts.PALETTE)])
                               for n, code in enumerate(p["sites"])])
    totals = h.table(".enrolment-total")[
        h.thead[h.tr[h.th[_("Month")], [h.th[_("{c} total").format(c=c)] for c in p["sites"]]]],
        h.tbody[[h.tr[h.td[m["month"]], [h.td[str(m["total"][c])] for c in p["sites"]]]
                 for m in p["enrolment"]]]]
    states = (("incomplete", "#e0a400"), ("complete", "#4a90b8"), ("verified", "#137333"),
              ("query", "#c5221f"), ("locked", "#444444"))
    names = [f["form"] for f in p["forms"]]
    forms_chart = bar_chart(
        "chart-forms", _("Completeness and SDV per form"), names,
        [charts.Series(str(STATE_LABELS[k]), tuple(f[k] for f in p["forms"]), colour)
         for k, colour in states])
    ages = bar_chart("chart-queries", _("Open queries by age (days)"),
                     [a["band"] for a in p["open_queries_by_age"]],
                     [charts.Series(_("open queries"),
                                    tuple(a["count"] for a in p["open_queries_by_age"]),
                                    "#c5221f")])
    return page(request, _("Progress — {study}").format(study=study),
                h.p[_("Subjects: {subjects} · forms due per subject: {forms}").format(
                    subjects=p["subjects"], forms=p["expected_forms_per_subject"])],
                enrol, h.details[h.summary[_("Cumulative enrolment")], totals],
                forms_chart, ages)

