"""Roles (SPEC §9) and the permissions each grants. Deny by default: a permission not listed
for any of a user's roles is refused. A user holding several roles gets the union (Table 7
note). The system administrator manages accounts but sees no clinical data (separation of
duties)."""

from __future__ import annotations

from enum import StrEnum

from studies.kernel.i18n import LazyText, _l


class Role(StrEnum):
    PRINCIPAL_INVESTIGATOR = "principal_investigator"
    INVESTIGATOR = "investigator"
    DATA_MANAGER = "data_manager"
    STATISTICIAN = "statistician"
    MONITOR = "monitor"
    SPONSOR = "sponsor"
    CUSTODIAN = "custodian"
    SECURITY_OFFICER = "security_officer"
    COMMITTEE_MEMBER = "committee_member"
    ETHICS_MEMBER = "ethics_member"
    AUDITOR = "auditor"
    ADMIN = "admin"


ROLE_LABELS: dict[Role, LazyText] = {
    Role.PRINCIPAL_INVESTIGATOR: _l("Principal investigator"),
    Role.INVESTIGATOR: _l("Investigator"),
    Role.DATA_MANAGER: _l("Data manager"),
    Role.STATISTICIAN: _l("Statistician"),
    Role.MONITOR: _l("Monitor"),
    Role.SPONSOR: _l("Sponsor"),
    Role.CUSTODIAN: _l("Code-index custodian"),
    Role.SECURITY_OFFICER: _l("Data security officer"),
    Role.COMMITTEE_MEMBER: _l("Data security committee member"),
    Role.ETHICS_MEMBER: _l("Ethics committee member"),
    Role.AUDITOR: _l("Auditor"),
    Role.ADMIN: _l("System administrator"),
}


class Perm(StrEnum):
    ACCOUNT_MANAGE = "account.manage"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    LEDGER_REDACT = "ledger.redact"
    STUDY_READ = "study.read"
    # the five-yearly retention review after a study ends (issue 16, §11.3.4.6 a4)
    RETENTION_REVIEW = "retention.review"
    # studies, ethics, consent, eCRF metadata (issue 3)
    STUDY_MANAGE = "study.manage"
    ETHICS_RECORD = "ethics.record"
    CONSENT_RECORD = "consent.record"
    CONSENT_READ = "consent.read"

    # Subjects and the code index (issue 4, SPEC §3)
    SUBJECT_ENROL = "subject.enrol"
    SUBJECT_READ = "subject.read"
    CODE_INDEX_LOOKUP = "code_index.lookup"
    CODE_INDEX_HISTORY = "code_index.history"
    CODE_INDEX_EXPORT = "code_index.export"
    CODE_INDEX_ROTATE = "code_index.rotate"

    # Data entry, SDV and queries, clinical-data export (issue 5, SPEC §4–5)
    ENTRY_READ = "entry.read"
    ENTRY_WRITE = "entry.write"
    ENTRY_VERIFY = "entry.verify"
    QUERY_ANSWER = "query.answer"
    ENTRY_IMPORT = "entry.import"
    ENTRY_EXPORT = "entry.export"
    # approving an internal export (issue 20 item 7, §11.3.4.1 c)
    EXPORT_APPROVE = "export.approve"

    # Extracts for sponsors (issue 9, SPEC §7–8)
    EXTRACT_REQUEST = "extract.request"
    EXTRACT_REVIEW = "extract.review"
    EXTRACT_APPROVE = "extract.approve"
    EXTRACT_VOTE = "extract.vote"
    EXTRACT_ETHICS = "extract.ethics"
    EXTRACT_BUILD = "extract.build"
    EXTRACT_DOWNLOAD = "extract.download"

    # Database lock / unlock, randomisation and blinding (issue 7, SPEC §6)
    LOCK_READ = "lock.read"
    LOCK_MANAGE = "lock.manage"
    UNLOCK_REQUEST = "unlock.request"
    UNLOCK_SIGN = "unlock.sign"
    RANDOMISE = "randomise"
    RANDOMISATION_MANAGE = "randomisation.manage"
    ALLOCATION_READ = "allocation.read"
    UNBLIND_SIGN = "unblind.sign"
    UNBLIND_EMERGENCY = "unblind.emergency"

    # Oversight (issue 20): abnormal-access flags (§11.1.2.4, §11.3.4.9 d) and level-5 unmask
    # grants (§6.2 e)
    ACCESS_FLAG_READ = "access_flag.read"
    ACCESS_FLAG_ACK = "access_flag.acknowledge"
    UNMASK_GRANT = "unmask.grant"

    # Operations (issue 17): the queued work of the job runners, as any web process sees it
    JOBS_READ = "jobs.read"


