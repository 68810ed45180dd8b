"""Every role × every route against the policy table: where the table allows, the route does
not answer 403; where it refuses, it answers 403 and the refusal is a ledger entry. Deny by
default, union of roles, separation of duties (§11.3.4.1 a, SPEC §9)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import make_user
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.policy import AUTHENTICATED, PUBLIC, iter_routes, policy_of
from studies.kernel.actor import SYSTEM
from studies.kernel.roles import GRANTS, Perm, Role


def routes(client: TestClient) -> list[tuple[str, str, str]]:
    out = []
    for route in iter_routes(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            policy = policy_of(route)
            assert policy is not None, route.path
            for method in sorted(route.methods):
                out.append((method, route.path, policy))
    # logging out ends the walk's session: those routes go last
    return sorted(out, key=lambda r: ("logout" in r[1], r[1], r[0]))


def allowed(role: Role, policy: str) -> bool:
    if policy in (PUBLIC, AUTHENTICATED):
        return True
    return Perm(policy) in GRANTS[role]


def call(client: TestClient, method: str, path: str, csrf: str) -> int:
    url = re.sub(r"\{[^}]+\}", "x", path)
    if method == "GET":
        with client.stream("GET", url, follow_redirects=False) as r:
            return r.status_code
    if url.startswith("/api/"):
        return client.request(method, url, json={}, follow_redirects=False).status_code
    return client.request(method, url, data={"csrf_token": csrf},
                          follow_redirects=False).status_code


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_route_for_this_role_follows_the_policy_table(
        role: Role, app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "walker", role)
    login(app_client, "walker")
    csrf = BeautifulSoup(app_client.get("/login").text, "html.parser").find(
        "input", {"name": "csrf_token"})["value"]
    wrong = []
    for method, path, policy in routes(app_client):
        before = _denials(session)
        status = call(app_client, method, path, csrf)
        if status >= 500:
            wrong.append(f"{method} {path} answered {status}")
        elif allowed(role, policy):
            if status == 403:
                wrong.append(f"{method} {path} ({policy}) refused")
        else:
            denials = _denials(session) - before
            if status != 403 or not denials:
                wrong.append(f"{method} {path} ({policy}) answered {status}, "
                             f"{len(denials)} denial(s) audited")
    assert wrong == []


def _denials(session: Session) -> set[int]:
    return set(session.execute(select(LedgerEntry.seq).where(
        LedgerEntry.action == "access.denied")).scalars())


def test_anonymous_requests_reach_only_public_routes(app_client: TestClient) -> None:
    bad = []
    for method, path, policy in routes(app_client):
        if policy == PUBLIC or method != "GET":
            continue
        status = call(app_client, method, path, "")
        if status not in (401, 303):
            bad.append(f"{method} {path}: {status}")
    assert bad == []


def test_a_study_in_the_path_scopes_the_permission(app_client: TestClient, session: Session,
                                                   ledger: Ledger) -> None:
    from fastapi import APIRouter

    from edc.policy import requires

    router = APIRouter()

    @router.get("/api/v1/probe/{study}/{site}", dependencies=[requires(Perm.STUDY_READ)])
    def probe(study: str, site: str) -> dict[str, str]:
        return {"study": study}

    app_client.app.include_router(router)  # type: ignore[attr-defined]
    from studies.accounts import service as accounts

    accounts.create_user(session, ledger, actor=SYSTEM, username="inv",
                         display_name="Inv", password="correct horse battery staple",
                         roles=[(Role.INVESTIGATOR, "S1", "H01")], must_change_password=False)
    login(app_client, "inv")
    assert app_client.get("/api/v1/probe/S1/H01").status_code == 200
    assert app_client.get("/api/v1/probe/S1/H02").status_code == 403
    assert app_client.get("/api/v1/probe/S2/H01").status_code == 403
    assert len(_denials(session)) == 2


# ── The scope axis: each role at each scope level, against targets inside and outside ──────

SCOPE_STUDY = "WALK-2026-01"
# site -> (hospital, department, medical group)
SCOPE_SITES = {"S01": ("Hospital A", "Cardiology", "Group 1"),
               "S02": ("Hospital A", "Cardiology", "Group 2"),
               "S03": ("Hospital A", "Oncology", "Group 1"),
               "S04": ("Hospital B", "Cardiology", "Group 1")}
# a grant anchored at S01 at each level, and the sites it reaches
LEVEL_REACH = {"site": {"S01"}, "department": {"S01", "S02"},
               "hospital": {"S01", "S02", "S03"}, "study": set(SCOPE_SITES)}


@pytest.fixture
def scope_world(session: Session, ledger: Ledger, state: Any) -> dict[str, Any]:
    """Study WALK-2026-01 with four sites in two hospitals and one subject at each."""
    from factories import SETUP, enrol_subject, make_active_study

    from studies.consent.models import ConsentRecord

    study, sites = make_active_study(session, SCOPE_STUDY, sites=tuple(SCOPE_SITES),
                                     ledger=ledger)
    keys = state.keys.code_index_keys()
    subjects = {}
    for n, site in enumerate(sites):
        site.hospital, site.department, site.medical_group = SCOPE_SITES[site.code]
        s = enrol_subject(session, ledger, keys, actor=SETUP, study=study, site=site, n=n + 1)
        consent = session.execute(select(ConsentRecord.id).where(
            ConsentRecord.subject_id == s.id)).scalar_one()
        subjects[site.code] = (s, consent)
    session.flush()
    return subjects


def probes(subject: Any, consent_id: str) -> list[tuple[Perm, str, str, dict[str, Any] | None]]:
    """Routes that target one subject: (permission, method, path, JSON body)."""
    base = f"/api/v1/studies/{SCOPE_STUDY}"
    later = "2099-01-01T00:00:00+00:00"  # in scope: refused 422 (in the future), never 403
    return [
        (Perm.SUBJECT_READ, "GET", f"{base}/subjects/{subject.code}", None),
        (Perm.CONSENT_READ, "GET", f"{base}/subjects/{subject.id}/consents", None),
        (Perm.CONSENT_READ, "GET", f"{base}/subjects/{subject.id}/may-use?scope=study", None),
        (Perm.CONSENT_RECORD, "POST", f"{base}/consents/{consent_id}/withdrawals",
         {"withdrawn_at": later}),
        (Perm.ENTRY_READ, "GET", f"{base}/entry/{subject.code}/baseline/vital_signs", None),
        (Perm.RANDOMISE, "POST", f"{base}/subjects/{subject.code}/randomise", {}),
        (Perm.LOCK_MANAGE, "POST", f"{base}/locks/report",
         {"scope": "subjects", "subjects": [subject.code]}),
        (Perm.CODE_INDEX_LOOKUP, "POST", "/api/v1/code-index/lookup/identity",
         {"code": subject.code, "reason": "scope walk"}),
    ]


@pytest.mark.parametrize("level", list(LEVEL_REACH))
@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_role_at_every_scope_level_reaches_only_its_sites(
        role: Role, level: str, app_client: TestClient, session: Session, ledger: Ledger,
        scope_world: dict[str, Any]) -> None:
    from studies.accounts import service as accounts
    from studies.kernel.roles import STUDY_WIDE

    grant = (role, SCOPE_STUDY) if level == "study" else (role, SCOPE_STUDY, "S01", level)
    accounts.create_user(session, ledger, actor=SYSTEM, username="walker", display_name="W",
                         password="correct horse battery staple", roles=[grant],
                         must_change_password=False)
    login(app_client, "walker")
    reach = LEVEL_REACH[level]
    wrong = []
    for site, (subject, consent_id) in scope_world.items():
        for perm, method, path, body in probes(subject, consent_id):
            held = perm in GRANTS[role] and (level == "study" or perm not in STUDY_WIDE)
            expect_allowed = held and site in reach
            before = _denials(session)
            r = app_client.request(method, path, json=body)
            if r.status_code >= 500:
                wrong.append(f"{site} {method} {path}: {r.status_code}")
            elif expect_allowed and r.status_code == 403:
                wrong.append(f"{site} {method} {path}: refused inside the scope: {r.text}")
            elif not expect_allowed and (r.status_code != 403 or _denials(session) == before):
                wrong.append(f"{site} {method} {path}: {r.status_code} outside the scope")
    if Perm.SUBJECT_READ in GRANTS[role]:
        listed = {r["site"] for r in app_client.get(
            f"/api/v1/studies/{SCOPE_STUDY}/subjects").json()}
        if listed != reach:
            wrong.append(f"subject list shows {sorted(listed)}, not {sorted(reach)}")
    assert wrong == []
