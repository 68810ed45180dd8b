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
from edc.web.csrf import Csrf
from edc.web.forms import submit
from edc.web.labels import label
from edc.web.layout import csrf_field, page, redirect
from edc.web.signatures import as_form_error, sign_form
from edc.web.widgets import field, field_error, utc_minute
from studies.kernel.errors import NotAuthenticated
from studies.kernel.roles import ROLE_LABELS, UNLOCK_SIGNERS, Perm, Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.locks import unlock as unlocks

router = APIRouter()
dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries

SCOPES = (("study", "整个研究 / Whole study"), ("site", "中心 / Sites"),
          ("form", "表单（全研究）/ Forms across the study"),
          ("subjects", "受试者列表 / List of subjects"))


def _lock_fields(request: Request, sel: dict[str, str] | None = None) -> list[h.Node]:
    sel = sel or {}
    labels = {"scope": "范围 / Scope",
              "sites": "中心代码（空格分隔）/ Site codes (space separated)",
              "forms": "表单名称 / Form names",
              "subjects": "受试者代码（批量）/ Subject codes (bulk)"}
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
    lock_rows = [h.tr[h.td[lk.label], h.td[lk.set_by], h.td[utc_minute(lk.set_at)],
                      h.td[h.code[f"#{lk.checkpoint_size} {lk.checkpoint_root[:16]}…"]],
                      h.td[h.code(".snapshot")[lk.snapshot_hash]],
                      h.td[str(lk.snapshot_values)], h.td[lk.override_reason or "—"]]
                 for lk in p["locks"]]
    req_rows = [h.tr[h.td[h.a(href=f"/studies/{study}/unlocks/{r.id}")[r.id[:8]]],
                     h.td(".status")[label(r.status)], h.td[r.requested_by], h.td[r.reason],
                     h.td[utc_minute(r.ends_at)]] for r in p["requests"]]
    manage = actor.can(Perm.LOCK_MANAGE, study)
    parts: list[h.Node] = [
        h.p[h.a(href=f"/studies/{study}/randomisation")["随机化与揭盲 / Randomisation"]],
        h.h2["锁定 / Locks"],
        h.table(".locks")[
            h.thead[h.tr[h.th["锁定范围 / Scope"], h.th["锁定人 / By"], h.th["时间 / When"],
                         h.th["签名检查点 / Signed checkpoint"],
                         h.th["快照 SHA-256 / Snapshot SHA-256"], h.th["值数 / Values"],
                         h.th["强制理由 / Override reason"]]],
            h.tbody[lock_rows or h.tr[h.td(colspan="7")["未锁定 / Nothing locked"]]]],
        h.h2["解锁申请 / Unlock requests"],
        h.table(".unlocks")[
            h.thead[h.tr[h.th["申请 / Request"], h.th["状态 / Status"], h.th["申请人 / By"],
                         h.th["理由 / Reason"], h.th["截止 / Ends"]]],
            h.tbody[req_rows or h.tr[h.td(colspan="5")["无 / None"]]]],
    ]
    if manage:
        parts += [
            h.h2["锁定数据 / Lock data"],
            h.p["先查看锁定前报告；存在未解决事项时须填写强制锁定理由。 / Read the pre-lock "
                "report first; with open items an override reason is required."],
            h.form(method="get", action=f"/studies/{study}/locks/report")[
                _lock_fields(request),
                h.p[h.button(type="submit")["查看锁定前报告 / Pre-lock report"]]],
            h.h2["锁定设置 / Lock settings"],
            h.form(method="post", action=f"/studies/{study}/lock-settings")[
                csrf_field(request),
                h.label[h.input(type="checkbox", name="allow_query_answers", value="1",
                                checked=p["settings"].allow_query_answers),
                        " 锁定期间允许回复质疑 / Queries may be answered while locked"],
                h.p[h.button(type="submit")["保存 / Save"]]]]
    if actor.can(Perm.UNLOCK_REQUEST, study) and p["locks"]:
        parts += [
            h.h2["申请解锁 / Request an unlock"],
            h.form(method="post", action=f"/studies/{study}/unlocks")[
                csrf_field(request),
                h.label(for_="changes")["修改内容：每行 受试者 [表单 [字段 …]] / Changes: one per "
                                        "line, SUBJECT [FORM [FIELD …]]"],
                h.textarea(id="changes", name="changes", required=True, rows="4",
                           maxlength="20000"),
                h.label(for_="reason")["理由 / Reason"],
                h.textarea(id="reason", name="reason", required=True, maxlength="4000"),
                h.label(for_="planned_date")["计划日期 / Planned date"],
                h.input(id="planned_date", name="planned_date", type="date", required=True),
                h.label(for_="period_hours")["期限（小时）/ Period (hours)"],
                h.input(id="period_hours", name="period_hours", type="number", min="1",
                        max=str(lock_schemas.MAX_PERIOD_HOURS), value="48", required=True),
                h.p[h.button(type="submit")["提交并通知团队 / Submit and notify the team"]]]]
    return page(request, f"数据库锁定 / Database lock — {study}", *parts)


