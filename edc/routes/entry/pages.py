"""Pages for data entry (investigators) and monitoring (monitors), rendered from the form's
metadata: labels and help in Chinese and English, units, code lists as drop-downs / radio
buttons / check boxes, date inputs that also accept typing, a reason per changed field when
correcting, field-level errors, history, SDV buttons, query threads and the worklist.

Every page works without JavaScript: plain forms with CSRF tokens and post-redirect-get. A
save with errors re-renders the form (422) with the values typed and the message under each
field; a save on an older version that touches only fields no one else changed is merged
(the redirect says so); a real conflict re-renders the form (409) with both values at each
conflicting field and the choice which to keep, the rest of the typing kept.

With JavaScript, htmx adds (issue 18, item 7): each field is checked as it is typed
(``…/check``, the save's own checks through :mod:`studies.entry.preview`) — its error shown
under it, the calculated fields recomputed, the fields the branching logic hides hidden; an
SDV tick replaces only its row, a query answer only its thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep, audited_read
from edc.policy import requires
from edc.routing import Route, quick
from edc.web.csrf import Csrf
from edc.web.forms import refill, submit
from edc.web.labels import STATE_LABELS, STATE_MARKS, label
from edc.web.layout import csrf_field, page, redirect
from edc.web.timefmt import local_minute
from studies.entry import files as entry_files
from studies.entry import monitoring, preview
from studies.entry import reading as entry_reading
from studies.entry import service as entry
from studies.entry.errors import EntryInvalid, StaleVersion
from studies.entry.schemas import QueryAnswerIn, QueryNoteIn, QueryOpenIn, SaveIn, SdvIn
from studies.forms.datatypes import DATA_TYPES, YES_NO
from studies.kernel.errors import InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _, pick
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm
from studies.kernel.schemas import DB_INT_MAX

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries
Repeat = Annotated[int, Query(ge=1, le=10_000)]
MAX_FIELD = 20_000  # form text beyond this is cut before checks refuse it (10,000 max)


async def form_data(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(form_data)]


def _url(study: str, subject: str, event: str, form: str, repeat: int = 1,
         suffix: str = "") -> str:
    base = f"/studies/{quote(study)}/entry/{quote(subject)}/{quote(event)}/{quote(form)}{suffix}"
    return base + (f"?repeat={repeat}" if repeat != 1 else "")


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "—"
    return str(v)


def _label(i: dict[str, Any]) -> str:
    return pick(i.get("label_zh"), i.get("label_en"))


def _choice_label(c: dict[str, str]) -> str:
    return pick(c.get("label_zh"), c.get("label_en"))


# ---- the entry overview -------------------------------------------------------------------

def legend() -> h.Node:
    return h.section(".legend-box")[h.h2[_("Legend")], h.ul(".legend")[[
        h.li[h.span(class_=f"st st-{k}")[STATE_MARKS[k]], " ", STATE_LABELS[k]]
        for k in STATE_MARKS]]]


@router.get("/studies/{study}/entry", dependencies=[requires(Perm.ENTRY_READ),
                                                   audited_read(Action.READ_LIST)])
def entry_grid(study: str, request: Request, session: SessionDep,
               actor: CurrentActor) -> Response:
    g = entry_reading.subject_grid(session, actor=actor, study_code=study)
    heads: list[h.Node] = [h.th[_("Subject")]]
    cols: list[tuple[str, str, bool]] = []
    for e in g["events"]:
        for f in e["forms"]:
            heads.append(h.th[f"{pick(e['label_zh'], e['label_en'])}: {f}"])
            cols.append((e["name"], f, e["repeating"]))
    rows = []
    for s in g["subjects"]:
        cells: list[h.Node] = [h.td[h.code[s["code"]]]]
        for ev, f, repeating in cols:
            reps = sorted(int(k.split("/")[1]) for k in s["records"]
                          if k.split("/")[0] == ev and k.split("/")[2] == f)
            links: list[h.Node] = []
            for r in reps or [1]:
                rec = s["records"].get(f"{ev}/{r}/{f}")
                kind = entry_reading.record_state(rec)
                text = STATE_MARKS[kind] + (f" v{rec['version']}" if rec else "")
                links += [h.a(class_=f"st st-{kind}", href=_url(study, s["code"], ev, f, r),
                              title=STATE_LABELS[kind])[
                    f"#{r} " + text if repeating else text], " "]
            if repeating and reps:
                links.append(h.a(href=_url(study, s["code"], ev, f, reps[-1] + 1))[
                    _("+ new")])
            cells.append(h.td[links])
        rows.append(h.tr[cells])
    extra: list[h.Node] = []
    if actor.can(Perm.ENTRY_VERIFY, study):
        extra.append(h.p[h.a(href=f"/studies/{quote(study)}/monitor")[
            _("Monitor worklist")]])
    return page(request, _("Data entry — {study}").format(study=study), *extra, legend(),
                h.table(".entry-grid")[h.thead[h.tr[heads]], h.tbody[
                    rows or h.tr[h.td(colspan=str(len(heads)))[_("No subjects")]]]])


# ---- one form ---------------------------------------------------------------------------------

def _file_input(i: dict[str, Any], value: Any, reading: bool, study: str,
                files: dict[str, dict[str, Any]]) -> h.Node:
    """A file field: the file saved (a download link), and when writing a file input to
    replace it (the saved id travels in a hidden input)."""
    name = i["name"]
    f = files.get(str(value)) if value else None
    link = h.a(".file", href=f"/api/v1/studies/{quote(study)}/files/{quote(f['id'])}",
               download="")[f"{f['filename']} ({f['size']} B, SHA-256 {f['sha256'][:12]}…)"] \
        if f else None
    if reading:
        return h.span(id=f"f-{name}")[link or "—"]
    return h.span[link, " " if link else None,
                  h.input(type="hidden", name=name, value=str(value) if value else ""),
                  h.input(id=f"f-{name}", type="file", name=f"upload.{name}")]


def _input(i: dict[str, Any], value: Any, reading: bool) -> h.Node:
    name, ft, dt_ = i["name"], i["field_type"], i["data_type"]
    if i["classification"] == "direct_identifier":
        return h.p(".note")[_("Direct identifiers are kept only in the code index and are not "
                              "entered here")]
    if ft == "calc":
        return h.output(id=f"f-{name}")[_show(value)]
    if reading:
        return h.span(id=f"f-{name}")[_show(value)]
    choices = i.get("choices") or []
    t = DATA_TYPES[dt_]
    if t.code_list and i.get("multiple"):
        chosen = set(value or [])
        return h.fieldset(".choices")[[h.label[h.input(
            type="checkbox", name=name, value=c["code"], checked=c["code"] in chosen),
            " ", _choice_label(c)] for c in choices]]
    if t.code_list and ft == "dropdown":
        return dropdown(id=f"f-{name}", name=name)[
            h.option(value="")[_("— choose —")],
            [h.option(value=c["code"], selected=value == c["code"])[_choice_label(c)]
             for c in choices]]
    if t.coded:
        opts = choices or list(YES_NO)
        return h.fieldset(".choices")[
            [h.label[h.input(type="radio", name=name, value=c["code"],
                             checked=value == c["code"]), " ", _choice_label(c)]
             for c in opts],
            h.label[h.input(type="radio", name=name, value="", checked=value in (None, "")),
                    " " + _("empty")]]
    if ft == "notes":
        return h.textarea(id=f"f-{name}", name=name, rows="4")[value or ""]
    return h.input(id=f"f-{name}", name=name, type=t.html_input, value=value or "",
                   **t.html_attrs)


@dataclass
class _Matrix:
    """Consecutive items of one REDCap matrix group, rendered as one table."""

    name: str
    items: list[dict[str, Any]]


def _in_matrix(i: dict[str, Any]) -> bool:
    return bool(i.get("matrix_group")) and i["field_type"] in ("radio", "checkbox") and bool(
        i.get("choices"))


def _matrix_table(m: _Matrix, values: dict[str, Any], reading: bool, errors: dict[str, str],
                  extras: Callable[[dict[str, Any]], list[h.Node]]) -> h.Node:
    """A matrix group as REDCap shows it: the shared choices as columns, one row per item
    (a radio or a check box in each cell). Items whose choices differ from the first's are
    still one row each, with their own codes."""
    choices = m.items[0]["choices"]
    head = h.tr[h.th(scope="col")[""], [h.th(scope="col")[_choice_label(c)] for c in choices],
                h.td[""]]
    body = []
    for i in m.items:
        name, value = i["name"], values.get(i["name"])
        chosen = set(value or []) if i.get("multiple") else {value}
        cells = []
        for c in i["choices"]:
            on = c["code"] in chosen
            if reading:
                cells.append(h.td(".matrix-cell")["●" if on else ""])
            else:
                cells.append(h.td(".matrix-cell")[h.input(
                    type="checkbox" if i.get("multiple") else "radio", name=name,
                    value=c["code"], checked=on,
                    aria_label=f"{_label(i)}: {_choice_label(c)}")])
        err = errors.get(name)
        body.append(h.tr(id=f"field-{name}")[
            h.th(scope="row")[_label(i), " *" if i["required"] else None,
                              h.p(".field-error", role="alert")[err] if err else None],
            cells, h.td(".matrix-extras")[extras(i)]])
    return h.table(".matrix", id=f"matrix-{m.name}")[h.thead[head], h.tbody[body]]


def _reason_inputs(name: str, reasons: dict[str, str], chosen: str = "",
                   typed: str = "", shown: bool = False) -> h.Node:
    """The reason for a change: shown where the value differs from the saved one (the
    server knows after a submission; entry.js reveals it as the user types)."""
    return h.div(".reason", hidden=not shown, data_shown="1" if shown else None)[
        h.label(for_=f"r-{name}")[_("Reason for change")],
        dropdown(id=f"r-{name}", name=f"reason.{name}")[
            h.option(value="")[_("— only if changed —")],
            [h.option(value=k, selected=k == chosen)[v] for k, v in reasons.items()]],
        h.input(name=f"reason_text.{name}", value=typed, maxlength="500",
                placeholder=_("or type a reason"), aria_label=f"reason {name}")]


def _sdv_badge(view: dict[str, Any], name: str) -> h.Node:
    s = view["sdv"].get(name)
    if s is None:
        return None
    if s["state"] == "verified":
        return h.span(".sdv.ok")[_("✓ SDV by {by}").format(by=s['by'])]
    return h.span(".sdv.bad")[_("requires verification: changed after SDV")]


def _field_error(name: str, err: str | None, *, oob: bool = False) -> h.Element:
    """The place of a field's error (empty when it has none), which the live check fills."""
    return h.div(".err-slot", id=f"err-{name}", hx_swap_oob="true" if oob else None)[
        h.p(".field-error", role="alert")[err] if err else None]


