"""Review of an extract request (§11.3.4.3, §11.3.4.6, §11.4.2.2, SPEC §7): the signed decisions
of the data security officer (the first review, 初审), the data security committee (over the
roll frozen when the request opened), the ethics committee and the data-use agreement; what
the applicant already received; the request as approvers see it.

Every approval act signs one content hash: SHA-256 over the request's hash and the data-use
agreement's (:func:`signed_content`); the decision records both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.service import DEFAULT_CONFIG
from studies.ethics.models import APPROVING, EthicsApproval
from studies.extracts import agreement
from studies.extracts.models import (
    ExtractDecision,
    ExtractRequest,
    ExtractTransfer,
)
from studies.extracts.schemas import DecisionIn
from studies.extracts.service import (
    CLAUSE_DESTROY,
    CLAUSE_TIER,
    approval_state,
    committee_members,
    decisions_of,
    field_catalogue,
    get_request,
    needs,
    now_utc,
    public,
    tell_approvers,
    transfers_of,
    view_request,
)
from studies.extracts.tiers import CLAUSE_COMMITTEE, CLAUSE_FIRST_REVIEW, COMMITTEE_MIN
from studies.kernel.actor import Actor, require, require_different_person
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.labels import label
from studies.kernel.roles import Perm


def _settle(session: Session, ledger: Ledger, req: ExtractRequest, actor: Actor) -> None:
    st = approval_state(session, req)
    new = "rejected" if st.rejected else "approved" if st.approved else None
    if new and new != req.status:
        req.status, req.status_reason, req.decided_at = new, st.rejected, now_utc()
        session.flush()
        ledger.append(session, actor=actor.username, action=Action(f"extract.{new}"),
                      entity_type="extract_request", entity_id=req.id, study=req.study_code,
                      client=actor.client, reason=st.rejected,
                      changes=[Change("status", "pending", new),
                               Change("yes_votes", None, st.yes),
                               Change("committee_members", None, st.members),
                               Change("committee_left", None, st.left)])


def request_digest(req: ExtractRequest) -> bytes:
    """The exact content an approver signs: the request as shown."""
    return json.dumps({
        "id": req.id, "study": req.study_code, "tier": req.tier, "purpose": req.purpose,
        "fields": req.fields, "recipient_org": req.recipient_org,
        "recipient_key": req.recipient_key, "recipients": req.recipients,
        "use_from": req.use_from.isoformat(), "use_until": req.use_until.isoformat(),
        "cross_border": req.cross_border, "k": req.k,
        "as_of": req.as_of.isoformat() if req.as_of else None},
        sort_keys=True, ensure_ascii=False).encode()


def signed_content(req: ExtractRequest) -> tuple[str, str, str]:
    """(request_sha256, terms_sha256, content_sha256): the hashes of the request as shown and of
    the data-use agreement's full text, and the hash over both that an approval act signs."""
    request_sha = signatures.content_hash(request_digest(req))
    terms_sha = agreement.terms_sha256()
    content = signatures.content_hash(json.dumps(
        {"request_sha256": request_sha, "terms_sha256": terms_sha,
         "terms_version": agreement.DUA_VERSION}, sort_keys=True).encode())
    return request_sha, terms_sha, content


def agreement_view(session: Session, *, actor: Actor, request_id: str) -> dict[str, Any]:
    """The data-use agreement of a request as its signers see it: every term in full (zh/en),
    the text's SHA-256, and the hashes an approval act signs."""
    req = view_request(session, actor=actor, request_id=request_id)
    request_sha, terms_sha, content = signed_content(req)
    return {"version": agreement.DUA_VERSION,
            "terms": [{"key": t.key, "clause": t.clause, "zh": t.zh, "en": t.en}
                      for t in agreement.TERMS],
            "text": agreement.terms_text(), "terms_sha256": terms_sha,
            "request_sha256": request_sha, "content_sha256": content}


KIND_PERM = {"officer": Perm.EXTRACT_APPROVE, "vote": Perm.EXTRACT_VOTE,
             "ethics": Perm.EXTRACT_ETHICS}


MEANINGS = {
    ("officer", True): "data security office review (初审): approve / 数据安全办公室审核：同意",
    ("officer", False): "data security office review (初审): refuse / 数据安全办公室审核：不同意",
    ("vote", True): "vote yes on the extract / 数据安全委员会投票：赞成",
    ("vote", False): "vote no on the extract / 数据安全委员会投票：反对",
    ("ethics", True): "ethics approval covers identifiable use / 伦理批准涵盖可标识数据使用",
    ("ethics", False): "ethics approval does not cover identifiable use / 伦理批准不涵盖",
    ("dua", True): "agree to the data-use agreement (Appendix E.3) / 同意数据使用协议",
}

