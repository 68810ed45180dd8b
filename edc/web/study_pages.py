"""Pages for study set-up (study admin / PI wizard: study → sites → protocol → consent →
forms), the ethics committee's desk (committees, approvals, waivers) and consent capture by
investigators (with the form text shown). Plain forms, post-redirect-get; no JavaScript needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import authenticated, requires
from edc.web.layout import csrf_field, page, redirect
from edc.web.pages import Csrf
from studies.consent import service as consent
from studies.consent.models import SCOPE_LABELS, SCOPES
from studies.ethics import service as ethics
from studies.ethics.models import AFFILIATIONS, GENDERS
from studies.forms import service as forms
from studies.forms.models import CLASSIFICATION_LABELS, DATA_CATEGORIES
from studies.kernel.errors import InvalidInput
from studies.kernel.roles import Perm
from studies.overview import service as overview
from studies.registry import service as registry

router = APIRouter()
SELECT = h.select  # (named so the architecture test's query check does not misfire)
M = TypeVar("M", bound=BaseModel)
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))  # times typed on pages are China Standard Time
MAX_UPLOAD = 1_500_000


# ---- input helpers (parsing only) ---------------------------------------------------------------

def build(model: type[M], prefix: str = "", **values: Any) -> M:
    """A domain input model from form fields; a validation problem names the field (422)."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = prefix + ".".join(str(x) for x in first.get("loc", ()))
        raise InvalidInput(f"{field}: {first.get('msg')}", field=field or None) from None


def text(form: FormData, name: str) -> str:
    v = form.get(name)
    return v.strip() if isinstance(v, str) else ""