def _branch_mark(name: str, hidden: bool, show_if: str | None, *,
                 oob: bool = False) -> h.Element | None:
    """Marks a field its branching logic hides (the stylesheet hides a ``.field`` holding a
    ``.branch-hidden`` mark); the live check swaps the mark, not the field, so what is typed
    stays. Without JavaScript the field stays visible, with its condition named."""
    if not show_if:
        return None
    return h.span(class_="branch-hidden" if hidden else "branch-shown", id=f"show-{name}",
                  hx_swap_oob="true" if oob else None)[
        h.small(".branch-note")["（", _("only if"), f": {show_if}）"]]


def _conflict_choice(c: dict[str, Any]) -> h.Node:
    """Both values of a field two people changed, and which to keep (yours by default)."""
    name = c["field"]
    return h.div(".conflict-choice", role="group")[
        h.p[_("Also changed by {by} (version {version})").format(by=c['by'], version=c['version'])],
        h.table(".both-values")[h.tbody[
            h.tr[h.th[_("Theirs")], h.td(".theirs")[_show(c["theirs"])]],
            h.tr[h.th[_("Yours")], h.td(".yours")[_show(c["yours"])]]]],
        h.input(type="hidden", name=f"theirs.{name}", value=json.dumps(c["theirs"])),
        h.label[h.input(type="radio", name=f"keep.{name}", value="theirs"),
                " " + _("Keep theirs")], " ",
        h.label[h.input(type="radio", name=f"keep.{name}", value="mine", checked=True),
                " " + _("Keep yours")]]


