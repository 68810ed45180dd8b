"""Pages of the accounts domain: log in, log out, password change, the own account (API
tokens, second factor, recovery codes) and account administration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from edc.deps import (
    SESSION_COOKIE,
    AuthDep,
    CurrentActor,
    LedgerDep,
    SessionDep,
    StateDep,
    client_address,
)
from edc.policy import authenticated, public, requires
from edc.routing import Route
from edc.web.csrf import Csrf
from edc.web.layout import LANGUAGE_COOKIE, csrf_field, error_page, page, redirect
from edc.web.widgets import labelled_input
from studies.accounts import admin as account_admin
from studies.accounts import organisations as orgs
from studies.accounts import service as accounts
from studies.accounts import tokens
from studies.accounts import totp as totp_mod
from studies.kernel import i18n
from studies.kernel.actor import PENDING_PASSWORD
from studies.kernel.i18n import Label, _, _l
from studies.kernel.roles import ROLE_LABELS, Perm, Role

router = APIRouter(route_class=Route)
_choice = h.select  # (named so: the architecture test greps route modules for "select" calls)


@router.get("/login", dependencies=[public()])
def login_form(request: Request) -> Response:
    return page(request, _("Log in"), h.form(method="post", action="/login")[
        csrf_field(request),
        h.label(for_="username")[_("Username")],
        h.input(id="username", name="username", autocomplete="username", required=True),
        h.label(for_="password")[_("Password")],
        h.input(id="password", name="password", type="password",
                autocomplete="current-password", required=True),
        h.label(for_="totp")[_("Authenticator or recovery code (if enrolled)")],
        h.input(id="totp", name="totp", autocomplete="one-time-code", inputmode="numeric",
                maxlength="20"),
        h.p[h.button(type="submit")[_("Log in")]],
    ])


@router.get("/language/{lang}", dependencies=[public()])
def switch_language(request: Request, lang: str, next: str = "/") -> Response:
    """The language switch: remembered in a cookie for a year, back to the page it was
    clicked on (a path of this site only)."""
    if lang not in i18n.LANGUAGES:
        return error_page(request, 404, _("no such language: {lang} (zh or en)").format(
            lang=lang[:20]), "lang", None)
    target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next \
        else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax",
                    secure=request.app.state.edc.settings.secure_cookies)
    return resp


@router.post("/login", dependencies=[public(), Csrf])
def login_submit(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
                 username: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)],
                 totp: Annotated[str, Form(max_length=20)] = "") -> Response:
    token, actor = accounts.login(session, ledger, username=username, password=password,
                                  totp=totp or None, client=client_address(request),
                                  config=state.auth, limiter=state.login_limiter)
    resp = redirect(request, "/", _("logged in"))
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                    secure=state.settings.secure_cookies)
    return resp


@router.post("/logout", dependencies=[authenticated(while_pending=True), Csrf])
def logout(request: Request, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor) -> Response:
    accounts.logout(session, ledger, actor=actor)
    resp = redirect(request, "/login", _("logged out"))
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/account/password", dependencies=[authenticated(while_pending=True)])
def password_form(request: Request, actor: CurrentActor) -> Response:
    return page(request, _("Change password"), h.form(method="post",
                                                          action="/account/password")[
        csrf_field(request),
        h.label(for_="current_password")[_("Current password")],
        h.input(id="current_password", name="current_password", type="password", required=True,
                autocomplete="current-password"),
        h.label(for_="new_password")[_("New password (12+ characters)")],
        h.input(id="new_password", name="new_password", type="password", required=True,
                minlength="12", autocomplete="new-password"),
        h.p[h.button(type="submit")[_("Save")]],
    ])


@router.post("/account/password", dependencies=[authenticated(while_pending=True), Csrf])
def password_submit(request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, auth: AuthDep,
                    current_password: Annotated[str, Form(max_length=1000)],
                    new_password: Annotated[str, Form(max_length=1000)]) -> Response:
    accounts.change_password(session, ledger, actor=actor, current=current_password,
                             new=new_password, config=auth)
    return redirect(request, "/", _("password changed"))


def _when(d: dt.datetime | None) -> str:
    return d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"



def _role_choice(name: str = "role", roles: Any = Role) -> h.Element:
    return _choice(id=name, name=name)[
        [h.option(value=r.value)[ROLE_LABELS[r]] for r in roles]]


@router.get("/account", dependencies=[authenticated()])
def account_home(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    own = tokens.list_tokens(session, actor=actor)
    rows = [h.tr[h.td[t.name], h.td[t.role], h.td[t.study or "*"], h.td[_when(t.expires_at)],
                 h.td[_when(t.last_used_at)],
                 h.td[_("revoked") if t.revoked_at else
                      h.form(".inline", method="post", action=f"/account/tokens/{t.id}/revoke")[
                          csrf_field(request),
                          h.button(type="submit")[_("Revoke")]]]] for t in own]
    held = sorted({r for r, _x in actor.grants}, key=lambda r: r.value)
    return page(
        request, _("My account"),
        h.p[h.a(href="/account/password")[_("Change password")]],
        h.p[h.a(href="/account/second-factor")[_("Second factor (TOTP)")], " — ",
            _("verified this session") if actor.second_factor else _("not used this session")],
        h.h2[_("API tokens")],
        h.table[h.thead[h.tr[h.th[_("Name")], h.th[_("Role")], h.th[_("Study")],
                             h.th[_("Expires")], h.th[_("Last used")], h.th[""]]],
                h.tbody[rows]],
        h.form(method="post", action="/account/tokens")[
            csrf_field(request),
            *labelled_input("name", _("Name"), required=True, maxlength="100"),
            h.label(for_="role")[_("Role")], _role_choice("role", held),
            *labelled_input("study", _("Study (optional)"), maxlength="100"),
            *labelled_input("days", _("Days valid"), type="number", value="30", min="1",
                            required=True),
            h.p[h.label(".check")[
                h.input(type="checkbox", name="redcap", value="on", id="redcap"), " ",
                _("REDCap shape (32 characters, for the REDCap-compatible /api/; give the "
                  "study)")]],
            h.p[h.button(type="submit")[_("Issue token")]],
        ])


@router.post("/account/tokens", dependencies=[authenticated(), Csrf])
def token_create(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                 auth: AuthDep, name: Annotated[str, Form(max_length=100)],
                 role: Annotated[Role, Form()], days: Annotated[int, Form(ge=1, le=3650)],
                 study: Annotated[str, Form(max_length=100)] = "",
                 redcap: Annotated[str, Form(max_length=10)] = "") -> Response:
    issued = tokens.create_token(session, ledger, actor=actor, name=name, role=role,
                                 study=study.strip() or None, days=days, config=auth,
                                 redcap=redcap == "on")
    # Shown once, in this response; never stored in clear and never put in a URL.
    return page(request, _("Token issued"),
                h.p[_("Copy it now; it will not be shown again.")],
                h.pre(".secret")[issued.token],
                h.p[_("For the REDCap-compatible API: POST /api/ (PyCap, REDCapR, "
                      "redcapAPI)")] if redcap == "on" else None,
                h.p[_("Expires: {expires_at}").format(expires_at=_when(issued.expires_at))],
                h.p[h.a(href="/account")[_("Back")]])


@router.post("/account/tokens/{token_id}/revoke", dependencies=[authenticated(), Csrf])
def token_revoke(request: Request, token_id: str, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    tokens.revoke_token(session, ledger, actor=actor, token_id=token_id[:36])
    return redirect(request, "/account", _("token revoked"))


@router.get("/account/second-factor", dependencies=[authenticated(while_pending=True)])
def totp_page(request: Request, session: SessionDep, actor: CurrentActor,
              auth: AuthDep) -> Response:
    if actor.pending == PENDING_PASSWORD:
        return redirect(request, "/account/password",
                        _("please set a new password first"))
    user = accounts.find_user(session, actor.username)
    if user is not None and user.totp_enabled:
        return page(request, _("Second factor"),
                    h.p[_("Enrolled. If you lose the phone, ask an administrator to reset it.")],
                    h.p(".flash")[_("This session was opened without it: log out and log in again "
                                    "with your code.")] if actor.pending else None,
                    h.form(method="post", action="/account/recovery-codes")[
                        csrf_field(request),
                        *labelled_input("password", _("Password"), type="password",
                                        required=True, autocomplete="current-password"),
                        h.p[h.button(type="submit")[_("New recovery codes")]]])
    secret, uri = accounts.enrol_second_factor_start(session, actor=actor, config=auth)
    return page(
        request, _("Enrol the second factor"),
        h.p[_("Scan the QR code with an authenticator app, then enter the 6-digit code it shows.")],
        h.img(".qr", src=totp_mod.qr_data_uri(uri), alt="TOTP QR code", width="200"),
        h.p[_("Or type this key:") + " ", h.code(".secret")[secret]],
        h.form(method="post", action="/account/second-factor")[
            csrf_field(request),
            *labelled_input("code", _("6-digit code"), required=True, maxlength="8",
                            autocomplete="one-time-code", inputmode="numeric"),
            h.p[h.button(type="submit")[_("Confirm")]]])


def _codes_page(request: Request, codes: list[str]) -> Response:
    # Shown once, in the POST's response (they are stored only as hashes).
    return page(request, _("Recovery codes"),
                h.p[_("Each code works once. Print or store them safely; they will not be shown "
                      "again.")],
                h.ul(".recovery-codes")[[h.li[h.code[c]] for c in codes]],
                h.p[h.a(href="/")[_("Continue")]])


@router.post("/account/second-factor", dependencies=[authenticated(while_pending=True), Csrf])
def totp_confirm(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                 auth: AuthDep, code: Annotated[str, Form(max_length=20)]) -> Response:
    codes = accounts.enrol_second_factor_confirm(session, ledger, actor=actor, code=code,
                                                 config=auth)
    return _codes_page(request, codes)


@router.post("/account/recovery-codes", dependencies=[authenticated(), Csrf])
def recovery_codes(request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, password: Annotated[str, Form(max_length=1000)]
                   ) -> Response:
    codes = accounts.regenerate_recovery_codes(session, ledger, actor=actor, password=password)
    return _codes_page(request, codes)


def _user_form(request: Request, action: str, label: str, username: str,
               *extra: h.Node) -> h.Element:
    return h.form(".inline", method="post", action=f"/admin/accounts/{action}")[
        csrf_field(request), h.input(type="hidden", name="username", value=username), *extra,
        h.button(type="submit")[label]]


@router.get("/admin/accounts", dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def admin_accounts(request: Request, session: SessionDep, actor: CurrentActor,
                   auth: AuthDep) -> Response:
    rows = []
    for a in account_admin.list_accounts(session, actor=actor, config=auth):
        rows.append(h.tr[
            h.td[a.username], h.td[a.display_name], h.td[", ".join(a.roles) or "—"],
            h.td[_("yes") if a.totp_enabled else _("no")],
            h.td[(_("locked until") + " " + _when(a.locked_until)) if a.locked_until else
                 (_("active") if a.is_active else _("inactive"))],
            h.td[str(a.open_sessions)],
            h.td[a.end_date.isoformat() if a.end_date else "—"],
            h.td[_user_form(request, "unlock", _("Unlock"), a.username),
                 _user_form(request, "reset-second-factor", _("Reset TOTP"),
                            a.username),
                 _user_form(request, "revoke-sessions", _("End sessions"), a.username)],
        ])
    return page(
        request, _("Accounts"),
        h.table[h.thead[h.tr[h.th[_("Username")], h.th[_("Name")],
                             h.th[_("Roles")], h.th[_("TOTP")],
                             h.th[_("State")], h.th[_("Sessions")],
                             h.th[_("End date")], h.th[""]]],
                h.tbody[rows]],
        h.h2[_("New account")],
        h.form(method="post", action="/admin/accounts")[
            csrf_field(request),
            *labelled_input("username", _("Username"), required=True, maxlength="63"),
            *labelled_input("display_name", _("Name"), required=True, maxlength="200"),
            *labelled_input("password", _("Initial password (changed at first login)"),
                            type="password", required=True,
                            autocomplete="new-password"),
            h.label(for_="role")[_("Role")], _role_choice(),
            *labelled_input("study", _("Study (optional)"), maxlength="100"),
            *labelled_input("site", _("Site (optional)"), maxlength="10"),
            h.p[h.button(type="submit")[_("Create")]]],
        h.h2[_("Grant or revoke a role")],
        h.form(method="post", action="/admin/accounts/grant")[
            csrf_field(request),
            *labelled_input("g_username", _("Username"), name="username", required=True),
            h.label(for_="g_role")[_("Role")], _role_choice("g_role"),
            *labelled_input("g_study", _("Study (optional)"), name="study"),
            *labelled_input("g_site", _("Site (optional)"), name="site"),
            h.label(for_="g_level")[_("Scope")],
            _choice(id="g_level", name="scope_level")[
                h.option(value="site")[_("This site (medical group)")],
                h.option(value="department")[_("Its department")],
                h.option(value="hospital")[_("Its hospital")]],
            h.label(for_="op")[_("Action")],
            _choice(id="op", name="op")[h.option(value="grant")[_("Grant")],
                                         h.option(value="revoke")[_("Revoke")]],
            h.p[h.button(type="submit")[_("Submit")]]],
        h.h2[_("Reset a password")],
        h.form(method="post", action="/admin/accounts/reset-password")[
            csrf_field(request),
            *labelled_input("r_username", _("Username"), name="username", required=True),
            *labelled_input("r_password", _("One-time password"), name="password",
                            type="password", required=True, autocomplete="new-password"),
            h.p[h.button(type="submit")[_("Reset")]]],
        h.h2[_("Account end date")],
        h.form(method="post", action="/admin/accounts/end-date")[
            csrf_field(request),
            *labelled_input("e_username", _("Username"), name="username", required=True),
            *labelled_input("e_end_date", _("Last day of use (empty: none)"), name="end_date",
                            type="date"),
            h.p[h.button(type="submit")[_("Save")]]],
    )


Username = Annotated[str, Form(max_length=63)]


@router.post("/admin/accounts", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_create(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                 auth: AuthDep, username: Username,
                 display_name: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)], role: Annotated[Role, Form()],
                 study: Annotated[str, Form(max_length=100)] = "",
                 site: Annotated[str, Form(max_length=10)] = "") -> Response:
    accounts.create_user(session, ledger, actor=actor, username=username,
                         display_name=display_name, password=password,
                         roles=[(role, study or None, site or None)], config=auth)
    return redirect(request, "/admin/accounts", _("account {username} created").format(
                                                    username=username))


@router.post("/admin/accounts/grant", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_grant(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                username: Username, g_role: Annotated[Role, Form()],
                op: Annotated[str, Form(pattern="^(grant|revoke)$")] = "grant",
                study: Annotated[str, Form(max_length=100)] = "",
                site: Annotated[str, Form(max_length=10)] = "",
                scope_level: Annotated[str, Form(max_length=12)] = "site") -> Response:
    if op == "grant":
        account_admin.grant_role(session, ledger, actor=actor, username=username, role=g_role,
                                 study=study or None, site=site or None, level=scope_level)
    else:
        account_admin.revoke_role(session, ledger, actor=actor, username=username, role=g_role,
                                  study=study or None, site=site or None)
    return redirect(request, "/admin/accounts", _("role {op} done").format(op=op))


def _admin_action(name: str, fn: Any, message: Label) -> None:
    @router.post(f"/admin/accounts/{name}", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf],
                 name=f"admin_{name}")
    def _action(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                username: Username) -> Response:
        fn(session, ledger, actor=actor, username=username)
        return redirect(request, "/admin/accounts", f"{username}: {message}")


_admin_action("unlock", account_admin.unlock, _l("unlocked"))
_admin_action("reset-second-factor", account_admin.reset_second_factor,
              _l("second factor reset"))
_admin_action("revoke-sessions", account_admin.revoke_sessions, _l("sessions ended"))


@router.post("/admin/accounts/reset-password",
             dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_reset_password(request: Request, session: SessionDep, ledger: LedgerDep,
                         actor: CurrentActor, auth: AuthDep, username: Username,
                         password: Annotated[str, Form(max_length=1000)]) -> Response:
    account_admin.reset_password(session, ledger, actor=actor, username=username,
                            new_password=password, config=auth)
    return redirect(request, "/admin/accounts", _("{username}: password reset").format(
                                                    username=username))


@router.post("/admin/accounts/end-date", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_end_date(request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, username: Username,
                   end_date: Annotated[str, Form(max_length=10)] = "") -> Response:
    end = account_admin.parse_end_date(end_date)
    account_admin.set_end_date(session, ledger, actor=actor, username=username, end_date=end)
    return redirect(request, "/admin/accounts",
                    f"{username}: " + (_("ends after {end}").format(end=end) if end
                                       else _("no end date")))


# ---- recipient organisations (§11.3.4.6, §7 p) ------------------------------------------------

@router.get("/admin/organisations", dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def admin_organisations(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.code[o["code"]]], h.td[o["label"]],
                 h.td[orgs.KIND_LABELS[orgs.OrgKind(o["kind"])]], h.td[o["country_label"]],
                 h.td[_("yes") if o["abroad"] else _("no")],
                 h.td(".members")[", ".join(o["members"] or []) or "—"]]
            for o in orgs.organisations_view(session, actor=actor)]
    return page(
        request, _("Recipient organisations"),
        h.p[_("An extract request names a registered organisation; its kind decides the tiers it "
              "may receive (§11.3.4.6), its registered country whether the data leave the country "
              "(§7 p).")],
        h.table(".organisations")[
            h.thead[h.tr[h.th[_("Code")], h.th[_("Name")], h.th[_("Kind")],
                         h.th[_("Country")], h.th[_("Abroad")],
                         h.th[_("Accounts")]]],
            h.tbody[rows or h.tr[h.td(colspan="6")[_("None")]]]],
        h.h2[_("Register an organisation")],
        h.form(method="post", action="/admin/organisations")[
            csrf_field(request),
            *labelled_input("code", _("Code"), required=True, maxlength="40"),
            *labelled_input("name_zh", _("Name (Chinese)"), required=True,
                            maxlength="200"),
            *labelled_input("name_en", _("Name (English)"), required=True,
                            maxlength="200"),
            h.label(for_="kind")[_("Kind")],
            _choice(id="kind", name="kind")[[h.option(value=k.value)[label]
                                             for k, label in orgs.KIND_LABELS.items()]],
            h.label(for_="country")[_("Registered country")],
            _choice(id="country", name="country")[
                [h.option(value=c, selected=c == orgs.DEFAULT_HOME_COUNTRY)[f"{c} {label}"]
                 for c, label in orgs.countries()]],
            h.p[h.button(type="submit")[_("Register")]]],
        h.h2[_("An account's organisation")],
        h.form(method="post", action="/admin/organisations/affiliate")[
            csrf_field(request),
            *labelled_input("a_username", _("Username"), name="username", required=True,
                            maxlength="63"),
            h.label(for_="organisation")[_("Organisation (empty: none)")],
            _choice(id="organisation", name="organisation")[
                h.option(value="")[_("— none —")],
                [h.option(value=o.code)[f"{o.code} — {o.label}"]
                 for o in orgs.list_organisations(session)]],
            h.p[h.button(type="submit")[_("Save")]]])


@router.post("/admin/organisations", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_organisation_create(request: Request, session: SessionDep, ledger: LedgerDep,
                              actor: CurrentActor, code: Annotated[str, Form(max_length=40)],
                              name_zh: Annotated[str, Form(max_length=200)],
                              name_en: Annotated[str, Form(max_length=200)],
                              kind: Annotated[str, Form(max_length=20)],
                              country: Annotated[str, Form(max_length=2)]) -> Response:
    org = orgs.register_organisation(session, ledger, actor=actor, code=code, name_zh=name_zh,
                                     name_en=name_en, kind=kind, country=country)
    return redirect(request, "/admin/organisations",
                    _("{code} registered").format(code=org.code))


@router.post("/admin/organisations/affiliate",
             dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_affiliate(request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, username: Username,
                    organisation: Annotated[str, Form(max_length=40)] = "") -> Response:
    orgs.affiliate(session, ledger, actor=actor, username=username,
                   organisation=organisation or None)
    return redirect(request, "/admin/organisations", _("{username}: saved").format(
                                                         username=username))