CLAUSE_ETHICS = "§11.3.4.2"


def _check_vote(session: Session, req: ExtractRequest, actor: Actor) -> None:
    """Only a member of the roll frozen when the request opened, still standing, votes, once."""
    roll = req.committee_roll or []
    if len(roll) < COMMITTEE_MIN:
        raise RuleViolation(_("the committee's roll has {n_roll} members; a vote needs at least "
                              "{COMMITTEE_MIN}")
                            .format(n_roll=len(roll), COMMITTEE_MIN=COMMITTEE_MIN),
                            field="kind", clause=CLAUSE_COMMITTEE)
    if actor.user_id not in roll:
        raise PermissionDenied(_("you are not on the committee's roll frozen when this request "
                                 "opened"),
                               clause=CLAUSE_COMMITTEE)
    if actor.user_id not in committee_members(session, req.study_code):
        raise PermissionDenied(_("you have left the committee; you can no longer vote"),
                               clause=CLAUSE_COMMITTEE)
    if any(d.kind == "vote" and d.user_id == actor.user_id
           for d in decisions_of(session, req.id)):
        raise Conflict(_("you have already voted"), field="kind")


def _check_ethics(session: Session, req: ExtractRequest, reference: str | None) -> None:
    """The ethics approval a RIF needs: an approving decision in force today on the protocol
    version in force, that covers identifiable use (§11.3.4.2)."""
    ref = (reference or "").strip()
    ea = session.get(EthicsApproval, ref) if ref and len(ref) <= 36 else None
    now = now_utc()
    pv = guards.current_protocol(session, study_id=req.study_id, at=now)
    today = now.date()
    problem = None
    if ea is None or ea.study_id != req.study_id:
        problem = _("the id of an ethics approval of this study")
    elif ea.decision not in APPROVING:
        problem = _("that decision is not an approval")
    elif pv is None or ea.protocol_version_id != pv.id:
        shown = pv.label if pv is not None else "—"
        problem = (_("the approval is not of the current protocol version {label}").format(
                       label=shown))
    elif ea.decided_on > today or (ea.expires_on is not None and ea.expires_on < today):
        problem = _("the approval is not in force today")
    elif not ea.identifiable_use:
        problem = (_("the approval does not cover identifiable use of the data"))
    if problem:
        raise InvalidInput(_("reference: {problem}").format(problem=problem), field="reference",
                           clause=CLAUSE_ETHICS)


def decide(session: Session, ledger: Ledger, *, actor: Actor, request_id: str,
           data: DecisionIn, config: AuthConfig = DEFAULT_CONFIG) -> ExtractDecision:
    """Record one signed approval act: the officer's first review, a committee vote, the ethics
    approval (RIF) or the applicant's data-use agreement. ``config`` is the authentication
    settings (the key that opens a signer's second-factor secret)."""
    req = get_request(session, request_id)
    kind = data.kind
    if kind not in ("officer", "vote", "ethics", "dua"):
        raise InvalidInput(_("kind must be officer, vote, ethics or dua"), field="kind")
    if kind == "dua":
        if actor.username not in req.recipients and actor.user_id != req.requested_by_id:
            raise PermissionDenied(_("only the recipient signs the data-use agreement"),
                                   clause=CLAUSE_TIER)
        if not data.approve:
            raise InvalidInput(_("the agreement can only be agreed to"), field="approve")
    else:
        require(actor, KIND_PERM[kind], study=req.study_code)
        require_different_person(actor, req.requested_by_id, req.requested_by)
    if req.status == "held":
        raise RuleViolation(_("held: {reason}").format(reason=req.status_reason),
                            clause=CLAUSE_DESTROY)
    if req.status != "pending":
        raise Conflict(_("the request is already {status}").format(status=label(req.status)),
                       field="status")
    wanted = "committee" if kind == "vote" else kind
    needed = needs(req)
    if wanted not in needed:
        raise InvalidInput(_("a {value} request does not take a {kind} decision").format(
                               value=req.tier.upper(), kind=kind), field="kind", clause=CLAUSE_TIER)
    if kind == "officer" and any(d.kind == "officer" for d in decisions_of(session, req.id)):
        raise Conflict(_("the first review is already signed"), field="kind")
    if (kind in ("vote", "ethics") and "officer" in needed
            and not approval_state(session, req).done["officer"]):
        raise RuleViolation(_("the data security office's first review comes first"),
                            field="kind", clause=CLAUSE_FIRST_REVIEW)
    if kind == "vote":
        _check_vote(session, req, actor)
    if kind == "ethics" and data.approve:
        _check_ethics(session, req, data.reference)
    request_sha, terms_sha, content = signed_content(req)
    if data.terms_sha256 is not None and data.terms_sha256 != terms_sha:
        raise Conflict(_("terms_sha256: the agreement's terms changed since you read them; read "
                         "them again"), field="terms_sha256")
    sig = signatures.sign(
        session, ledger, actor=actor, username=data.username, password=data.password,
        totp=data.totp, meaning=MEANINGS[(kind, data.approve)], content_hash=content,
        entity_type="extract_request", entity_id=req.id, study=req.study_code, config=config)
    d = ExtractDecision(request_id=req.id, kind=kind, approve=data.approve,
                        username=actor.username, user_id=actor.user_id, signature_id=sig.id,
                        note=(data.note or "").strip() or None,
                        reference=(data.reference or "").strip() or None,
                        request_sha256=request_sha, terms_sha256=terms_sha)
    session.add(d)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action(f"extract.decision.{kind}"),
                  entity_type="extract_request", entity_id=req.id, study=req.study_code,
                  client=actor.client, reason=d.note,
                  changes=[Change("approve", None, data.approve),
                           Change("signature", None, sig.id),
                           Change("request_sha256", None, request_sha),
                           Change("terms_sha256", None, terms_sha)])
    _settle(session, ledger, req, actor)
    if kind == "officer":
        tell_approvers(session, req, by=actor.username)
    return d