def form_page(request: Request, actor: Any, view: dict[str, Any], *,
              errors: dict[str, str] | None = None, submitted: dict[str, Any] | None = None,
              posted: FormData | None = None, status: int = 200,
              notice: h.Node = None, changed: Collection[str] = (),
              conflicts: list[dict[str, Any]] | None = None, session: Any = None,
              base_version: int | None = None) -> Response:
    study, subject, event, form, repeat = (view["study"], view["subject"], view["event"],
                                           view["form"], view["repeat"])
    locked = bool(view.get("locked"))
    can_write = actor.can(Perm.ENTRY_WRITE, study) and not locked
    can_verify = actor.can(Perm.ENTRY_VERIFY, study)
    errors = errors or {}
    values = submitted if submitted is not None else view["values"]
    existing = view["version"] > 0
    reasons = view["settings"]["reasons"]
    in_conflict = {c["field"]: c for c in conflicts or []}
    file_items = [i["name"] for g in view["groups"] for i in g["items"]
                  if i["field_type"] == "file"]
    files = entry_files.describe(session, [str(values[n]) for n in file_items if values.get(n)]
                                 ) if session is not None and file_items else {}
    open_q: dict[str, int] = {}
    for q in view["queries"]:
        if q["status"] != "closed":
            open_q[q["item"]] = open_q.get(q["item"], 0) + 1
    check_url = _url(study, subject, event, form, repeat, "/check")
    # One check in flight per form, the last one asked for queued behind it: leaving a field
    # (its change) and then clicking another sends two checks; were both to run at once, the
    # older answer could arrive last and show the form as it was before the click.
    live = {"hx_post": check_url, "hx_trigger": "input delay:500ms, change",
            "hx_swap": "none", "hx_sync": "closest form:queue last"} if can_write else {}
    hidden = view.get("hidden", frozenset())

    def extras(i: dict[str, Any]) -> list[h.Node]:
        """A field's reason box (when correcting), SDV state, open queries, history link."""
        name = i["name"]
        return [
            _reason_inputs(name, reasons,
                           str(posted.get(f"reason.{name}") or "") if posted else "",
                           str(posted.get(f"reason_text.{name}") or "") if posted else "",
                           shown=name in changed or f"reasons.{name}" in errors)
            if can_write and existing and i["field_type"] != "calc"
            and i["classification"] != "direct_identifier" else None,
            h.span(id=f"sdv-{name}")[_sdv_badge(view, name)],
            h.span(".query-flag.bad")[" " + _("{value} open query").format(value=open_q[name])]
            if name in open_q else None,
            " ", h.a(".history", href=_url(study, subject, event, form, repeat,
                                           "/history") + ("&" if repeat != 1 else "?")
                     + f"item={quote(name)}")[_("history")] if existing else None]

    groups: list[h.Node] = []
    for g in view["groups"]:
        rows: list[h.Node | _Matrix] = []
        for i in g["items"]:
            name = i["name"]
            if i["field_type"] == "descriptive":
                rows.append(h.div(".field.descriptive-row", id=f"field-{name}")[
                    _branch_mark(name, name in hidden, i.get("show_if")),
                    h.p(".descriptive")[_label(i)]])
                continue
            if _in_matrix(i):
                if rows and isinstance(rows[-1], _Matrix) and rows[-1].name == i["matrix_group"]:
                    rows[-1].items.append(i)
                else:
                    rows.append(_Matrix(i["matrix_group"], [i]))
                continue
            err = errors.get(name) or errors.get(f"reasons.{name}")
            help_ = pick(i.get("help_zh"), i.get("help_en"))
            rows.append(h.div(".field", id=f"field-{name}", **live)[
                _branch_mark(name, name in hidden, i.get("show_if")),
                h.label(for_=f"f-{name}")[
                    _label(i), " *" if i["required"] else None,
                    h.span(".unit")[f" ({i['unit']})"] if i.get("unit") else None],
                h.small(".help")[help_] if help_ else None,
                _file_input(i, values.get(name), not can_write, study, files)
                if i["field_type"] == "file" else _input(i, values.get(name), not can_write),
                _field_error(name, err),
                _conflict_choice(in_conflict[name]) if name in in_conflict else None,
                *extras(i),
            ])
        groups.append(h.fieldset[h.legend[f"{pick(g['label_zh'], g['label_en'])}"
                                          if g["label_zh"] != g["label_en"] else g["label_zh"]],
                                 [_matrix_table(r, values, not can_write, errors, extras)
                                  if isinstance(r, _Matrix) else r for r in rows]])
    status_text = {"new": _("not entered"), "complete": _("complete"),
                   "incomplete": _("incomplete")}[view["status"]]
    header = h.dl(".record")[
        h.dt[_("Subject")], h.dd[h.code[subject]],
        h.dt[_("Event")], h.dd[f"{pick(view['event_label_zh'], view['event_label_en'])}"
                                   + (f" #{repeat}" if repeat != 1 else "")],
        h.dt[_("Form version")], h.dd[str(view["form_version"])],
        h.dt[_("Record version")], h.dd(".record-version")[str(view["version"])],
        h.dt[_("Status")], h.dd(".record-status")[status_text]]
    body: list[h.Node] = [notice, header]
    if locked:
        body.append(h.p(".locked-note", role="status")[
            _("{locked} This form is locked and read-only; a change needs a signed unlock (GB/T "
              "39725-2020 §11.3.4.7 a)").format(locked=STATE_MARKS['locked'])])
    if errors:
        body.append(h.div(".error", role="alert")[
            h.p[_("The form has errors and was not saved:")],
            h.ul[[h.li[h.a(href=f"#field-{k.removeprefix('reasons.')}")[k], ": ", v]
                  for k, v in errors.items()]]])
    if can_write:
        action = _url(study, subject, event, form, repeat)
        body.append(h.form(".entry", method="post", action=action,
                           enctype="multipart/form-data" if file_items else None)[
            csrf_field(request),
            h.input(type="hidden", name="base_version", value=str(
                view["version"] if base_version is None else base_version)),
            groups,
            h.p[h.label[h.input(type="checkbox", name="incomplete", value="1"),
                        " " + _("Save as incomplete")]]
            if view["settings"]["allow_incomplete"] else None,
            h.p[h.button(type="submit")[_("Save")]]])
    else:
        body.append(h.div(".entry.read-only")[groups])
    if existing:
        body.append(h.p[h.a(href=_url(study, subject, event, form, repeat, "/history"))[
            _("Form timeline")]])
    if can_verify and existing:
        body.append(_monitor_panel(request, view))
    body.append(_queries_panel(request, actor, view))
    body.append(h.p[h.a(href=f"/studies/{quote(study)}/entry")[_("← Data entry")]])
    return page(request, f"{pick(view['form_label_zh'], view['form_label_en'])} — {subject}",
                *body, status=status,
                head=h.script(src="/static/entry.js", defer=True) if can_write else None)