# The one grant table: each role and every permission it holds. Deny by default — a permission
# not listed for any of a user's roles is refused (SPEC §9, Table 7). Issue notes: studies,
# ethics, consent (3); subjects and the code index (4: only the custodian re-identifies); data
# entry, SDV, queries (5: sponsors, statisticians and the administrator see no patient-level
# data in the entry pages; the statistician exports it for analysis, with an approved export
# request, issue 20 item 7); locks, randomisation, blinding (7); extracts (9: reviewers see
# every request).
GRANTS: dict[Role, frozenset[Perm]] = {
    Role.PRINCIPAL_INVESTIGATOR: frozenset({
        Perm.STUDY_READ, Perm.STUDY_MANAGE, Perm.CONSENT_RECORD, Perm.CONSENT_READ,
        Perm.SUBJECT_ENROL, Perm.SUBJECT_READ, Perm.ENTRY_READ, Perm.ENTRY_WRITE,
        Perm.QUERY_ANSWER, Perm.ENTRY_IMPORT, Perm.ENTRY_EXPORT, Perm.EXPORT_APPROVE,
        Perm.EXTRACT_REQUEST,
        Perm.EXTRACT_DOWNLOAD, Perm.LOCK_READ, Perm.UNLOCK_REQUEST, Perm.UNLOCK_SIGN,
        Perm.RANDOMISE, Perm.ALLOCATION_READ, Perm.UNBLIND_SIGN, Perm.UNBLIND_EMERGENCY,
        Perm.UNMASK_GRANT,
    }),
    Role.INVESTIGATOR: frozenset({
        Perm.STUDY_READ, Perm.CONSENT_RECORD, Perm.CONSENT_READ, Perm.SUBJECT_ENROL,
        Perm.SUBJECT_READ, Perm.ENTRY_READ, Perm.ENTRY_WRITE, Perm.QUERY_ANSWER, Perm.LOCK_READ,
        Perm.RANDOMISE, Perm.ALLOCATION_READ,
    }),
    Role.DATA_MANAGER: frozenset({
        Perm.STUDY_READ, Perm.STUDY_MANAGE, Perm.SUBJECT_READ, Perm.ENTRY_READ, Perm.ENTRY_IMPORT,
        Perm.ENTRY_EXPORT, Perm.EXTRACT_REVIEW, Perm.EXTRACT_BUILD, Perm.LOCK_READ,
        Perm.LOCK_MANAGE, Perm.UNLOCK_REQUEST, Perm.UNLOCK_SIGN, Perm.ALLOCATION_READ,
    }),
    Role.STATISTICIAN: frozenset({
        Perm.STUDY_READ, Perm.ENTRY_EXPORT, Perm.EXTRACT_REQUEST, Perm.EXTRACT_DOWNLOAD,
        Perm.LOCK_READ, Perm.UNLOCK_SIGN, Perm.RANDOMISATION_MANAGE, Perm.ALLOCATION_READ,
        Perm.UNBLIND_SIGN,
    }),
    Role.MONITOR: frozenset({
        Perm.STUDY_READ, Perm.CONSENT_READ, Perm.SUBJECT_READ, Perm.ENTRY_READ, Perm.ENTRY_VERIFY,
        Perm.LOCK_READ,
    }),
    Role.SPONSOR: frozenset({
        Perm.STUDY_READ, Perm.EXTRACT_REQUEST, Perm.EXTRACT_DOWNLOAD,
    }),
    Role.CUSTODIAN: frozenset({
        Perm.LEDGER_REDACT, Perm.CODE_INDEX_LOOKUP, Perm.CODE_INDEX_HISTORY,
        Perm.CODE_INDEX_EXPORT, Perm.CODE_INDEX_ROTATE,
    }),
    Role.SECURITY_OFFICER: frozenset({
        Perm.AUDIT_VERIFY, Perm.EXTRACT_REVIEW, Perm.EXTRACT_APPROVE, Perm.RETENTION_REVIEW,
        Perm.ACCESS_FLAG_READ, Perm.ACCESS_FLAG_ACK,
        Perm.EXPORT_APPROVE,
    }),
    Role.COMMITTEE_MEMBER: frozenset({
        Perm.EXTRACT_REVIEW, Perm.EXTRACT_VOTE,
    }),
    Role.ETHICS_MEMBER: frozenset({
        Perm.ETHICS_RECORD, Perm.EXTRACT_REVIEW, Perm.EXTRACT_ETHICS,
    }),
    Role.AUDITOR: frozenset({
        Perm.AUDIT_READ, Perm.AUDIT_VERIFY, Perm.ACCESS_FLAG_READ,
    }),
    Role.ADMIN: frozenset({
        Perm.ACCOUNT_MANAGE, Perm.JOBS_READ,
    }),
}


def permissions_of(roles: set[Role]) -> frozenset[Perm]:
    out: set[Perm] = set()
    for r in roles:
        out |= GRANTS.get(r, frozenset())
    return frozenset(out)


# Roles whose holders must use the second factor (TOTP) at every login (SPEC §9, §11.6.2.2 g).
PRIVILEGED: frozenset[Role] = frozenset({
    Role.CUSTODIAN, Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR, Role.SECURITY_OFFICER,
    Role.ADMIN, Role.AUDITOR,
})


# Permissions only a study-wide grant confers (a grant limited to some sites never does):
# the study's set-up and study-wide settings (protocol, sites, consent forms, eCRF metadata,
# events, entry settings) and the randomisation scheme (§11.3.4.1 a).
STUDY_WIDE: frozenset[Perm] = frozenset({Perm.STUDY_MANAGE, Perm.RANDOMISATION_MANAGE})


# Who signs what: an unlock needs the PI, the data manager and the statistician (§11.3.4.7 a);
# a study unblinding the PI and the statistician.
UNLOCK_SIGNERS: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.DATA_MANAGER,
                                    Role.STATISTICIAN)
# Who approves an internal export (§11.3.4.1 c): the PI or the data security officer; one that
# includes raw quasi-identifiers only the data security officer. Never the requester.
EXPORT_APPROVERS: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.SECURITY_OFFICER)
RAW_QI_EXPORT_APPROVERS: tuple[Role, ...] = (Role.SECURITY_OFFICER,)
UNBLIND_SIGNERS: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.STATISTICIAN)

# Who hears of data locks, unlocks and their end (the team inbox): the roles that enter,
# verify, manage or analyse the clinical data — not the sponsor, the custodian, the committees.
DATA_TEAM: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR,
                               Role.DATA_MANAGER, Role.STATISTICIAN, Role.MONITOR)

# The roles a study counts as treating clinicians unless it names its own (§6.2 e: level-5
# data only for the treating clinicians): the investigators who see the patient.
DEFAULT_TREATING_ROLES: tuple[Role, ...] = (Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR)
