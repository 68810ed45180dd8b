"""Pages: enrolment and the subject list (investigators), the code index (custodian).

Enrolment: the identity is typed once; after the POST the browser is redirected to the
subject's page, which shows only the code. Code-index lookups are the one exception to
post-redirect-get: the answer is rendered in the POST's own response (never cached: every
response is ``no-store``), because redirecting would put the identity or the query in a URL or
make it re-viewable by a GET that is not a recorded lookup. Re-submitting is another recorded
lookup.
"""

from __future__ import annotations

from typing import Annotated

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep, audited_read
from edc.policy import requires
from edc.routes.clock import now
from edc.routes.subjects.keys import index_keys
from edc.routes.subjects.requests import custodian_form as subject_request_form
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.forms import gather, refill, submit
from edc.web.inputs import build, local_time
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from edc.web.timefmt import local_minute
from edc.web.widgets import banner, checkbox, choice, field, field_error
from studies.consent import service as consent
from studies.consent.models import SCOPE_LABELS, SCOPES
from studies.consent.schemas import ConsentIn
from studies.ethics import service as ethics
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm
from studies.subjects import code_index
from studies.subjects import service as subjects
from studies.subjects.identity import validate_identity

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries

IDENTITY_FIELDS = (
    ("name", _l("Name"), True, "100", "text"),
    ("resident_id", _l("Resident ID number"), True, "40", "text"),
    ("phone", _l("Mobile phone"), False, "30", "tel"),
    ("medical_record_number", _l("Medical record number"), False, "50", "text"),
    ("date_of_birth", _l("Date of birth (optional, from the ID number)"), False, "10",
     "date"),
    ("address", _l("Address"), False, "300", "text"),
)


def _subject_table(rows: list[subjects.SubjectRow], study: str) -> h.Element:
    body = [h.tr[h.td[h.a(href=f"/studies/{study}/subjects/{r.code}")[h.code[r.code]]],
                 h.td[r.site], h.td[label(r.status)],
                 h.td[local_minute(r.enrolled_at)], h.td[r.enrolled_by]]
            for r in rows]
    return h.table(".subjects")[
        h.thead[h.tr[h.th[_("Subject code")], h.th[_("Site")],
                     h.th[_("Status")], h.th[_("Enrolled")], h.th[_("By")]]],
        h.tbody[body or h.tr[h.td(colspan="5")[_("No subjects yet")]]]]


@router.get("/studies/{study}/subjects", dependencies=[requires(Perm.SUBJECT_READ),
                                                      audited_read(Action.READ_LIST)])
