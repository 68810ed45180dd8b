"""Pages of consent: a study's consent forms and consent capture by investigators (with the
form text shown)."""

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
from edc.web.inputs import build, flag, local_time, opt, text
from edc.web.layout import page, redirect
from edc.web.widgets import banner, checkbox, field, post_form
from studies.consent import service as consent
from studies.consent.models import SCOPE_LABELS, SCOPES
from studies.consent.schemas import ConsentFormIn, ConsentIn, WithdrawalIn
from studies.ethics import service as ethics
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.overview import service as overview

router = APIRouter(route_class=Route)


@router.post("/studies/{study}/consent-forms",
             dependencies=[requires(Perm.STUDY_MANAGE), Csrf])
async def consent_form(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> Response:
    form = await request.form()
    consent.add_consent_form(session, ledger, actor=actor, study_code=study, data=build(
        ConsentFormIn, version=text(form, "version"),
        consent_type=text(form, "consent_type"), text_zh=text(form, "text_zh"),
        text_en=text(form, "text_en"), approval_id=text(form, "approval_id"),
        requires_reconsent=flag(form, "requires_reconsent")))
    return redirect(request, f"/studies/{quote(study)}", _("consent form saved"))


@router.get("/studies/{study}/consent", dependencies=[requires(Perm.CONSENT_READ)])
def consent_list(study: str, request: Request, session: SessionDep,
                 actor: CurrentActor) -> Response:
    o = overview.consent_overview(session, actor=actor, study_code=study, at=now())
    base = f"/studies/{quote(study)}/subjects"
    record = actor.can(Perm.CONSENT_RECORD, study)  # the capture page needs it
    rows = [h.tr[h.td[h.a(href=f"{base}/{r['subject_id']}/consent")[r["code"]]
                      if record else h.code[r["code"]]],
                 h.td[", ".join(str(SCOPE_LABELS.get(s, s)) for s in r["scopes"]) or "—"],
                 h.td["✔" if r["entry_allowed"] else f"✘ {r['reason']}"]]
            for r in o["subjects"]]
    return page(request, _("{study} — Consent").format(study=study), banner(o["readiness"]),
                h.table[h.thead[h.tr[h.th[_("Subject")], h.th[_("Scopes")],
                                     h.th[_("Entry")]]], h.tbody[rows]])


@router.get("/studies/{study}/subjects/{subject_id}/consent",
            dependencies=[requires(Perm.CONSENT_RECORD)])
def consent_capture(study: str, subject_id: str, request: Request, session: SessionDep,
                    actor: CurrentActor) -> Response:
    d = overview.consent_page_data(session, actor=actor, study_code=study,
                                   subject_id=subject_id, at=now())
    base = f"/studies/{quote(study)}"
    content: list[h.Node] = [
        h.p(".ok" if d["entry_allowed"] else ".bad")[
            _("✔ Data entry allowed") if d["entry_allowed"]
            else _("✘ No data entry: {reason}").format(reason=d['reason'])]]
    content.append(h.h2[_("Consent history")])
    for r in d["history"]:
        wd = "; ".join(_("withdrawn {value} {withdrawn_at}").format(
                           value=w['scope'] or 'all', withdrawn_at=w['withdrawn_at'])
                       for w in r["withdrawals"])
        content.append(h.div(".consent")[
            h.p[f"{r['given_at']} · {r['consent_type']} · {r['form_version'] or 'waiver'} · "
                f"{', '.join(r['scopes'])} · by {r['obtained_by']}" + (f" · {wd}" if wd else "")],
            post_form(f"{base}/consents/{r['id']}/withdraw", request,
                      h.fieldset[h.legend[_("Withdraw (none chosen = the whole consent)")],
                                 [checkbox(SCOPE_LABELS[sc], "scopes", value=sc)
                                  for sc in r["scopes"]]],
                      field(_("Withdrawn at (UTC+8)"), "withdrawn_at",
                            type_="datetime-local"),
                      field(_("Reason"), "reason", required=False),
                      button=_("Record withdrawal"))
            if r is d["history"][-1] and not any(w["scope"] is None for w in r["withdrawals"])
            else None])
    for f in reversed(d["forms"]):
        content += [
            h.h2[_("Consent form {version} ({consent_type})").format(
                     version=f['version'], consent_type=f['consent_type'])],
            h.div(".consent-text", lang="zh")[[h.p[line] for line in f["text_zh"].splitlines()]],
            h.div(".consent-text", lang="en")[[h.p[line] for line in f["text_en"].splitlines()]],
            post_form(f"{base}/subjects/{subject_id}/consent", request,
                      h.input(type="hidden", name="form_id", value=f["id"]),
                      h.input(type="hidden", name="consent_type", value=f["consent_type"]),
                      h.fieldset[h.legend[_("Scopes agreed")],
                                 [checkbox(SCOPE_LABELS[sc], "scopes", value=sc,
                                           checked=sc == consent.REQUIRED_SCOPE.get(
                                               f["consent_type"])) for sc in SCOPES]],
                      field(_("Signed at (UTC+8)"), "given_at",
                            type_="datetime-local"),
                      button=_("Record consent (version {version})").format(version=f["version"]))]
    for w in d["waivers"]:
        content += [h.h2[_("Waiver {clause}").format(clause=w['clause'])],
                    h.p[ethics.WAIVER_LABELS[w["ground"]]],
                    post_form(f"{base}/subjects/{subject_id}/consent", request,
                              h.input(type="hidden", name="waiver_id", value=w["id"]),
                              h.input(type="hidden", name="consent_type", value="waiver"),
                              field(_("Time (UTC+8)"), "given_at",
                                    type_="datetime-local"),
                              button=_("Record as covered by the waiver"))]
    return page(request, _("{code} — Consent").format(code=d['subject']['code']), *content)


@router.post("/studies/{study}/subjects/{subject_id}/consent",
             dependencies=[requires(Perm.CONSENT_RECORD), Csrf])
async def consent_submit(study: str, subject_id: str, request: Request, session: SessionDep,
                         ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    consent.record_consent(session, ledger, actor=actor, study_code=study,
                           subject_id=subject_id, data=build(
                               ConsentIn, consent_type=text(form, "consent_type"),
                               form_id=opt(form, "form_id"), waiver_id=opt(form, "waiver_id"),
                               scopes=[s for s in form.getlist("scopes") if isinstance(s, str)],
                               given_at=local_time(text(form, "given_at"), "given_at")))
    return redirect(request, f"/studies/{quote(study)}/subjects/{subject_id}/consent",
                    _("consent recorded"))


@router.post("/studies/{study}/consents/{consent_id}/withdraw",
             dependencies=[requires(Perm.CONSENT_RECORD), Csrf])
async def withdraw_submit(study: str, consent_id: str, request: Request, session: SessionDep,
                          ledger: LedgerDep, actor: CurrentActor) -> Response:
    form = await request.form()
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    done = consent.withdraw_consent(session, ledger, actor=actor, study_code=study,
                                    consent_id=consent_id, data=build(
                                        WithdrawalIn, scopes=scopes or None,
                                        withdrawn_at=local_time(text(form, "withdrawn_at"),
                                                                "withdrawn_at"),
                                        reason=opt(form, "reason")))
    return redirect(request, f"/studies/{quote(study)}/subjects/{done[0].subject_id}/consent",
                    _("withdrawal recorded"))
