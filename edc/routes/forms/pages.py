"""Pages of eCRF metadata: REDCap and ODM uploads, a form version with its items, publishing
and confirming an item's classification."""

from __future__ import annotations

from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.web.csrf import Csrf
from edc.web.inputs import build, opt, text
from edc.web.layout import csrf_field, page, redirect
from edc.web.widgets import SELECT, post_form
from studies.forms import service as forms
from studies.forms.models import CLASSIFICATION_LABELS, DATA_CATEGORIES
from studies.forms.schemas import ItemUpdate
from studies.kernel.errors import InvalidInput
from studies.kernel.roles import Perm

router = APIRouter()
MAX_UPLOAD = 1_500_000


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
                          ItemUpdate, classification=opt(data, "classification"),
                          data_category=opt(data, "data_category"),
                          level=int(level) if level.isdigit() else None,
                          confirm_classification=True))
    return redirect(request, f"/studies/{quote(study)}/forms/{quote(form)}/versions/{number}",
                    f"{item}: classification confirmed / 分类已确认")