def _monitor_panel(request: Request, view: dict[str, Any]) -> h.Node:
    study, subject, event, form, repeat = (view["study"], view["subject"], view["event"],
                                           view["form"], view["repeat"])
    base = f"/studies/{quote(study)}/sdv/{quote(subject)}/{quote(event)}"
    fields = [i for g in view["groups"] for i in g["items"]
              if i["field_type"] not in ("descriptive",) and i["name"] in view["values"]]
    return h.section(".monitor")[
        h.h2[_("Source data verification")],
        h.form(method="post", action=f"{base}/{quote(form)}")[
            csrf_field(request), h.input(type="hidden", name="repeat", value=str(repeat)),
            h.button(type="submit")[_("Verify whole form")]],
        h.form(method="post", action=base)[
            csrf_field(request), h.input(type="hidden", name="repeat", value=str(repeat)),
            h.button(type="submit")[_("Verify whole visit")]],
        h.table(".sdv-fields")[h.tbody[[_sdv_row(request, view, i["name"]) for i in fields]]],
        h.h2[_("Raise a query")],
        h.form(method="post", action=f"/studies/{quote(study)}/queries")[
            csrf_field(request),
            h.input(type="hidden", name="subject", value=subject),
            h.input(type="hidden", name="event", value=event),
            h.input(type="hidden", name="form", value=form),
            h.input(type="hidden", name="repeat", value=str(repeat)),
            h.label(for_="q-item")[_("Field")],
            dropdown(id="q-item", name="item")[[h.option(value=i["name"])[
                f"{i['name']} — {_label(i)}"] for i in fields]],
            h.label(for_="q-text")[_("Query text")],
            h.textarea(id="q-text", name="text", rows="3", required=True, maxlength="4000"),
            h.p[h.button(type="submit")[_("Open query")]]]]


