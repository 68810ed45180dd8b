"""Where each role's work is: the menu on every page and the work list of the home page.
Each link shows only when the actor holds the permission of the page it leads to (the same
``Perm`` the route requires), so the menu never offers what would be refused."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from studies.kernel.actor import Actor
from studies.kernel.i18n import _
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
    out = [Link("/", _("Home"))]
    if _any(actor, Perm.STUDY_READ, Perm.STUDY_MANAGE):
        out.append(Link("/studies", _("Studies")))
    if _any(actor, Perm.EXTRACT_REVIEW):
        out.append(Link("/extracts", _("Extract approvals")))
    elif _any(actor, *EXTRACT_PERMS):
        out.append(Link("/extracts", _("Extract requests")))
    if _any(actor, Perm.ETHICS_RECORD):
        out.append(Link("/ethics", _("Ethics")))
    if _any(actor, Perm.CODE_INDEX_LOOKUP):
        out.append(Link("/code-index", _("Code index")))
    if _any(actor, Perm.CODE_INDEX_HISTORY):
        out.append(Link("/code-index/history", _("Lookup history")))
    if _any(actor, Perm.AUDIT_VERIFY):
        out.append(Link("/audit", _("Audit and verification")))
        out.append(Link("/self-check", _("Self-check (Appendix F)")))
    if _any(actor, Perm.AUDIT_READ):
        out.append(Link("/audit/entries", _("Audit trail")))
    if _any(actor, Perm.ACCESS_FLAG_READ):
        out.append(Link("/audit/flags", _("Abnormal access")))
    if _any(actor, Perm.ACCOUNT_MANAGE):
        out.append(Link("/admin/accounts", _("Accounts")))
        out.append(Link("/admin/organisations", _("Organisations")))
        out.append(Link("/admin/data-owners", _("Data owner handovers")))
    if _any(actor, Perm.JOBS_READ):
        out.append(Link("/admin/jobs", _("Jobs")))
    if _any(actor, Perm.EXTRACT_APPROVE):
        out.append(Link("/cross-border", _("Cross-border")))
    if _any(actor, Perm.EXPORT_APPROVE):
        out.append(Link("/export-approvals", _("Export approvals")))
    if _any(actor, Perm.RETENTION_REVIEW):
        out.append(Link("/retention", _("Retention review")))
    out.append(Link("/account", _("My account")))
    return out


def study_links(actor: Actor, study: str) -> list[Link]:
    """The work of one study the actor may do, most frequent first."""
    base = f"/studies/{quote(study)}"
    candidates = [
        Link(f"{base}/monitor", _("Monitor worklist"), Perm.ENTRY_VERIFY),
        Link(f"{base}/entry", _("Data entry and status"), Perm.ENTRY_READ),
        Link(f"{base}/subjects", _("Subjects"), Perm.SUBJECT_READ),
        Link(f"{base}/subjects/enrol", _("Enrol a subject"), Perm.SUBJECT_ENROL),
        Link(f"{base}/subject-requests", _("Subjects' requests"), Perm.ENTRY_WRITE),
        Link(f"{base}/dashboard", _("Progress charts"), Perm.ENTRY_READ),
        Link(f"{base}/consent", _("Consent"), Perm.CONSENT_READ),
        Link(f"{base}/exports", _("Export data"), Perm.ENTRY_EXPORT),
        Link(f"{base}/locks", _("Database lock"), Perm.LOCK_READ),
        Link(f"{base}/randomisation", _("Randomisation"), Perm.LOCK_READ),
        Link(f"{base}/extracts/new", _("Request an extract"), Perm.EXTRACT_REQUEST),
        Link(base, _("Study overview"), Perm.STUDY_READ),
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
