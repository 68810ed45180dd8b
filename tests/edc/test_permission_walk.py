"""Every role × every route against the policy table: where the table allows, the route does
not answer 403; where it refuses, it answers 403 and the refusal is a ledger entry. Deny by
default, union of roles, separation of duties (§11.3.4.1 a, SPEC §9)."""

from __future__ import annotations

import re

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