def _sdv_row(request: Request, view: dict[str, Any], name: str) -> h.Element:
    """One field's SDV row; under htmx its tick replaces only this row (and the field's
    badge in the form above)."""
    study, subject, event, form, repeat = (view["study"], view["subject"], view["event"],
                                           view["form"], view["repeat"])
    action = f"/studies/{quote(study)}/sdv/{quote(subject)}/{quote(event)}/{quote(form)}"
    return h.tr(id=f"sdv-row-{name}")[
        h.td[name], h.td[_show(view["values"].get(name))],
        h.td(".sdv-state")[_sdv_badge(view, name) or _("not verified")],
        h.td[h.form(method="post", action=action, hx_post=action,
                    hx_target=f"#sdv-row-{name}", hx_swap="outerHTML")[
            csrf_field(request), h.input(type="hidden", name="repeat", value=str(repeat)),
            h.input(type="hidden", name="item", value=name),
            h.button(type="submit")[_("Verify")]]]]


def _queries_panel(request: Request, actor: Any, view: dict[str, Any]) -> h.Node:
    if not view["queries"]:
        return None
    return h.section(".queries")[h.h2[_("Queries")],
                                 [_query_article(request, actor, view["study"], q)
                                  for q in view["queries"]]]


def _query_article(request: Request, actor: Any, study: str, q: dict[str, Any],
                   notice: str | None = None) -> h.Element:
    """One query's thread and what the actor may do with it; under htmx an answer replaces
    only this article."""
    base = f"/studies/{quote(study)}/queries/{q['id']}"
    thread = h.ol(".thread")[[h.li[h.strong[label(f"query.{m['kind']}")],
                                   f" {m['by']} {local_minute(m['at'])}: ", m["text"]]
                              for m in q["thread"]]]
    actions: list[h.Node] = []
    if q["status"] != "closed" and actor.can(Perm.QUERY_ANSWER, study):
        kept = refill()
        mine = kept if kept is not None and kept.value("query_id") == q["id"] else None
        if mine is not None:  # the refused answer: its errors here, what was typed kept
            for name in mine.errors:
                mine.labels.setdefault(name, _("Query answer: {item}").format(item=q['item']))
        actions.append(h.form(method="post", action=f"{base}/answer",
                              hx_post=f"{base}/answer", hx_target=f"#query-{q['id']}",
                              hx_swap="outerHTML",
                              id=f"field-{next(iter(mine.errors))}" if mine else None)[
            csrf_field(request),
            [h.p(".field-error", role="alert")[msg] for msg in mine.errors.values()]
            if mine else None,
            h.label(for_=f"a-{q['id']}")[_("Answer")],
            h.textarea(id=f"a-{q['id']}", name="text", rows="2", required=True,
                       maxlength="4000")[mine.value("text") if mine else ""],
            h.label[h.input(type="checkbox", name="change_value", value="1",
                            checked=bool(mine and mine.value("change_value") == "1")),
                    " " + _("also change the value")],
            h.label(for_=f"v-{q['id']}")[_("New value")],
            h.input(id=f"v-{q['id']}", name="value", maxlength="10000",
                    value=mine.value("value") if mine else None),
            h.label(for_=f"rs-{q['id']}")[_("Reason")],
            h.input(id=f"rs-{q['id']}", name="reason", maxlength="500",
                    value=mine.value("reason") if mine else None,
                    placeholder=_("Query response")),
            h.button(type="submit")[_("Answer")]])
    if actor.can(Perm.ENTRY_VERIFY, study):
        verb = "reopen" if q["status"] == "closed" else "close"
        actions.append(h.form(method="post", action=f"{base}/{verb}")[
            csrf_field(request),
            h.label(for_=f"c-{q['id']}")[_("Note")],
            h.input(id=f"c-{q['id']}", name="text", required=True, maxlength="4000"),
            h.button(type="submit")[_("Close") if verb == "close"
                                    else _("Re-open")]])
    return h.article(".query", id=f"query-{q['id']}")[
        h.h3[f"{q['item']} — ", h.span(".query-status")[label(q["status"])]], thread,
        h.p(".flash", role="status")[notice] if notice else None, actions]


@router.get("/studies/{study}/entry/{subject}/{event}/{form}",
            dependencies=[requires(Perm.ENTRY_READ)])
@quick
def show_form(study: str, subject: str, event: str, form: str, request: Request,
              session: SessionDep, actor: CurrentActor,
              note: Annotated[ReadNote, audited_read(Action.READ_FORM)],
              repeat: Repeat = 1) -> Response:
    view = _form_view(session, actor=actor, study_code=study, subject_code=subject,
                      event_name=event, form_name=form, repeat=repeat, note=note)
    return form_page(request, actor, view, session=session)


def _form_view(session: Any, *, values: dict[str, Any] | None = None,
               **args: Any) -> dict[str, Any]:
    """The form's view, with the fields its branching logic hides for ``values`` (None: the
    stored values)."""
    view = entry_reading.form_view(session, **args)
    args.pop("note", None)  # the read's audit note is the view's, not the preview's
    view["hidden"] = preview.preview(session, values=values, **args).hidden
    return view


@router.post("/studies/{study}/entry/{subject}/{event}/{form}/check",
             dependencies=[requires(Perm.ENTRY_WRITE), Csrf])
