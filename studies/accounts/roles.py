"""Roles (SPEC §9) and the permissions each grants. Deny by default: a permission not listed
for any of a user's roles is refused. A user holding several roles gets the union (Table 7
note). The system administrator manages accounts but sees no clinical data (separation of
duties)."""

from __future__ import annotations

from enum import StrEnum


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


ROLE_LABELS: dict[Role, str] = {
    Role.PRINCIPAL_INVESTIGATOR: "主要研究者 / Principal investigator",
    Role.INVESTIGATOR: "研究者 / Investigator",
    Role.DATA_MANAGER: "数据管理员 / Data manager",
    Role.STATISTICIAN: "统计师 / Statistician",
    Role.MONITOR: "监查员 / Monitor",
    Role.SPONSOR: "申办者 / Sponsor",
    Role.CUSTODIAN: "患者代码索引管理员 / Code-index custodian",
    Role.SECURITY_OFFICER: "数据安全官 / Data security officer",
    Role.COMMITTEE_MEMBER: "数据安全委员会委员 / Data security committee member",
    Role.ETHICS_MEMBER: "伦理委员会委员 / Ethics committee member",
    Role.AUDITOR: "审计员 / Auditor",
    Role.ADMIN: "系统管理员 / System administrator",
}


class Perm(StrEnum):
    ACCOUNT_MANAGE = "account.manage"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    LEDGER_REDACT = "ledger.redact"
    STUDY_READ = "study.read"
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


GRANTS: dict[Role, frozenset[Perm]] = {
    Role.PRINCIPAL_INVESTIGATOR: frozenset({Perm.STUDY_READ}),
    Role.INVESTIGATOR: frozenset({Perm.STUDY_READ}),
    Role.DATA_MANAGER: frozenset({Perm.STUDY_READ}),
    Role.STATISTICIAN: frozenset({Perm.STUDY_READ}),
    Role.MONITOR: frozenset({Perm.STUDY_READ}),
    Role.SPONSOR: frozenset({Perm.STUDY_READ}),
    Role.CUSTODIAN: frozenset({Perm.LEDGER_REDACT}),
    Role.SECURITY_OFFICER: frozenset({Perm.AUDIT_VERIFY}),
    Role.COMMITTEE_MEMBER: frozenset(),
    Role.ETHICS_MEMBER: frozenset(),
    Role.AUDITOR: frozenset({Perm.AUDIT_READ, Perm.AUDIT_VERIFY}),
    Role.ADMIN: frozenset({Perm.ACCOUNT_MANAGE}),
}


# Subjects and the code index (issue 4): investigators enrol and list subjects by code; only the
# code-index custodian looks up identity, sees the lookup history, exports a subject's own data
# and rotates the index key. No other role gets any code-index permission.
_SUBJECT_GRANTS: dict[Role, frozenset[Perm]] = {
    Role.PRINCIPAL_INVESTIGATOR: frozenset({Perm.SUBJECT_ENROL, Perm.SUBJECT_READ}),
    Role.INVESTIGATOR: frozenset({Perm.SUBJECT_ENROL, Perm.SUBJECT_READ}),
    Role.DATA_MANAGER: frozenset({Perm.SUBJECT_READ}),
    Role.MONITOR: frozenset({Perm.SUBJECT_READ}),
    Role.CUSTODIAN: frozenset({Perm.CODE_INDEX_LOOKUP, Perm.CODE_INDEX_HISTORY,
                               Perm.CODE_INDEX_EXPORT, Perm.CODE_INDEX_ROTATE}),
}
for _role, _perms in _SUBJECT_GRANTS.items():
    GRANTS[_role] = GRANTS[_role] | _perms


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


# Issue 3 — studies, ethics, consent, eCRF metadata: the PI and the data manager set studies up;
# the ethics committee records approvals and waiver decisions; investigators capture consent.
GRANTS[Role.PRINCIPAL_INVESTIGATOR] |= {Perm.STUDY_MANAGE, Perm.CONSENT_RECORD,
                                        Perm.CONSENT_READ}
GRANTS[Role.DATA_MANAGER] |= {Perm.STUDY_MANAGE}
GRANTS[Role.INVESTIGATOR] |= {Perm.CONSENT_RECORD, Perm.CONSENT_READ}
GRANTS[Role.MONITOR] |= {Perm.CONSENT_READ}
GRANTS[Role.ETHICS_MEMBER] |= {Perm.ETHICS_RECORD}


