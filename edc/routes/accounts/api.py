"""JSON API of the accounts domain under /api/v1 (documented by FastAPI's OpenAPI at
/api/v1/docs): log in and out, the own account (password, second factor, API tokens) and
account administration."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edc.deps import (
    SESSION_COOKIE,
    AuthDep,
    CurrentActor,
    LedgerDep,
    SessionDep,
    StateDep,
    client_address,
)
from edc.errors import ServerBusy, raises
from edc.policy import ApiRouter, authenticated, public, requires
from studies.accounts import admin as account_admin
from studies.accounts import organisations as orgs
from studies.accounts import service as accounts
from studies.accounts import tokens
from studies.accounts.schemas import (
    AccountCreatedOut,
    AccountOut,
    LoginOut,
    MeOut,
    OrganisationOut,
    RecoveryCodesOut,
    SecondFactorStartOut,
    SessionsEndedOut,
    TokenIssuedOut,
    TokenOut,
)
from studies.kernel.errors import Locked, NotAuthenticated, TooManyRequests
from studies.kernel.roles import Perm, Role
from studies.kernel.schemas import StatusOut

router = ApiRouter(prefix="/api/v1")


class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)


@router.post("/auth/login", response_model=LoginOut, dependencies=[public()],
             responses=raises(NotAuthenticated, Locked, TooManyRequests, ServerBusy))
def api_login(body: LoginIn, request: Request, session: SessionDep, ledger: LedgerDep,
              state: StateDep) -> JSONResponse:
    token, actor = accounts.login(session, ledger, username=body.username,
                                  password=body.password, totp=body.totp,
                                  client=client_address(request), config=state.auth,
                                  limiter=state.login_limiter)
    resp = JSONResponse({"username": actor.username,
                         "must_change_password": actor.must_change_password,
                         "pending": actor.pending, "second_factor": actor.second_factor})
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                    secure=state.settings.secure_cookies)
    return resp


@router.post("/auth/logout", response_model=StatusOut,
             dependencies=[authenticated(while_pending=True)])
def api_logout(session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> JSONResponse:
    accounts.logout(session, ledger, actor=actor)
    resp = JSONResponse({"status": "logged out"})
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/me", response_model=MeOut, dependencies=[authenticated(while_pending=True)])
def me(actor: CurrentActor) -> MeOut:
    return MeOut(username=actor.username, display_name=actor.display_name,
                 roles=[{"role": r.value, "study": s, "site": t}
                        for r, s, t in actor.scope_triples()],
                 must_change_password=actor.must_change_password, pending=actor.pending,
                 second_factor=actor.second_factor, via_token=actor.token_id is not None)


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=1000)
    new_password: str = Field(max_length=1000)


@router.post("/account/password", response_model=StatusOut,
             dependencies=[authenticated(while_pending=True)])
def api_password(body: PasswordIn, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                 auth: AuthDep) -> dict[str, str]:
    accounts.change_password(session, ledger, actor=actor, current=body.current_password,
                             new=body.new_password, config=auth)
    return {"status": "password changed"}


@router.post("/account/second-factor/start", response_model=SecondFactorStartOut,
             dependencies=[authenticated(while_pending=True)])
def api_totp_start(session: SessionDep, actor: CurrentActor, auth: AuthDep) -> dict[str, str]:
    secret, uri = accounts.enrol_second_factor_start(session, actor=actor, config=auth)
    return {"secret": secret, "otpauth_uri": uri}


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=20)


@router.post("/account/second-factor/confirm", response_model=RecoveryCodesOut,
             dependencies=[authenticated(while_pending=True)])
def api_totp_confirm(body: CodeIn, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                     auth: AuthDep) -> dict[str, list[str]]:
    codes = accounts.enrol_second_factor_confirm(session, ledger, actor=actor, code=body.code,
                                                 config=auth)
    return {"recovery_codes": codes}


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    study: str | None = Field(default=None, max_length=100)
    days: int = Field(default=30, ge=1, le=3650)
    redcap: bool = Field(default=False, description=(
        "issue it in REDCap's shape (32 hexadecimal characters) for POST /api/ "
        "(PyCap, REDCapR); needs a study"))


def _token_out(t: tokens.TokenView) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, username=t.username, role=t.role, study=t.study,
                    created_at=t.created_at, expires_at=t.expires_at, revoked_at=t.revoked_at,
                    last_used_at=t.last_used_at)


@router.get("/tokens", response_model=list[TokenOut], dependencies=[authenticated()])
def api_tokens(session: SessionDep, actor: CurrentActor) -> list[TokenOut]:
    return [_token_out(t) for t in tokens.list_tokens(session, actor=actor)]


@router.post("/tokens", status_code=201, response_model=TokenIssuedOut,
             dependencies=[authenticated()])
def api_token_create(body: TokenIn, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                     auth: AuthDep) -> dict[str, str]:
    issued = tokens.create_token(session, ledger, actor=actor, name=body.name, role=body.role,
                                 study=body.study, days=body.days, config=auth,
                                 redcap=body.redcap)
    return {"id": issued.id, "token": issued.token, "expires_at": issued.expires_at.isoformat()}


@router.post("/tokens/{token_id}/revoke", response_model=StatusOut, dependencies=[authenticated()])
def api_token_revoke(token_id: str, session: SessionDep, ledger: LedgerDep,
                     actor: CurrentActor) -> dict[str, str]:
    tokens.revoke_token(session, ledger, actor=actor, token_id=token_id[:36])
    return {"status": "revoked"}


class GrantIn(BaseModel):
    role: Role
    study: str | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, max_length=10)
    scope_level: Literal["site", "department", "hospital"] = Field(
        default="site", description="site: that site only; department / hospital: every site "
                    "of the study in the site's department")


class AccountIn(BaseModel):
    username: str = Field(max_length=63)
    display_name: str = Field(max_length=200)
    password: str = Field(max_length=1000)
    roles: list[GrantIn] = Field(default_factory=list, max_length=50)


class UserIn(BaseModel):
    username: str = Field(max_length=63)


class UserGrantIn(GrantIn):
    username: str = Field(max_length=63)


class UserPasswordIn(BaseModel):
    username: str = Field(max_length=63)
    password: str = Field(max_length=1000)


@router.get("/admin/accounts", response_model=list[AccountOut],
            dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_accounts(session: SessionDep, actor: CurrentActor,
                 auth: AuthDep) -> list[dict[str, object]]:
    return [{"username": a.username, "display_name": a.display_name, "active": a.is_active,
             "must_change_password": a.must_change_password, "totp_enabled": a.totp_enabled,
             "roles": a.roles, "open_sessions": a.open_sessions,
             "locked_until": a.locked_until.isoformat() if a.locked_until else None,
             "end_date": a.end_date.isoformat() if a.end_date else None}
            for a in account_admin.list_accounts(session, actor=actor, config=auth)]


@router.post("/admin/accounts", status_code=201, response_model=AccountCreatedOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_account_create(body: AccountIn, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor, auth: AuthDep) -> dict[str, str]:
    user = accounts.create_user(session, ledger, actor=actor, username=body.username,
                                display_name=body.display_name, password=body.password,
                                roles=[(g.role, g.study, g.site, g.scope_level)
                                       for g in body.roles],
                                config=auth)
    return {"id": user.id, "username": user.username}


@router.post("/admin/accounts/grant", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_grant(body: UserGrantIn, session: SessionDep, ledger: LedgerDep,
              actor: CurrentActor) -> dict[str, str]:
    account_admin.grant_role(session, ledger, actor=actor, username=body.username, role=body.role,
                             study=body.study, site=body.site, level=body.scope_level)
    return {"status": "granted"}


@router.post("/admin/accounts/revoke", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_revoke(body: UserGrantIn, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, str]:
    account_admin.revoke_role(session, ledger, actor=actor, username=body.username, role=body.role,
                         study=body.study, site=body.site)
    return {"status": "revoked"}


@router.post("/admin/accounts/unlock", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_unlock(body: UserIn, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, str]:
    account_admin.unlock(session, ledger, actor=actor, username=body.username)
    return {"status": "unlocked"}


@router.post("/admin/accounts/reset-second-factor", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_reset_totp(body: UserIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, str]:
    account_admin.reset_second_factor(session, ledger, actor=actor, username=body.username)
    return {"status": "second factor reset"}


@router.post("/admin/accounts/revoke-sessions", response_model=SessionsEndedOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_revoke_sessions(body: UserIn, session: SessionDep, ledger: LedgerDep,
                        actor: CurrentActor) -> dict[str, object]:
    n = account_admin.revoke_sessions(session, ledger, actor=actor, username=body.username)
    return {"status": "sessions ended", "ended": n}


@router.post("/admin/accounts/reset-password", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_reset_password(body: UserPasswordIn, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor, auth: AuthDep) -> dict[str, str]:
    account_admin.reset_password(session, ledger, actor=actor, username=body.username,
                            new_password=body.password, config=auth)
    return {"status": "password reset; the user must change it at next login"}


class EndDateIn(BaseModel):
    username: str = Field(max_length=63)
    end_date: str | None = Field(default=None, max_length=10,
                                 description="YYYY-MM-DD, the last day the account may be "
                                 "used; null or empty: no end date")


@router.post("/admin/accounts/end-date", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_end_date(body: EndDateIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> dict[str, str]:
    """Set or clear an account's end date (§11.3.2); after it the account cannot log in and
    its API tokens stop working."""
    end = account_admin.parse_end_date(body.end_date)
    account_admin.set_end_date(session, ledger, actor=actor, username=body.username,
                               end_date=end)
    return {"status": f"ends after {end.isoformat()}" if end else "no end date"}


@router.get("/admin/tokens", response_model=list[TokenOut],
            dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_all_tokens(session: SessionDep, actor: CurrentActor) -> list[TokenOut]:
    return [_token_out(t) for t in tokens.list_tokens(session, actor=actor, all_users=True)]


# ---- recipient organisations (§11.3.4.6, §7 p) ------------------------------------------------


class OrganisationIn(BaseModel):
    code: str = Field(max_length=40, description="what a request names, e.g. demo-pharma")
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    kind: str = Field(max_length=20, description="hospital, institution, company or government")
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2, e.g. CN")


class AffiliationIn(BaseModel):
    username: str = Field(max_length=63)
    organisation: str | None = Field(default=None, max_length=40,
                                     description="id or code; null: no organisation")


@router.get("/organisations", response_model=list[OrganisationOut],
            dependencies=[authenticated()])
def api_organisations(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """The registered recipient organisations a request may name (by code or id); their
    member accounts are listed to the administrator only."""
    return orgs.organisations_view(session, actor=actor)


@router.post("/admin/organisations", status_code=201, response_model=OrganisationOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_organisation_create(body: OrganisationIn, session: SessionDep, ledger: LedgerDep,
                            actor: CurrentActor) -> dict[str, Any]:
    org = orgs.register_organisation(session, ledger, actor=actor, code=body.code,
                                     name_zh=body.name_zh, name_en=body.name_en,
                                     kind=body.kind, country=body.country)
    return orgs.organisation_view(session, org, with_members=True)


@router.post("/admin/accounts/affiliate", response_model=StatusOut,
             dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def api_affiliate(body: AffiliationIn, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, str]:
    """Make an account belong to an organisation (at most one), or to none."""
    orgs.affiliate(session, ledger, actor=actor, username=body.username,
                   organisation=body.organisation)
    return {"status": "affiliated" if body.organisation else "no organisation"}
