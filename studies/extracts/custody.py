"""Builds, transfers and destruction of an approved extract (§11.4.2.2, §11.4.2.6): queueing the
build, the data manager's override of a failed pre-transfer check, authorising a download to a
named recipient, the recipient's destruction certificate and the officer's list of overdue ones."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.extracts.models import (
    ExtractRequest,
    ExtractTransfer,
)
from studies.extracts.schemas import OverrideIn
from studies.extracts.service import (
    CLAUSE_DESTROY,
    CLAUSE_TIER,
    get_request,
    now_utc,
    overdue_requests,
    tell_approvers,
)
from studies.jobs import service as jobs
from studies.jobs.models import Kind
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.labels import label
from studies.kernel.roles import Perm


def queue_build(session: Session, ledger: Ledger, *, actor: Actor,
                request_id: str) -> ExtractRequest:
    req = get_request(session, request_id)
    require(actor, Perm.EXTRACT_BUILD, study=req.study_code)
    if req.status != "approved":
        raise RuleViolation(
            _("the request is {status}, not approved").format(status=label(req.status)),
            field="status", clause=CLAUSE_TIER)
    if req.build_state in ("queued", "running"):
        raise Conflict(_("a build is already under way"), field="build_state")
    if req.build_state in ("done", "blocked"):
        raise Conflict(_("the package is already built"), field="build_state")
    req.build_state, req.progress, req.build_error = "queued", 0, None
    req.build_requested_by = actor.username
    session.flush()
    jobs.enqueue(session, kind=Kind.EXTRACT_BUILD, ref=req.id, payload={"request_id": req.id})
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_BUILD_QUEUED,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  client=actor.client)
    return req


def override_checks(session: Session, ledger: Ledger, *, actor: Actor, request_id: str,
                    data: OverrideIn) -> ExtractRequest:
    """A data manager releases a package whose pre-transfer checks failed, with a reason."""
    req = get_request(session, request_id)
    require(actor, Perm.EXTRACT_BUILD, study=req.study_code)
    reason = data.reason.strip()
    if len(reason) < 10:
        raise InvalidInput(_("reason: at least 10 characters"), field="reason")
    if req.build_state != "blocked":
        raise Conflict(_("only a package blocked by a failed check can be released"),
                       field="build_state")
    req.build_state = "done"
    session.add(ExtractTransfer(request_id=req.id, event="check_override",
                                actor=actor.username, client=actor.client, note=reason))
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_CHECK_OVERRIDE,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  client=actor.client, reason=reason,
                  changes=[Change("build_state", "blocked", "done")])
    return req


def authorise_download(session: Session, ledger: Ledger, *, actor: Actor,
                       request_id: str) -> ExtractRequest:
    """Only the named recipient accounts (or their API tokens) download; each download is a
    transfer record (chain of custody) and a ledger entry."""
    req = get_request(session, request_id)
    require(actor, Perm.EXTRACT_DOWNLOAD, study=req.study_code)
    if actor.username not in req.recipients:
        raise PermissionDenied(_("only the request's named recipients may download"),
                               clause="§11.3.4.8")
    if req.build_state == "blocked":
        raise RuleViolation(_("a pre-transfer check failed; a data manager must review it"),
                            clause="§11.3.4.5 c")
    if req.build_state != "done" or not req.package_file:
        raise Conflict(_("the package is not ready"), field="build_state")
    if req.use_until < now_utc().date():
        raise RuleViolation(_("the period of use has ended"), clause=CLAUSE_DESTROY)
    session.add(ExtractTransfer(request_id=req.id, event="downloaded", actor=actor.username,
                                client=actor.client, sha256=req.package_sha256,
                                note="token" if actor.token_id else "session"))
    if req.status == "built":
        req.status = "delivered"
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_DOWNLOAD,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  client=actor.client, changes=[Change("sha256", None, req.package_sha256)])
    return req


def record_destruction(session: Session, ledger: Ledger, *, actor: Actor, request_id: str,
                       certificate: bytes, filename: str) -> ExtractRequest:
    """The recipient uploads the destruction certificate (§11.4.2.6); held requests of the
    same recipient are released once nothing is overdue."""
    req = get_request(session, request_id)
    if actor.username not in req.recipients:
        raise PermissionDenied(_("only the recipient uploads the certificate"),
                               clause=CLAUSE_DESTROY)
    if not certificate:
        raise InvalidInput(_("certificate: the file is empty"), field="certificate")
    if len(certificate) > 10_000_000:
        raise InvalidInput(_("certificate: at most 10 MB"), field="certificate")
    if req.built_at is None:
        raise Conflict(_("nothing was transferred"), field="build_state")
    if req.destruction_at is not None:
        raise Conflict(_("the certificate is already on record"),
                       field="certificate")
    digest = hashlib.sha256(certificate).hexdigest()
    req.destruction_at, req.destruction_sha256 = now_utc(), digest
    session.add(ExtractTransfer(request_id=req.id, event="destruction", actor=actor.username,
                                client=actor.client, sha256=digest, note=filename[:200]))
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_DESTRUCTION,
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  client=actor.client, changes=[Change("certificate_sha256", None, digest)])
    if not overdue_requests(session, org=req.recipient_org):
        for held in session.execute(select(ExtractRequest).where(
                col(ExtractRequest.status) == "held",
                func.lower(col(ExtractRequest.recipient_org))
                == req.recipient_org.lower())).scalars():
            held.status, held.status_reason = "pending", None
            ledger.append(session, actor=actor.username, action=Action.EXTRACT_RELEASED,
                          entity_type="extract_request", entity_id=held.id,
                          study=held.study_code, client=actor.client,
                          changes=[Change("status", "held", "pending")])
            tell_approvers(session, held, by=actor.username)
        session.flush()
    return req


def overdue_for_officer(session: Session, *, actor: Actor,
                        today: dt.date | None = None) -> list[ExtractRequest]:
    """Overdue destruction certificates, flagged to the data security officer."""
    if not actor.can(Perm.EXTRACT_APPROVE):
        raise PermissionDenied(_("the data security officer's list"),
                               clause=CLAUSE_DESTROY)
    return [r for r in overdue_requests(session, today=today)
            if actor.can(Perm.EXTRACT_APPROVE, r.study_code)]