@quick
def check_form(study: str, subject: str, event: str, form: str, request: Request,
               session: SessionDep, actor: CurrentActor, posted: Posted,
               repeat: Repeat = 1) -> Response:
    """The live check htmx posts as a field is typed (the whole form, from the field's
    ``div#field-<name>``): out-of-band fragments with that field's error (the save's checks),
    every calculated value and every branching mark. Writes nothing."""
    values, _x = _submitted(posted)
    got = preview.preview(session, actor=actor, study_code=study, subject_code=subject,
                          event_name=event, form_name=form, repeat=repeat, values=values)
    view = entry_reading.form_view(session, actor=actor, study_code=study, subject_code=subject,
                                   event_name=event, form_name=form, repeat=repeat)
    typed = (request.headers.get("HX-Trigger") or "").removeprefix("field-")
    parts: list[h.Node] = []
    for g in view["groups"]:
        for i in g["items"]:
            name = i["name"]
            if i.get("show_if"):
                parts.append(_branch_mark(name, name in got.hidden, i["show_if"], oob=True))
            if name in got.calculated and i["classification"] != "direct_identifier":
                parts.append(h.output(id=f"f-{name}", hx_swap_oob="true")[
                    _show(got.calculated[name])])
            if name == typed and i["field_type"] not in ("descriptive", "calc"):
                parts.append(_field_error(name, got.errors.get(name), oob=True))
    return HTMLResponse("".join(str(p) for p in parts))


