"""The one source of the conformance table: each requirement of GB/T 39725-2020 the project
answers for (§11.3 and the clauses it leans on: §6.2, §7, §10.2, Table 6, Appendix C, E.3 and
the software-checkable items of Appendix F), quoted briefly in Chinese with an English gloss,
the feature that meets it and the tests that prove it (``tests/path.py::test_name``).

``docs/conformance.md`` is rendered from :data:`SECTIONS` (``edc conformance table --out
docs/conformance.md``); ``tests/test_conformance.py`` fails when the document is stale, when a
row names a test that does not exist, or when a covered or partial row lacks a feature or a
test. A row the software cannot meet is ``organisational``; one it does not meet yet is
``missing`` — never a test that does not prove it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studies.kernel.i18n import _l, bilingual


class Status(StrEnum):
    COVERED = "covered"
    PARTIAL = "partial"
    ORGANISATIONAL = "organisational"
    MISSING = "missing"


STATUS_LABELS = {
    Status.COVERED: _l("covered"),
    Status.PARTIAL: _l("partial"),
    Status.ORGANISATIONAL: _l("organisational"),
    Status.MISSING: _l("missing"),
}


@dataclass(frozen=True)
class Row:
    clause: str
    zh: str
    en: str
    status: Status
    feature: str = ""
    tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


C, P, ORG, M = Status.COVERED, Status.PARTIAL, Status.ORGANISATIONAL, Status.MISSING

# Test ids used by several rows.
T_READS = "tests/edc/test_read_audit.py::test_each_view_of_clinical_data_is_one_ledger_entry"
T_LEDGER = "tests/audit_trail/test_ledger.py::test_appended_entries_form_a_verified_chain"
T_LEDGER_RO = ("tests/audit_trail/test_ledger.py::"
               "test_update_and_delete_on_ledger_rows_are_refused_by_the_database")
T_VERSIONS = ("tests/studies/test_entry.py::"
              "test_every_save_is_a_new_version_and_nothing_is_overwritten")
T_REASON = "tests/edc/test_entry_pages.py::test_a_correction_needs_a_reason_per_changed_field"
T_TRAIL_ROLE = ("tests/studies/test_audit_trail_export.py::"
                "test_only_the_auditor_role_reads_the_trail")
T_TRAIL_FILTER = ("tests/studies/test_audit_trail_export.py::"
                  "test_filters_by_user_action_study_subject_and_time")
T_SCOPE = "tests/edc/test_site_scope.py::test_reads_of_a_site_scoped_user_show_only_their_site"
T_SCOPE_LEVELS = ("tests/edc/test_permission_walk.py::"
                  "test_every_role_at_every_scope_level_reaches_only_its_sites")
T_HOSPITAL_SCOPE = ("tests/edc/test_site_scope.py::"
                    "test_the_administrator_grants_a_hospital_scope_that_reaches_its_sites")
T_POLICY = ("tests/edc/test_permission_walk.py::"
            "test_every_route_for_this_role_follows_the_policy_table")
T_SPONSOR_NO_PL = ("tests/edc/test_entry_api.py::"
                   "test_sponsors_and_the_administrator_see_no_patient_level_data")
T_LDS_K = ("tests/edc/test_extract_table6.py::"
           "test_the_sponsor_receives_an_lds_that_holds_table_6_and_k_on_every_row")
T_TABLE6_FLOORS = ("tests/deid/test_table6_subjects.py::"
                   "test_table_6_floors_ages_birth_dates_dates_postcodes")
T_DEMO_SCRUB = ("tests/edc/test_demo_extracts.py::"
                "test_the_demo_lds_builds_at_k_5_and_scrubs_the_names_typed_in")
T_DIRECT_REFUSED = ("tests/studies/test_extracts.py::"
                    "test_request_refuses_a_bad_age_key_and_direct_identifiers_outside_rif")
T_NO_DIRECT_ENTRY = ("tests/studies/test_entry.py::"
                     "test_direct_identifiers_are_never_entered_as_study_data")
T_CODE_ENC = ("tests/studies/test_code_index.py::"
              "test_enrolment_issues_a_random_code_and_stores_identity_only_encrypted")
T_CODE_AT_REST = ("tests/studies/test_code_index_at_rest.py::"
                  "test_raw_sqlite_file_and_wal_hold_no_identity")
T_CODE_REASON = ("tests/studies/test_code_index.py::"
                 "test_lookups_need_a_reason_and_are_recorded_with_result")
T_CODE_ROLES = ("tests/studies/test_code_index.py::"
                "test_every_other_role_is_refused_every_code_index_function")
T_SUBJECT_ACCESS = ("tests/studies/test_code_index.py::"
                    "test_subject_access_export_is_readable_and_audited")
T_COMMITTEE_7 = ("tests/studies/test_ethics.py::"
                 "test_approval_from_a_committee_not_meeting_11_3_2_e_is_refused")
T_APPROVAL = ("tests/studies/test_ethics.py::"
              "test_approval_of_the_current_protocol_opens_enrolment_and_activates_the_study")
T_CONSENT = "tests/studies/test_consent.py::test_entry_is_refused_without_consent"
T_CONSENT_SCOPES = ("tests/studies/test_consent.py::"
                    "test_consent_allows_entry_and_the_scopes_it_grants")
T_WITHDRAW_SCOPE = "tests/studies/test_consent.py::test_withdrawing_one_scope_keeps_the_others"
T_RECONSENT = ("tests/studies/test_consent.py::"
               "test_new_form_requiring_reconsent_stops_entry_until_reconsent")
T_WAIVER = "tests/studies/test_ethics.py::test_a_waiver_without_de_identification_is_refused"
T_WAIVER_CODED = "tests/studies/test_consent.py::test_an_approved_waiver_covers_coded_use_only"
T_BROAD = ("tests/studies/test_consent.py::"
           "test_broad_consent_allows_entry_for_de_identified_research")
T_LDS_VOTE = ("tests/studies/test_extracts.py::"
              "test_lds_needs_more_than_two_thirds_of_the_committee_and_the_agreement")
T_FIRST_REVIEW = ("tests/studies/test_extract_approvals.py::"
                  "test_the_committee_votes_only_after_the_officers_first_review")
T_E3 = ("tests/studies/test_extract_approvals.py::"
        "test_the_agreement_shows_every_e3_term_and_its_hash")
T_E3_PAGE = ("tests/edc/test_extract_signing.py::"
             "test_the_agreement_is_shown_in_full_and_its_hash_is_signed")
T_E3_BIND = ("tests/studies/test_extract_approvals.py::"
             "test_each_signature_binds_the_request_and_the_terms")
T_DESTROY = ("tests/studies/test_extracts.py::"
             "test_overdue_destruction_holds_further_requests_until_the_certificate")
T_RECIPIENTS = ("tests/studies/test_extracts.py::"
                "test_downloads_only_by_named_recipients_and_failed_checks_block")
T_CROSS_LIMIT = ("tests/studies/test_extract_recipients.py::"
                 "test_the_limit_is_cumulative_per_organisation_across_requests_and_studies_and_an_authority_approval_lifts_it")
T_CROSS_COUNTRY = ("tests/studies/test_extract_recipients.py::"
                   "test_cross_border_follows_the_recipients_registered_country")
T_RIF_HOSPITAL = ("tests/studies/test_extract_recipients.py::"
                  "test_a_rif_to_anyone_but_the_hospital_is_refused_even_for_a_hospital_researcher")
T_PACKAGE = ("tests/studies/test_extracts.py::"
             "test_lds_package_opens_with_age_and_minisign_is_k_anonymous_and_excludes_withdrawn")
T_RECEIVE = "tests/studies/test_extracts.py::test_receive_verifies_and_refuses_any_changed_byte"
T_PUF = "tests/studies/test_extracts.py::test_puf_is_aggregates_with_small_cells_withheld"
T_PUF_SUPP = ("tests/deid/test_puf_complementary_suppression.py::"
              "test_no_withheld_cell_can_be_recovered_from_row_or_column_totals")
T_TIERS = ("tests/studies/test_extract_tiers.py::"
           "test_each_tier_needs_exactly_the_approvals_of_its_row")
T_LOCK = ("tests/studies/test_locks.py::"
          "test_locked_study_refuses_a_save_with_423_naming_the_lock_who_and_when_audited")
T_UNLOCK_SIGN = ("tests/studies/test_locks.py::"
                 "test_unlock_request_tells_the_signers_and_is_not_effective_before_three_signatures")
T_UNBLIND = ("tests/studies/test_randomisation.py::"
             "test_unblinding_needs_a_locked_study_and_pi_and_statistician_signatures")
T_BACKUP = ("tests/edc/test_backup_cli.py::"
            "test_backup_is_encrypted_signed_private_and_restores_verified")
T_DRILL = ("tests/edc/test_backup_cli.py::"
           "test_drill_restores_into_a_scratch_database_and_records_the_result")
T_DRILL_PAGE = "tests/edc/test_backup_cli.py::test_audit_page_shows_when_the_last_drill_passed"
T_CHECKPOINT = ("tests/audit_trail/test_ledger.py::"
                "test_consistent_rewrite_after_a_checkpoint_is_caught_by_its_signature")
T_WITNESS = ("tests/edc/test_witness_cli.py::"
             "test_witness_catches_a_rewrite_resigned_with_a_stolen_key")
T_VERIFY = "tests/edc/test_cli.py::test_verify_names_the_altered_entry"
T_RETENTION = ("tests/studies/test_retention.py::"
               "test_ended_study_appears_five_years_on_until_a_signed_decision")
T_RETENTION_PAGE = ("tests/edc/test_retention_pages.py::"
                    "test_the_security_officer_signs_a_decision_on_the_review_page")
T_META = ("tests/studies/test_forms.py::"
          "test_publishing_needs_confirmed_classifications_and_translated_logic")
T_ODM = "tests/studies/test_forms.py::test_odm_export_validates_against_the_official_schema"
T_CHECKS = "tests/studies/test_entry.py::test_edit_checks_give_field_errors_and_write_nothing"
T_FIELD_ERRORS = "tests/edc/test_entry_pages.py::test_field_errors_are_shown_under_each_field"
T_BAD_INPUT = ("tests/edc/test_entry_api.py::"
               "test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing")
T_IMPORT_CHECKS = ("tests/studies/test_entry_exports.py::"
                   "test_bad_files_get_row_and_column_numbered_errors_and_write_nothing")
T_SDV = ("tests/studies/test_entry_monitoring.py::"
         "test_a_change_after_sdv_clears_it_visibly_and_lands_in_the_worklist")
T_QUERIES = ("tests/studies/test_entry_monitoring.py::"
             "test_query_thread_open_answer_with_correction_close_reopen")
T_CODES = ("tests/studies/test_subject_identity.py::"
           "test_subject_codes_have_site_prefix_and_check_character")
T_DUP = ("tests/studies/test_code_index.py::"
         "test_duplicate_enrolment_is_found_by_blind_index_and_named_only_to_the_custodian")
T_HEADERS = "tests/edc/test_web_foundation.py::test_security_headers_on_every_response"
T_COOKIE = "tests/edc/test_web_foundation.py::test_session_cookie_flags"
T_SECOND_FACTOR = ("tests/studies/test_second_factor.py::"
                   "test_outside_the_hospital_network_the_second_factor_is_required")
T_PRIV_2FA = ("tests/studies/test_second_factor.py::"
              "test_privileged_role_without_enrolment_may_only_enrol")
T_PASSWORD = "tests/studies/test_accounts_auth.py::test_password_policy_refuses_weak_passwords"
T_PW_HISTORY = "tests/studies/test_accounts_auth.py::test_the_last_five_passwords_are_refused"
T_PW_AGE = "tests/studies/test_accounts_auth.py::test_password_max_age_forces_a_change_when_set"
T_LOCKOUT = ("tests/studies/test_accounts_auth.py::"
             "test_five_failures_in_fifteen_minutes_lock_the_account")
T_IDLE = "tests/studies/test_accounts_auth.py::test_idle_timeout_and_absolute_lifetime"
T_END_DATE = ("tests/edc/test_account_end_dates.py::"
              "test_an_ended_account_cannot_log_in_and_its_token_stops")
T_ADMIN_SEP = ("tests/studies/test_accounts_auth.py::"
               "test_the_administrator_role_is_never_combined_with_another")
T_ADMIN_NO_DATA = ("tests/studies/test_accounts_auth.py::"
                   "test_the_administrator_cannot_read_clinical_data_or_the_trail")
T_FIRST_LOGIN = "tests/studies/test_accounts_auth.py::test_first_login_requires_a_password_change"
T_DEMO = "tests/edc/test_cli.py::test_demo_prints_one_account_per_role_and_is_safe_twice"
T_FAILED_LOGIN = "tests/edc/test_web_foundation.py::test_failed_login_is_refused_and_audited"
T_REFUSAL_AUDITED = ("tests/edc/test_account_pages.py::"
                     "test_the_administrator_is_refused_the_trail_and_the_refusal_is_audited")
T_SIGNATURE = ("tests/studies/test_signatures.py::"
               "test_first_signature_needs_every_component_later_ones_the_password")
T_SELF_APPROVE = "tests/studies/test_extracts.py::test_nobody_approves_their_own_request"
T_FILE_MODES = "tests/edc/test_file_modes.py::test_edc_commands_create_private_files"
T_ROTATION = ("tests/studies/test_code_index.py::"
              "test_rotation_re_encrypts_everything_and_keeps_identities")
T_KEY_OUTSIDE = ("tests/edc/test_code_index_keys.py::"
                 "test_missing_code_index_key_is_a_one_line_error_and_changes_nothing")
T_REDACT = ("tests/audit_trail/test_ledger.py::"
            "test_redaction_scrubs_the_payload_and_the_ledger_still_verifies")
T_TOKENS = ("tests/studies/test_api_tokens.py::"
            "test_token_acts_in_its_one_role_and_study_and_each_use_is_audited")
T_ORGS = ("tests/studies/test_extract_recipients.py::"
          "test_organisations_are_registered_with_a_kind_and_an_iso_country")
T_COMPANY_RIF = ("tests/studies/test_extract_recipients.py::"
                 "test_a_company_account_cannot_request_a_rif")
T_ETHICS_RIF = ("tests/edc/test_extract_signing.py::"
                "test_the_ethics_desk_records_identifiable_use_and_a_rif_needs_it")
T_RIF_ETHICS = "tests/studies/test_extracts.py::test_rif_needs_a_current_ethics_approval"
T_DATE_SHIFT = ("tests/deid/test_transforms_table6.py::"
                "test_date_shift_keeps_length_of_stay_exact_and_is_stable_per_project")
T_SECRET = "tests/deid/test_transforms_table6.py::test_weak_secret_is_refused"
T_TOKENS_DEID = ("tests/deid/test_transforms_table6.py::"
                 "test_keyed_tokens_link_within_project_not_across")
T_FREETEXT = "tests/deid/test_freetext_recall.py::test_everything_on_as_the_extract_calls_it"
T_HIER = "tests/deid/test_table6_subjects.py::test_every_hierarchy_nests_and_encodes"
T_RARE = ("tests/deid/test_table6_subjects.py::"
          "test_a_rare_follow_up_value_does_not_single_a_subject_out")
T_AGE89 = "tests/deid/test_transforms_table6.py::test_ages_above_89_are_never_finer_at_any_level"
T_CATALOGUE = "tests/studies/test_extracts.py::test_catalogue_shows_identifier_classification"
T_IDENT_FLAG = ("tests/studies/test_forms.py::"
                "test_identifier_flag_makes_a_confirmed_direct_identifier")
T_QI_PROPOSED = ("tests/studies/test_forms.py::"
                 "test_birth_dates_and_postcodes_are_proposed_as_quasi_identifiers")
T_RIF_DRAWN = ("tests/studies/test_extracts.py::"
               "test_rif_holds_only_identifiable_consent_and_draws_identity_by_the_system")
T_PROXY = ("tests/edc/test_reverse_proxy.py::"
           "test_forwarded_headers_from_anyone_but_the_proxy_are_ignored")
T_NO_SECRET_URL = "tests/edc/test_account_pages.py::test_no_route_takes_a_secret_in_its_url"
T_CSRF = "tests/edc/test_api_csrf.py::test_cross_site_writes_with_the_cookie_are_refused"
T_AUTHORITY = ("tests/studies/test_extract_recipients.py::"
               "test_only_the_officer_records_an_authority_approval_and_bad_input_is_named")
T_REVOKE = ("tests/studies/test_accounts_auth.py::"
            "test_an_administrator_revokes_every_session_of_a_user")
T_CONCURRENT_BACKUP = ("tests/edc/test_backup_cli.py::"
                       "test_backup_during_concurrent_saves_holds_every_acknowledged_save")
T_PROOFS = ("tests/audit_trail/test_ledger.py::"
            "test_inclusion_and_consistency_proofs_check_with_only_the_verifier_key")
T_SELFCHECK = "tests/studies/test_selfcheck.py::test_each_item_passes_or_fails_on_its_evidence"
T_SELFCHECK_REPORT = ("tests/edc/test_selfcheck_pages.py::"
                      "test_the_report_command_writes_signed_html_and_pdf_and_is_audited")
T_SELFCHECK_PAGE = ("tests/edc/test_selfcheck_pages.py::"
                    "test_the_security_officer_reaches_the_self_check_from_the_menu")
T_SUBJECT_DATA = ("tests/studies/test_subject_rights.py::"
                  "test_the_subject_access_export_holds_clinical_data_and_disclosures")
T_SUBJECT_REQ = ("tests/edc/test_subject_request_pages.py::"
                 "test_correction_and_restriction_requests_are_routed_and_resolved")
T_SUBJECT_REQ_API = ("tests/edc/test_subject_request_pages.py::"
                     "test_the_api_records_lists_and_declines_a_request")
T_OWNER = ("tests/edc/test_data_owner_pages.py::"
           "test_the_owner_is_named_handed_over_with_two_signatures_and_shown")
T_MISSING_ORG = "组织的制度 / the organisation's own rules and records"

S6_2 = Section("§6.2 数据分级 / Data levels", (
    Row("§6.2 a", "第1级：可完全公开使用", "level 1: fully public", C,
        "PUF tier: aggregates only, cells under 5 withheld with complementary suppression",
        (T_PUF, T_PUF_SUPP)),
    Row("§6.2 b", "第2级：不能标识个人身份，申请审批后用于研究", "level 2: not identifying, "
        "used for research after approval", P,
        "no tier of its own: the nearest is the LDS (level 3) with its approvals; the "
        "publishing level of each item is recorded in the eCRF classification", (T_CATALOGUE,)),
    Row("§6.2 c", "第3级：部分去标识化，限授权项目组", "level 3: partly de-identified, the "
        "authorised project team only", C,
        "LDS tier: Table 6 floor, k ≥ 5 over every released row, named recipients only",
        (T_LDS_K, T_RECIPIENTS)),
    Row("§6.2 d", "第4级：可直接标识个人，仅相关医护人员", "level 4: directly identifying, the "
        "care team only", C,
        "identity held only in the encrypted code index (the custodian); RIF only to the "
        "hospital's own accounts with ethics approval of identifiable use",
        (T_CODE_ENC, T_CODE_ROLES, T_RIF_HOSPITAL)),
    Row("§6.2 e", "第5级：特殊病种详细资料，仅主治医护人员且严格管控", "level 5: e.g. HIV "
        "details, treating clinicians only, strictly controlled", C,
        "level-5 items shown only to the study's treating roles, masked for others in pages, "
        "API and every export; a time-limited unmask grant with a reason, each view audited",
        ("tests/edc/test_level5.py::test_a_monitor_sees_level_5_values_masked_everywhere",
         "tests/edc/test_level5.py::"
         "test_a_grant_with_a_reason_unmasks_for_a_time_and_each_view_is_audited")),
))

S7 = Section("§7 使用披露要求 / Use and disclosure", (
    Row("§7 a", "使用或披露须获主体授权，授权明确内容、接收方、用途、期限", "use or "
        "disclosure needs the subject's authorisation, naming data, recipient, purpose, term",
        C, "consent with scopes per consent form version (studies/consent); entry and every "
        "extract tier check the consent scope", (T_CONSENT, T_CONSENT_SCOPES, T_PACKAGE)),
    Row("§7 a (再次同意)", "超出授权范围使用应再次征得同意", "use beyond the authorisation "
        "needs consent again", C, "a consent form version marked for re-consent stops entry "
        "until re-consent", (T_RECONSENT,)),
    Row("§7 b", "无授权时可使用：受限制数据集用于科学研究等", "without authorisation: e.g. an "
        "LDS for research", C, "approved consent waivers cover coded, de-identified use only",
        (T_WAIVER_CODED, T_WAIVER)),
    Row("§7 c", "市场营销须单独授权", "marketing needs separate authorisation", ORG,
        "the system holds no marketing use"),
    Row("§7 d", "主体有权访问其数据", "the subject may access their data", C,
        "the custodian's subject access export: identity, enrolment, consent records and the "
        "clinical data (current values per visit and form, readable labels)",
        (T_SUBJECT_ACCESS, T_SUBJECT_DATA)),
    Row("§7 e", "主体有权获得数据副本", "the subject may get a copy", C,
        "the subject access export as a bilingual HTML page, JSON or text",
        (T_SUBJECT_ACCESS, T_SUBJECT_DATA)),
    Row("§7 f", "提供请求更正或补充的方法", "a way to request correction", C,
        "the custodian records the request; the study team at the subject's site closes it "
        "after an audited change whose reason names it", (T_SUBJECT_REQ, T_SUBJECT_REQ_API)),
    Row("§7 g", "披露历史回溯查询，最短六年", "disclosure history, at least six years", C,
        "each extract built with a subject's rows is recorded per subject (recipient, tier, "
        "fields, when), kept with the ledger, and shown in the subject access export",
        (T_SUBJECT_DATA,)),
    Row("§7 h", "主体可要求限制使用或披露", "the subject may ask for restriction", C,
        "a restriction request is recorded and resolved by a consent scope withdrawal against "
        "it, or declined by the PI with a note", (T_SUBJECT_REQ, T_SUBJECT_REQ_API,
                                                  T_WITHDRAW_SCOPE)),
    Row("§7 i", "治疗笔记去标识化后用于培训", "treatment notes de-identified for training", ORG,
        "no treatment notes are held"),
    Row("§7 j", "将使用和披露限制在最低限度", "use and disclosure kept to the minimum", C,
        "role grants per study and site; each extract names only the fields it needs",
        (T_POLICY, T_SCOPE, T_DIRECT_REFUSED)),
    Row("§7 k", "处理者须签数据处理协议", "processors sign a data-processing agreement", ORG,
        T_MISSING_ORG),
    Row("§7 l", "向政府授权第三方传送前取得公章文件", "government third parties: stamped "
        "document first", ORG, T_MISSING_ORG),
    Row("§7 m", "受限制数据集：使用者签数据使用协议，用后归还或销毁", "LDS: the user signs a "
        "data-use agreement and returns or destroys the data", C,
        "the Appendix E.3 agreement signed per request; destruction certificates, overdue "
        "ones hold further requests", (T_LDS_VOTE, T_E3, T_DESTROY)),
    Row("§7 n", "不能识别个人的数据仍须遵守其他法规", "non-identifying data still under other "
        "rules", ORG, "legal assessment"),
    Row("§7 o", "向境外提供：数据安全委员会审批，250条以内", "abroad for academic exchange: "
        "committee approval, at most 250 records", C,
        "cross-border by the recipient's registered country; the committee's vote",
        (T_CROSS_COUNTRY, T_LDS_VOTE)),
    Row("§7 p", "境外传送累计250条以内，否则提请相关部门审批", "cumulative 250 abroad, else an "
        "authority approval", C, "cumulative per organisation across requests and studies; "
        "the officer records an authority approval", (T_CROSS_LIMIT, T_AUTHORITY)),
    Row("§7 q", "不在境外服务器存储", "no storage on servers abroad", ORG,
        "deployment: the system runs on the hospital's own server"),
    Row("§7 r", "宜采用数据分析平台形式", "prefer an analysis-platform form", ORG,
        "deployment choice"),
))

S10_2 = Section("§10.2 去标识化指南 / De-identification guide", (
    Row("§10.2 (审批)", "去标识化策略、流程和结果由数据安全委员会审批", "strategy and result "
        "approved by the data security committee", C,
        "first review by the officer, then the committee's vote over the frozen roll",
        (T_FIRST_REVIEW, T_LDS_VOTE)),
    Row("§10.2 a", "去除可唯一识别个人的信息", "remove directly identifying data", C,
        "direct identifiers never entered as study data, never in an LDS or PUF",
        (T_NO_DIRECT_ENTRY, T_DIRECT_REFUSED, T_TABLE6_FLOORS)),
    Row("§10.2 b", "间接标识信息（日期等）泛化", "generalise quasi-identifiers (dates …)", C,
        "Table 6 floors: quasi-identifier dates to the year, other dates shifted",
        (T_TABLE6_FLOORS, T_LDS_K)),
    Row("§10.2 c", "模糊化后有医学意义的数据保留模糊结果（年龄、邮编、地址、日期）", "keep "
        "blurred values: age bands, postcodes, address to county, dates", C,
        "age bands, postcode to three digits, dates to the year or shifted",
        (T_TABLE6_FLOORS, T_DATE_SHIFT)),
    Row("§10.2 d", "删除医护人员姓名", "remove the names of staff", C,
        "free text scrubbed of every account's display name and the subject's own name",
        (T_DEMO_SCRUB, T_FREETEXT)),
    Row("§10.2 e", "所有属性值相同的人数最低5人以上", "at least 5 share every description", C,
        "k ≥ 5 over the subject's whole record across forms and visits, re-checked per "
        "table with pycanon", (T_LDS_K, T_RARE)),
    Row("§10.2 f", "控制者内部建立患者代码索引", "the controller keeps the patient code index",
        C, "the code index, encrypted, custodian only", (T_CODE_ENC, T_CODE_ROLES)),
    Row("§10.2 g", "去标识化参数严格保密", "de-identification parameters kept secret", C,
        "offsets and token keys derived from the hospital's secret; weak secrets refused; "
        "key files 0600", (T_SECRET, T_FILE_MODES)),
    Row("§10.2 h", "重标识由控制者内部专人处理", "re-identification only by the controller's "
        "named people", C, "custodian look-ups need a reason and are recorded",
        (T_CODE_REASON, T_CODE_ROLES)),
    Row("§10.2 i", "禁止使用者参与去标识化", "users take no part in de-identification", C,
        "the build runs in the hospital; a sponsor cannot read patient-level data",
        (T_SPONSOR_NO_PL,)),
    Row("§10.2 j", "签署数据使用协议", "a data-use agreement is signed", C,
        "the versioned E.3 agreement, its hash signed", (T_E3, T_E3_PAGE)),
    Row("§10.2 k", "使用者记录使用情况，接受控制者审计", "users record use and accept audit",
        ORG, "the recipient's own records; the system records downloads and destruction"),
))

TABLE6 = Section("表6 去标识化示例 / Table 6, as the extract applies it", (
    Row("表6 姓名", "姓名：删除或置空", "names: delete or blank", C,
        "never an LDS/PUF field; scrubbed from free text", (T_DIRECT_REFUSED, T_DEMO_SCRUB)),
    Row("表6 联系方式", "联系方式：删除、置空或泛化（住址到市县）", "contact: delete, blank or "
        "generalise (address to county)", C,
        "phones, e-mails, addresses are direct identifiers (refused); phones and e-mails "
        "masked in free text", (T_DIRECT_REFUSED, T_FREETEXT)),
    Row("表6 日期", "日期：时间偏移、转换或泛化", "dates: shift, convert or generalise", C,
        "quasi-identifier dates to the year; others shifted by the study's offset",
        (T_TABLE6_FLOORS, T_DATE_SHIFT)),
    Row("表6 出生日期", "出生日期：删除或替换为年龄", "birth date: delete or replace by age",
        C, "the age at the snapshot date, in the age bands", (T_TABLE6_FLOORS,)),
    Row("表6 年龄", "年龄：泛化，>89不再细分", "age: bands, never finer above 89", C,
        "<25, 25-29, …, 85-89, >89 as the floor", (T_TABLE6_FLOORS, T_AGE89)),
    Row("表6 号码", "号码：删除或置空；邮编扰动泛化", "numbers: delete; postcodes generalised",
        C, "ID numbers refused; postcodes to 100***; ID numbers masked in free text",
        (T_TABLE6_FLOORS, T_FREETEXT)),
    Row("表6 医疗机构内部号码", "医疗机构内部号码：置换或删除", "in-hospital numbers: replace "
        "or delete", C, "subject codes become keyed tokens per extract; record numbers are "
        "direct identifiers", (T_TOKENS_DEID, T_PACKAGE)),
))

S11_3 = Section("§11.3 临床研究数据安全 / Clinical-research data security", (
    Row("§11.3.2 a–d, f–g", "相关方：申办者、研究机构、研究者、受试者、监查员、核查员",
        "parties: sponsor, site, investigator, subject, monitor, auditor", C,
        "one role per party in the grant table, each reaching only its work", (T_POLICY,)),
    Row("§11.3.2 e", "伦理委员会不少于7人，不同性别，含非本机构人员", "ethics committee: ≥ 7, "
        "both sexes, outside members", C, "approvals from a non-compliant committee refused",
        (T_COMMITTEE_7,)),
    Row("§11.3.3", "涉及的数据：人口学、检查、检验、医嘱……", "the data: demographics, "
        "examinations, labs, orders …", C, "eCRFs of every common field type from REDCap or "
        "ODM", ("tests/studies/test_forms.py::"
                "test_a_real_redcap_dictionary_with_every_common_type_imports",)),
    Row("§11.3.4.1 (伦理)", "涉及人的研究得到伦理委员会批准", "research on people approved by "
        "an ethics committee", C, "enrolment needs a current approval of the protocol in force",
        (T_APPROVAL, "tests/studies/test_enrolment_consent.py::"
         "test_enrolment_is_refused_without_any_ethics_approval")),
    Row("§11.3.4.1 (合同)", "通过合同/协议约定数据使用范围", "a contract sets the scope of use",
        C, "the E.3 data-use agreement signed per extract", (T_E3,)),
    Row("§11.3.4.1 a", "不同权限用户权限配置；全院、科室、医疗组层级", "permissions per role and "
        "department; hospital, department, team levels", C,
        "grants scoped to a site, a department or the hospital", (T_SCOPE_LEVELS,
                                                                  T_HOSPITAL_SCOPE)),
    Row("§11.3.4.1 b", "病历去标识化（姓名、年龄、性别、手机号……）", "de-identify records "
        "(name, age, sex, phone …)", C, "identity only in the code index; Table 6 in every "
        "LDS", (T_CODE_ENC, T_LDS_K)),
    Row("§11.3.4.1 c", "数据导出有完整审批流程并存档", "every export has an approval process "
        "and is archived", C, "sponsor extracts: approvals signed and kept; internal "
        "exports need a signed approval (the PI's, the security officer's for raw "
        "quasi-identifiers), recorded with each export",
        (T_TIERS, "tests/studies/test_export_approval.py::"
         "test_an_export_is_refused_until_the_pi_signs_its_approval",
         "tests/studies/test_export_approval.py::"
         "test_raw_quasi_identifiers_need_the_data_security_officers_signature",
         "tests/studies/test_entry_exports.py::"
         "test_csv_per_form_has_codes_and_labels_and_is_for_authorised_roles")),
    Row("§11.3.4.1 d", "提供最小数据集，同时进行访问审计", "the minimum data set, and access "
        "audited", C, "writes, refusals, exports and every view of clinical data are "
        "audited", (T_REFUSAL_AUDITED, T_SPONSOR_NO_PL, T_READS)),
    Row("§11.3.4.2", "研究计划报伦理委员会审批", "the plan goes to the ethics committee", C,
        "protocol versions, amendments stop enrolment until approved",
        ("tests/studies/test_ethics.py::"
         "test_an_amendment_stops_enrolment_until_it_is_approved",)),
    Row("§11.3.4.2 (广泛同意)", "广泛知情同意用于去标识化的未来研究", "broad consent for "
        "future de-identified research", C, "broad consent scope", (T_BROAD,)),
    Row("§11.3.4.2 a–b", "知情同意的例外与豁免（须去标识化、伦理批准）", "consent exceptions "
        "and waivers (de-identified, approved)", C, "waiver grounds checked against the "
        "design; coded use only", (T_WAIVER, T_WAIVER_CODED)),
    Row("§11.3.4.3", "PUF/LDS/RIF 分别对应第1、3、4级，审核递增", "PUF, LDS, RIF = levels 1, 3, "
        "4; stricter review as the level rises", C, "one tier table with its approvals",
        (T_TIERS, T_RIF_ETHICS)),
    Row("§11.3.4.4 a (元数据)", "数据收集前确定元数据格式和内容", "metadata fixed before "
        "collection", C, "published, versioned eCRFs with confirmed classification",
        (T_META, T_ODM)),
    Row("§11.3.4.4 a (责任人)", "确定数据责任人，人员调动及时变更", "name the data owner, "
        "change on staff moves", C, "each study names its data owner (a set-up step); a "
        "handover is signed by the outgoing owner (or an administrator when they left) and "
        "the incoming person, audited, the history shown", (T_OWNER,)),
    Row("§11.3.4.4 b", "与受试者签署协议，说明保密及查阅", "agreement with the subject on "
        "confidentiality and review", C, "consent form text shown and recorded per version",
        ("tests/edc/test_study_pages.py::"
         "test_consent_capture_shows_the_form_text_and_records_consent",)),
    Row("§11.3.4.4 c", "数据接收有记录；EDC 符合安全规范", "data receipt recorded; the EDC "
        "meets the security rules", C, "every save a version with its batch; imports "
        "checked whole", ("tests/studies/test_entry_exports.py::"
                          "test_a_redcap_flat_file_imports_every_value_as_a_version_with_the_batch",
                          T_IMPORT_CHECKS)),
    Row("§11.3.4.4 d", "数据库不含受试者全名，以代码指代", "no full names in the database, "
        "codes instead", C, "identity encrypted in the code index; subject codes with "
        "check character", (T_CODE_AT_REST, T_CODES)),
    Row("§11.3.4.5 a", "传输采用TLS等；离线介质加密，密钥分开", "TLS in transit; offline media "
        "encrypted, keys apart", P, "extract packages age-encrypted and signed; TLS is the "
        "reverse proxy's (deployment)", (T_PACKAGE, T_PROXY)),
    Row("§11.3.4.5 b", "密码技术保证传输保密性、完整性", "cryptography for confidentiality and "
        "integrity in transit", C, "age + minisign packages; any changed byte refused",
        (T_RECEIVE,)),
    Row("§11.3.4.5 c", "数据核查：完整导入、缺失、重复、唯一性", "data checks: complete import, "
        "missing, duplicates, uniqueness", C, "import checks; duplicate enrolment by blind "
        "index; incomplete forms in the pre-lock report",
        (T_IMPORT_CHECKS, T_DUP, "tests/studies/test_locks.py::"
         "test_incomplete_forms_are_in_the_prelock_report")),
    Row("§11.3.4.5 d", "端口安全", "port security", ORG, "deployment: firewall and proxy"),
    Row("§11.3.4.5 e", "按用户身份及用户组实施访问控制", "access control by user and group", C,
        "one policy per route, grants per study and site", (T_POLICY,
        "tests/edc/test_policy.py::test_every_route_declares_exactly_one_policy")),
    Row("§11.3.4.6 (代码索引)", "知情同意书和代码索引由医疗机构保存，企业只得去标识化数据",
        "consent and code index stay in the hospital; companies get de-identified data only",
        C, "a company account cannot request a RIF", (T_COMPANY_RIF, T_CODE_ROLES)),
    Row("§11.3.4.6 a1", "代码索引加密，访问控制，密钥分开存储", "code index encrypted, access "
        "controlled, keys apart", C, "key outside the database; rotation",
        (T_CODE_AT_REST, T_KEY_OUTSIDE, T_ROTATION)),
    Row("§11.3.4.6 a2", "其他数据访问控制，推荐加密", "other data access-controlled, encryption "
        "recommended", P, "access control per route; the database itself is not encrypted "
        "(disk encryption is the deployment's)", (T_POLICY,)),
    Row("§11.3.4.6 a3", "完整性验证，防篡改", "integrity verified, tamper-evident", C,
        "hash chain, RFC 9162 tree, signed checkpoints, witnesses",
        (T_LEDGER, T_CHECKPOINT, T_WITNESS)),
    Row("§11.3.4.6 a4", "研究结束后每5年安全和使用审查", "five-yearly review after the study "
        "ends", C, "retention review list and signed decision", (T_RETENTION,
                                                                 T_RETENTION_PAGE)),
    Row("§11.3.4.6 a5 / b4", "备份及恢复，每年至少一次恢复验证", "backups, a restore check at "
        "least yearly", C, "encrypted signed backups; the drill recorded and shown",
        (T_BACKUP, T_DRILL, T_DRILL_PAGE)),
    Row("§11.3.4.6 b1", "密码技术实施完整性控制", "cryptographic integrity control", C,
        "ledger and current-values proof", (T_LEDGER, "tests/studies/test_entry.py::"
                                            "test_the_current_table_is_proved_against_versions_and_ledger")),
    Row("§11.3.4.6 b2", "过程记录准确完整，可从结果追溯到原始数据", "complete records, traceable "
        "from result to source", C, "every save a version with the ledger entry",
        (T_VERSIONS, "tests/studies/test_entry.py::test_timeline_lists_every_save")),
    Row("§11.3.4.6 b3", "中间数据以版本形式保存，不得覆盖", "intermediate data versioned, never "
        "overwritten", C, "value versions cannot be updated or deleted",
        (T_VERSIONS, "tests/studies/test_entry.py::"
         "test_value_versions_cannot_be_updated_or_deleted")),
    Row("§11.3.4.6 b5", "公有云加密与灾备；院内网络隔离", "public cloud encryption; network "
        "isolation", ORG, "deployment"),
    Row("§11.3.4.7 a", "数据库锁定与开锁，开锁由PI、数据管理员、统计师共同签署", "lock and "
        "unlock, the unlock signed by PI, data manager, statistician", C,
        "locks, unlock requests signed by three; unblinding after lock",
        (T_LOCK, T_UNLOCK_SIGN, T_UNBLIND)),
    Row("§11.3.4.7 b", "每次更改保留稽查轨迹（时间、人、原因、前后值），不可修改", "audit "
        "trail of every change (when, who, why, before, after), unalterable", C,
        "ledger entries with reasons; the database refuses update and delete",
        (T_REASON, T_LEDGER_RO, T_TRAIL_FILTER)),
    Row("§11.3.4.7 c", "去标识化后使用", "use after de-identification", C,
        "LDS with Table 6 and k", (T_LDS_K,)),
    Row("§11.3.4.7 d", "数据权限管理：授权查看、使用", "data permissions: view and use", C,
        "the one grant table, published", ("tests/test_permissions_doc.py::"
                                           "test_committed_permission_table_is_up_to_date",
                                           T_POLICY)),
    Row("§11.3.4.7 e", "观察结果核实，质量控制", "findings verified, quality control", C,
        "SDV and queries", (T_SDV, T_QUERIES)),
    Row("§11.3.4.7 f", "多中心集中管理", "multi-centre data managed centrally", C,
        "one study, many sites, site scope", (T_SCOPE,)),
    Row("§11.3.4.7 g", "只有授权角色访问授权数据对象", "only authorised roles reach authorised "
        "objects", C, "permission walk of every route", (T_POLICY, T_SCOPE_LEVELS)),
    Row("§11.3.4.7 h", "加密、身份验证、完整性校验传输给指定对象", "encrypted, authenticated, "
        "integrity-checked transfer to named recipients", C,
        "packages encrypted to the named recipients' keys, signed", (T_RECIPIENTS,
                                                                    T_RECEIVE)),
    Row("§11.3.4.7 i", "不同角色不同账号和权限", "separate accounts and permissions per role",
        C, "the administrator role never combined; one account per person",
        (T_ADMIN_SEP, T_TOKENS)),
    Row("§11.3.4.8 a", "形成共享说明（限制性访问、保密协议、用途）", "a sharing statement "
        "(access limits, confidentiality, purpose)", P, "the E.3 agreement per extract; no "
        "study-level sharing statement", (T_E3,)),
    Row("§11.3.4.8 b", "对不同级别数据评估，确定共享规范", "assess each level, set sharing "
        "rules", C, "the tier table", (T_TIERS,)),
    Row("§11.3.4.8 c", "共享数据可溯源", "shared data traceable", C, "manifest per package, "
        "downloads recorded", (T_PACKAGE, T_RECIPIENTS)),
    Row("§11.3.4.8 d–g", "遵守共享说明、知识产权、开放共享、收费、引用", "sharing terms, IP, "
        "open data, fees, citation", ORG, "legal and publication practice"),
    Row("§11.3.4.9 a", "人员审计、管理审计、技术审计", "personnel, management and technical "
        "audit", P, "the auditor's trail search and export; the Appendix F self-check",
        (T_TRAIL_FILTER, T_SELFCHECK)),
    Row("§11.3.4.9 b", "任何操作含登录自动生成带时间标记的审计记录", "every action incl. login "
        "audited with a timestamp", C, "writes, logins, refusals and reads audited",
        (T_FAILED_LOGIN, T_REASON, T_REFUSAL_AUDITED, T_READS)),
    Row("§11.3.4.9 c", "活动审计政策，重点审计访问合规性", "an activity audit policy, access "
        "compliance", C, "every view of clinical data is a ledger entry the auditor can "
        "filter (reads only); abnormal-access rules over them",
        (T_READS, "tests/edc/test_abnormal_access.py::test_bulk_reads_are_flagged")),
    Row("§11.3.4.9 d", "异常报告所需审计跟踪和监视程序", "audit trail and monitoring for "
        "abnormal-access reports", C, "outside-network, out-of-hours, bulk-read and "
        "repeated-refusal flags to the security officer, each acknowledged with a note",
        ("tests/edc/test_abnormal_access.py::"
         "test_access_from_outside_is_flagged_once_acknowledged_with_a_note",
         "tests/edc/test_abnormal_access.py::test_access_out_of_working_hours_is_flagged",
         "tests/edc/test_abnormal_access.py::test_repeated_refusals_are_flagged")),
    Row("§11.3.4.9 e", "审计记录安全存储，访问控制", "audit records stored safely, access "
        "controlled", C, "only the auditor reads the trail; study auditors their study",
        (T_TRAIL_ROLE, "tests/studies/test_audit_trail_export.py::"
         "test_a_study_auditor_sees_only_that_study")),
))

APPENDIX_C = Section("附录C 数据使用管理办法 / Appendix C, data-use rules", (
    Row("附录C 第八条 (一)", "数据安全委员会审批数据使用、去标识化方案、出境评估",
        "the committee approves use, de-identification, cross-border", C,
        "the committee's vote over a frozen roll", (T_LDS_VOTE, T_FIRST_REVIEW)),
    Row("附录C 第十一条 3", "超过三分之二委员表决同意，表决同意的委员会签", "more than two "
        "thirds vote yes, each signs", C, "signed votes, more than two thirds",
        (T_LDS_VOTE, "tests/studies/test_extract_approvals.py::"
         "test_two_of_three_yes_then_the_third_leaves_is_not_approved")),
    Row("附录C 第十一条 2", "数据安全工作办公室初审", "the office's first review", C,
        "the officer's first review before the vote", (T_FIRST_REVIEW,)),
    Row("附录C 第十条", "数据原则上不出境，未获批准不予境外单位使用", "no data abroad without "
        "approval", C, "cross-border limit and authority approvals", (T_CROSS_LIMIT,)),
    Row("附录C 第十三–十五条", "数据使用账号申请审批；期满自动注销", "data-use accounts "
        "approved; closed when the project ends", P, "account end dates stop logins and "
        "tokens; the account application itself is organisational", (T_END_DATE,)),
    Row("附录C 第七条", "成立数据安全委员会及工作办公室", "set up the committee and the office",
        ORG, T_MISSING_ORG),
))

APPENDIX_E3 = Section("附录E.3 数据使用协议 / Appendix E.3, data-use agreement", (
    Row("E.3 使用条款 1–3", "目的、去除的个人标识信息种类、不得重标识或关联", "purpose, the "
        "identifiers removed, no re-identification or linkage", C,
        "every E.3 term shown in full, its hash signed with the request",
        (T_E3, T_E3_PAGE, T_E3_BIND)),
    Row("E.3 保密 1–5", "保密、不再披露、安全措施", "confidentiality, no onward disclosure, "
        "safeguards", C, "the same agreement terms", (T_E3,)),
    Row("E.3 保密 4", "义务在协议终止后六年内有效", "obligations last six years after the "
        "end", C, "the term is part of the signed text", (T_E3,)),
    Row("E.3 保密 6", "发现泄露立即通知", "report a breach at once", ORG,
        "the recipient's obligation"),
    Row("E.3 保密 9", "终止后返还或销毁", "return or destroy at the end", C,
        "destruction certificates; overdue ones hold further requests", (T_DESTROY,)),
))

APPENDIX_F = Section("附录F 安全检查表（软件可证明的项） / Appendix F, the items software can "
                     "evidence", (
    Row("F 使用披露: 获得主体同意", "非医疗目的使用是否获得主体同意", "consent for "
        "non-medical use", C, "consent gate", (T_CONSENT,)),
    Row("F 使用披露: 超范围再同意", "超出授权范围是否再次征得同意", "re-consent beyond scope",
        C, "re-consent", (T_RECONSENT,)),
    Row("F 使用披露: 委员会审批", "未经授权的受限制数据使用是否经过委员会审批", "committee "
        "approval of LDS use", C, "the vote", (T_LDS_VOTE,)),
    Row("F 使用披露: 访问与副本", "是否提供主体访问其数据及获得副本的方式", "subject access "
        "and copy", C, "subject access export with the clinical data", (T_SUBJECT_DATA,)),
    Row("F 使用披露: 更正", "是否提供请求更正或补充信息的方法", "correction requests", C,
        "subject requests routed to the study team", (T_SUBJECT_REQ,)),
    Row("F 使用披露: 披露回溯6年", "是否支持主体回溯查询披露情况6年", "disclosure history "
        "six years", C, "the disclosure history in the subject access export",
        (T_SUBJECT_DATA,)),
    Row("F 使用披露: 数据使用协议", "数据交付第三方是否通过协议约定目的和安全责任",
        "agreement with third parties", C, "E.3 agreement", (T_E3,)),
    Row("F 使用披露: 彻底销毁", "数据使用结束后是否确认数据已彻底销毁", "destruction "
        "confirmed", C, "destruction certificates; shown in the self-check",
        (T_DESTROY, T_SELFCHECK)),
    Row("F 使用披露: 境外250条", "境外传送是否限定在250条以内，必要时提请审批", "abroad at "
        "most 250, else an authority", C, "cumulative limit; shown in the self-check",
        (T_CROSS_LIMIT, T_SELFCHECK)),
    Row("F 使用披露: 传输加密", "健康医疗数据传输是否加密", "transfer encrypted", C,
        "age-encrypted packages", (T_PACKAGE,)),
    Row("F 安全技术: 分类分级", "是否对数据进行分类分级管理", "classification and levels", C,
        "item classification; tiers", (T_CATALOGUE, T_IDENT_FLAG)),
    Row("F 安全技术: 身份鉴别", "身份标识唯一，鉴别信息有复杂度要求并定期更换", "unique "
        "identity, password strength, change", C, "password rules, history, maximum age",
        (T_PASSWORD, T_PW_HISTORY, T_PW_AGE)),
    Row("F 安全技术: 登录失败处理", "登录失败处理、限制非法登录次数、超时自动退出",
        "lockout, attempt limits, idle logout", C, "lockout and rate limits; idle timeout",
        (T_LOCKOUT, T_IDLE)),
    Row("F 安全技术: 远程管理", "远程管理防止鉴别信息被窃听", "remote administration not "
        "sniffable", P, "second factor outside the hospital network; secure cookies; TLS "
        "at the proxy", (T_SECOND_FACTOR, T_COOKIE)),
    Row("F 安全技术: 默认账户", "重命名或删除默认账户，修改默认口令", "no default accounts or "
        "passwords", C, "first login forces a password change", (T_FIRST_LOGIN,)),
    Row("F 安全技术: 过期账户", "及时删除或停用过期账户", "expired accounts disabled", C,
        "end dates stop logins; the self-check lists accounts past their end date",
        (T_END_DATE, T_SELFCHECK)),
    Row("F 安全技术: 最小权限与分离", "管理用户最小权限，权限分离", "least privilege, "
        "separation", C, "administrator never combined, reads no clinical data",
        (T_ADMIN_SEP, T_ADMIN_NO_DATA)),
    Row("F 安全技术: 安全审计", "启用安全审计，覆盖每个用户", "security audit covers every "
        "user", C, "writes, refusals and reads of every user",
        (T_FAILED_LOGIN, T_REFUSAL_AUDITED, T_READS)),
    Row("F 安全技术: 审计记录内容", "审计记录含日期时间、用户、事件类型、是否成功", "audit "
        "record fields", C, "ledger entries: time, actor, action, outcome, client",
        (T_TRAIL_FILTER,)),
    Row("F 安全技术: 审计记录保护", "审计记录保护，定期备份，防删除修改", "audit records "
        "protected and backed up", C, "append-only ledger, witnessed checkpoints, backups; "
        "shown in the self-check", (T_LEDGER_RO, T_WITNESS, T_BACKUP, T_SELFCHECK)),
    Row("F 安全技术: 有效性检验", "提供数据有效性检验功能", "input validity checks", C,
        "edit checks, field errors, 422 naming the field",
        (T_CHECKS, T_FIELD_ERRORS, T_BAD_INPUT)),
    Row("F 安全技术: 传输完整性", "校验技术保证传输完整性", "integrity in transit", C,
        "signed packages", (T_RECEIVE,)),
    Row("F 安全技术: 备份恢复", "本地数据备份与恢复功能", "local backup and restore", C,
        "backup, restore, drill; shown in the self-check",
        (T_BACKUP, T_CONCURRENT_BACKUP, T_SELFCHECK)),
    Row("F 安全技术: 异地备份", "异地数据备份", "off-site backup", ORG,
        "operations copy the encrypted backups off site"),
    Row("F 安全技术: 鉴别信息清除", "鉴别信息存储空间释放前完全清除", "authentication data "
        "cleared", P, "password hashes only; sessions revoked", (T_REVOKE,)),
    Row("F 安全技术: 最少个人信息", "仅采集和保存业务必需的个人信息", "only necessary personal "
        "data", C, "direct identifiers never study data", (T_NO_DIRECT_ENTRY,)),
    Row("F 安全技术: 禁止未授权访问", "禁止未授权访问和非法使用个人信息", "no unauthorised "
        "access to personal data", C, "code index custodian only, CSRF, no secrets in URLs",
        (T_CODE_ROLES, T_CSRF, T_NO_SECRET_URL)),
    Row("F 安全技术: 存储保密性", "密码技术保证传输和存储保密性", "confidentiality in "
        "transit and storage", P, "code index and packages encrypted; the database itself "
        "relies on disk encryption", (T_CODE_AT_REST, T_PACKAGE)),
    Row("F 去标识化: 数据使用协议", "是否通过数据使用协议约定目的、期限", "agreement on "
        "purpose and term", C, "E.3", (T_E3,)),
    Row("F 去标识化: 委员会审批", "去标识化策略、流程和结果由委员会审批", "committee approves "
        "de-identification", C, "vote", (T_LDS_VOTE,)),
    Row("F 去标识化: 去除标识", "去除可唯一识别个人的信息", "direct identifiers removed", C,
        "Table 6", (T_DIRECT_REFUSED, T_TABLE6_FLOORS)),
    Row("F 去标识化: 泛化", "模糊化后有医学意义的数据是否泛化", "generalisation", C,
        "hierarchies", (T_HIER, T_TABLE6_FLOORS)),
    Row("F 去标识化: 医护人员姓名", "是否删除医护人员姓名", "staff names removed", C,
        "free-text scrub", (T_DEMO_SCRUB,)),
    Row("F 去标识化: 5人以上", "所有属性值相同的人数最低5人以上", "k ≥ 5", C, "k over every "
        "row", (T_LDS_K,)),
    Row("F 去标识化: 代码索引", "由控制者内部建立患者代码索引", "code index in the hospital",
        C, "code index", (T_CODE_ENC,)),
    Row("F 去标识化: 参数保密", "去标识化参数严格保密", "parameters secret", C,
        "secret-derived offsets and tokens", (T_SECRET,)),
    Row("F 去标识化: 重标识专人", "重标识由控制者内部专人处理", "re-identification by named "
        "people", C, "custodian with reason", (T_CODE_REASON,)),
    Row("F 安全管理: 专人负责", "是否指定专人负责数据安全日常工作", "a named person for data "
        "security", P, "each study's data owner, handed over with two signatures; the data "
        "security office's own staffing is organisational", (T_OWNER,)),
    Row("F 安全管理: 数据使用审批流程", "是否建立了数据使用审批流程", "a data-use approval "
        "process", C, "extract approvals", (T_TIERS, T_LDS_VOTE)),
    Row("F 安全管理: 元数据管理", "是否进行了必要的元数据管理", "metadata management", C,
        "versioned eCRFs, ODM", (T_META, T_ODM)),
    Row("F 安全管理: 自查", "定期实施自查，每年至少一次", "self-check at least yearly", C,
        "the live Appendix F self-check: page and signed report",
        (T_SELFCHECK, T_SELFCHECK_REPORT, T_SELFCHECK_PAGE)),
    Row("F 安全管理: 审计使用情况", "就数据使用情况进行审计", "audit of data use", P,
        "extracts by tier with approvals in the self-check; reads audited",
        (T_SELFCHECK, T_TRAIL_FILTER, T_READS)),
    Row("F 安全管理: 委员会、制度、培训、应急", "委员会组成、规章制度、培训、应急预案与演练",
        "committee, policies, training, incident plans and drills", ORG, T_MISSING_ORG),
))

SECTIONS: tuple[Section, ...] = (S11_3, S6_2, S7, S10_2, TABLE6, APPENDIX_C, APPENDIX_E3,
                                 APPENDIX_F)


def all_rows() -> list[Row]:
    return [r for s in SECTIONS for r in s.rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """docs/conformance.md, from :data:`SECTIONS`."""
    rows = all_rows()
    counts = {s: sum(1 for r in rows if r.status == s) for s in Status}
    out = [
        "# Conformance with GB/T 39725-2020",
        "",
        "<!-- Generated by `edc conformance table --out docs/conformance.md` from "
        "studies/oversight/conformance.py; tests/test_conformance.py fails when it is stale. -->",
        "",
        "Each requirement of §11.3 and of the clauses it leans on (§6.2, §7, §10.2, Table 6, "
        "Appendix C, Appendix E.3, and the items of the Appendix F checklist software can "
        "evidence), quoted briefly in Chinese with an English gloss, with the feature that "
        "meets it and the tests that prove it. *organisational* rows are met by the "
        "hospital's own rules and records, not by software; *missing* rows are not met yet.",
        "",
        "| status | rows |",
        "|---|---|",
        *[f"| {bilingual(STATUS_LABELS[s])} | {counts[s]} |" for s in Status],
        f"| total | {len(rows)} |",
        "",
    ]
    for sec in SECTIONS:
        out += [f"## {sec.title}", "",
                "| clause | requirement | status | feature | tests |",
                "|---|---|---|---|---|"]
        for r in sec.rows:
            tests = "<br>".join(f"`{t}`" for t in r.tests) or "—"
            out.append(f"| {_cell(r.clause)} | {_cell(r.zh)} / {_cell(r.en)} | "
                       f"{bilingual(STATUS_LABELS[r.status])} | {_cell(r.feature) or '—'} | "
                       f"{tests} |")
        out.append("")
    return "\n".join(out)
