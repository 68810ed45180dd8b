"""Pages: the data manager's lock panel with the pre-lock report, unlock requests and their
sign-off (the signer sees the full text signed before signing). Plain forms,
post-redirect-get; no scripts."""

from __future__ import annotations

from typing import Annotated

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.forms import submit
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import as_form_error, sign_form
from edc.web.widgets import field, field_error, utc_minute
from studies.kernel.errors import NotAuthenticated
from studies.kernel.i18n import _, _l
from studies.kernel.roles import ROLE_LABELS, UNLOCK_SIGNERS, Perm, Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.locks import unlock as unlocks

router = APIRouter(route_class=Route)
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries

SCOPES = (("study", _l("Whole study")), ("site", _l("Sites")),
          ("form", _l("Forms across the study")),
          ("subjects", _l("List of subjects")))


def _lock_fields(request: Request, sel: dict[str, str] | None = None) -> list[h.Node]:
    sel = sel or {}
    labels = {"scope": _("Scope"),
              "sites": _("Site codes (space separated)"),
              "forms": _("Form names"),
              "subjects": _("Subject codes (bulk)")}
    return [
        h.div(".field", id="field-scope")[
            h.label(for_="scope")[labels["scope"]],
            dropdown(id="scope", name="scope")[
                [h.option(value=v, selected=sel.get("scope") == v)[t] for v, t in SCOPES]],
            field_error("scope", labels["scope"])],
        h.div(".field", id="field-sites")[
            h.label(for_="sites")[labels["sites"]],
            h.input(id="sites", name="sites", maxlength="2000", value=sel.get("sites", "")),
            field_error("sites", labels["sites"])],
        h.div(".field", id="field-forms")[
            h.label(for_="forms")[labels["forms"]],
            h.input(id="forms", name="forms", maxlength="2000", value=sel.get("forms", "")),
            field_error("forms", labels["forms"])],
        h.div(".field", id="field-subjects")[
            h.label(for_="subjects")[labels["subjects"]],
            h.textarea(id="subjects", name="subjects", maxlength="100000", rows="3")[
                sel.get("subjects", "")],
            field_error("subjects", labels["subjects"])],
    ]