def _submitted(posted: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for key in set(posted.keys()):
        if key in ("csrf_token", "base_version", "incomplete"):
            continue
        if key.startswith(("keep.", "theirs.", "upload.")):  # read below / by the route
            continue
        if key.startswith("reason.") or key.startswith("reason_text."):
            name = key.split(".", 1)[1]
            typed = str(posted.get(f"reason_text.{name}") or "").strip()
            code = str(posted.get(f"reason.{name}") or "").strip()
            if typed or code:
                reasons[name] = (typed or code)[:MAX_FIELD]
            continue
        got = [str(v)[:MAX_FIELD] for v in posted.getlist(key)]
        values[key] = got if len(got) > 1 else got[0]
    for key in set(posted.keys()):
        if key.startswith("keep.") and posted.get(key) == "theirs":
            name = key.split(".", 1)[1]
            values[name] = _theirs(str(posted.get(f"theirs.{name}") or "null"))
            if values[name] is None:
                del values[name]
    return values, reasons


def _theirs(text: str) -> Any:
    """The other person's value a conflicting form carried (checked again on save)."""
    try:
        v = json.loads(text[:MAX_FIELD])
    except ValueError:
        return None
    if isinstance(v, list):
        return [str(x) for x in v]
    return None if v is None else str(v)


@router.post("/studies/{study}/entry/{subject}/{event}/{form}",
             dependencies=[requires(Perm.ENTRY_WRITE), Csrf])
@quick
def save_form(study: str, subject: str, event: str, form: str, request: Request,
              session: SessionDep, ledger: LedgerDep, actor: CurrentActor, posted: Posted,
              state: StateDep, repeat: Repeat = 1) -> Response:
    values, reasons = _submitted(posted)
    view_args: dict[str, Any] = dict(actor=actor, study_code=study, subject_code=subject,
                                     event_name=event, form_name=form, repeat=repeat)
    refused: dict[str, str] = {}
    limits = state.settings.file_limits()
    for key, part in posted.multi_items():
        if not key.startswith("upload.") or not isinstance(part, UploadFile) or not part.filename:
            continue
        name = key.split(".", 1)[1]
        part.file.seek(0)  # from the start: a save moved off the loop is done again
        try:  # an upload stands on its own (audited); the save then names it
            values[name] = entry_files.upload(
                session, ledger, actor=actor, study_code=study, subject_code=subject,
                event_name=event, form_name=form, item=name, filename=part.filename,
                content=part.file.read(limits.max_bytes + 1), limits=limits, repeat=repeat).id
        except InvalidInput as exc:
            refused[name] = exc.message
    if refused:
        view = _form_view(session, values=values, **view_args)
        return form_page(request, actor, view, errors=refused, submitted=values,
                         posted=posted, status=422, session=session)
    try:
        base = int(str(posted.get("base_version") or "0"))
    except ValueError:
        base = -1
    if base > DB_INT_MAX:  # not a version this form was ever at: a conflict, as a bad number
        base = -1
    try:
        data = SaveIn(base_version=max(base, 0), values=values, reasons=reasons,
                            incomplete=posted.get("incomplete") == "1", repeat=repeat)
        result = entry.save_form(session, ledger, actor=actor, study_code=study,
                                 subject_code=subject, event_name=event, form_name=form,
                                 data=data)
    except EntryInvalid as exc:
        view = _form_view(session, values=values, **view_args)
        return form_page(request, actor, view, errors=exc.errors, submitted=values,
                         posted=posted, status=422, changed=exc.changed, session=session)
    except StaleVersion as exc:
        view = _form_view(session, **view_args)
        if exc.conflicts:  # both values side by side at each field, the typing kept
            notice = h.div(".error.conflict", role="alert")[
                h.p[exc.message],
                h.p[_("Your other changes are kept in the form below; choose which value to keep "
                      "at each conflicting field and save again.")]]
            return form_page(request, actor, view, submitted=exc.kept, posted=posted,
                             status=409, notice=notice, conflicts=exc.conflicts,
                             changed=exc.changed, session=session)
        notice = h.div(".error.conflict", role="alert")[
            h.p[exc.message],
            h.table(".changes-since")[
                h.thead[h.tr[h.th[_("Version")], h.th[_("Field")], h.th[_("Before")],
                             h.th[_("After")], h.th[_("Reason")], h.th[_("By")]]],
                h.tbody[[h.tr[h.td[str(c["version"])], h.td[c["field"]],
                              h.td[_show(c["before"])], h.td[_show(c["after"])],
                              h.td[c["reason"] or "—"], h.td[c["by"]]]
                         for c in exc.changes]]],
            h.p[_("Below is the current data; what you typed was not "
                  "saved.")] if not 0 <= base < exc.current_version else
            h.p[_("What you typed is kept; save again to merge it with their changes.")]]
        if 0 <= base < exc.current_version:  # saved in between: keep the typing and the base
            return form_page(request, actor, view, notice=notice, status=409, session=session,
                             submitted=values, posted=posted, base_version=base)
        return form_page(request, actor, view, notice=notice, status=409, session=session)
    msg = (_("saved as version {version}").format(version=result.version)
           if result.saved else _("nothing changed"))
    if result.saved and result.merged_from is not None:
        msg += " " + (_("(merged with others' changes since version {merged_from})").format(
                    merged_from=result.merged_from))
    return redirect(request, _url(study, subject, event, form, repeat), msg)


@router.get("/studies/{study}/entry/{subject}/{event}/{form}/history",
            dependencies=[requires(Perm.ENTRY_READ)])
def history(study: str, subject: str, event: str, form: str, request: Request,
            session: SessionDep, actor: CurrentActor,
            note: Annotated[ReadNote, audited_read(Action.READ_HISTORY)], repeat: Repeat = 1,
            item: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    back = h.p[h.a(href=_url(study, subject, event, form, repeat))[_("← Back to form")]]
    if item:
        rows = entry_reading.field_history(session, actor=actor, study_code=study,
                                   subject_code=subject, event_name=event, form_name=form,
                                   item=item, repeat=repeat, note=note)
        return page(request, _("Field history — {item}").format(item=item), back,
                    h.table(".history")[
            h.thead[h.tr[h.th[_("Version")], h.th[_("When")], h.th[_("Who")],
                         h.th[_("Why")], h.th[_("Before")], h.th[_("After")]]],
            h.tbody[[h.tr[h.td[str(r["version"])], h.td[local_minute(r["at"], seconds=True)],
                          h.td[r["by"]],
                          h.td[r["reason"] or _("first entry")], h.td[_show(r["before"])],
                          h.td[_show(r["after"])]] for r in rows]]])
    events = entry_reading.timeline(session, actor=actor, study_code=study, subject_code=subject,
                            event_name=event, form_name=form, repeat=repeat, note=note)
    items: list[h.Node] = []
    for e in events:
        if e["kind"] == "save":
            detail: h.Node = h.ul[[h.li[h.code[c["field"]], f": {_show(c['before'])} → "
                                        f"{_show(c['after'])}",
                                        f" ({c['reason']})" if c["reason"] else None]
                                   for c in e["changes"]]]
            title = _("version {version} ({status})").format(
                        version=e['version'], status=label(e['status']))
        else:
            detail = h.span[e.get("text") or ""]
            title = f"{e['kind']} {e.get('field', '')}"
        items.append(h.li[h.strong[title], f" — {e['by']}, {local_minute(e['at'], seconds=True)} ",
                          detail])
    return page(request, _("Form timeline — {form}").format(form=form), back,
                h.ol(".timeline")[items])


# ---- monitoring ----------------------------------------------------------------------------

@router.post("/studies/{study}/sdv/{subject}/{event}",
             dependencies=[requires(Perm.ENTRY_VERIFY), Csrf])
def verify_visit(study: str, subject: str, event: str, request: Request, session: SessionDep,
                 ledger: LedgerDep, actor: CurrentActor,
                 repeat: Annotated[int, Form(ge=1, le=10_000)] = 1) -> Response:
    done = monitoring.verify(session, ledger, actor=actor, study_code=study,
                             data=SdvIn(subject=subject, event=event, repeat=repeat))
    return redirect(request, f"/studies/{quote(study)}/monitor",
                    _("{count} field(s) verified").format(count=done['count']))


@router.post("/studies/{study}/sdv/{subject}/{event}/{form}",
             dependencies=[requires(Perm.ENTRY_VERIFY), Csrf])
def verify_form(study: str, subject: str, event: str, form: str, request: Request,
                session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                repeat: Annotated[int, Form(ge=1, le=10_000)] = 1,
                item: Annotated[str | None, Form(max_length=64)] = None) -> Response:
    done = monitoring.verify(session, ledger, actor=actor, study_code=study,
                             data=SdvIn(subject=subject, event=event, repeat=repeat,
                                                   form=form, items=[item] if item else None))
    if item and request.headers.get("HX-Request"):  # the tick's row, and the form's badge
        view = entry_reading.form_view(session, actor=actor, study_code=study,
                                       subject_code=subject, event_name=event, form_name=form,
                                       repeat=repeat)
        badge = h.span(id=f"sdv-{item}", hx_swap_oob="true")[_sdv_badge(view, item)]
        return HTMLResponse(str(_sdv_row(request, view, item)) + str(badge))
    return redirect(request, _url(study, subject, event, form, repeat),
                    _("{count} field(s) verified").format(count=done['count']))


@router.post("/studies/{study}/queries", dependencies=[requires(Perm.ENTRY_VERIFY), Csrf])
def open_query(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor, subject: Annotated[str, Form(max_length=20)],
               event: Annotated[str, Form(max_length=64)],
               form: Annotated[str, Form(max_length=64)],
               item: Annotated[str, Form(max_length=64)],
               text: Annotated[str, Form(max_length=4000)],
               repeat: Annotated[int, Form(ge=1, le=10_000)] = 1) -> Response:
    q = monitoring.open_query(session, ledger, actor=actor, study_code=study,
                              data=QueryOpenIn(subject=subject, event=event,
                                                          repeat=repeat, form=form, item=item,
                                                          text=text))
    return redirect(request, _url(study, subject, event, form, repeat) + f"#query-{q.id}",
                    _("query opened"))


def _back_to_query(request: Request, session: Any, actor: Any, study: str,
                   query_id: str) -> str:
    q = monitoring.get_query(session, actor=actor, study_code=study, query_id=query_id)
    return _url(study, q["subject"], q["event"], q["form"], q["repeat"]) + f"#query-{query_id}"


@router.post("/studies/{study}/queries/{query_id}/answer",
             dependencies=[requires(Perm.QUERY_ANSWER), Csrf])
def answer_query(study: str, query_id: str, request: Request, session: SessionDep,
                 ledger: LedgerDep, actor: CurrentActor,
                 text: Annotated[str, Form(max_length=4000)],
                 change_value: Annotated[str | None, Form(max_length=1)] = None,
                 value: Annotated[str | None, Form(max_length=10_000)] = None,
                 reason: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    # under htmx the answer replaces only its thread, unless it changed the value (then the
    # whole page is reloaded: the form above shows the value and its version)
    in_place = bool(request.headers.get("HX-Request")) and change_value != "1"

    def thread(notice: str | None = None) -> Response:
        q = monitoring.get_query(session, actor=actor, study_code=study, query_id=query_id)
        return HTMLResponse(str(_query_article(request, actor, study, q, notice)))

    def answer() -> Response:
        monitoring.answer_query(session, ledger, actor=actor, study_code=study,
                                query_id=query_id, data=QueryAnswerIn(
                                    text=text, change_value=change_value == "1",
                                    value=value or None, reason=reason or None))
        if in_place:
            return thread(_("answered"))
        return redirect(request, _back_to_query(request, session, actor, study, query_id),
                        _("answered"))

    def again() -> Response:
        if request.headers.get("HX-Request"):
            return thread()
        q = monitoring.get_query(session, actor=actor, study_code=study, query_id=query_id)
        return form_page(request, actor, _form_view(
            session, actor=actor, study_code=study, subject_code=q["subject"],
            event_name=q["event"], form_name=q["form"], repeat=q["repeat"]), session=session)

    typed = {"query_id": query_id, "text": text, "change_value": change_value or "",
             "value": value or "", "reason": reason or ""}
    return submit(session, typed, answer, again)


@router.post("/studies/{study}/queries/{query_id}/close",
             dependencies=[requires(Perm.ENTRY_VERIFY), Csrf])
def close_query(study: str, query_id: str, request: Request, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor,
                text: Annotated[str, Form(max_length=4000)]) -> Response:
    monitoring.close_query(session, ledger, actor=actor, study_code=study, query_id=query_id,
                           data=QueryNoteIn(text=text))
    return redirect(request, _back_to_query(request, session, actor, study, query_id),
                    _("query closed"))


@router.post("/studies/{study}/queries/{query_id}/reopen",
             dependencies=[requires(Perm.ENTRY_VERIFY), Csrf])
def reopen_query(study: str, query_id: str, request: Request, session: SessionDep,
                 ledger: LedgerDep, actor: CurrentActor,
                 text: Annotated[str, Form(max_length=4000)]) -> Response:
    monitoring.close_query(session, ledger, actor=actor, study_code=study, query_id=query_id,
                           data=QueryNoteIn(text=text), reopen=True)
    return redirect(request, _back_to_query(request, session, actor, study, query_id),
                    _("query re-opened"))


@router.get("/studies/{study}/monitor", dependencies=[requires(Perm.ENTRY_VERIFY),
                                                     audited_read(Action.READ_LIST)])
def monitor_worklist(study: str, request: Request, session: SessionDep,
                     actor: CurrentActor) -> Response:
    wl = monitoring.worklist(session, actor=actor, study_code=study)

    def link(w: dict[str, Any]) -> h.Node:
        return h.a(href=_url(study, w["subject"], w["event"], w["form"], w["repeat"]))[
            f"{w['subject']} · {w['event']}{'#' + str(w['repeat']) if w['repeat'] != 1 else ''}"
            f" · {w['form']}"]

    return page(
        request, _("Monitor worklist — {study}").format(study=study),
        h.h2[_("Requires verification: changed after SDV")],
        h.ul("#changed-after-sdv")[[h.li[link(w), f" — {w['item']}: {w['note']}"]
                                    for w in wl["changed_after_sdv"]] or h.li["—"]],
        h.h2[_("Open queries by age")],
        h.table("#open-queries")[
            h.thead[h.tr[h.th[_("Days")], h.th[_("Form")], h.th[_("Field")],
                         h.th[_("Status")], h.th[_("By")]]],
            h.tbody[[h.tr[h.td[str(q["age_days"])], h.td[link(q)], h.td[q["item"]],
                          h.td[label(q["status"])], h.td[q["opened_by"]]]
                     for q in wl["open_queries"]]]],
        h.h2[_("Forms not yet verified")],
        h.ul("#unverified-forms")[[h.li[link(w), " — ", ", ".join(w["fields"])]
                                   for w in wl["unverified_forms"]] or h.li["—"]])
