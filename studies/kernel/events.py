"""Every action the ledger records, by name: one member per kind of entry
(``ledger_entry.action``).

Code appends with ``action=Action.X``; an action built from a state
(``Action(f"query.{kind}")``) is checked against this list when it is built, and
``tests/test_architecture.py`` refuses a plain string. Add a member here before writing a new
kind of entry.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    # access
    ACCESS_DENIED = "access.denied"
    # access_flag: abnormal access raised by a rule, acknowledged by the security officer
    ACCESS_FLAG_ACKNOWLEDGE = "access_flag.acknowledge"
    ACCESS_FLAG_RAISE = "access_flag.raise"
    # account
    ACCOUNT_ACTIVATE = "account.activate"
    ACCOUNT_AFFILIATE = "account.affiliate"
    ACCOUNT_CREATE = "account.create"
    ACCOUNT_DEACTIVATE = "account.deactivate"
    ACCOUNT_END_DATE = "account.end_date"
    ACCOUNT_PASSWORD_CHANGE = "account.password_change"
    ACCOUNT_PASSWORD_RESET = "account.password_reset"
    ACCOUNT_RECOVERY_CODES = "account.recovery_codes"
    ACCOUNT_ROLE_GRANT = "account.role_grant"
    ACCOUNT_ROLE_REVOKE = "account.role_revoke"
    ACCOUNT_SECOND_FACTOR_ENROL = "account.second_factor_enrol"
    ACCOUNT_SECOND_FACTOR_RESET = "account.second_factor_reset"
    ACCOUNT_SESSIONS_REVOKE = "account.sessions_revoke"
    ACCOUNT_UNLOCK = "account.unlock"
    # audit
    AUDIT_EXPORT = "audit.export"
    # auth
    AUTH_LOCKOUT = "auth.lockout"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_TIMEOUT = "auth.timeout"
    # code_index
    CODE_INDEX_LOOKUP_CODE = "code_index.lookup_code"
    CODE_INDEX_LOOKUP_IDENTITY = "code_index.lookup_identity"
    CODE_INDEX_ROTATE_KEY = "code_index.rotate_key"
    # consent
    CONSENT_RECONSENT = "consent.reconsent"
    CONSENT_RECORD = "consent.record"
    CONSENT_WITHDRAW = "consent.withdraw"
    # consent_form
    CONSENT_FORM_CREATE = "consent_form.create"
    # consent_waiver
    CONSENT_WAIVER_DECIDE = "consent_waiver.decide"
    CONSENT_WAIVER_REQUEST = "consent_waiver.request"
    # entry
    ENTRY_CREATE = "entry.create"
    ENTRY_EXPORT = "entry.export"
    ENTRY_FILE_DOWNLOAD = "entry.file.download"
    ENTRY_FILE_UPLOAD = "entry.file.upload"
    ENTRY_IMPORT = "entry.import"
    ENTRY_IMPORT_BATCH = "entry.import_batch"
    ENTRY_SETTINGS = "entry.settings"
    ENTRY_UPDATE = "entry.update"
    # ethics
    ETHICS_APPROVAL = "ethics.approval"
    ETHICS_COMMITTEE_CREATE = "ethics.committee_create"
    ETHICS_MEMBER_ADD = "ethics.member_add"
    ETHICS_MEMBER_REMOVE = "ethics.member_remove"
    # event
    EVENT_DEFINE = "event.define"
    # export (internal exports and their approval, §11.3.4.1 c)
    EXPORT_DECIDE = "export.decide"
    EXPORT_REQUEST = "export.request"
    # extract
    EXTRACT_APPROVED = "extract.approved"
    EXTRACT_BUILD = "extract.build"
    EXTRACT_BUILD_QUEUED = "extract.build_queued"
    EXTRACT_CHECK_OVERRIDE = "extract.check_override"
    EXTRACT_CROSS_BORDER_APPROVAL = "extract.cross_border_approval"
    EXTRACT_DECISION_DUA = "extract.decision.dua"
    EXTRACT_DECISION_ETHICS = "extract.decision.ethics"
    EXTRACT_DECISION_OFFICER = "extract.decision.officer"
    EXTRACT_DECISION_VOTE = "extract.decision.vote"
    EXTRACT_DESTRUCTION = "extract.destruction"
    EXTRACT_DOWNLOAD = "extract.download"
    EXTRACT_IDENTITY_DRAW = "extract.identity_draw"
    EXTRACT_REJECTED = "extract.rejected"
    EXTRACT_RELEASED = "extract.released"
    EXTRACT_REQUEST = "extract.request"
    # backup
    BACKUP_CREATE = "backup.create"
    BACKUP_DRILL = "backup.drill"
    BACKUP_RESTORE = "backup.restore"
    # form
    FORM_IMPORT = "form.import"
    FORM_NEW_VERSION = "form.new_version"
    FORM_PUBLISH = "form.publish"
    FORM_REIMPORT_DRAFT = "form.reimport_draft"
    # item
    ITEM_UPDATE = "item.update"
    # ledger (written by audit_trail itself, which imports nothing of ours)
    LEDGER_REDACT = "ledger.redact"
    # lock
    LOCK_REFUSED = "lock.refused"
    LOCK_SET = "lock.set"
    LOCK_SETTINGS = "lock.settings"
    # metadata
    METADATA_EXPORT = "metadata.export"
    # organisation
    ORGANISATION_REGISTER = "organisation.register"
    # protocol
    PROTOCOL_AMEND = "protocol.amend"
    PROTOCOL_CREATE = "protocol.create"
    # read: one entry per view of clinical data (batched, edc/jobs/reads.py)
    READ_FORM = "read.form"
    READ_HISTORY = "read.history"
    READ_LIST = "read.list"
    READ_SUBJECT = "read.subject"
    # a view that showed level-5 values under an unmask grant (§6.2 e)
    READ_UNMASKED = "read.unmasked"
    # query
    QUERY_ANSWER = "query.answer"
    QUERY_CLOSE = "query.close"
    QUERY_OPEN = "query.open"
    QUERY_REOPEN = "query.reopen"
    # randomisation
    RANDOMISATION_ASSIGN = "randomisation.assign"
    RANDOMISATION_CONFIGURE = "randomisation.configure"
    RANDOMISATION_LIST_IMPORT = "randomisation.list_import"
    # oversight
    OVERSIGHT_SELFCHECK = "oversight.selfcheck"
    # retention
    RETENTION_END_DATE = "retention.end_date"
    RETENTION_REVIEW = "retention.review"
    # sdv
    SDV_VERIFY = "sdv.verify"
    # signature
    SIGNATURE_INVALIDATE = "signature.invalidate"
    SIGNATURE_SIGN = "signature.sign"
    # site
    SITE_CREATE = "site.create"
    # study
    STUDY_COMPLETE_DRAFT = "study.complete_draft"
    STUDY_CREATE = "study.create"
    STUDY_OWNER_ACCEPT = "study.owner_accept"
    STUDY_OWNER_PROPOSE = "study.owner_propose"
    STUDY_STATUS = "study.status"
    # subject
    SUBJECT_ENROL = "subject.enrol"
    SUBJECT_DISCLOSURES_VIEW = "subject.disclosures_view"
    SUBJECT_EXPORT = "subject.export"
    SUBJECT_REQUEST_DECLINE = "subject.request_decline"
    SUBJECT_REQUEST_RECORD = "subject.request_record"
    SUBJECT_REQUEST_RESOLVE = "subject.request_resolve"
    # token
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    TOKEN_USE = "token.use"
    # unblinding
    UNBLINDING_EFFECTIVE = "unblinding.effective"
    UNBLINDING_EMERGENCY = "unblinding.emergency"
    UNBLINDING_REQUEST = "unblinding.request"
    UNBLINDING_SIGN = "unblinding.sign"
    # unmask: a time-limited grant to see level-5 values (§6.2 e)
    UNMASK_GRANT = "unmask.grant"
    # unlock
    UNLOCK_CHANGE = "unlock.change"
    UNLOCK_EFFECTIVE = "unlock.effective"
    UNLOCK_REJECTED = "unlock.rejected"
    UNLOCK_RELOCKED = "unlock.relocked"
    UNLOCK_REQUEST = "unlock.request"
    UNLOCK_WITHDRAWN = "unlock.withdrawn"
    # unlock_request
    UNLOCK_REQUEST_SIGN = "unlock_request.sign"