@router.get("/studies/{study}/locks", dependencies=[requires(Perm.LOCK_READ)])
def lock_panel(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> Response:
    p = unlocks.panel(session, ledger, actor=actor, study_code=study)
    lock_rows = [h.tr[h.td[locks.shown_label(session, lk)], h.td[lk.set_by],
                      h.td[utc_minute(lk.set_at)],
                      h.td[h.code[f"#{lk.checkpoint_size} {lk.checkpoint_root[:16]}…"]],
                      h.td[h.code(".snapshot")[lk.snapshot_hash]],
                      h.td[str(lk.snapshot_values)], h.td[lk.override_reason or "—"]]
                 for lk in p["locks"]]
    req_rows = [h.tr[h.td[h.a(href=f"/studies/{study}/unlocks/{r.id}")[r.id[:8]]],
                     h.td(".status")[label(r.status)], h.td[r.requested_by], h.td[r.reason],
                     h.td[utc_minute(r.ends_at)]] for r in p["requests"]]
    manage = actor.can(Perm.LOCK_MANAGE, study)
    parts: list[h.Node] = [
        h.p[h.a(href=f"/studies/{study}/randomisation")[_("Randomisation")]],
        h.h2[_("Locks")],
        h.table(".locks")[
            h.thead[h.tr[h.th[_("Scope")], h.th[_("By")], h.th[_("When")],
                         h.th[_("Signed checkpoint")],
                         h.th[_("Snapshot SHA-256")], h.th[_("Values")],
                         h.th[_("Override reason")]]],
            h.tbody[lock_rows or h.tr[h.td(colspan="7")[_("Nothing locked")]]]],
        h.h2[_("Unlock requests")],
        h.table(".unlocks")[
            h.thead[h.tr[h.th[_("Request")], h.th[_("Status")], h.th[_("By")],
                         h.th[_("Reason")], h.th[_("Ends")]]],
            h.tbody[req_rows or h.tr[h.td(colspan="5")[_("None")]]]],
    ]
    if manage:
        parts += [
            h.h2[_("Lock data")],
            h.p[_("Read the pre-lock report first; with open items an override reason is "
                  "required.")],
            h.form(method="get", action=f"/studies/{study}/locks/report")[
                _lock_fields(request),
                h.p[h.button(type="submit")[_("Pre-lock report")]]],
            h.h2[_("Lock settings")],
            h.form(method="post", action=f"/studies/{study}/lock-settings")[
                csrf_field(request),
                h.label[h.input(type="checkbox", name="allow_query_answers", value="1",
                                checked=p["settings"].allow_query_answers),
                        " " + _("Queries may be answered while locked")],
                h.p[h.button(type="submit")[_("Save")]]]]
    if actor.can(Perm.UNLOCK_REQUEST, study) and p["locks"]:
        parts += [
            h.h2[_("Request an unlock")],
            h.form(method="post", action=f"/studies/{study}/unlocks")[
                csrf_field(request),
                h.label(for_="changes")[_("Changes: one per line, SUBJECT [FORM [FIELD …]]")],
                h.textarea(id="changes", name="changes", required=True, rows="4",
                           maxlength="20000"),
                h.label(for_="reason")[_("Reason")],
                h.textarea(id="reason", name="reason", required=True, maxlength="4000"),
                h.label(for_="planned_date")[_("Planned date")],
                h.input(id="planned_date", name="planned_date", type="date", required=True),
                h.label(for_="period_hours")[_("Period (hours)")],
                h.input(id="period_hours", name="period_hours", type="number", min="1",
                        max=str(lock_schemas.MAX_PERIOD_HOURS), value="48", required=True),
                h.p[h.button(type="submit")[_("Submit and notify the team")]]]]
    return page(request, _("Database lock — {study}").format(study=study), *parts)


@router.get("/studies/{study}/locks/report", dependencies=[requires(Perm.LOCK_MANAGE)])
def lock_report(study: str, request: Request, session: SessionDep, actor: CurrentActor,
                scope: str = "study", sites: str = "", forms: str = "",
                subjects: str = "") -> Response:
    data = lock_schemas.lock_in_from_form(scope=scope, sites=sites[:2000], forms=forms[:2000],
                                   subjects=subjects[:100000], override_reason=None)
    reports = locks.prelock_report(session, actor=actor, study_code=study, data=data)
    names = (("open_queries", _("Open queries")),
             ("unverified_forms", _("Unverified forms")),
             ("incomplete_forms", _("Incomplete forms")),
             ("changed_after_verification", _("Forms changed after verification")))
    sections: list[h.Node] = []
    for rep in reports:
        sections.append(h.h2[rep["label"]])
        for key, title in names:
            items = rep[key]
            sections += [h.h3[f"{title}: {len(items)}"],
                         h.ul(class_=key)[[h.li[" · ".join(
                             f"{k}={v if not isinstance(v, list) else ','.join(v)}"
                             for k, v in it.items() if k != "id")] for it in items]]]
    open_items = sum(r["open"] for r in reports)
    sel = {"scope": scope, "sites": sites, "forms": forms, "subjects": subjects}
    return page(
        request, _("Pre-lock report — {study}").format(study=study), *sections,
        h.p(".open-items")[_("Open items in total: {open_items}").format(open_items=open_items)],
        h.form(method="post", action=f"/studies/{study}/locks")[
            csrf_field(request), _lock_fields(request, sel),
            field(_("Override reason (required with open items)"), "override_reason",
                  textarea=True, required=False,
                  maxlength="2000"),
            h.p[h.button(type="submit")[_("Lock")]]])


@router.post("/studies/{study}/locks", dependencies=[requires(Perm.LOCK_MANAGE), Csrf])
def lock_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor, scope: Annotated[str, Form(max_length=10)],
                sites: Annotated[str, Form(max_length=2000)] = "",
                forms: Annotated[str, Form(max_length=2000)] = "",
                subjects: Annotated[str, Form(max_length=100000)] = "",
                override_reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    def lock() -> Response:
        made = locks.set_locks(session, ledger, actor=actor, study_code=study,
                               data=lock_schemas.lock_in_from_form(
                                   scope=scope, sites=sites, forms=forms, subjects=subjects,
                                   override_reason=override_reason))
        return redirect(request, f"/studies/{study}/locks",
                        _("Locked: {value}").format(
                            value="; ".join(locks.shown_label(session, m) for m in made)))

    typed = dict(scope=scope, sites=sites, forms=forms, subjects=subjects,
                 override_reason=override_reason)
    return submit(session, typed, lock, lambda: lock_report(
        study, request, session, actor, scope=scope, sites=sites, forms=forms,
        subjects=subjects))


@router.post("/studies/{study}/lock-settings", dependencies=[requires(Perm.LOCK_MANAGE), Csrf])
def settings_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor,
                    allow_query_answers: Annotated[str, Form(max_length=1)] = "") -> Response:
    locks.update_settings(session, ledger, actor=actor, study_code=study,
                          allow_query_answers=allow_query_answers == "1")
    return redirect(request, f"/studies/{study}/locks", _("Saved"))


@router.post("/studies/{study}/unlocks", dependencies=[requires(Perm.UNLOCK_REQUEST), Csrf])
def unlock_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor, changes: Annotated[str, Form(max_length=20000)],
                  reason: Annotated[str, Form(max_length=4000)],
                  planned_date: Annotated[str, Form(max_length=10)],
                  period_hours: Annotated[str, Form(max_length=6)]) -> Response:
    req = unlocks.request_unlock(session, ledger, actor=actor, study_code=study,
                               data=lock_schemas.unlock_in_from_form(
                                   changes=changes, reason=reason, planned_date=planned_date,
                                   period_hours=period_hours))
    return redirect(request, f"/studies/{study}/unlocks/{req.id}",
                    _("Submitted; the team has been notified"))


