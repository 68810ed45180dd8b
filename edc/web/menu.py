"""Where each role's work is: the menu on every page and the work list of the home page.
Each link shows only when the actor holds the permission of the page it leads to (the same
``Perm`` the route requires), so the menu never offers what would be refused."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from studies.kernel.actor import Actor
from studies.kernel.roles import Perm

EXTRACT_PERMS = (Perm.EXTRACT_REQUEST, Perm.EXTRACT_REVIEW, Perm.EXTRACT_BUILD,
                 Perm.EXTRACT_DOWNLOAD)


@dataclass(frozen=True)
class Link:
    href: str
    label: str
    perm: Perm | None = None


def _any(actor: Actor, *perms: Perm) -> bool:
    """Holds one of ``perms`` for some study (or globally)."""
    return any(p in actor.perms for p in perms)


def global_links(actor: Actor) -> list[Link]:
    """The menu's links that belong to no one study."""
    out = [Link("/", "首页 / Home")]
    if _any(actor, Perm.STUDY_READ, Perm.STUDY_MANAGE):
        out.append(Link("/studies", "研究 / Studies"))
    if _any(actor, Perm.EXTRACT_REVIEW):
        out.append(Link("/extracts", "待审批的数据提取 / Extract approvals"))
    elif _any(actor, *EXTRACT_PERMS):
        out.append(Link("/extracts", "数据提取申请 / Extract requests"))
    if _any(actor, Perm.ETHICS_RECORD):
        out.append(Link("/ethics", "伦理审查 / Ethics"))
    if _any(actor, Perm.CODE_INDEX_LOOKUP):
        out.append(Link("/code-index", "患者代码索引 / Code index"))
    if _any(actor, Perm.CODE_INDEX_HISTORY):
        out.append(Link("/code-index/history", "查询记录 / Lookup history"))
    if _any(actor, Perm.AUDIT_VERIFY):
        out.append(Link("/audit", "审计与验证 / Audit and verification"))
        out.append(Link("/self-check", "安全自查 / Self-check (Appendix F)"))
    if _any(actor, Perm.AUDIT_READ):
        out.append(Link("/audit/entries", "审计轨迹 / Audit trail"))
    if _any(actor, Perm.ACCESS_FLAG_READ):
        out.append(Link("/audit/flags", "异常访问 / Abnormal access"))
    if _any(actor, Perm.ACCOUNT_MANAGE):
        out.append(Link("/admin/accounts", "账户管理 / Accounts"))
        out.append(Link("/admin/organisations", "接收机构 / Organisations"))
        out.append(Link("/admin/data-owners", "数据责任人移交 / Data owner handovers"))
    if _any(actor, Perm.EXTRACT_APPROVE):
        out.append(Link("/cross-border", "数据出境 / Cross-border"))
    if _any(actor, Perm.EXPORT_APPROVE):
        out.append(Link("/export-approvals", "数据导出审批 / Export approvals"))
    if _any(actor, Perm.RETENTION_REVIEW):
        out.append(Link("/retention", "保存期审查 / Retention review"))
    out.append(Link("/account", "我的账户 / My account"))
    return out


def study_links(actor: Actor, study: str) -> list[Link]:
    """The work of one study the actor may do, most frequent first."""
    base = f"/studies/{quote(study)}"
    candidates = [
        Link(f"{base}/monitor", "监查工作清单 / Monitor worklist", Perm.ENTRY_VERIFY),
        Link(f"{base}/entry", "数据录入与状态 / Data entry and status", Perm.ENTRY_READ),
        Link(f"{base}/subjects", "受试者 / Subjects", Perm.SUBJECT_READ),
        Link(f"{base}/subjects/enrol", "入组 / Enrol a subject", Perm.SUBJECT_ENROL),
        Link(f"{base}/subject-requests", "受试者的请求 / Subjects' requests", Perm.ENTRY_WRITE),
        Link(f"{base}/dashboard", "进度图表 / Progress charts", Perm.ENTRY_READ),
        Link(f"{base}/consent", "知情同意 / Consent", Perm.CONSENT_READ),
        Link(f"{base}/exports", "导出数据 / Export data", Perm.ENTRY_EXPORT),
        Link(f"{base}/locks", "数据库锁定 / Database lock", Perm.LOCK_READ),
        Link(f"{base}/randomisation", "随机化与揭盲 / Randomisation", Perm.LOCK_READ),
        Link(f"{base}/extracts/new", "申请数据提取 / Request an extract", Perm.EXTRACT_REQUEST),
        Link(base, "研究概览 / Study overview", Perm.STUDY_READ),
    ]
    return [c for c in candidates if c.perm is None or actor.can(c.perm, study)]


def studies_of(actor: Actor) -> list[str] | None:
    """The studies the actor's grants name; None when a grant covers every study."""
    named: list[str] = []
    for _role, study, _site in actor.scope_triples():
        if study is None:
            return None
        if study not in named:
            named.append(study)
    return named