def opt(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def local_time(value: str, field: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: not a date and time / 时间格式不正确", field=field) from None
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---- small view helpers -------------------------------------------------------------------------

def field(label: str, name: str, *, type_: str = "text", required: bool = True,
          value: str | None = None, textarea: bool = False) -> h.Node:
    control: h.Element
    if textarea:
        control = h.textarea(id=name, name=name, required=required, rows="3")[value or ""]
    else:
        control = h.input(id=name, name=name, type=type_, required=required, value=value)
    return h.p[h.label(for_=name)[label], control]


def checkbox(label: str, name: str, checked: bool = False, value: str = "on") -> h.Node:
    return h.label(".check")[h.input(type="checkbox", name=name, value=value, checked=checked),
                             " ", label]


def choice(label: str, name: str, options: list[tuple[str, str]]) -> h.Node:
    return h.p[h.label(for_=name)[label],
               SELECT(id=name, name=name)[[h.option(value=v)[t] for v, t in options]]]


def post_form(action: str, request: Request, *content: h.Node, button: str,
              multipart: bool = False) -> h.Element:
    return h.form(method="post", action=action,
                  enctype="multipart/form-data" if multipart else None)[
        csrf_field(request), *content, h.p[h.button(type="submit")[button]]]


def banner(readiness: dict[str, Any]) -> h.Node:
    if readiness["open"]:
        a = readiness["approval"]
        return h.p(".ok", role="status")[
            "✔ 可入组、可录入 / Enrolment and data entry are open — ",
            f"{a['committee']} {a['reference']}, protocol {a['protocol_label']}",
            f", expires {a['expires_on']}" if a["expires_on"] else ""]
    return h.p(".bad", role="alert")[
        "✘ 暂停入组与录入 / Enrolment and data entry are stopped: ", readiness["reason"],
        " (GB/T 39725-2020 §11.3.4.2)"]


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


def protocol_in(form: FormData) -> registry.ProtocolIn:
    return build(registry.ProtocolIn, **{k: text(form, k) or None
                                         for k in registry.PROTOCOL_FIELDS})


# ---- studies and the set-up wizard --------------------------------------------------------------

@router.get("/studies", dependencies=[authenticated()])
def studies_page(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.a(href=f"/studies/{quote(s.code)}")[s.code]],
                 h.td[f"{s.title_zh} / {s.title_en}"], h.td[s.status]]
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
    site = build(registry.SiteIn, prefix="site_", code=text(form, "site_code"),
                 hospital=text(form, "site_hospital"),
                 department=opt(form, "site_department"),
                 medical_group=opt(form, "site_medical_group"))
    data = build(registry.StudyIn, code=text(form, "code"), title_zh=text(form, "title_zh"),
                 title_en=text(form, "title_en"), sponsor=text(form, "sponsor"),
                 design=text(form, "design"), blinded=flag(form, "blinded"),
                 post_market=flag(form, "post_market"),
                 real_world_data=flag(form, "real_world_data"),
                 public_interest=flag(form, "public_interest"),
                 protocol=protocol_in(form), sites=[site])
    study = registry.register_study(session, ledger, actor=actor, data=data)
    return redirect(request, f"/studies/{quote(study.code)}",
                    "study registered; next: sites, ethics approval, consent, forms / "
                    "研究已登记，下一步：中心、伦理批准、知情同意、表单")


@router.get("/studies/{study}", dependencies=[requires(Perm.STUDY_READ)])
def study_page(study: str, request: Request, session: SessionDep,
               actor: CurrentActor) -> Response:
    o = overview.study_overview(session, actor=actor, study_code=study, at=now())
    s = o["study"]
    base = f"/studies/{quote(study)}"
    manage = actor.can(Perm.STUDY_MANAGE, study)
    steps = [("1", "研究 / Study", True), ("2", "中心 / Sites", bool(o["sites"])),
             ("3", "方案与伦理批准 / Protocol & approval", o["readiness"]["open"]),
             ("4", "知情同意书 / Consent form", bool(o["consent_forms"])),
             ("5", "表单 / Forms", any(v["status"] == "published"
                                      for f in o["forms"] for v in f["versions"]))]
    wizard = h.ol(".wizard")[[h.li(class_="done" if done else "todo")[
        f"{'✔' if done else '○'} {label}"] for _, label, done in steps]]
    flags = ", ".join(k for k in ("blinded", "post_market", "real_world_data",
                                  "public_interest") if s[k])
    sections: list[h.Node] = [
        banner(o["readiness"]), wizard,
        h.p[f"申办者 / Sponsor: {s['sponsor'] or '—'} · 设计 / design: {s['design']}"
            + (f" · {flags}" if flags else "") + f" · 状态 / status: {s['status']}"],
        h.h2["中心 / Sites"],
        h.table[h.tbody[[h.tr[h.td[x["code"]], h.td[x["hospital"]], h.td[x["department"] or ""],
                               h.td[x["medical_group"] or ""]] for x in o["sites"]]]],
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
                               f"{w['status']}"] for w in o["waivers"]]])
    sections += [h.h2["知情同意书 / Consent forms"],
                 h.ul[[h.li[f"{f['version']} ({f['consent_type']})"
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
                             h.td[v["status"]], h.td[f"{v['label_zh']} / {v['label_en']}"]])
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
    if actor.can(Perm.CONSENT_READ, study):
        sections.append(h.p[h.a(href=f"{base}/consent")["知情同意 / Consent of subjects"]])
    return page(request, f"{s['code']} — {s['title_zh']} / {s['title_en']}", *sections)


def _approval_options(o: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["id"], f"{a['reference']} — {a['committee']} — protocol {a['protocol_label']}")
            for a in o["approvals"] if a["decision"] in ("approved", "approved_with_conditions")]


@router.post("/studies/{study}/sites", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def add_site(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> Response:
    form = await request.form()
    registry.add_site(session, ledger, actor=actor, study_code=study, site=build(
        registry.SiteIn, code=text(form, "code"), hospital=text(form, "hospital"),
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


@router.post("/studies/{study}/waivers", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def waiver(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.request_waiver(session, ledger, actor=actor, study_code=study, data=build(
        ethics.WaiverIn, ground=text(form, "ground"), justification=text(form, "justification"),
        data_deidentified=flag(form, "data_deidentified"),
        prior_consent_reference=opt(form, "prior_consent_reference")))
    return redirect(request, f"/studies/{quote(study)}",
                    "waiver requested; the ethics committee decides / 豁免申请已提交")


@router.post("/studies/{study}/consent-forms",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def consent_form(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> Response:
    form = await request.form()
    consent.add_consent_form(session, ledger, actor=actor, study_code=study, data=build(
        consent.ConsentFormIn, version=text(form, "version"),
        consent_type=text(form, "consent_type"), text_zh=text(form, "text_zh"),
        text_en=text(form, "text_en"), approval_id=text(form, "approval_id"),
        requires_reconsent=flag(form, "requires_reconsent")))
    return redirect(request, f"/studies/{quote(study)}", "consent form saved / 同意书已保存")


async def uploaded(request: Request) -> bytes:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("choose a file / 请选择文件", field="file")
    raw = await upload.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise InvalidInput(f"the file is larger than {MAX_UPLOAD} bytes / 文件过大", field="file")
    return raw


def import_message(result: forms.ImportResult) -> str:
    summary = ", ".join(f"{f['form']} v{f['version']} ({f['items']})" for f in result.forms)
    note = f"; {len(result.warnings)} warning(s): " + " | ".join(result.warnings[:5]) \
        if result.warnings else ""
    return f"imported / 已导入: {summary}{note}"[:1500]


@router.post("/studies/{study}/forms/odm", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def odm_upload(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                     actor: CurrentActor) -> Response:
    raw = await uploaded(request)
    result = forms.import_odm(session, ledger, actor=actor, study_code=study, data=raw)
    return redirect(request, f"/studies/{quote(study)}", import_message(result))


@router.post("/studies/{study}/forms/redcap", dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def redcap_upload(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                        actor: CurrentActor) -> Response:
    raw = await uploaded(request)
    try:
        csv_text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text / 文件不是 UTF-8 编码",
                           field="file") from None
    result = forms.import_redcap(session, ledger, actor=actor, study_code=study, text=csv_text)
    return redirect(request, f"/studies/{quote(study)}", import_message(result))


@router.get("/studies/{study}/forms/{form}/versions/{number}",
            dependencies=[requires(Perm.STUDY_READ)])
def version_page(study: str, form: str, number: int, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    v = forms.show_version(session, actor=actor, study_code=study, form_name=form,
                           number=number)
    base = f"/studies/{quote(study)}/forms/{quote(form)}/versions/{number}"
    draft = v["status"] == "draft" and actor.can(Perm.STUDY_MANAGE, study)
    content: list[h.Node] = [h.p[f"状态 / Status: {v['status']}"
                                 + (" — 已发布，不可修改 / published, immutable"
                                    if v["status"] == "published" else "")]]
    if draft:
        content.append(post_form(f"{base}/publish", request, button="发布 / Publish"))
    for g in v["groups"]:
        content.append(h.h2[f"{g['label_zh']} / {g['label_en']}"])
        rows = []
        for i in g["items"]:
            actions: list[h.Node] = []
            if draft:
                actions.append(h.form(method="post", action=f"{base}/items/{quote(i['name'])}")[
                    csrf_field(request),
                    SELECT(name="classification", **{"aria-label": f"{i['name']} class"})[
                        [h.option(value=c, selected=c == i["classification"])[lab]
                         for c, lab in CLASSIFICATION_LABELS.items()]],
                    SELECT(name="data_category", **{"aria-label": f"{i['name']} category"})[
                        [h.option(value=c, selected=c == i["data_category"])[lab]
                         for c, lab in DATA_CATEGORIES.items()]],
                    SELECT(name="level", **{"aria-label": f"{i['name']} level"})[
                        [h.option(value=str(n), selected=n == i["level"])[f"L{n}"]
                         for n in range(1, 6)]],
                    h.button(type="submit")["确认 / Confirm"]])
            rows.append(h.tr(class_="proposed" if not i["classification_confirmed"] else None)[
                h.td[h.code[i["name"]]], h.td[f"{i['label_zh']} / {i['label_en']}"],
                h.td[f"{i['field_type']} → {i['data_type']}" + (
                    f" ({i['unit']})" if i["unit"] else "")],
                h.td["✔" if i["required"] else ""],
                h.td[CLASSIFICATION_LABELS[i["classification"]]
                     + ("" if i["classification_confirmed"] else " ?")],
                h.td[f"{i['data_category']} · L{i['level']}"],
                h.td[h.code[f"show if {i['show_if']}"] if i["show_if"] else "",
                     h.code[f"= {i['calc']}"] if i["calc"] else "",
                     h.span(".bad")[i["logic_problem"]] if i["logic_problem"] else ""],
                h.td[actions]])
        content.append(h.table[h.thead[h.tr[
            h.th["字段 / Item"], h.th["标签 / Label"], h.th["类型 / Type"],
            h.th["必填 / Req."], h.th["分类 / Class"], h.th["类别·级别 / Cat.·level"],
            h.th["逻辑 / Logic"], h.th[""]]], h.tbody[rows]])
    return page(request, f"{form} v{number} — {v['label_zh']} / {v['label_en']}", *content)


@router.post("/studies/{study}/forms/{form}/versions/{number}/publish",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
def publish(study: str, form: str, number: int, request: Request, session: SessionDep,
            ledger: LedgerDep, actor: CurrentActor) -> Response:
    forms.publish_version(session, ledger, actor=actor, study_code=study, form_name=form,
                          number=number)
    return redirect(request, f"/studies/{quote(study)}/forms/{quote(form)}/versions/{number}",
                    "published / 已发布")


@router.post("/studies/{study}/forms/{form}/versions/{number}/items/{item}",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def classify(study: str, form: str, number: int, item: str, request: Request,
                   session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> Response:
    data = await request.form()
    level = text(data, "level")
    forms.update_item(session, ledger, actor=actor, study_code=study, form_name=form,
                      number=number, item_name=item, data=build(
                          forms.ItemUpdate, classification=opt(data, "classification"),
                          data_category=opt(data, "data_category"),
                          level=int(level) if level.isdigit() else None,
                          confirm_classification=True))
    return redirect(request, f"/studies/{quote(study)}/forms/{quote(form)}/versions/{number}",
                    f"{item}: classification confirmed / 分类已确认")


# ---- ethics committee ---------------------------------------------------------------------------

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
                               + (f" – {a['expires_on']}" if a["expires_on"] else "") + ")"]
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
        ethics.CommitteeIn, name=text(form, "name"), institution=text(form, "institution")))
    return redirect(request, "/ethics", "committee registered / 伦理委员会已登记")


@router.post("/ethics/committees/{committee_id}/members",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_member(committee_id: str, request: Request, session: SessionDep,
                     ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.add_member(session, ledger, actor=actor, committee_id=committee_id, data=build(
        ethics.MemberIn, name=text(form, "name"), gender=text(form, "gender"),
        affiliation=text(form, "affiliation"), expertise=text(form, "expertise")))
    return redirect(request, "/ethics", "member added / 委员已添加")


@router.post("/ethics/studies/{study}/approvals",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def new_approval(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.record_approval(session, ledger, actor=actor, study_code=study, data=build(
        ethics.ApprovalIn, protocol_version=text(form, "protocol_version"),
        committee_id=text(form, "committee_id"), reference=text(form, "reference"),
        decision=text(form, "decision"), decided_on=text(form, "decided_on") or None,
        expires_on=opt(form, "expires_on"), conditions=opt(form, "conditions")))
    return redirect(request, "/ethics", "decision recorded / 审查决定已记录")


@router.post("/ethics/studies/{study}/waivers/{waiver_id}/decision",
             dependencies=[requires(Perm.ETHICS_RECORD), Csrf])
async def waiver_decision(study: str, waiver_id: str, request: Request, session: SessionDep,
                          ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    ethics.decide_waiver(session, ledger, actor=actor, study_code=study, waiver_id=waiver_id,
                         data=build(ethics.WaiverDecisionIn,
                                    committee_id=text(form, "committee_id"),
                                    decision=text(form, "decision"),
                                    reference=text(form, "reference"),
                                    decided_on=text(form, "decided_on") or None))
    return redirect(request, "/ethics", "waiver decision recorded / 豁免审查决定已记录")


# ---- consent capture ----------------------------------------------------------------------------

@router.get("/studies/{study}/consent", dependencies=[requires(Perm.CONSENT_READ)])
def consent_list(study: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    o = overview.consent_overview(session, actor=actor, study_code=study, at=now())
    base = f"/studies/{quote(study)}/subjects"
    rows = [h.tr[h.td[h.a(href=f"{base}/{r['subject_id']}/consent")[r["code"]]],
                 h.td[", ".join(r["scopes"]) or "—"],
                 h.td["✔" if r["entry_allowed"] else f"✘ {r['reason']}"]]
            for r in o["subjects"]]
    return page(request, f"{study} — 知情同意 / Consent", banner(o["readiness"]),
                h.table[h.thead[h.tr[h.th["受试者 / Subject"], h.th["授权范围 / Scopes"],
                                     h.th["可录入 / Entry"]]], h.tbody[rows]])


@router.get("/studies/{study}/subjects/{subject_id}/consent",
            dependencies=[requires(Perm.CONSENT_RECORD)])
def consent_capture(study: str, subject_id: str, request: Request, session: SessionDep,
                    actor: CurrentActor) -> Response:
    d = overview.consent_page_data(session, actor=actor, study_code=study,
                                   subject_id=subject_id, at=now())
    base = f"/studies/{quote(study)}"
    content: list[h.Node] = [
        h.p(".ok" if d["entry_allowed"] else ".bad")[
            "✔ 可录入 / Data entry allowed" if d["entry_allowed"]
            else f"✘ 不可录入 / No data entry: {d['reason']}"]]
    content.append(h.h2["同意记录 / Consent history"])
    for r in d["history"]:
        wd = "; ".join(f"撤回 / withdrawn {w['scope'] or 'all'} {w['withdrawn_at']}"
                       for w in r["withdrawals"])
        content.append(h.div(".consent")[
            h.p[f"{r['given_at']} · {r['consent_type']} · {r['form_version'] or 'waiver'} · "
                f"{', '.join(r['scopes'])} · by {r['obtained_by']}" + (f" · {wd}" if wd else "")],
            post_form(f"{base}/consents/{r['id']}/withdraw", request,
                      h.fieldset[h.legend["撤回 / Withdraw (不选则全部 / none = whole)"],
                                 [checkbox(SCOPE_LABELS[sc], "scopes", value=sc)
                                  for sc in r["scopes"]]],
                      field("撤回时间（北京时间）/ Withdrawn at (UTC+8)", "withdrawn_at",
                            type_="datetime-local"),
                      field("原因 / Reason", "reason", required=False),
                      button="记录撤回 / Record withdrawal")
            if r is d["history"][-1] and not any(w["scope"] is None for w in r["withdrawals"])
            else None])
    for f in reversed(d["forms"]):
        content += [
            h.h2[f"知情同意书 {f['version']} / Consent form {f['version']} ({f['consent_type']})"],
            h.div(".consent-text", lang="zh")[[h.p[line] for line in f["text_zh"].splitlines()]],
            h.div(".consent-text", lang="en")[[h.p[line] for line in f["text_en"].splitlines()]],
            post_form(f"{base}/subjects/{subject_id}/consent", request,
                      h.input(type="hidden", name="form_id", value=f["id"]),
                      h.input(type="hidden", name="consent_type", value=f["consent_type"]),
                      h.fieldset[h.legend["授权范围 / Scopes agreed"],
                                 [checkbox(SCOPE_LABELS[sc], "scopes", value=sc,
                                           checked=sc == consent.REQUIRED_SCOPE.get(
                                               f["consent_type"])) for sc in SCOPES]],
                      field("签署时间（北京时间）/ Signed at (UTC+8)", "given_at",
                            type_="datetime-local"),
                      button=f"记录同意（{f['version']}）/ Record consent")]
    for w in d["waivers"]:
        content += [h.h2[f"豁免 / Waiver {w['clause']}"], h.p[ethics.WAIVER_LABELS[w["ground"]]],
                    post_form(f"{base}/subjects/{subject_id}/consent", request,
                              h.input(type="hidden", name="waiver_id", value=w["id"]),
                              h.input(type="hidden", name="consent_type", value="waiver"),
                              field("时间（北京时间）/ Time (UTC+8)", "given_at",
                                    type_="datetime-local"),
                              button="按豁免登记 / Record as covered by the waiver")]
    return page(request, f"{d['subject']['code']} — 知情同意 / Consent", *content)


@router.post("/studies/{study}/subjects/{subject_id}/consent",
             dependencies=[requires(Perm.CONSENT_RECORD), Csrf])
async def consent_submit(study: str, subject_id: str, request: Request, session: SessionDep,
                         ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    consent.record_consent(session, ledger, actor=actor, study_code=study,
                           subject_id=subject_id, data=build(
                               consent.ConsentIn, consent_type=text(form, "consent_type"),
                               form_id=opt(form, "form_id"), waiver_id=opt(form, "waiver_id"),
                               scopes=[s for s in form.getlist("scopes") if isinstance(s, str)],
                               given_at=local_time(text(form, "given_at"), "given_at")))
    return redirect(request, f"/studies/{quote(study)}/subjects/{subject_id}/consent",
                    "consent recorded / 知情同意已记录")


@router.post("/studies/{study}/consents/{consent_id}/withdraw",
             dependencies=[requires(Perm.CONSENT_RECORD), Csrf])
async def withdraw_submit(study: str, consent_id: str, request: Request, session: SessionDep,
                          ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    done = consent.withdraw_consent(session, ledger, actor=actor, study_code=study,
                                    consent_id=consent_id, data=build(
                                        consent.WithdrawalIn, scopes=scopes or None,
                                        withdrawn_at=local_time(text(form, "withdrawn_at"),
                                                                "withdrawn_at"),
                                        reason=opt(form, "reason")))
    return redirect(request, f"/studies/{quote(study)}/subjects/{done[0].subject_id}/consent",
                    "withdrawal recorded / 撤回已记录")