def _reason_form(request: Request, action: str, label: str) -> h.Element:
    return h.form(method="post", action=action)[
        csrf_field(request), h.label[_("Reason ({label})").format(label=label)],
        h.input(name="reason", required=True, maxlength="4000"),
        h.button(type="submit")[label]]


@router.get("/studies/{study}/unlocks/{request_id}", dependencies=[requires(Perm.LOCK_READ)])
def unlock_page(study: str, request_id: str, request: Request, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor) -> Response:
    v = unlocks.request_view(session, ledger, actor=actor, study_code=study,
                           request_id=request_id)
    req = v["request"]
    base = f"/studies/{study}/unlocks/{req.id}"
    parts: list[h.Node] = [
        h.p[h.a(href=f"/studies/{study}/locks")[_("← Lock panel")]],
        h.p(".status")[_("Status: {status}").format(status=label(req.status)),
                       " " + _("· ends {ends_at}").format(ends_at=utc_minute(req.ends_at))
                       if req.ends_at else ""],
        h.h2[_("The full text you sign")],
        h.pre(".content")[v["content"]],
        h.p["SHA-256: ", h.code(".content-hash")[req.content_hash],
            "" if v["content_ok"] else " " + _("— DOES NOT MATCH")],
        h.h2[_("Signatures")],
        h.ul(".signoffs")[[h.li[f"{ROLE_LABELS[Role(s.role)]}: {s.line}"]
                           for s in v["signoffs"]] or h.li[_("None yet")]],
        h.p(".missing")[_("Still to sign:") + " " + (", ".join(
            str(ROLE_LABELS[Role(r)]) for r in v["missing"]) or "—")],
    ]
    if v["invalidated"]:
        parts += [h.h2[_("Signatures invalidated by this unlock")],
                  h.ul(".invalidated")[[h.li(".invalidated")[line]
                                        for line in v["invalidated"]]]]
    if req.status == "pending" and actor.can(Perm.UNLOCK_SIGN, study):
        parts += [h.h2[_("Sign")],
                  sign_form(request, f"{base}/sign", UNLOCK_SIGNERS, req.content_hash,
                            actor.username),
                  _reason_form(request, f"{base}/reject", _("Reject"))]
    if req.status == "pending" and actor.can(Perm.UNLOCK_REQUEST, study):
        parts.append(_reason_form(request, f"{base}/withdraw", _("Withdraw")))
    if req.status == "active" and actor.can(Perm.LOCK_MANAGE, study):
        parts.append(h.form(method="post", action=f"{base}/relock")[
            csrf_field(request), h.button(type="submit")[_("Re-lock now")]])
    return page(request, _("Unlock request — {study}").format(study=study), *parts)


@router.post("/studies/{study}/unlocks/{request_id}/sign",
             dependencies=[requires(Perm.UNLOCK_SIGN), Csrf])
def unlock_sign(study: str, request_id: str, request: Request, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor, auth: AuthDep,
                role: Annotated[Role, Form()], password: Annotated[str, Form(max_length=1000)],
                username: Annotated[str, Form(max_length=100)] = "",
                totp: Annotated[str, Form(max_length=20)] = "",
                content_sha256: Annotated[str, Form(max_length=64)] = "") -> Response:
    try:
        req = unlocks.sign_unlock(session, ledger, actor=actor, study_code=study,
                                request_id=request_id, role=role, username=username,
                                password=password, totp=totp or None,
                                content_hash=content_sha256 or None, config=auth)
    except NotAuthenticated as exc:
        raise as_form_error(exc) from None
    msg = (_("Signed; the unlock is in effect") if req.status == "active"
           else _("Signed"))
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", msg)


@router.post("/studies/{study}/unlocks/{request_id}/withdraw",
             dependencies=[requires(Perm.UNLOCK_REQUEST), Csrf])
def unlock_withdraw(study: str, request_id: str, request: Request, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor,
                    reason: Annotated[str, Form(max_length=4000)]) -> Response:
    unlocks.withdraw_unlock(session, ledger, actor=actor, study_code=study, request_id=request_id,
                          reason=reason)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", _("Withdrawn"))


@router.post("/studies/{study}/unlocks/{request_id}/reject",
             dependencies=[requires(Perm.UNLOCK_SIGN), Csrf])
def unlock_reject(study: str, request_id: str, request: Request, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor,
                  reason: Annotated[str, Form(max_length=4000)]) -> Response:
    unlocks.reject_unlock(session, ledger, actor=actor, study_code=study, request_id=request_id,
                        reason=reason)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", _("Rejected"))


@router.post("/studies/{study}/unlocks/{request_id}/relock",
             dependencies=[requires(Perm.LOCK_MANAGE), Csrf])
def unlock_relock(study: str, request_id: str, request: Request, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor) -> Response:
    unlocks.relock(session, ledger, actor=actor, study_code=study, request_id=request_id)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}",
                    _("Re-locked"))