@dataclass(frozen=True)
class History:
    """The applicant's earlier requests and what they received (§11.4.2.2)."""

    request: ExtractRequest
    received: bool


def applicant_history(session: Session, *, actor: Actor, request_id: str) -> list[History]:
    req = view_request(session, actor=actor, request_id=request_id)
    rows = session.execute(select(ExtractRequest).where(
        col(ExtractRequest.id) != req.id,
        (col(ExtractRequest.requested_by_id) == req.requested_by_id)
        | (func.lower(col(ExtractRequest.recipient_org)) == req.recipient_org.lower()))
        .order_by(col(ExtractRequest.requested_at))).scalars()
    out = []
    for r in rows:
        got = session.execute(select(col(ExtractTransfer.id)).where(
            col(ExtractTransfer.request_id) == r.id, col(ExtractTransfer.event) == "downloaded")
        ).first() is not None
        out.append(History(r, got))
    return out


def field_overlap(history: list[History], req: ExtractRequest) -> list[str]:
    """Fields of this request the recipient already received for the same study."""
    got: set[str] = set()
    for h in history:
        if h.received and h.request.study_id == req.study_id:
            got |= set(h.request.fields)
    return sorted(got & set(req.fields))


def detail(session: Session, *, actor: Actor, request_id: str) -> dict[str, Any]:
    """The request as shown to applicants and approvers: approvals (with signatures), the
    chain of custody and — for approvers — the applicant's earlier requests and what they
    received (§11.4.2.2)."""
    req = view_request(session, actor=actor, request_id=request_id)
    out = public(session, req)
    out["decisions"] = [{"kind": d.kind, "approve": d.approve, "by": d.username,
                         "at": d.decided_at.isoformat(), "signature": d.signature_id,
                         "note": d.note, "reference": d.reference,
                         "request_sha256": d.request_sha256, "terms_sha256": d.terms_sha256}
                        for d in decisions_of(session, req.id)]
    out["transfers"] = [{"event": t.event, "actor": t.actor, "at": t.at.isoformat(),
                         "sha256": t.sha256, "note": t.note}
                        for t in transfers_of(session, req.id)]
    cat = field_catalogue(session, req.study_id)
    out["field_classes"] = {f: cat[f].classification if f in cat else None
                            for f in req.fields}
    if actor.can(Perm.EXTRACT_REVIEW, req.study_code):
        hist = applicant_history(session, actor=actor, request_id=req.id)
        out["applicant_history"] = [{"id": h.request.id, "study": h.request.study_code,
                                     "tier": h.request.tier, "fields": h.request.fields,
                                     "status": h.request.status, "received": h.received,
                                     "rows": h.request.row_count} for h in hist]
        out["already_received_fields"] = field_overlap(hist, req)
    return out
