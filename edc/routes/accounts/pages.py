"""Pages of the accounts domain: log in, log out, password change, the own account (API
tokens, second factor, recovery codes) and account administration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import htpy as h
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

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
from edc.web.csrf import Csrf
from edc.web.layout import csrf_field, page, redirect
from edc.web.widgets import labelled_input
from studies.accounts import admin as account_admin
from studies.accounts import organisations as orgs
from studies.accounts import service as accounts
from studies.accounts import tokens
from studies.accounts import totp as totp_mod
from studies.kernel.actor import PENDING_PASSWORD
from studies.kernel.roles import ROLE_LABELS, Perm, Role

router = APIRouter()
_choice = h.select  # (named so: the architecture test greps route modules for "select" calls)


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
                 h.td["已撤销 / revoked" if t.revoked_at else
                      h.form(".inline", method="post", action=f"/account/tokens/{t.id}/revoke")[
                          csrf_field(request),
                          h.button(type="submit")["撤销 / Revoke"]]]] for t in own]
    held = sorted({r for r, _ in actor.grants}, key=lambda r: r.value)
    return page(
        request, "我的账户 / My account",
        h.p[h.a(href="/account/password")["修改密码 / Change password"]],
        h.p[h.a(href="/account/second-factor")["动态口令 / Second factor (TOTP)"], " — ",
            "已验证 / verified this session" if actor.second_factor else "本次会话未验证 / "
            "not used this session"],
        h.h2["API 令牌 / API tokens"],
        h.table[h.thead[h.tr[h.th["名称 / Name"], h.th["角色 / Role"], h.th["研究 / Study"],
                             h.th["到期 / Expires"], h.th["最近使用 / Last used"], h.th[""]]],
                h.tbody[rows]],
        h.form(method="post", action="/account/tokens")[
            csrf_field(request),
            *labelled_input("name", "名称 / Name", required=True, maxlength="100"),
            h.label(for_="role")["角色 / Role"], _role_choice("role", held),
            *labelled_input("study", "研究（可选）/ Study (optional)", maxlength="100"),
            *labelled_input("days", "有效天数 / Days valid", type="number", value="30", min="1",
                            required=True),
            h.p[h.label(".check")[
                h.input(type="checkbox", name="redcap", value="on", id="redcap"), " ",
                "REDCap 格式（32 位，用于 REDCap 兼容接口 /api/，须指定研究）/ REDCap shape (32 "
                "characters, for the REDCap-compatible /api/; give the study)"]],
            h.p[h.button(type="submit")["签发令牌 / Issue token"]],
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
    return page(request, "令牌已签发 / Token issued",
                h.p["请立即复制；此后不再显示。/ Copy it now; it will not be shown again."],
                h.pre(".secret")[issued.token],
                h.p["用于 REDCap 兼容接口 / For the REDCap-compatible API: "
                    "POST /api/ (PyCap, REDCapR, redcapAPI)"] if redcap == "on" else None,
                h.p[f"到期 / Expires: {_when(issued.expires_at)}"],
                h.p[h.a(href="/account")["返回 / Back"]])


@router.post("/account/tokens/{token_id}/revoke", dependencies=[authenticated(), Csrf])
def token_revoke(request: Request, token_id: str, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> Response:
    tokens.revoke_token(session, ledger, actor=actor, token_id=token_id[:36])
    return redirect(request, "/account", "token revoked / 令牌已撤销")


@router.get("/account/second-factor", dependencies=[authenticated(while_pending=True)])
def totp_page(request: Request, session: SessionDep, actor: CurrentActor,
              auth: AuthDep) -> Response:
    if actor.pending == PENDING_PASSWORD:
        return redirect(request, "/account/password",
                        "please set a new password first / 请先修改初始密码")
    user = accounts.find_user(session, actor.username)
    if user is not None and user.totp_enabled:
        return page(request, "动态口令 / Second factor",
                    h.p["已绑定。手机丢失请联系管理员重置。/ Enrolled. If you lose the phone, "
                        "ask an administrator to reset it."],
                    h.p(".flash")["本次会话未使用动态口令：请退出后用动态口令重新登录。/ This "
                                  "session was opened without it: log out and log in again "
                                  "with your code."] if actor.pending else None,
                    h.form(method="post", action="/account/recovery-codes")[
                        csrf_field(request),
                        *labelled_input("password", "密码 / Password", type="password",
                                        required=True, autocomplete="current-password"),
                        h.p[h.button(type="submit")["生成新的恢复码 / New recovery codes"]]])
    secret, uri = accounts.enrol_second_factor_start(session, actor=actor, config=auth)
    return page(
        request, "绑定动态口令 / Enrol the second factor",
        h.p["用验证器应用（如 Microsoft/Google Authenticator、FreeOTP）扫描二维码，然后输入其显示的"
            "6 位数字。/ Scan the QR code with an authenticator app, then enter the 6-digit "
            "code it shows."],
        h.img(".qr", src=totp_mod.qr_data_uri(uri), alt="TOTP QR code", width="200"),
        h.p["无法扫描时手动输入密钥 / Or type this key: ", h.code(".secret")[secret]],
        h.form(method="post", action="/account/second-factor")[
            csrf_field(request),
            *labelled_input("code", "6 位动态口令 / 6-digit code", required=True, maxlength="8",
                            autocomplete="one-time-code", inputmode="numeric"),
            h.p[h.button(type="submit")["确认绑定 / Confirm"]]])


def _codes_page(request: Request, codes: list[str]) -> Response:
    # Shown once, in the POST's response (they are stored only as hashes).
    return page(request, "恢复码 / Recovery codes",
                h.p["每个恢复码只能使用一次；请打印或妥善保存，此后不再显示。/ Each code works "
                    "once. Print or store them safely; they will not be shown again."],
                h.ul(".recovery-codes")[[h.li[h.code[c]] for c in codes]],
                h.p[h.a(href="/")["继续 / Continue"]])


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
            h.td["是 / yes" if a.totp_enabled else "否 / no"],
            h.td[("锁定至 / locked until " + _when(a.locked_until)) if a.locked_until else
                 ("启用 / active" if a.is_active else "停用 / inactive")],
            h.td[str(a.open_sessions)],
            h.td[a.end_date.isoformat() if a.end_date else "—"],
            h.td[_user_form(request, "unlock", "解锁 / Unlock", a.username),
                 _user_form(request, "reset-second-factor", "重置动态口令 / Reset TOTP",
                            a.username),
                 _user_form(request, "revoke-sessions", "结束会话 / End sessions", a.username)],
        ])
    return page(
        request, "账户管理 / Accounts",
        h.table[h.thead[h.tr[h.th["用户名 / Username"], h.th["姓名 / Name"],
                             h.th["角色 / Roles"], h.th["动态口令 / TOTP"],
                             h.th["状态 / State"], h.th["会话 / Sessions"],
                             h.th["结束日期 / End date"], h.th[""]]],
                h.tbody[rows]],
        h.h2["新建账户 / New account"],
        h.form(method="post", action="/admin/accounts")[
            csrf_field(request),
            *labelled_input("username", "用户名 / Username", required=True, maxlength="63"),
            *labelled_input("display_name", "姓名 / Name", required=True, maxlength="200"),
            *labelled_input("password", "初始密码（首次登录须修改）/ Initial password (changed at "
                            "first login)", type="password", required=True,
                            autocomplete="new-password"),
            h.label(for_="role")["角色 / Role"], _role_choice(),
            *labelled_input("study", "研究（可选）/ Study (optional)", maxlength="100"),
            *labelled_input("site", "中心（可选）/ Site (optional)", maxlength="10"),
            h.p[h.button(type="submit")["创建 / Create"]]],
        h.h2["授予或撤销角色 / Grant or revoke a role"],
        h.form(method="post", action="/admin/accounts/grant")[
            csrf_field(request),
            *labelled_input("g_username", "用户名 / Username", name="username", required=True),
            h.label(for_="g_role")["角色 / Role"], _role_choice("g_role"),
            *labelled_input("g_study", "研究（可选）/ Study (optional)", name="study"),
            *labelled_input("g_site", "中心（可选）/ Site (optional)", name="site"),
            h.label(for_="g_level")["范围 / Scope"],
            _choice(id="g_level", name="scope_level")[
                h.option(value="site")["该中心（医疗组）/ This site (medical group)"],
                h.option(value="department")["该中心所在科室 / Its department"],
                h.option(value="hospital")["该中心所在医院（全院）/ Its hospital"]],
            h.label(for_="op")["操作 / Action"],
            _choice(id="op", name="op")[h.option(value="grant")["授予 / Grant"],
                                         h.option(value="revoke")["撤销 / Revoke"]],
            h.p[h.button(type="submit")["提交 / Submit"]]],
        h.h2["重置密码 / Reset a password"],
        h.form(method="post", action="/admin/accounts/reset-password")[
            csrf_field(request),
            *labelled_input("r_username", "用户名 / Username", name="username", required=True),
            *labelled_input("r_password", "一次性密码 / One-time password", name="password",
                            type="password", required=True, autocomplete="new-password"),
            h.p[h.button(type="submit")["重置 / Reset"]]],
        h.h2["账户结束日期 / Account end date"],
        h.form(method="post", action="/admin/accounts/end-date")[
            csrf_field(request),
            *labelled_input("e_username", "用户名 / Username", name="username", required=True),
            *labelled_input("e_end_date", "最后可用日期（留空：不限）/ Last day of use (empty: "
                            "none)", name="end_date", type="date"),
            h.p[h.button(type="submit")["保存 / Save"]]],
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
    return redirect(request, "/admin/accounts", f"account {username} created / 账户已创建")


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
    return redirect(request, "/admin/accounts", f"role {op} done / 已完成")


def _admin_action(name: str, fn: Any, message: str) -> None:
    @router.post(f"/admin/accounts/{name}", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf],
                 name=f"admin_{name}")
    def _action(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                username: Username) -> Response:
        fn(session, ledger, actor=actor, username=username)
        return redirect(request, "/admin/accounts", f"{username}: {message}")


_admin_action("unlock", account_admin.unlock, "unlocked / 已解锁")
_admin_action("reset-second-factor", account_admin.reset_second_factor,
              "second factor reset / 动态口令已重置")
_admin_action("revoke-sessions", account_admin.revoke_sessions, "sessions ended / 会话已结束")


@router.post("/admin/accounts/reset-password",
             dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_reset_password(request: Request, session: SessionDep, ledger: LedgerDep,
                         actor: CurrentActor, auth: AuthDep, username: Username,
                         password: Annotated[str, Form(max_length=1000)]) -> Response:
    account_admin.reset_password(session, ledger, actor=actor, username=username,
                            new_password=password, config=auth)
    return redirect(request, "/admin/accounts", f"{username}: password reset / 密码已重置")


@router.post("/admin/accounts/end-date", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_end_date(request: Request, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor, username: Username,
                   end_date: Annotated[str, Form(max_length=10)] = "") -> Response:
    end = account_admin.parse_end_date(end_date)
    account_admin.set_end_date(session, ledger, actor=actor, username=username, end_date=end)
    return redirect(request, "/admin/accounts",
                    f"{username}: " + (f"ends after {end} / 结束日期 {end}" if end
                                       else "no end date / 无结束日期"))


# ---- recipient organisations (§11.3.4.6, §7 p) ------------------------------------------------

@router.get("/admin/organisations", dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def admin_organisations(request: Request, session: SessionDep, actor: CurrentActor) -> Response:
    rows = [h.tr[h.td[h.code[o["code"]]], h.td[o["label"]],
                 h.td[orgs.KIND_LABELS[orgs.OrgKind(o["kind"])]], h.td[o["country_label"]],
                 h.td["是 / yes" if o["abroad"] else "否 / no"],
                 h.td(".members")[", ".join(o["members"] or []) or "—"]]
            for o in orgs.organisations_view(session, actor=actor)]
    return page(
        request, "接收机构 / Recipient organisations",
        h.p["数据提取申请须指定已登记的接收机构；机构类型决定可获得的数据集级别（§11.3.4.6），"
            "登记国家决定数据是否出境（§7 p）。 / An extract request names a registered "
            "organisation; its kind decides the tiers it may receive (§11.3.4.6), its "
            "registered country whether the data leave the country (§7 p)."],
        h.table(".organisations")[
            h.thead[h.tr[h.th["代码 / Code"], h.th["名称 / Name"], h.th["类型 / Kind"],
                         h.th["国家 / Country"], h.th["境外 / Abroad"],
                         h.th["所属账户 / Accounts"]]],
            h.tbody[rows or h.tr[h.td(colspan="6")["暂无 / None"]]]],
        h.h2["登记机构 / Register an organisation"],
        h.form(method="post", action="/admin/organisations")[
            csrf_field(request),
            *labelled_input("code", "代码 / Code", required=True, maxlength="40"),
            *labelled_input("name_zh", "中文名称 / Name (Chinese)", required=True,
                            maxlength="200"),
            *labelled_input("name_en", "英文名称 / Name (English)", required=True,
                            maxlength="200"),
            h.label(for_="kind")["类型 / Kind"],
            _choice(id="kind", name="kind")[[h.option(value=k.value)[label]
                                             for k, label in orgs.KIND_LABELS.items()]],
            h.label(for_="country")["登记国家 / Registered country"],
            _choice(id="country", name="country")[
                [h.option(value=c, selected=c == orgs.DEFAULT_HOME_COUNTRY)[f"{c} {label}"]
                 for c, label in orgs.countries()]],
            h.p[h.button(type="submit")["登记 / Register"]]],
        h.h2["账户所属机构 / An account's organisation"],
        h.form(method="post", action="/admin/organisations/affiliate")[
            csrf_field(request),
            *labelled_input("a_username", "用户名 / Username", name="username", required=True,
                            maxlength="63"),
            h.label(for_="organisation")["机构（留空：无）/ Organisation (empty: none)"],
            _choice(id="organisation", name="organisation")[
                h.option(value="")["— 无 / none —"],
                [h.option(value=o.code)[f"{o.code} — {o.label}"]
                 for o in orgs.list_organisations(session)]],
            h.p[h.button(type="submit")["保存 / Save"]]])


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
                    f"{org.code} registered / 机构已登记")


@router.post("/admin/organisations/affiliate",
             dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_affiliate(request: Request, session: SessionDep, ledger: LedgerDep,
                    actor: CurrentActor, username: Username,
                    organisation: Annotated[str, Form(max_length=40)] = "") -> Response:
    orgs.affiliate(session, ledger, actor=actor, username=username,
                   organisation=organisation or None)
    return redirect(request, "/admin/organisations", f"{username}: saved / 已保存")
