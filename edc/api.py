"""JSON API under /api/v1 (documented by FastAPI's OpenAPI at /api/v1/docs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from audit_trail import service as ledger_service
from edc.deps import SESSION_COOKIE, CurrentActor, LedgerDep, SessionDep, StateDep, client_address
from edc.policy import authenticated, public, requires
from studies.accounts import service as accounts
from studies.accounts.roles import Perm

router = APIRouter(prefix="/api/v1")


class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class MeOut(BaseModel):
    username: str
    display_name: str
    roles: list[dict[str, str | None]]
    must_change_password: bool


@router.get("/health", dependencies=[public()])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/auth/login", dependencies=[public()])
def api_login(body: LoginIn, request: Request, session: SessionDep, ledger: LedgerDep,
              state: StateDep) -> JSONResponse:
    token, actor = accounts.login(session, ledger, username=body.username,
                                  password=body.password, client=client_address(request))
    resp = JSONResponse({"username": actor.username,
                         "must_change_password": actor.must_change_password})
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                    secure=state.settings.secure_cookies)
    return resp


@router.post("/auth/logout", dependencies=[authenticated()])
def api_logout(session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> JSONResponse:
    accounts.logout(session, ledger, actor=actor)
    resp = JSONResponse({"status": "logged out"})
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/me", response_model=MeOut, dependencies=[authenticated()])
def me(actor: CurrentActor) -> MeOut:
    return MeOut(username=actor.username, display_name=actor.display_name,
                 roles=[{"role": r.value, "study": s} for r, s in actor.grants],
                 must_change_password=actor.must_change_password)


@router.get("/audit/verify", dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_verify(session: SessionDep, state: StateDep, actor: CurrentActor) -> dict[str, object]:
    report = ledger_service.verify(session, vkey=state.keys.signer.vkey)
    return {"intact": True, "entries": report.entries, "checkpoints": report.checkpoints,
            "redacted": report.redacted, "root": report.root.hex(), "summary": report.summary()}


@router.get("/audit/checkpoints", dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_checkpoints(session: SessionDep, state: StateDep,
                      actor: CurrentActor) -> dict[str, object]:
    return {"verifier_key": state.keys.signer.vkey,
            "checkpoints": [{"tree_size": c.tree_size, "root_hash": c.root_hash.hex(),
                             "reason": c.reason, "note": c.note}
                            for c in ledger_service.list_checkpoints(session)]}