@router.get("/studies/{study}/locks/report", dependencies=[requires(Perm.LOCK_MANAGE)])
def lock_report(study: str, request: Request, session: SessionDep, actor: CurrentActor,
                scope: str = "study", sites: str = "", forms: str = "",
                subjects: str = "") -> Response:
    data = lock_schemas.lock_in_from_form(scope=scope, sites=sites[:2000], forms=forms[:2000],
                                   subjects=subjects[:100000], override_reason=None)
    reports = locks.prelock_report(session, actor=actor, study_code=study, data=data)
    names = (("open_queries", "未关闭的质疑 / Open queries"),
             ("unverified_forms", "未核查的表单 / Unverified forms"),
             ("incomplete_forms", "未完成的表单 / Incomplete forms"),
             ("changed_after_verification", "核查后修改的表单 / Forms changed after verification"))
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
        request, f"锁定前报告 / Pre-lock report — {study}", *sections,
        h.p(".open-items")[f"未解决事项合计 / Open items in total: {open_items}"],
        h.form(method="post", action=f"/studies/{study}/locks")[
            csrf_field(request), _lock_fields(request, sel),
            field("强制锁定理由（有未解决事项时必填）/ Override reason (required with open "
                  "items)", "override_reason", textarea=True, required=False,
                  maxlength="2000"),
            h.p[h.button(type="submit")["锁定 / Lock"]]])


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
                        f"已锁定 / Locked: {'; '.join(m.label for m in made)}")

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
    return redirect(request, f"/studies/{study}/locks", "已保存 / Saved")


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
                    "已提交，团队已收到通知 / Submitted; the team has been notified")


def _reason_form(request: Request, action: str, label: str) -> h.Element:
    return h.form(method="post", action=action)[
        csrf_field(request), h.label[f"理由 / Reason ({label})"],
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
        h.p[h.a(href=f"/studies/{study}/locks")["← 锁定面板 / Lock panel"]],
        h.p(".status")[f"状态 / Status: {req.status}",
                       f" · 截止 / ends {utc_minute(req.ends_at)}" if req.ends_at else ""],
        h.h2["签名内容全文 / The full text you sign"],
        h.pre(".content")[v["content"]],
        h.p["SHA-256: ", h.code(".content-hash")[req.content_hash],
            "" if v["content_ok"] else " — 内容与哈希不符 / DOES NOT MATCH"],
        h.h2["签名 / Signatures"],
        h.ul(".signoffs")[[h.li[f"{ROLE_LABELS[Role(s.role)]}: {s.line}"]
                           for s in v["signoffs"]] or h.li["尚无 / None yet"]],
        h.p(".missing")["待签 / Still to sign: " + (", ".join(
            ROLE_LABELS[Role(r)] for r in v["missing"]) or "—")],
    ]
    if v["invalidated"]:
        parts += [h.h2["因解锁而失效的签名 / Signatures invalidated by this unlock"],
                  h.ul(".invalidated")[[h.li(".invalidated")[line]
                                        for line in v["invalidated"]]]]
    if req.status == "pending" and actor.can(Perm.UNLOCK_SIGN, study):
        parts += [h.h2["签名 / Sign"],
                  sign_form(request, f"{base}/sign", UNLOCK_SIGNERS, req.content_hash,
                            actor.username),
                  _reason_form(request, f"{base}/reject", "驳回 / Reject")]
    if req.status == "pending" and actor.can(Perm.UNLOCK_REQUEST, study):
        parts.append(_reason_form(request, f"{base}/withdraw", "撤回 / Withdraw"))
    if req.status == "active" and actor.can(Perm.LOCK_MANAGE, study):
        parts.append(h.form(method="post", action=f"{base}/relock")[
            csrf_field(request), h.button(type="submit")["立即重新锁定 / Re-lock now"]])
    return page(request, f"解锁申请 / Unlock request — {study}", *parts)


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
    msg = ("已签名；解锁已生效 / Signed; the unlock is in effect" if req.status == "active"
           else "已签名 / Signed")
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", msg)


@router.post("/studies/{study}/unlocks/{request_id}/withdraw",
             dependencies=[requires(Perm.UNLOCK_REQUEST), Csrf])
def unlock_withdraw(study: str, request_id: str, request: Request, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor,
                    reason: Annotated[str, Form(max_length=4000)]) -> Response:
    unlocks.withdraw_unlock(session, ledger, actor=actor, study_code=study, request_id=request_id,
                          reason=reason)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", "已撤回 / Withdrawn")


@router.post("/studies/{study}/unlocks/{request_id}/reject",
             dependencies=[requires(Perm.UNLOCK_SIGN), Csrf])
def unlock_reject(study: str, request_id: str, request: Request, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor,
                  reason: Annotated[str, Form(max_length=4000)]) -> Response:
    unlocks.reject_unlock(session, ledger, actor=actor, study_code=study, request_id=request_id,
                        reason=reason)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}", "已驳回 / Rejected")


@router.post("/studies/{study}/unlocks/{request_id}/relock",
             dependencies=[requires(Perm.LOCK_MANAGE), Csrf])
def unlock_relock(study: str, request_id: str, request: Request, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor) -> Response:
    unlocks.relock(session, ledger, actor=actor, study_code=study, request_id=request_id)
    return redirect(request, f"/studies/{study}/unlocks/{request_id}",
                    "已重新锁定 / Re-locked")
