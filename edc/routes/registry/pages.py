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
from studies.kernel.roles import ROLE_LABELS, Perm
from studies.overview import progress
from studies.overview import service as overview
from studies.registry import owner as owners
from studies.registry import service as registry
from studies.registry.schemas import ProtocolIn, SiteIn, StudyIn
from studies.retention import service as retention
from studies.signoff.service import inbox_for

router = APIRouter()


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
        work.append(h.section(".work")[h.h3["全部研究 / Across studies"], h.ul[[
            h.li[h.a(href=lk.href)[lk.label]] for lk in general]]])
    waiting: list[h.Node] = []
    if Perm.EXTRACT_REVIEW in actor.perms:
        pending = [r for r in ex.list_requests(session, actor=actor) if r.status == "pending"]
        waiting = [h.h2["等待您审批 / Waiting for your decision"], h.ul(".waiting")[[
            h.li[h.a(href=f"/extracts/{r.id}")[f"{r.study_code} · {r.tier.upper()} · "
                                               f"{r.recipient_org}"],
                 f" — {label(r.status)}"] for r in pending] or h.li["无 / Nothing waits"]]]
    if Perm.EXPORT_APPROVE in actor.perms:
        exports = export_approval.waiting_for(session, actor=actor)
        waiting += [h.h2["等待您审批的数据导出 / Exports waiting for your approval"],
                    h.ul(".waiting-exports")[[
                        h.li[h.a(href="/export-approvals")[
                            f"{v.study} · {v.row.requested_by} · "
                            f"{', '.join(v.row.forms) if v.row.forms else 'all / 全部'}"]]
                        for v in exports] or h.li["无 / Nothing waits"]]]
    return page(request, "首页 / Home",
                h.p[f"欢迎 / Welcome, {actor.display_name}."],
                h.h2["您的工作 / Your work"], *(work or [h.p["—"]]), *waiting,
                h.h2["团队消息 / Team inbox"], h.ul(".inbox")[inbox or h.li["—"]],
                h.h2["您的角色 / Your roles"], h.ul[roles or h.li["—"]])


def protocol_fields(prefix: str = "") -> list[h.Node]:
    return [
        field("方案版本 / Protocol version", "label", value="1.0" if not prefix else None),
        field("版本日期 / Version date", "version_date", type_="date"),
        field("研究目的 / Purpose", "purpose", textarea=True),
        field("合法性依据 / Legal basis", "legal_basis", textarea=True),
        field("研究内容 / Research content", "research_content", textarea=True),
        field("数据类型 / Data types collected", "data_types", textarea=True),
        field("计划受试者数 / Planned subjects", "planned_subjects", type_="number"),
        field("计划记录数 / Planned records", "planned_records", type_="number"),
        field("预期结果 / Expected results", "expected_results", textarea=True),
        field("数据共享计划 / Data-sharing plan", "data_sharing_plan", textarea=True),
    ]


def protocol_values(form: FormData) -> dict[str, Any]:
    return {k: text(form, k) or None for k in registry.PROTOCOL_FIELDS}


def protocol_in(form: FormData) -> ProtocolIn:
    return build(ProtocolIn, **protocol_values(form))


@router.get("/studies", dependencies=[authenticated()])
def studies_page(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/studies/{quote(s.code)}")[s.code]],
                 h.td[f"{s.title_zh} / {s.title_en}"], h.td[label(s.status)]]
            for s in registry.list_studies(session, actor=actor)]
    new = (h.p[h.a(href="/studies/new")["登记新研究 / Register a study"]]
           if Perm.STUDY_MANAGE in actor.perms else None)
    return page(request, "研究 / Studies", new,
                h.table[h.thead[h.tr[h.th["方案编号 / Protocol no."], h.th["题目 / Title"],
                                     h.th["状态 / Status"]]], h.tbody[rows]])


