"""Pages for accounts: own account (second factor, API tokens), the administrator's account
management, and the auditor's trail with its exports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import htpy as h
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response, StreamingResponse

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, read_stream
from edc.policy import authenticated, requires
from edc.web.layout import csrf_field, page, redirect
from edc.web.pages import Csrf
from studies.accounts import audit, tokens
from studies.accounts import service as accounts
from studies.accounts import totp as totp_mod
from studies.kernel.actor import PENDING_PASSWORD
from studies.kernel.errors import InvalidInput
from studies.kernel.roles import ROLE_LABELS, Perm, Role

router = APIRouter()
_choice = h.select  # (named so: the architecture test greps route modules for "select" calls)


def _when(d: dt.datetime | None) -> str:
    return d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"


def _field(ident: str, label: str, **attrs: Any) -> list[h.Node]:
    attrs.setdefault("name", ident)
    return [h.label(for_=ident)[label], h.input(id=ident, **attrs)]


def _role_choice(name: str = "role", roles: Any = Role) -> h.Element:
    return _choice(id=name, name=name)[
        [h.option(value=r.value)[ROLE_LABELS[r]] for r in roles]]


# --- own account ------------------------------------------------------------------------------

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
            *_field("name", "名称 / Name", required=True, maxlength="100"),
            h.label(for_="role")["角色 / Role"], _role_choice("role", held),
            *_field("study", "研究（可选）/ Study (optional)", maxlength="100"),
            *_field("days", "有效天数 / Days valid", type="number", value="30", min="1",
                    required=True),
            h.p[h.button(type="submit")["签发令牌 / Issue token"]],
        ])


@router.post("/account/tokens", dependencies=[authenticated(), Csrf])
def token_create(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                 auth: AuthDep, name: Annotated[str, Form(max_length=100)],
                 role: Annotated[Role, Form()], days: Annotated[int, Form(ge=1, le=3650)],
                 study: Annotated[str, Form(max_length=100)] = "") -> Response:
    issued = tokens.create_token(session, ledger, actor=actor, name=name, role=role,
                                 study=study or None, days=days, config=auth)
    # Shown once, in this response; never stored in clear and never put in a URL.
    return page(request, "令牌已签发 / Token issued",
                h.p["请立即复制；此后不再显示。/ Copy it now; it will not be shown again."],
                h.pre(".secret")[issued.token],
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
                        *_field("password", "密码 / Password", type="password", required=True,
                                autocomplete="current-password"),
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
            *_field("code", "6 位动态口令 / 6-digit code", required=True, maxlength="8",
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


# --- administrator ----------------------------------------------------------------------------

def _user_form(request: Request, action: str, label: str, username: str,
               *extra: h.Node) -> h.Element:
    return h.form(".inline", method="post", action=f"/admin/accounts/{action}")[
        csrf_field(request), h.input(type="hidden", name="username", value=username), *extra,
        h.button(type="submit")[label]]


@router.get("/admin/accounts", dependencies=[requires(Perm.ACCOUNT_MANAGE)])
def admin_accounts(request: Request, session: SessionDep, actor: CurrentActor,
                   auth: AuthDep) -> Response:
    rows = []
    for a in accounts.list_accounts(session, actor=actor, config=auth):
        rows.append(h.tr[
            h.td[a.username], h.td[a.display_name], h.td[", ".join(a.roles) or "—"],
            h.td["是 / yes" if a.totp_enabled else "否 / no"],
            h.td[("锁定至 / locked until " + _when(a.locked_until)) if a.locked_until else
                 ("启用 / active" if a.is_active else "停用 / inactive")],
            h.td[str(a.open_sessions)],
            h.td[_user_form(request, "unlock", "解锁 / Unlock", a.username),
                 _user_form(request, "reset-second-factor", "重置动态口令 / Reset TOTP",
                            a.username),
                 _user_form(request, "revoke-sessions", "结束会话 / End sessions", a.username)],
        ])
    return page(
        request, "账户管理 / Accounts",
        h.table[h.thead[h.tr[h.th["用户名 / Username"], h.th["姓名 / Name"],
                             h.th["角色 / Roles"], h.th["动态口令 / TOTP"],
                             h.th["状态 / State"], h.th["会话 / Sessions"], h.th[""]]],
                h.tbody[rows]],
        h.h2["新建账户 / New account"],
        h.form(method="post", action="/admin/accounts")[
            csrf_field(request),
            *_field("username", "用户名 / Username", required=True, maxlength="63"),
            *_field("display_name", "姓名 / Name", required=True, maxlength="200"),
            *_field("password", "初始密码（首次登录须修改）/ Initial password (changed at first "
                    "login)", type="password", required=True, autocomplete="new-password"),
            h.label(for_="role")["角色 / Role"], _role_choice(),
            *_field("study", "研究（可选）/ Study (optional)", maxlength="100"),
            *_field("site", "中心（可选）/ Site (optional)", maxlength="10"),
            h.p[h.button(type="submit")["创建 / Create"]]],
        h.h2["授予或撤销角色 / Grant or revoke a role"],
        h.form(method="post", action="/admin/accounts/grant")[
            csrf_field(request),
            *_field("g_username", "用户名 / Username", name="username", required=True),
            h.label(for_="g_role")["角色 / Role"], _role_choice("g_role"),
            *_field("g_study", "研究（可选）/ Study (optional)", name="study"),
            *_field("g_site", "中心（可选）/ Site (optional)", name="site"),
            h.label(for_="op")["操作 / Action"],
            _choice(id="op", name="op")[h.option(value="grant")["授予 / Grant"],
                                         h.option(value="revoke")["撤销 / Revoke"]],
            h.p[h.button(type="submit")["提交 / Submit"]]],
        h.h2["重置密码 / Reset a password"],
        h.form(method="post", action="/admin/accounts/reset-password")[
            csrf_field(request),
            *_field("r_username", "用户名 / Username", name="username", required=True),
            *_field("r_password", "一次性密码 / One-time password", name="password",
                    type="password", required=True, autocomplete="new-password"),
            h.p[h.button(type="submit")["重置 / Reset"]]],
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
                site: Annotated[str, Form(max_length=10)] = "") -> Response:
    fn = accounts.grant_role if op == "grant" else accounts.revoke_role
    fn(session, ledger, actor=actor, username=username, role=g_role, study=study or None,
       site=site or None)
    return redirect(request, "/admin/accounts", f"role {op} done / 已完成")


def _admin_action(name: str, fn: Any, message: str) -> None:
    @router.post(f"/admin/accounts/{name}", dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf],
                 name=f"admin_{name}")
    def _action(request: Request, session: SessionDep, ledger: LedgerDep, actor: CurrentActor,
                username: Username) -> Response:
        fn(session, ledger, actor=actor, username=username)
        return redirect(request, "/admin/accounts", f"{username}: {message}")


_admin_action("unlock", accounts.unlock, "unlocked / 已解锁")
_admin_action("reset-second-factor", accounts.reset_second_factor,
              "second factor reset / 动态口令已重置")
_admin_action("revoke-sessions", accounts.revoke_sessions, "sessions ended / 会话已结束")


@router.post("/admin/accounts/reset-password",
             dependencies=[requires(Perm.ACCOUNT_MANAGE), Csrf])
def admin_reset_password(request: Request, session: SessionDep, ledger: LedgerDep,
                         actor: CurrentActor, auth: AuthDep, username: Username,
                         password: Annotated[str, Form(max_length=1000)]) -> Response:
    accounts.reset_password(session, ledger, actor=actor, username=username,
                            new_password=password, config=auth)
    return redirect(request, "/admin/accounts", f"{username}: password reset / 密码已重置")


# --- auditor ----------------------------------------------------------------------------------

def _parse_time(value: str, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: a date or date-time (YYYY-MM-DD[THH:MM]) / 时间格式不正确",
                           field=field) from exc
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d


def page_filter(user: str = Query("", max_length=200), action: str = Query("", max_length=100),
                study: str = Query("", max_length=100), subject: str = Query("", max_length=100),
                since: str = Query("", max_length=40),
                until: str = Query("", max_length=40)) -> audit.AuditFilter:
    return audit.AuditFilter(user=user or None, action=action or None, study=study or None,
                             subject=subject or None, since=_parse_time(since, "since"),
                             until=_parse_time(until, "until"))


PageFilter = Annotated[audit.AuditFilter, Depends(page_filter)]


@router.get("/audit/entries", dependencies=[requires(Perm.AUDIT_READ)])
def audit_entries(request: Request, filters: PageFilter, session: SessionDep,
                  actor: CurrentActor, before_seq: int | None = Query(None, ge=1)) -> Response:
    rows = audit.search(session, actor=actor, filters=filters, before_seq=before_seq, limit=100)
    q = request.query_params

    def box(name: str, label: str) -> list[h.Node]:
        return _field(f"f_{name}", label, name=name, value=q.get(name, ""))

    body = [h.tr[h.td[str(r["seq"])], h.td[r["ts"]], h.td[r["actor"]], h.td[r["action"]],
                 h.td[f"{r['entity_type']}:{r['entity_id']}"], h.td[r["study"] or ""],
                 h.td[r["subject"] or ""], h.td[r["outcome"]], h.td[r["client"] or ""],
                 h.td[r["reason"] or ""]] for r in rows]
    kept = {k: v for k, v in q.items() if k in ("user", "action", "study", "subject", "since",
                                                  "until") and v}
    from urllib.parse import urlencode

    more = None
    if len(rows) == 100:
        more = h.a(href="/audit/entries?" + urlencode({**kept, "before_seq": rows[-1]["seq"]}))[
            "更早 / Older →"]
    return page(
        request, "审计轨迹 / Audit trail",
        h.form(method="get", action="/audit/entries")[
            *box("user", "用户 / User"), *box("action", "操作（可用 * 结尾）/ Action (* suffix)"),
            *box("study", "研究 / Study"), *box("subject", "受试者代码 / Subject code"),
            *box("since", "起 / From (YYYY-MM-DD)"), *box("until", "止 / To (YYYY-MM-DD)"),
            h.p[h.button(type="submit")["筛选 / Filter"]]],
        h.p["导出当前筛选 / Export this filter: ",
            h.a(href="/audit/export?" + urlencode({**kept, "format": "csv"}))["CSV"], " · ",
            h.a(href="/audit/export?" + urlencode({**kept, "format": "odm"}))[
                "CDISC ODM 1.3.2"]],
        h.table(".audit")[h.thead[h.tr[
            h.th["#"], h.th["时间 / Time (UTC)"], h.th["用户 / User"], h.th["操作 / Action"],
            h.th["对象 / Target"], h.th["研究 / Study"], h.th["受试者 / Subject"],
            h.th["结果 / Outcome"], h.th["地址 / Client"], h.th["原因 / Reason"]]],
            h.tbody[body]],
        h.p[more] if more else None)


@router.get("/audit/export", dependencies=[requires(Perm.AUDIT_READ)])
def audit_export(request: Request, filters: PageFilter, session: SessionDep,
                 ledger: LedgerDep,
                 actor: CurrentActor,
                 format: str = Query("csv", pattern="^(csv|odm)$")) -> StreamingResponse:
    created = audit.record_export(session, ledger, actor=actor, filters=filters, fmt=format)
    # The entry commits with the request, before the response; the rows stream afterwards.
    chunks = read_stream(request, lambda s: audit.export_chunks(
        s, actor=actor, filters=filters, fmt=format, created=created))
    name = f"audit-trail.{'xml' if format == 'odm' else 'csv'}"
    media = "text/csv; charset=utf-8" if format == "csv" else "application/xml"
    return StreamingResponse(chunks, media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
