"""Pages: randomisation (allocations, randomising a subject) and unblinding (requests, their
sign-off, emergency unblinding). Plain forms, post-redirect-get; no scripts."""

from __future__ import annotations

from typing import Annotated

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import requires
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import as_form_error, sign_form
from edc.web.widgets import utc_minute
from studies.kernel.errors import NotAuthenticated
from studies.kernel.i18n import _
from studies.kernel.roles import Perm, Role
from studies.randomisation import service as rnd

router = APIRouter(route_class=Route)


@router.get("/studies/{study}/randomisation", dependencies=[requires(Perm.LOCK_READ)])
def randomisation_page(study: str, request: Request, session: SessionDep, state: StateDep,
                       actor: CurrentActor) -> Response:
    keys = rnd.keys_from(state.keys.deid_key)
    rows = rnd.allocations(session, actor=actor, keys=keys, study_code=study)
    unbl = rnd.list_unblindings(session, actor=actor, study_code=study)
    parts: list[h.Node] = [
        h.p[h.a(href=f"/studies/{study}/locks")[_("← Lock panel")]],
        h.table(".allocations")[
            h.thead[h.tr[h.th[_("Subject")], h.th[_("Stratum")], h.th[_("Seq")],
                         h.th[_("Arm")], h.th[_("By")], h.th[_("When")]]],
            h.tbody[[h.tr[h.td[v.subject], h.td[v.stratum], h.td[str(v.seq)],
                          h.td(".arm")[v.arm], h.td[v.randomised_by],
                          h.td[utc_minute(v.randomised_at)]] for v in rows]
                    or h.tr[h.td(colspan="6")[_("None yet")]]]],
    ]
    if actor.can(Perm.RANDOMISE, study):
        parts += [h.h2[_("Randomise a subject")],
                  h.form(method="post", action=f"/studies/{study}/randomisation")[
                      csrf_field(request), h.label(for_="subject")[_("Subject code")],
                      h.input(id="subject", name="subject", required=True, maxlength="20"),
                      h.button(type="submit")[_("Randomise")]]]
    parts.append(h.h2[_("Unblinding")])
    for u in unbl:
        parts.append(h.div(".unblinding")[
            h.p[f"{u.kind} · {u.status} · {u.requested_by} · {utc_minute(u.requested_at)}"],
            h.pre[rnd.unblinding_text(session, u)],
            sign_form(request, f"/studies/{study}/unblinding/{u.id}/sign", rnd.UNBLIND_ROLES,
                      u.content_hash, actor.username)
            if u.status == "pending" and actor.can(Perm.UNBLIND_SIGN, study) else None])
    if actor.can(Perm.UNBLIND_SIGN, study):
        parts.append(h.form(method="post", action=f"/studies/{study}/unblinding")[
            csrf_field(request), h.label(for_="ub-reason")[_("Reason to unblind")],
            h.input(id="ub-reason", name="reason", required=True, maxlength="2000"),
            h.button(type="submit")[_("Request unblinding")]])
    if actor.can(Perm.UNBLIND_EMERGENCY, study):
        parts += [h.h2[_("Emergency unblinding")],
                  h.form(".emergency", method="post",
                         action=f"/studies/{study}/emergency-unblinding")[
                      csrf_field(request),
                      h.label(for_="em-subject")[_("Subject code")],
                      h.input(id="em-subject", name="subject", required=True, maxlength="20"),
                      h.label(for_="em-reason")[_("Emergency reason")],
                      h.input(id="em-reason", name="reason", required=True, maxlength="2000"),
                      h.label(for_="em-password")[_("Password")],
                      h.input(id="em-password", name="password", type="password",
                              required=True, maxlength="1000"),
                      h.label(for_="em-totp")[_("Authenticator code")],
                      h.input(id="em-totp", name="totp", maxlength="20"),
                      h.button(type="submit")[_("Unblind (the data manager is told)")]]]
    return page(request, _("Randomisation — {study}").format(study=study), *parts)


@router.post("/studies/{study}/randomisation", dependencies=[requires(Perm.RANDOMISE), Csrf])
def randomise_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                     state: StateDep, actor: CurrentActor,
                     subject: Annotated[str, Form(max_length=20)]) -> Response:
    v = rnd.randomise(session, ledger, actor=actor, keys=rnd.keys_from(state.keys.deid_key),
                      study_code=study, subject_code=subject.strip())
    return redirect(request, f"/studies/{study}/randomisation",
                    f"{v.subject}: {v.arm} ({v.stratum} #{v.seq})")


@router.post("/studies/{study}/unblinding", dependencies=[requires(Perm.UNBLIND_SIGN), Csrf])
def unblinding_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                      actor: CurrentActor,
                      reason: Annotated[str, Form(max_length=2000)]) -> Response:
    rnd.request_unblinding(session, ledger, actor=actor, study_code=study, reason=reason)
    return redirect(request, f"/studies/{study}/randomisation",
                    _("Unblinding requested"))


@router.post("/studies/{study}/unblinding/{unblinding_id}/sign",
             dependencies=[requires(Perm.UNBLIND_SIGN), Csrf])
def unblinding_sign(study: str, unblinding_id: str, request: Request, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor, auth: AuthDep,
                    role: Annotated[Role, Form()],
                    password: Annotated[str, Form(max_length=1000)],
                    username: Annotated[str, Form(max_length=100)] = "",
                    totp: Annotated[str, Form(max_length=20)] = "",
                    content_sha256: Annotated[str, Form(max_length=64)] = "") -> Response:
    try:
        rnd.sign_unblinding(session, ledger, actor=actor, study_code=study,
                            unblinding_id=unblinding_id, role=role, username=username,
                            password=password, totp=totp or None, config=auth)
    except NotAuthenticated as exc:
        raise as_form_error(exc) from None
    return redirect(request, f"/studies/{study}/randomisation", _("Signed"))


@router.post("/studies/{study}/emergency-unblinding",
             dependencies=[requires(Perm.UNBLIND_EMERGENCY), Csrf])
def emergency_submit(study: str, request: Request, session: SessionDep, ledger: LedgerDep,
                     state: StateDep, actor: CurrentActor, auth: AuthDep,
                     subject: Annotated[str, Form(max_length=20)],
                     reason: Annotated[str, Form(max_length=2000)],
                     password: Annotated[str, Form(max_length=1000)],
                     totp: Annotated[str, Form(max_length=20)] = "") -> Response:
    """The arm is shown in this POST's own response (not by a re-viewable GET)."""
    try:
        v = rnd.emergency_unblind(session, ledger, actor=actor,
                                  keys=rnd.keys_from(state.keys.deid_key), study_code=study,
                                  subject_code=subject.strip(), reason=reason,
                                  username=actor.username, password=password,
                                  totp=totp or None, config=auth)
    except NotAuthenticated as exc:
        raise as_form_error(exc) from None
    return page(request, _("Emergency unblinding — {subject}").format(subject=v.subject),
                h.p(".arm")[f"{v.subject}: {v.arm}"],
                h.p[_("This unblinding is recorded and the data manager has been told.")],
                h.p[h.a(href=f"/studies/{study}/randomisation")[_("← Randomisation")]])