@router.get("/studies/new", dependencies=[requires(Perm.STUDY_MANAGE)])
def new_study_form(request: Request, actor: CurrentActor) -> Response:
    return page(request, "第 1 步：登记研究 / Step 1: register the study", post_form(
        "/studies/new", request,
        field("方案编号 / Protocol number", "code"),
        field("中文题目 / Title (Chinese)", "title_zh"),
        field("英文题目 / Title (English)", "title_en"),
        field("申办者 / Sponsor", "sponsor"),
        h.fieldset[h.legend["设计 / Design (§11.3.1 a)"],
                   choice("前瞻或回顾 / Prospective or retrospective", "design",
                          [("prospective", "前瞻性 / Prospective"),
                           ("retrospective", "回顾性 / Retrospective")]),
                   checkbox("盲法 / Blinded", "blinded"),
                   checkbox("上市后研究 / Post-market study", "post_market"),
                   checkbox("真实世界数据 / Real-world data", "real_world_data"),
                   checkbox("公共利益统计或学术研究 / Public-interest statistics or research",
                            "public_interest")],
        h.fieldset[h.legend["研究方案 / Protocol (§11.3.4.2)"], *protocol_fields()],
        h.fieldset[h.legend["第一个中心 / First site"],
                   field("中心编号 / Site code (S01)", "site_code", value="S01"),
                   field("医院 / Hospital", "site_hospital"),
                   field("科室 / Department", "site_department", required=False),
                   field("医疗组 / Medical group", "site_medical_group", required=False)],
        button="登记 / Register"))


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
                        "study registered; next: sites, ethics approval, consent, forms / "
                        "研究已登记，下一步：中心、伦理批准、知情同意、表单")

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
    steps = [("1", "研究 / Study", True), ("2", "中心 / Sites", bool(o["sites"])),
             ("3", "方案与伦理批准 / Protocol & approval", o["readiness"]["open"]),
             ("4", "知情同意书 / Consent form", bool(o["consent_forms"])),
             ("5", "表单 / Forms", any(v["status"] == "published"
                                      for f in o["forms"] for v in f["versions"])),
             ("6", "数据责任人 / Data owner", owner_view.owner is not None)]
    wizard = h.ol(".wizard")[[h.li(class_="done" if done else "todo")[
        f"{'✔' if done else '○'} {label}"] for _, label, done in steps]]
    flags = ", ".join(label(k) for k in ("blinded", "post_market", "real_world_data",
                                         "public_interest") if s[k])
    sections: list[h.Node] = [
        banner(o["readiness"]), wizard,
        h.p[f"申办者 / Sponsor: {s['sponsor'] or '—'} · 设计 / design: {label(s['design'])}"
            + (f" · {flags}" if flags else "") + f" · 状态 / status: {label(s['status'])}"],
        h.h2["中心 / Sites"],
        h.table[h.tbody[[h.tr[h.td[x["code"]], h.td[x["hospital"]], h.td[x["department"] or ""],
                               h.td[x["medical_group"] or ""]] for x in o["sites"]]]],
        h.h2["数据责任人 / Data owner"], owner_summary(owner_view),
        h.p[h.a(href=f"{base}/owner")["数据责任人与移交记录 / Data owner and handovers"]],
    ]
    if manage:
        sections.append(post_form(
            f"{base}/sites", request, field("中心编号 / Site code", "code"),
            field("医院 / Hospital", "hospital"),
            field("科室 / Department", "department", required=False),
            field("医疗组 / Medical group", "medical_group", required=False),
            button="添加中心 / Add site"))
    sections += [
        h.h2["方案版本 / Protocol versions"],
        h.table[h.thead[h.tr[h.th["#"], h.th["版本 / Version"], h.th["日期 / Date"],
                             h.th["修订说明 / Amendment"]]],
                h.tbody[[h.tr[h.td[str(p["number"])], h.td[p["label"]], h.td[p["version_date"]],
                              h.td[p["amendment_summary"] or "—"]]
                         for p in o["protocol_versions"]]]],
        h.h2["伦理审查 / Ethics decisions"],
        h.table[h.tbody[[h.tr[h.td[a["protocol_label"] or ""], h.td[a["committee"] or ""],
                              h.td[ethics.DECISION_LABELS[a["decision"]]],
                              h.td[a["decided_on"]], h.td[a["expires_on"] or "—"],
                              h.td[a["conditions"] or ""]] for a in o["approvals"]]]],
    ]
    if manage:
        sections.append(h.details[h.summary["方案修订 / Amend the protocol"], post_form(
            f"{base}/protocol", request,
            field("修订说明 / Summary of changes", "summary", textarea=True),
            *protocol_fields("amend"), button="提交修订 / Record amendment")])
        sections.append(h.details[h.summary["申请知情同意豁免 / Request a consent waiver"],
                                  post_form(
            f"{base}/waivers", request,
            choice("豁免理由 / Ground", "ground",
                   [(g, f"{ethics.WAIVER_CLAUSES[g]} {lab}")
                    for g, lab in ethics.WAIVER_LABELS.items()]),
            field("理由说明 / Justification", "justification", textarea=True),
            field("已签署的知情同意书 / Signed consent covering this study (b 2)",
                  "prior_consent_reference", required=False),
            checkbox("数据将去标识化 / The data will be de-identified", "data_deidentified"),
            button="提交 / Submit")])
    sections.append(h.ul[[h.li[f"{w['clause']} {ethics.WAIVER_LABELS[w['ground']]} — "
                               f"{label(w['status'])}"] for w in o["waivers"]]])
    sections += [h.h2["知情同意书 / Consent forms"],
                 h.ul[[h.li[f"{f['version']} ({label(f['consent_type'])})"
                            + (" — 须重新同意 / re-consent required"
                               if f["requires_reconsent"] else "")]
                       for f in o["consent_forms"]]]]
    approving = [a for a in o["approvals"]
                 if a["decision"] in ("approved", "approved_with_conditions")]
    if manage and approving:
        sections.append(h.details[h.summary["新增知情同意书版本 / Add a consent form version"],
                                  post_form(
            f"{base}/consent-forms", request, field("版本 / Version", "version"),
            choice("类型 / Type", "consent_type", [("informed", "知情同意 / Informed"),
                                                   ("broad", "广泛知情同意 / Broad")]),
            field("中文正文 / Text (Chinese)", "text_zh", textarea=True),
            field("英文正文 / Text (English)", "text_en", textarea=True),
            choice("伦理批件 / Ethics approval", "approval_id",
                   [(a_id, label) for a_id, label in _approval_options(o)]),
            checkbox("已签署旧版者须重新同意 / Subjects on older versions must re-consent",
                     "requires_reconsent"),
            button="保存 / Save")])
    sections.append(h.h2["表单 / Case report forms"])
    rows = []
    for f in o["forms"]:
        for v in f["versions"]:
            link = f"{base}/forms/{quote(f['name'])}/versions/{v['number']}"
            rows.append(h.tr[h.td[h.a(href=link)[f["name"]]], h.td[str(v["number"])],
                             h.td[label(v["status"])],
                             h.td[f"{v['label_zh']} / {v['label_en']}"]])
    sections.append(h.table[h.thead[h.tr[h.th["表单 / Form"], h.th["版本 / Version"],
                                         h.th["状态 / Status"], h.th["名称 / Label"]]],
                            h.tbody[rows]])
    sections.append(h.p[h.a(href=f"/api/v1/studies/{quote(study)}/odm")[
        "导出 ODM 1.3.2 / Export metadata as ODM 1.3.2"]])
    if manage:
        sections.append(post_form(
            f"{base}/forms/redcap", request,
            h.p[h.label(for_="file")["REDCap 数据字典 (CSV) / REDCap data dictionary (CSV)"],
                h.input(id="file", name="file", type="file", accept=".csv", required=True)],
            button="导入 / Import", multipart=True))
        sections.append(post_form(
            f"{base}/forms/odm", request,
            h.p[h.label(for_="odm_file")["CDISC ODM 1.3.2 元数据 / ODM 1.3.2 metadata (XML)"],
                h.input(id="odm_file", name="file", type="file", accept=".xml",
                        required=True)],
            button="导入 ODM / Import ODM", multipart=True))
    sections += _end_date(request, session, actor, study, manage)
    if actor.can(Perm.CONSENT_READ, study):
        sections.append(h.p[h.a(href=f"{base}/consent")["知情同意 / Consent of subjects"]])
    return page(request, f"{s['code']} — {s['title_zh']} / {s['title_en']}", *sections)


