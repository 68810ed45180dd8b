"""Pages for people: home, login, logout, password change, audit status."""

from __future__ import annotations

from typing import Annotated

import htpy as h
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from audit_trail import service as ledger_service
from audit_trail.errors import LedgerIntegrityError
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
from edc.web.layout import CSRF_COOKIE, csrf_field, page, redirect
from studies.accounts import service as accounts
from studies.kernel.errors import PermissionDenied
from studies.kernel.roles import ROLE_LABELS, Perm
from studies.signoff.service import inbox_for


async def verify_csrf(request: Request) -> None:
    """Double-submit check on every form POST: the hidden field must equal the cookie."""
    form = await request.form()
    sent = form.get("csrf_token")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(sent, str) or sent != cookie:
        raise PermissionDenied("the form has expired or was not sent from this site; reload "
                               "the page and try again / 表单已失效，请刷新后重试")


router = APIRouter()
Csrf = Depends(verify_csrf)


@router.get("/", dependencies=[authenticated()])
def home(request: Request, actor: CurrentActor, session: SessionDep) -> Response:
    roles = [h.li[ROLE_LABELS[r] + (f" — {s}" if s else "") + (f" / {t}" if t else "")]
             for r, s, t in actor.scope_triples()]
    inbox = [h.li[h.a(href=m.link)[m.text] if m.link else m.text,
                  f" — {m.study} · {m.by} · {m.at:%Y-%m-%d %H:%M} UTC"]
             for m in inbox_for(session, actor=actor)]
    return page(request, "首页 / Home",
                h.p[f"欢迎 / Welcome, {actor.display_name}."],
                h.h2["您的角色 / Your roles"], h.ul[roles or h.li["—"]],
                h.h2["团队消息 / Team inbox"], h.ul(".inbox")[inbox or h.li["—"]])


@router.get("/login", dependencies=[public()])
def login_form(request: Request) -> Response:
    return page(request, "登录 / Log in", h.form(method="post", action="/login")[
        csrf_field(request),
        h.label(for_="username")["用户名 / Username"],
        h.input(id="username", name="username", autocomplete="username", required=True),
        h.label(for_="password")["密码 / Password"],
        h.input(id="password", name="password", type="password",
                autocomplete="current-password", required=True),
        h.label(for_="totp")["动态口令或恢复码（如已绑定）/ Authenticator or recovery code "
                             "(if enrolled)"],
        h.input(id="totp", name="totp", autocomplete="one-time-code", inputmode="numeric",
                maxlength="20"),
        h.p[h.button(type="submit")["登录 / Log in"]],
    ])


@router.post("/login", dependencies=[public(), Csrf])
def login_submit(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
                 username: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)],
                 totp: Annotated[str, Form(max_length=20)] = "") -> Response:
    token, actor = accounts.login(session, ledger, username=username, password=password,
                                  totp=totp or None, client=client_address(request),
                                  config=state.auth, limiter=state.login_limiter)
    resp = redirect(request, "/", "logged in / 已登录")
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                    secure=state.settings.secure_cookies)
    return resp


@router.post("/logout", dependencies=[authenticated(while_pending=True), Csrf])
def logout(request: Request, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor) -> Response:
    accounts.logout(session, ledger, actor=actor)
    resp = redirect(request, "/login", "logged out / 已退出")
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/account/password", dependencies=[authenticated(while_pending=True)])
def password_form(request: Request, actor: CurrentActor) -> Response:
    return page(request, "修改密码 / Change password", h.form(method="post",
                                                          action="/account/password")[
        csrf_field(request),
        h.label(for_="current_password")["当前密码 / Current password"],
        h.input(id="current_password", name="current_password", type="password", required=True,
                autocomplete="current-password"),
        h.label(for_="new_password")["新密码（至少 12 位）/ New password (12+ characters)"],
        h.input(id="new_password", name="new_password", type="password", required=True,
                minlength="12", autocomplete="new-password"),
        h.p[h.button(type="submit")["保存 / Save"]],
    ])


@router.post("/account/password", dependencies=[authenticated(while_pending=True), Csrf])
def password_submit(request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, auth: AuthDep,
                    current_password: Annotated[str, Form(max_length=1000)],
                    new_password: Annotated[str, Form(max_length=1000)]) -> Response:
    accounts.change_password(session, ledger, actor=actor, current=current_password,
                             new=new_password, config=auth)
    return redirect(request, "/", "password changed / 密码已修改")


@router.get("/audit", dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_status(request: Request, session: SessionDep, state: StateDep,
                 actor: CurrentActor) -> Response:
    try:
        report = ledger_service.verify(session, vkey=state.keys.signer.vkey)
        verdict = h.p(".ok")["✔ " + report.summary()]
    except LedgerIntegrityError as exc:
        verdict = h.p(".bad", role="alert")[f"✘ {exc}"]
    cps = ledger_service.list_checkpoints(session)
    rows = [h.tr[h.td[str(c.tree_size)], h.td[c.root_hash.hex()[:32] + "…"], h.td[c.reason],
                 h.td[c.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")]] for c in cps[-20:]]
    return page(request, "审计轨迹 / Audit trail", verdict,
                h.p["验证公钥 / Verifier key: ", h.code[state.keys.signer.vkey]],
                h.h2["最近的签名检查点 / Latest signed checkpoints"],
                h.table[h.thead[h.tr[h.th["大小 / Size"], h.th["根哈希 / Root"],
                                     h.th["原因 / Reason"], h.th["时间 / Time"]]],
                        h.tbody[rows]])