# Issue 5 — data entry: investigators enter, correct and answer queries; monitors read, verify
# (SDV) and raise/close queries; the data manager reads, bulk-imports and exports; the PI does
# what investigators do and may import and export. Sponsors, statisticians and the system
# administrator get no patient-level data here (sponsor extracts are a separate workflow).
GRANTS[Role.PRINCIPAL_INVESTIGATOR] |= {Perm.ENTRY_READ, Perm.ENTRY_WRITE, Perm.QUERY_ANSWER,
                                        Perm.ENTRY_IMPORT, Perm.ENTRY_EXPORT}
GRANTS[Role.INVESTIGATOR] |= {Perm.ENTRY_READ, Perm.ENTRY_WRITE, Perm.QUERY_ANSWER}
GRANTS[Role.MONITOR] |= {Perm.ENTRY_READ, Perm.ENTRY_VERIFY}
GRANTS[Role.DATA_MANAGER] |= {Perm.ENTRY_READ, Perm.ENTRY_IMPORT, Perm.ENTRY_EXPORT}


# Issue 9 — extracts for sponsors (SPEC §7–8): sponsors, PIs and statisticians request and
# download (downloads further limited to the request's named recipient accounts); the data
# security officer approves PUFs and sees overdue destruction certificates; committee members
# vote on LDS / RIF and cross-border requests; ethics members record the ethics approval for
# identifiable use; the data manager builds and may override a failed pre-transfer check.
# Reviewers (officer, committee, ethics, data manager) see every request of a study.
GRANTS[Role.SPONSOR] |= {Perm.EXTRACT_REQUEST, Perm.EXTRACT_DOWNLOAD}
GRANTS[Role.PRINCIPAL_INVESTIGATOR] |= {Perm.EXTRACT_REQUEST, Perm.EXTRACT_DOWNLOAD}
GRANTS[Role.STATISTICIAN] |= {Perm.EXTRACT_REQUEST, Perm.EXTRACT_DOWNLOAD}
GRANTS[Role.SECURITY_OFFICER] |= {Perm.EXTRACT_REVIEW, Perm.EXTRACT_APPROVE}
GRANTS[Role.COMMITTEE_MEMBER] |= {Perm.EXTRACT_REVIEW, Perm.EXTRACT_VOTE}
GRANTS[Role.ETHICS_MEMBER] |= {Perm.EXTRACT_REVIEW, Perm.EXTRACT_ETHICS}
GRANTS[Role.DATA_MANAGER] |= {Perm.EXTRACT_REVIEW, Perm.EXTRACT_BUILD}

# Issue 7 — lock and unlock, randomisation, blinding: the data manager sets locks and re-locks;
# the PI or the data manager raises an unlock request; PI, data manager and statistician sign
# it off. Investigators randomise; the statistician sets the scheme up or imports the list.
# Allocation is readable (open-label, or after a signed unblinding) by the PI, investigators,
# the data manager and the statistician; PI and statistician sign a study unblinding, the PI
# alone may unblind one subject in an emergency. Nobody else gets any of these.
for _role in (Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR, Role.DATA_MANAGER,
              Role.STATISTICIAN, Role.MONITOR):
    GRANTS[_role] |= {Perm.LOCK_READ}
GRANTS[Role.DATA_MANAGER] |= {Perm.LOCK_MANAGE, Perm.UNLOCK_REQUEST, Perm.UNLOCK_SIGN,
                              Perm.ALLOCATION_READ}
GRANTS[Role.PRINCIPAL_INVESTIGATOR] |= {Perm.UNLOCK_REQUEST, Perm.UNLOCK_SIGN, Perm.RANDOMISE,
                                        Perm.ALLOCATION_READ, Perm.UNBLIND_SIGN,
                                        Perm.UNBLIND_EMERGENCY}
GRANTS[Role.STATISTICIAN] |= {Perm.UNLOCK_SIGN, Perm.RANDOMISATION_MANAGE,
                              Perm.ALLOCATION_READ, Perm.UNBLIND_SIGN}
GRANTS[Role.INVESTIGATOR] |= {Perm.RANDOMISE, Perm.ALLOCATION_READ}