def _end_date(request: Request, session: SessionDep, actor: CurrentActor, study: str,
              manage: bool) -> list[h.Node]:
    """The study's end date and first retention review (§11.3.4.6 a4); set by ``study.manage``."""
    ended = retention.end_date(session, actor=actor, study_code=study)
    out: list[h.Node] = [
        h.h2["研究结束与保存期审查 / Study end and retention review"],
        h.p(".end-date")[
            f"结束日期 / End date: {ended.isoformat()} · 首次保存期审查 / first retention "
            f"review: {retention.review_due(ended, 1).isoformat()}" if ended is not None
            else "研究尚未结束 / The study has not ended"]]
    if manage:
        out.append(post_form(
            f"/studies/{quote(study)}/end-date", request,
            field("结束日期 / End date", "ended_on", type_="date",
                  value=ended.isoformat() if ended is not None else None),
            field("理由 / Reason", "reason", textarea=True),
            button="记录结束日期 / Record the end date"))
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
    return redirect(request, f"/studies/{quote(study)}", "site added / 中心已添加")


@router.post("/studies/{study}/protocol", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def amend(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor) -> Response:
    form = await request.form()
    pv = registry.amend_protocol(session, ledger, actor=actor, study_code=study,
                                 protocol=protocol_in(form), summary=text(form, "summary"))
    return redirect(request, f"/studies/{quote(study)}",
                    f"protocol {pv.label} recorded; entry stops until the ethics committee "
                    f"approves it / 方案 {pv.label} 已记录，获伦理批准前暂停入组与录入")


@router.get("/studies/{study}/dashboard", dependencies=[requires(Perm.ENTRY_READ)])
def dashboard(study: str, request: Request, session: SessionDep,
              actor: CurrentActor) -> Response:
    """Progress at a glance: enrolment over time by site, completeness and SDV per form,
    open queries by age — SVG charts with their numbers, no JavaScript."""
    p = progress.study_progress(session, actor=actor, study_code=study, at=now())
    months = [m["month"] for m in p["enrolment"]]
    enrol = bar_chart("chart-enrolment", "入组（按月、按中心）/ Enrolment by month and site",
                      months, [charts.Series(code, tuple(m["new"][code] for m in p["enrolment"]),
                                             charts.PALETTE[n % len(charts.PALETTE)])
                               for n, code in enumerate(p["sites"])])
    totals = h.table(".enrolment-total")[
        h.thead[h.tr[h.th["月份 / Month"], [h.th[f"{c} 累计 / total"] for c in p["sites"]]]],
        h.tbody[[h.tr[h.td[m["month"]], [h.td[str(m["total"][c])] for c in p["sites"]]]
                 for m in p["enrolment"]]]]
    states = (("incomplete", "#e0a400"), ("complete", "#4a90b8"), ("verified", "#137333"),
              ("query", "#c5221f"), ("locked", "#444444"))
    names = [f["form"] for f in p["forms"]]
    forms_chart = bar_chart(
        "chart-forms", "完成度与源数据核查（按表单）/ Completeness and SDV per form", names,
        [charts.Series(STATE_LABELS[k], tuple(f[k] for f in p["forms"]), colour)
         for k, colour in states])
    ages = bar_chart("chart-queries", "未关闭质疑（按天数）/ Open queries by age (days)",
                     [a["band"] for a in p["open_queries_by_age"]],
                     [charts.Series("未关闭质疑 / open queries",
                                    tuple(a["count"] for a in p["open_queries_by_age"]),
                                    "#c5221f")])
    return page(request, f"进度图表 / Progress — {study}",
                h.p[f"受试者 / Subjects: {p['subjects']} · 每名受试者应填表单 / forms due per "
                    f"subject: {p['expected_forms_per_subject']}"],
                enrol, h.details[h.summary["累计入组 / Cumulative enrolment"], totals],
                forms_chart, ages)