def subject_list(study: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    rows = subjects.list_subjects(session, actor=actor, study_code=study)
    enrol = (h.p[h.a(href=f"/studies/{study}/subjects/enrol")[_("Enrol a subject")]]
             if actor.can(Perm.SUBJECT_ENROL, study) else None)
    return page(request, _("Subjects — {study}").format(study=study), enrol, _subject_table(rows,
                                                                                            study))


def _consent_section(f: subjects.EnrolmentForm) -> list[h.Node]:
    """The consent forms in full (zh and en) and the approved waivers, one radio each; the
    scopes agreed (the required scope pre-checked) and the signing time."""
    out: list[h.Node] = [h.h2[_("Consent")],
                         h.p[_("The subject reads and signs the current consent form, or the "
                               "enrolment is covered by a waiver the ethics committee approved.")]]
    choices: list[h.Node] = []
    kept = refill()
    for form in f.forms:
        out += [h.h3[_("Consent form {version} ({consent_type})").format(
                         version=form['version'], consent_type=label(form['consent_type']))],
                h.div(".consent-text", lang="zh")[[h.p[line]
                                                   for line in form["text_zh"].splitlines()]],
                h.div(".consent-text", lang="en")[[h.p[line]
                                                   for line in form["text_en"].splitlines()]]]
        value = f"{form['consent_type']}:{form['id']}"
        choices.append(h.label(".check")[
            h.input(type="radio", name="consent", required=True, value=value,
                    checked=bool(kept and kept.value("consent") == value)),
            " " + _("The subject signed consent form {version} ({consent_type})").format(
                version=form['version'], consent_type=form['consent_type'])])
    for w in f.waivers:
        choices.append(h.label(".check")[
            h.input(type="radio", name="consent", required=True, value=f"waiver:{w['id']}",
                    checked=bool(kept and kept.value("consent") == f"waiver:{w['id']}")),
            " " + _("Covered by the approved waiver ({clause}):").format(clause=w['clause']) + " ",
            ethics.WAIVER_LABELS[w["ground"]]])
    if not choices:
        return [*out, h.p(".bad", role="alert")[
            _("The study has no consent form and no approved waiver; no subject can be enrolled.")]]
    required = {consent.REQUIRED_SCOPE[form["consent_type"]] for form in f.forms} or {"study"}
    return [*out,
            h.fieldset(id="field-consent")[h.legend[_("Consent given")], choices,
                                           field_error("consent", _("Consent"))],
            h.fieldset[h.legend[_("Scopes agreed")],
                       [checkbox(SCOPE_LABELS[sc], "scopes", value=sc, checked=sc in required)
                        for sc in SCOPES]],
            field(_("Signed at (local time)"), "given_at",
                  type_="datetime-local")]


@router.get("/studies/{study}/subjects/enrol", dependencies=[requires(Perm.SUBJECT_ENROL)])
def enrol_form(study: str, request: Request, session: SessionDep,
               actor: CurrentActor) -> Response:
    f = subjects.enrolment_form(session, actor=actor, study_code=study, at=now())
    if not f.readiness["open"]:
        return page(request, _("Enrol — {study}").format(study=study), banner(f.readiness),
                    h.p[_("Enrolment needs a current ethics approval of the current protocol "
                          "version.")])
    fields = [field(text, name, required=required, type_=kind, maxlength=maxlen,
                    autocomplete="off") for name, text, required, maxlen, kind in IDENTITY_FIELDS]
    return page(
        request, _("Enrol — {study}").format(study=study), banner(f.readiness),
        h.p[_("The identity is typed once and kept, encrypted, in the hospital's code index; from "
              "then on the subject appears only as a code.")],
        h.form(method="post", action=f"/studies/{study}/subjects")[
            csrf_field(request),
            choice(_("Site"), "site", [(s.code, f"{s.code} — {s.hospital}") for s in f.sites]),
            fields,
            _consent_section(f),
            h.p[h.button(type="submit")[_("Enrol")]],
        ])


def _consent_in(choice: str | None, scopes: list[str], given_at: str | None
                ) -> ConsentIn | None:
    """The consent chosen on the enrol page (parsing only): the radio value is
    ``<type>:<form id>`` or ``waiver:<waiver id>``; no choice is no consent."""
    if not choice:
        return None
    kind, _x, ident = choice.partition(":")
    return build(ConsentIn, prefix="consent.", consent_type=kind,
                 form_id=ident if kind != "waiver" else None,
                 waiver_id=ident if kind == "waiver" else None, scopes=scopes,
                 given_at=local_time(given_at or "", "given_at"))


@router.post("/studies/{study}/subjects", dependencies=[requires(Perm.SUBJECT_ENROL), Csrf])
def enrol_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                 state: StateDep, actor: CurrentActor,
                 site: Annotated[str, Form(max_length=10)],
                 name: Annotated[str, Form(max_length=100)],
                 resident_id: Annotated[str, Form(max_length=40)],
                 phone: Annotated[str | None, Form(max_length=30)] = None,
                 medical_record_number: Annotated[str | None, Form(max_length=50)] = None,
                 date_of_birth: Annotated[str | None, Form(max_length=10)] = None,
                 address: Annotated[str | None, Form(max_length=300)] = None,
                 consent_choice: Annotated[str | None, Form(alias="consent",
                                                            max_length=80)] = None,
                 scopes: Annotated[list[str] | None, Form()] = None,
                 given_at: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    def enrol() -> Response:
        # every problem of the identity and of the consent at once, beside its field
        _identity, consent_in = gather(
            lambda: validate_identity(name=name, resident_id=resident_id, phone=phone,
                                      medical_record_number=medical_record_number,
                                      date_of_birth=date_of_birth, address=address),
            lambda: _consent_in(consent_choice, scopes or [], given_at))
        s = subjects.enrol_new_subject(
            session, ledger, actor=actor, keys=index_keys(state), study_code=study,
            site_code=site, name=name, resident_id=resident_id, phone=phone,
            medical_record_number=medical_record_number, date_of_birth=date_of_birth,
            address=address, consent=consent_in)
        return redirect(request, f"/studies/{study}/subjects/{s.code}",
                        _("enrolled as {code}").format(code=s.code))

    typed = dict(site=site, name=name, resident_id=resident_id, phone=phone,
                 medical_record_number=medical_record_number, date_of_birth=date_of_birth,
                 address=address, consent=consent_choice, scopes=scopes or [],
                 given_at=given_at)
    return submit(session, typed, enrol,
                  lambda: enrol_form(study, request, session, actor))


@router.get("/studies/{study}/subjects/{code}", dependencies=[requires(Perm.SUBJECT_READ),
                                                             audited_read(Action.READ_SUBJECT)])
def subject_page(study: str, code: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    r = subjects.get_subject(session, actor=actor, study_code=study, code=code)
    return page(request, _("Subject {code}").format(code=r.code),
                h.dl[h.dt[_("Subject code")], h.dd(".subject-code")[h.code[r.code]],
                     h.dt[_("Study")], h.dd[r.study], h.dt[_("Site")], h.dd[r.site],
                     h.dt[_("Status")], h.dd[label(r.status)],
                     h.dt[_("Enrolled")],
                     h.dd[f"{local_minute(r.enrolled_at)}, {r.enrolled_by}"]],
                h.p[h.a(href=f"/studies/{study}/subjects")[_("← Subject list")]])


# ── The code index (custodian) ───────────────────────────────────────────────────────────────

REASON_HINT = (_l("Reason (recorded in the audit trail; do not type identity here)"))


def _reason_input(prefix: str) -> list[h.Node]:
    return [h.label(for_=f"{prefix}-reason")[REASON_HINT],
            h.input(id=f"{prefix}-reason", name="reason", required=True, minlength="5",
                    maxlength="500", autocomplete="off")]


@router.get("/code-index", dependencies=[requires(Perm.CODE_INDEX_LOOKUP)])
def code_index_home(request: Request, actor: CurrentActor) -> Response:
    return page(
        request, _("Code index"),
        h.p[_("Every lookup is recorded in the audit trail (who, reason, result).")],
        h.h2[_("Identity by subject code")],
        h.form("#by-code", method="post", action="/code-index/identity")[
            csrf_field(request),
            h.label(for_="code")[_("Subject code")],
            h.input(id="code", name="code", required=True, maxlength="40", autocomplete="off"),
            _reason_input("by-code"),
            h.p[h.button(type="submit")[_("Look up")]]],
        h.h2[_("Subject code by resident ID number")],
        h.form("#by-identity", method="post", action="/code-index/code")[
            csrf_field(request),
            h.label(for_="resident_id")[_("Resident ID number")],
            h.input(id="resident_id", name="resident_id", required=True, maxlength="40",
                    autocomplete="off"),
            _reason_input("by-identity"),
            h.p[h.button(type="submit")[_("Look up")]]],
        h.h2[_("Subject access export (§7 d–e)")],
        h.form("#export", method="post", action="/code-index/export")[
            csrf_field(request),
            h.label(for_="export-code")[_("Subject code")],
            h.input(id="export-code", name="code", required=True, maxlength="40",
                    autocomplete="off"),
            h.label(for_="format")[_("Format")],
            dropdown(id="format", name="format")[
                h.option(value="html")[_("Web page (readable)")],
                h.option(value="text")[_("Text")], h.option(value="json")["JSON"]],
            _reason_input("export"),
            h.p[h.button(type="submit")[_("Export")]]],
        h.h2[_("To whom a subject's data went (§7 g)")],
        h.form("#disclosures", method="post", action="/code-index/disclosures")[
            csrf_field(request),
            h.label(for_="disclosure-code")[_("Subject code")],
            h.input(id="disclosure-code", name="code", required=True, maxlength="40",
                    autocomplete="off"),
            h.p[h.button(type="submit")[_("Show")]]],
        *subject_request_form(request),
        h.p[h.a(href="/code-index/history")[_("Lookup history")]],
    )


@router.post("/code-index/disclosures", dependencies=[requires(Perm.CODE_INDEX_EXPORT), Csrf])
def disclosures(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                code: Annotated[str, Form(max_length=40)]) -> Response:
    rows = code_index.disclosures(session, ledger, actor=actor, code=code)
    body = [h.tr[h.td[d.disclosed_at.isoformat(timespec="minutes")], h.td[d.recipient_org],
                 h.td[code_index.TIER_NAMES.get(d.tier, d.tier)], h.td[d.study_code],
                 h.td[", ".join(d.fields)],
                 h.td[h.a(href=f"/extracts/{d.request_id}")[d.request_id[:8]]]] for d in rows]
    return page(request, _("Disclosures of {code}").format(code=code),
                h.p[_("Every extract package that held this subject's data (the subject access "
                      "export holds the same list).")],
                h.table(".disclosures")[
                    h.thead[h.tr[h.th[_("When (UTC)")], h.th[_("Recipient")],
                                 h.th[_("Tier")], h.th[_("Study")],
                                 h.th[_("Fields")], h.th[_("Request")]]],
                    h.tbody[body or h.tr[h.td(colspan="6")["—"]]]],
                h.p[h.a(href="/code-index")[_("← Code index")]])


@router.post("/code-index/identity", dependencies=[requires(Perm.CODE_INDEX_LOOKUP), Csrf])
def lookup_identity(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
                    actor: CurrentActor, code: Annotated[str, Form(max_length=40)],
                    reason: Annotated[str, Form(max_length=500)]) -> Response:
    r = code_index.lookup_identity(session, ledger, actor=actor,
                                 keys=index_keys(state), code=code, reason=reason)
    back = h.p[h.a(href="/code-index")[_("← Code index")]]
    if r.identity is None:
        return page(request, _("Not found: {code}").format(code=r.code),
                    h.p(".result", role="status")[_("No subject has this code (this lookup is "
                                                    "recorded).")],
                    back)
    i = r.identity
    rows = [(_("Subject code"), r.code), (_("Study"), r.study or ""),
            (_("Name"), i.name), (_("Resident ID number"), i.resident_id),
            (_("Phone"), i.phone or "—"),
            (_("Medical record number"), i.medical_record_number or "—"),
            (_("Date of birth"), i.date_of_birth.isoformat()),
            (_("Address"), i.address or "—")]
    return page(request, _("Identity of {code}").format(code=r.code),
                h.dl(".identity")[[(h.dt[k], h.dd[v]) for k, v in rows]], back)


@router.post("/code-index/code", dependencies=[requires(Perm.CODE_INDEX_LOOKUP), Csrf])
def lookup_code(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
                actor: CurrentActor, resident_id: Annotated[str, Form(max_length=40)],
                reason: Annotated[str, Form(max_length=500)]) -> Response:
    r = code_index.lookup_code(session, ledger, actor=actor, keys=index_keys(state),
                             resident_id=resident_id, reason=reason)
    back = h.p[h.a(href="/code-index")[_("← Code index")]]
    if not r.found:
        return page(request, _("Not found"),
                    h.p(".result", role="status")[_("Not enrolled in any study (this lookup is "
                                                    "recorded).")], back)
    return page(request, _("Subject codes"),
                h.table(".matches")[
                    h.thead[h.tr[h.th[_("Study")], h.th[_("Subject code")]]],
                    h.tbody[[h.tr[h.td[s], h.td[h.code[c]]] for s, c in r.matches]]], back)


@router.get("/code-index/history", dependencies=[requires(Perm.CODE_INDEX_HISTORY)])
def lookup_history(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = code_index.lookup_history(session, actor=actor)
    body = [h.tr[h.td[str(r.seq)], h.td[r.ts], h.td[r.actor], h.td[r.action],
                 h.td[r.code or "—"], h.td[r.reason or ""], h.td[r.result or ""]] for r in rows]
    return page(request, _("Lookup history"),
                h.table(".history")[
                    h.thead[h.tr[h.th["#"], h.th[_("Time (UTC)")], h.th[_("Who")],
                                 h.th[_("Action")], h.th[_("Code")],
                                 h.th[_("Reason")], h.th[_("Result")]]],
                    h.tbody[body or h.tr[h.td(colspan="7")["—"]]]],
                h.p[h.a(href="/code-index")[_("← Code index")]])


@router.post("/code-index/export", dependencies=[requires(Perm.CODE_INDEX_EXPORT), Csrf])
def export_subject(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
                   actor: CurrentActor, code: Annotated[str, Form(max_length=40)],
                   reason: Annotated[str, Form(max_length=500)],
                   format: Annotated[str, Form(max_length=10)] = "text") -> Response:
    f = code_index.export_subject(session, ledger, actor=actor,
                                keys=index_keys(state), code=code, reason=reason,
                                fmt=format)
    return Response(f.content, media_type=f.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{f.filename}"'})
