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
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.inputs import build, opt, text
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from edc.web.widgets import SELECT, post_form
from studies.forms import service as forms
from studies.forms.models import CLASSIFICATION_LABELS, DATA_CATEGORIES
from studies.forms.schemas import ItemUpdate
from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _, pick
from studies.kernel.roles import Perm

router = APIRouter(route_class=Route)
MAX_UPLOAD = 1_500_000


async def uploaded(request: Request) -> bytes:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(_("choose a file"), field="file")
    raw = await upload.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise InvalidInput(_("the file is larger than {MAX_UPLOAD} bytes").format(
                               MAX_UPLOAD=MAX_UPLOAD), field="file")
    return raw


def import_message(result: forms.ImportResult) -> str:
    summary = ", ".join(f"{f['form']} v{f['version']} ({f['items']})" for f in result.forms)
    note = _("; {n} warning(s): {warnings}").format(
        n=len(result.warnings), warnings=" | ".join(result.warnings[:5])) if result.warnings else ""
    return _("imported: {summary}{note}").format(summary=summary, note=note)[:1500]


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
        raise InvalidInput(_("the file is not UTF-8 text"),
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
    content: list[h.Node] = [h.p[_("Status: {status}").format(status=label(v['status']))
                                 + (" " + _("— published, immutable")
                                    if v["status"] == "published" else "")]]
    if draft:
        content.append(post_form(f"{base}/publish", request, button=_("Publish")))
    for g in v["groups"]:
        content.append(h.h2[f"{pick(g['label_zh'], g['label_en'])}"])
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
                    h.button(type="submit")[_("Confirm")]])
            rows.append(h.tr(class_="proposed" if not i["classification_confirmed"] else None)[
                h.td[h.code[i["name"]]], h.td[f"{pick(i['label_zh'], i['label_en'])}"],
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
            h.th[_("Item")], h.th[_("Label")], h.th[_("Type")],
            h.th[_("Req.")], h.th[_("Class")], h.th[_("Cat.·level")],
            h.th[_("Logic")], h.th[""]]], h.tbody[rows]])
    return page(request, f"{form} v{number} — {pick(v['label_zh'], v['label_en'])}", *content)


@router.post("/studies/{study}/forms/{form}/versions/{number}/publish",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
def publish(study: str, form: str, number: int, request: Request, session: SessionDep,
            ledger: LedgerDep, actor: CurrentActor) -> Response:
    forms.publish_version(session, ledger, actor=actor, study_code=study, form_name=form,
                          number=number)
    return redirect(request, f"/studies/{quote(study)}/forms/{quote(form)}/versions/{number}",
                    _("published"))


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
                    _("{item}: classification confirmed").format(item=item))
