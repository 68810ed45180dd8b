"""Pages of the study's data owner (数据责任人, §11.3.4.4 a): the owner, the pending handover
and the history on ``/studies/{study}/owner``; the outgoing owner (the study's manager for the
first naming) proposes and signs, the incoming person accepts and signs; an administrator
hands over the studies whose owner has left on ``/admin/data-owners``. A signing mistake or a
bad field is a 422 on the same page with the error at the form, nothing recorded but the
audited refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.policy import requires
from edc.routes.clock import now
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import signature_fields
from edc.web.timefmt import local_minute
from studies.accounts import signatures
from studies.kernel.errors import DomainError, InvalidInput, SignatureRefused
from studies.kernel.i18n import _, pick
from studies.kernel.roles import Perm
from studies.registry import owner as owners

router = APIRouter(route_class=Route)


def _error(exc: DomainError | None) -> h.Node:
    if exc is None:
        return None
    return h.div(".sign-error", role="alert")[
        h.p(".error")[exc.message],
        h.p[_("field: {field}").format(field=exc.field)] if exc.field else None]


def _propose_form(request: Request, action: str, first: bool, needs_totp: bool,
                  error: DomainError | None, suffix: str = "") -> h.Element:
    return h.form(".owner-handover", method="post", action=action)[
        csrf_field(request), _error(error),
        h.label(for_=f"to_username{suffix}")[_("Incoming person (username)")],
        h.input(id=f"to_username{suffix}", name="to_username", required=True, maxlength="100"),
        h.label(for_=f"reason{suffix}")[_("Reason")],
        h.textarea(id=f"reason{suffix}", name="reason", required=True, maxlength="2000",
                   rows="2"),
        *signature_fields(request, first=first, needs_totp=needs_totp),
        h.p[h.button(type="submit")[_("Sign and hand over")]]]


def owner_summary(v: owners.OwnerView) -> h.Node:
    """One line for the study page."""
    if v.owner is None:
        return h.p(".data-owner.todo")[_("○ No data owner named yet")]
    return h.p(".data-owner")[
        _("Data owner: {owner} · since {since}").format(owner=v.owner,
                                                         since=local_minute(v.since))
        + (" " + _("— has left: hand over") if v.owner_left else "")]


def _owner_page(request: Request, session: SessionDep, actor: CurrentActor, auth: AuthDep,
                study: str, error: tuple[str, DomainError] | None = None) -> Response:
    today = now().date()
    v = owners.view(session, actor=actor, study_code=study, today=today)
    first, needs_totp = signatures.signing_needs(session, actor=actor, config=auth)
    base = f"/studies/{quote(study)}/owner"
    may_propose = (actor.username == v.owner) or (
        (v.owner is None or v.owner_left) and actor.can(Perm.STUDY_MANAGE, study))
    body: list[h.Node] = [
        h.p[_("§Name the person responsible for the data, and change them promptly when staff "
              "move.")],
        owner_summary(v)]
    if v.pending is not None:
        p = v.pending.handover
        body += [h.h2[_("Handover awaiting acceptance")],
                 h.p(".pending")[f"{p.from_username or '—'} → {p.to_username}: {p.reason}"],
                 h.p(".signature")[v.pending.proposed]]
        if actor.username == p.to_username:
            body.append(h.form(".owner-accept", method="post",
                               action=f"{base}/{quote(p.id)}/accept")[
                csrf_field(request), _error(error[1] if error and error[0] == "accept" else None),
                *signature_fields(request, first=first, needs_totp=needs_totp),
                h.p[h.button(type="submit")[_("Sign and accept")]]])
    if may_propose:
        body += [h.h2[_("Hand over") if v.owner else _("Name the data owner")],
                 _propose_form(request, base, first, needs_totp,
                               error[1] if error and error[0] == "propose" else None)]
    body += [h.h2[_("History")],
             h.table(".owner-history")[
                 h.thead[h.tr[h.th[_("From")], h.th[_("To")], h.th[_("Reason")],
                              h.th[_("Handed over")], h.th[_("Accepted")]]],
                 h.tbody[[h.tr[h.td[t.handover.from_username or "—"],
                               h.td(".to")[t.handover.to_username], h.td[t.handover.reason],
                               h.td[t.proposed], h.td[t.accepted or ""]] for t in v.history]
                         or h.tr[h.td(colspan="5")[_("None")]]]]]
    resp = page(request, _("{study} — Data owner").format(study=study), *body)
    if error is not None:
        resp.status_code = 422
    return resp


@router.get("/studies/{study}/owner", dependencies=[requires(Perm.STUDY_READ)])
def owner_page(study: str, request: Request, session: SessionDep, actor: CurrentActor,
               auth: AuthDep) -> Response:
    return _owner_page(request, session, actor, auth, study)


Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=100)]
Totp = Annotated[str | None, Form(max_length=20)]


def _signed(request: Request, session: SessionDep, ledger: LedgerDep,
            study: str, step: str, fn: Callable[[], object],
            render: Callable[[DomainError], Response]) -> Response:
    """Run the signed step; a refused signature or a bad field re-renders with a 422."""
    try:
        fn()
    except SignatureRefused as exc:
        signatures.record_refusal(session, ledger, exc)
        return render(InvalidInput(exc.message, field=exc.field))
    except InvalidInput as exc:
        if not session.is_active:
            raise
        return render(exc)
    return redirect(request, f"/studies/{quote(study)}/owner" if step != "admin"
                    else "/admin/data-owners", _("data owner recorded"))


@router.post("/studies/{study}/owner", dependencies=[requires(Perm.STUDY_READ), Csrf])
def propose(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
            actor: CurrentActor, auth: AuthDep, to_username: Short = "", reason: Text = "",
            password: Text = "", username: Short = "", totp: Totp = None) -> Response:
    return _signed(request, session, ledger, study, "propose", lambda: owners.propose(
        session, ledger, actor=actor, study_code=study, to_username=to_username, reason=reason,
        username=username, password=password, totp=totp or None, today=now().date(),
        config=auth), lambda e: _owner_page(request, session, actor, auth, study, ("propose", e)))


@router.post("/studies/{study}/owner/{handover_id}/accept",
             dependencies=[requires(Perm.STUDY_READ), Csrf])
def accept(study: str, handover_id: str, request: Request, session: SessionDep,
           ledger: LedgerDep, actor: CurrentActor, auth: AuthDep, password: Text = "",
           username: Short = "", totp: Totp = None) -> Response:
    return _signed(request, session, ledger, study, "accept", lambda: owners.accept(
        session, ledger, actor=actor, study_code=study, handover_id=handover_id,
        username=username, password=password, totp=totp or None, config=auth),
        lambda e: _owner_page(request, session, actor, auth, study, ("accept", e)))


def _admin_page(request: Request, session: SessionDep, actor: CurrentActor, auth: AuthDep,
                error: tuple[str, DomainError] | None = None) -> Response:
    first, needs_totp = signatures.signing_needs(session, actor=actor, config=auth)
    left = owners.studies_whose_owner_left(session, actor=actor, today=now().date())
    items = [h.section(".owner-left", id=f"left-{s.code}")[
        h.h3[f"{s.code} — {pick(s.title_zh, s.title_en)}"],
        h.p[_("Owner who left: {who}").format(who=who)],
        _propose_form(request, f"/admin/data-owners/{quote(s.code)}", first, needs_totp,
                      error[1] if error and error[0] == s.code else None, suffix=f"-{s.code}")]
        for s, who in left]
    resp = page(request, _("Data owner handovers"),
                h.p[_("Studies whose data owner has left (account deactivated or past its end "
                      "date): the administrator hands them over.")],
                *items or [h.p(".none")[_("None")]])
    if error is not None:
        resp.status_code = 422
    return resp


@router.get("/admin/data-owners", dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def admin_list(request: Request, session: SessionDep, actor: CurrentActor,
               auth: AuthDep) -> Response:
    return _admin_page(request, session, actor, auth)


@router.post("/admin/data-owners/{study}", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_propose(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor, auth: AuthDep, to_username: Short = "",
                  reason: Text = "", password: Text = "", username: Short = "",
                  totp: Totp = None) -> Response:
    return _signed(request, session, ledger, study, "admin", lambda: owners.propose(
        session, ledger, actor=actor, study_code=study, to_username=to_username, reason=reason,
        username=username, password=password, totp=totp or None, today=now().date(),
        config=auth), lambda e: _admin_page(request, session, actor, auth, (study, e)))
