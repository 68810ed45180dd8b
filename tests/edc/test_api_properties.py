"""A property-based run against the app's own OpenAPI (schemathesis), on a fixed budget: a few
generated requests per operation, a fixed seed, for several roles. It fails on any 5xx and on
any answer the OpenAPI does not describe (status code or body shape)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from factories import PASSWORD, make_active_study, make_user
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.kernel.roles import Role

EXAMPLES = 3  # per operation and role: about 190 operations × 3 roles × 3 ≈ 1,700 requests
ROLES = (Role.DATA_MANAGER, Role.INVESTIGATOR, Role.AUDITOR)
STUDY = "PROP-2026-01"
# Operations that end the walk's own session: they are called by their own tests.
SKIP = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/admin/accounts/revoke-sessions"),
        ("POST", "/api/v1/account/password")}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_generated_requests_get_no_5xx_and_only_documented_answers(
        role: Role, app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_active_study(session, STUDY, ledger=ledger)
    make_user(session, ledger, "prop", role, study=STUDY)
    r = app_client.post("/api/v1/auth/login", json={"username": "prop", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = {"edc_session": app_client.cookies["edc_session"]}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app_client.app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/") or (
                operation.method.upper(), operation.path) in SKIP:  # pages are HTML
            continue
        strategy = operation.as_strategy()

        @seed(20261201)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: Any) -> None:
            response = case.call(cookies=cookie)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:  # collected, reported together below
                for exc in group.exceptions:
                    failures.append(f"{case.method} {case.formatted_path} -> "
                                    f"{response.status_code}: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160]} "
                                    f"{response.text[:200]}")

        run()
    assert failures == [], "\n".join(sorted(set(failures))[:40])
