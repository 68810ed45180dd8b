"""Extract requests and their tiered approval (SPEC §7–8; §11.3.4.3, §11.4.2.2, §7 o–p).

A request names the study, purpose, fields (``form.item``; ``identity.<field>`` for RIF), tier,
a registered recipient organisation (by id or code, :mod:`studies.accounts.organisations`) and
its ``age`` X25519 public key, the recipient accounts that may download, and the period of use;
whether the data leave the country follows from the organisation's registered country.
Who may receive which tier (§11.3.4.6) and the cross-border limit (§7 p) are
:mod:`studies.extracts.recipients`. Approval needs, per tier:

- every tier: first the data security office's signed review (初审, §11.3.4.6); a refusal there
  rejects the request. For a PUF it is the one decision;
- LDS: then the data security committee — approved when more than two thirds of the roll
  frozen when the request opened (the active holders of the committee-member role then, at
  least three) vote yes (Appendix C) — plus the data-use agreement
  (:mod:`studies.extracts.agreement`, the Appendix E.3 terms), signed by the applicant;
- RIF: as LDS plus an ethics approval of the current protocol version that covers
  identifiable use, recorded and signed by an ethics committee member.

The rules of each tier (approvals, minimum k, direct identifiers, consent scopes) are one
table, :data:`studies.extracts.tiers.TIER_RULES`.

Data leaving the country also need the committee (§7 o); beyond 250 records about persons,
cumulative per recipient organisation, they are refused unless an approval of the relevant
authority is recorded (§7 p). Each approval act is an electronic signature
(:func:`studies.accounts.signatures.sign`); nobody approves their own request. A recipient with
an overdue destruction certificate has its further requests held.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.accounts import organisations
from studies.accounts.models import Organisation, RoleGrant, User
from studies.extracts import recipients as recipients_rules
from studies.extracts.agreement import DUA_TERMS as DUA_TERMS  # the manifest copies it
from studies.extracts.models import (
    ExtractDecision,
    ExtractRequest,
    ExtractTransfer,
)
from studies.extracts.schemas import RequestIn
from studies.extracts.tiers import (
    CLAUSE_COMMITTEE,
    COMMITTEE_MIN,
    K_MAX,
    TIER_RULES,
    committee_approves,
    tier_named,
)
from studies.forms import service as forms
from studies.forms.models import Item
from studies.jobs import service as jobs
from studies.jobs.models import Kind
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import LazyText, Msg, _, _l
from studies.kernel.roles import Perm, Role
from studies.registry import service as registry
from studies.registry.models import Study
from studies.signoff import service as sign_off
from studies.subjects.models import Subject

CROSS_BORDER_MAX = recipients_rules.CROSS_BORDER_MAX  # the build reads it here
DESTRUCTION_DAYS = 30
IDENTITY_FIELDS = ("name", "resident_id", "phone", "medical_record_number", "date_of_birth",
                   "address")
AGE_KEY_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
CLAUSE_TIER = "§11.3.4.3"
CLAUSE_BATCH = "§11.4.2.2"
CLAUSE_BORDER = "§7 o–p"
CLAUSE_DESTROY = "§11.4.2.6"


@dataclass(frozen=True)
class FieldInfo:
    name: str
    label: str
    classification: str
    data_type: str
    level: int


def validate_age_recipient(key: str) -> str:
    """An ``age`` X25519 recipient (``age1…``, Bech32); refused otherwise."""
    import pyrage

    key = key.strip()
    if not AGE_KEY_RE.match(key):
        raise InvalidInput(_("recipient_key: an age X25519 public key starting with 'age1' (made "
                             "by age-keygen)"),
                           field="recipient_key")
    try:
        pyrage.x25519.Recipient.from_str(key)
    except Exception:
        raise InvalidInput(_("recipient_key: not a valid age public key (checksum)"),
                           field="recipient_key") from None
    return key


def field_catalogue(session: Session, study_id: str) -> dict[str, FieldInfo]:
    """Every field a request may name: ``form.item`` of each form's published version (a
    draft form's fields are not offered), and the identity fields (``identity.*``, direct
    identifiers, RIF only) drawn from the code index."""
    out: dict[str, FieldInfo] = {}
    for form in forms.forms_of(session, study_id):
        v = forms.published_version(session, form)
        if v is None:
            continue
        for i in forms.items_of(session, v.id):
            if i.field_type == "descriptive":
                continue
            out[f"{form.name}.{i.name}"] = FieldInfo(
                f"{form.name}.{i.name}", f"{i.label_zh} / {i.label_en}", i.classification,
                i.data_type, i.level)
    for f in IDENTITY_FIELDS:
        out[f"identity.{f}"] = FieldInfo(f"identity.{f}", _("Identity: {f}").format(f=f),
                                         "direct_identifier", "text", 4)
    return out


def items_by_field(session: Session, study_id: str) -> dict[str, Item]:
    out: dict[str, Item] = {}
    for form in forms.forms_of(session, study_id):
        v = forms.published_version(session, form)
        if v is not None:
            for i in forms.items_of(session, v.id):
                out[f"{form.name}.{i.name}"] = i
    return out


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def overdue_requests(session: Session, *, org: str | None = None,
                     today: dt.date | None = None) -> list[ExtractRequest]:
    """Transferred extracts whose destruction certificate is overdue (period end + 30 days)."""
    today = today or now_utc().date()
    q = select(ExtractRequest).where(col(ExtractRequest.built_at).is_not(None),
                                     col(ExtractRequest.destruction_at).is_(None),
                                     col(ExtractRequest.use_until)
                                     < today - dt.timedelta(days=DESTRUCTION_DAYS))
    if org is not None:
        q = q.where(func.lower(col(ExtractRequest.recipient_org)) == org.strip().lower())
    return list(session.execute(q).scalars())


def _eligible_count(session: Session, study_id: str, scopes: list[str],
                    at: dt.datetime) -> int:
    ids = session.execute(select(col(Subject.id)).where(
        col(Subject.study_id) == study_id)).scalars()
    return sum(1 for sid in ids
               if all(guards.may_use(session, subject_id=sid, scope=s, at=at) for s in scopes))


def required_scopes(req: ExtractRequest) -> list[str]:
    return TIER_RULES[req.tier].scopes_needed(req.cross_border)


def create_request(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   data: RequestIn, today: dt.date | None = None) -> ExtractRequest:
    require(actor, Perm.EXTRACT_REQUEST, study=study_code)
    study = registry.get_study(session, study_code)
    today = today or now_utc().date()
    purpose = data.purpose.strip()
    if len(purpose) < 10:
        raise InvalidInput(_("purpose: at least 10 characters"), field="purpose")
    tier = tier_named(data.tier)
    key = validate_age_recipient(data.recipient_key)
    org = organisations.find_organisation(session, data.recipient_org, field="recipient_org")
    cross_border = organisations.is_abroad(session, org)
    if data.cross_border is not None and data.cross_border != cross_border:
        raise InvalidInput(
            (_("cross_border: {label} is registered in {country}, so the data leave the country; "
               "omit the field (it follows from the recipient's registered country, §7 p)")
             if cross_border else
             _("cross_border: {label} is registered in {country}, so the data do not leave the "
               "country; omit the field (it follows from the recipient's registered country, "
               "§7 p)")).format(label=org.label, country=org.country), field="cross_border",
            clause=recipients_rules.CLAUSE_CROSS_BORDER)
    if data.use_until <= data.use_from:
        raise InvalidInput(_("use_until must be after use_from"),
                           field="use_until")
    if data.use_until < today:
        raise InvalidInput(_("the period of use has already ended"),
                           field="use_until")
    if not tier.min_k <= data.k <= K_MAX:
        raise InvalidInput(_("k: at least {min_k} for this tier (§11.4.2.4, §10.2 e), at most "
                             "{K_MAX}").format(min_k=tier.min_k, K_MAX=K_MAX), field="k",
                           clause="§11.4.2.4")
    if data.as_of is not None and (data.as_of.tzinfo is None or data.as_of > now_utc()):
        raise InvalidInput(_("as_of: a past time with a time zone"),
                           field="as_of")
    catalogue = field_catalogue(session, study.id)
    wanted = list(dict.fromkeys(f.strip() for f in data.fields if f.strip()))
    if not wanted:
        raise InvalidInput(_("fields: name at least one field"), field="fields")
    for f in wanted:
        info = catalogue.get(f)
        if info is None:
            raise InvalidInput(_("fields: no field {value!r} in a published form of this study (a "
                                 "draft form's fields cannot be extracted)").format(value=f[:80]),
                               field="fields")
        if info.classification == "direct_identifier" and not tier.allows_direct_identifiers:
            raise InvalidInput(_("fields: {f} is a direct identifier; only a RIF may hold it "
                                 "(Table 6)").format(f=f), field="fields",
                               clause="§10.2")
    if not any(not f.startswith("identity.") for f in wanted):
        raise InvalidInput(_("fields: name at least one study field"),
                           field="fields")
    recipients = list(dict.fromkeys([actor.username, *[r.strip() for r in data.recipients
                                                        if r.strip()]]))
    accounts: dict[str, str] = {}
    for r in recipients:
        uid = session.execute(select(col(User.id)).where(col(User.username) == r)).scalar()
        if uid is None:
            raise InvalidInput(_("recipients: no account {value!r}").format(value=r[:100]),
                               field="recipients")
        accounts[r] = uid
    recipients_rules.check_recipients(session, tier=tier, org=org, requester_id=actor.user_id,
                                      accounts=accounts)
    persons = None
    if cross_border:
        persons = _eligible_count(session, study.id, tier.scopes_needed(cross_border=True),
                                  now_utc())
        recipients_rules.check_limit(session, actor=actor, org=org, persons=persons,
                                     study_code=study.code)
    roll = committee_roll(session, study_code=study.code, tier=tier.name,
                          cross_border=cross_border)
    req = ExtractRequest(
        study_id=study.id, study_code=study.code, requested_by=actor.username,
        requested_by_id=actor.user_id, purpose=purpose, fields=wanted, tier=data.tier,
        k=data.k, recipient_org=org.label, recipient_org_id=org.id, recipient_key=key,
        recipients=recipients, use_from=data.use_from, use_until=data.use_until,
        cross_border=cross_border, persons=persons, as_of=data.as_of, committee_roll=roll)
    overdue = overdue_requests(session, org=org.label, today=today)
    if overdue:
        req.status = "held"
        req.status_reason = (_("the recipient has {n_overdue} overdue destruction "
                               "certificate(s)").format(n_overdue=len(overdue)))
    session.add(req)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_REQUEST,
                  entity_type="extract_request", entity_id=req.id, study=study.code,
                  client=actor.client, reason=purpose[:500], changes=[
                      Change("tier", None, req.tier), Change("fields", None, wanted),
                      Change("recipient_org", None, org.label),
                      Change("recipient_org_id", None, org.id),
                      Change("recipient_key", None, key),
                      Change("recipients", None, recipients),
                      Change("use_until", None, req.use_until.isoformat()),
                      Change("cross_border", None, req.cross_border),
                      Change("persons", None, persons),
                      Change("committee_roll", None, roll),
                      Change("status", None, req.status)])
    tell_approvers(session, req, by=actor.username)
    return req


def get_request(session: Session, request_id: str) -> ExtractRequest:
    req = session.get(ExtractRequest, request_id) if len(request_id) <= 36 else None
    if req is None:
        raise NotFound(_("no such extract request"), field="request_id")
    return req


def may_see(actor: Actor, req: ExtractRequest) -> bool:
    return (actor.can(Perm.EXTRACT_REVIEW, req.study_code)
            or actor.username in req.recipients or actor.user_id == req.requested_by_id)


def view_request(session: Session, *, actor: Actor, request_id: str) -> ExtractRequest:
    req = get_request(session, request_id)
    if not may_see(actor, req):
        raise PermissionDenied(_("this extract request is not yours"),
                               clause="§11.3.4.1 a")
    return req


def list_requests(session: Session, *, actor: Actor) -> list[ExtractRequest]:
    rows = session.execute(select(ExtractRequest).order_by(
        col(ExtractRequest.requested_at).desc())).scalars()
    return [r for r in rows if may_see(actor, r)]


def decisions_of(session: Session, request_id: str) -> list[ExtractDecision]:
    return list(session.execute(select(ExtractDecision).where(
        col(ExtractDecision.request_id) == request_id).order_by(
        col(ExtractDecision.decided_at))).scalars())


def transfers_of(session: Session, request_id: str) -> list[ExtractTransfer]:
    return list(session.execute(select(ExtractTransfer).where(
        col(ExtractTransfer.request_id) == request_id).order_by(
        col(ExtractTransfer.at))).scalars())


def committee_members(session: Session, study_code: str) -> list[str]:
    """The data security committee now: user ids of the active holders of the
    committee-member role for this study or for every study, sorted."""
    return sorted(set(session.execute(
        select(col(RoleGrant.user_id)).join(User, col(User.id) == RoleGrant.user_id).where(
            col(RoleGrant.role) == Role.COMMITTEE_MEMBER.value, col(User.is_active).is_(True),
            (col(RoleGrant.study).is_(None)) | (col(RoleGrant.study) == study_code))).scalars()))


def committee_roll(session: Session, *, study_code: str, tier: str,
                   cross_border: bool) -> list[str] | None:
    """The roll a new request freezes: the committee's members now, or None when the request
    takes no vote. A roll under :data:`COMMITTEE_MIN` is refused (field ``tier``, Appendix C):
    such a committee could never decide."""
    if "committee" not in TIER_RULES[tier].approvals_needed(cross_border):
        return None
    roll = committee_members(session, study_code)
    if len(roll) < COMMITTEE_MIN:
        raise RuleViolation(
            _("tier: this request needs the data security committee's vote, and a committee needs "
              "at least {COMMITTEE_MIN} members; study {study_code} has {n_roll} (Appendix C)")
            .format(COMMITTEE_MIN=COMMITTEE_MIN, study_code=study_code, n_roll=len(roll)),
                            field="tier", clause=CLAUSE_COMMITTEE)
    return roll


# What waits for whom while a request is pending: the first review comes first (§11.3.4.6),
# then the committee's vote and the ethics committee's decision.
WAITING: dict[str, tuple[Role, LazyText]] = {
    "officer": (Role.SECURITY_OFFICER, _l("a first review waits for you")),
    "committee": (Role.COMMITTEE_MEMBER, _l("a committee vote waits for you")),
    "ethics": (Role.ETHICS_MEMBER, _l("an ethics decision waits for you")),
}


def tell_approvers(session: Session, req: ExtractRequest, *, by: str) -> None:
    """Tell the approvers whose decision the pending request now waits for (the security
    officers first; after their first review the committee and the ethics members)."""
    if req.status != "pending":
        return
    st = approval_state(session, req)
    due = [n for n in ("officer", "committee", "ethics") if n in st.needs and not st.done[n]]
    if "officer" in due:
        due = ["officer"]
    study = session.get(Study, req.study_id)
    if study is None:
        return
    for n in due:
        role, what = WAITING[n]
        sign_off.notify(session, study=study, kind=f"extract.waits.{n}", by=by,
                        audience=(role,), link=f"/extracts/{req.id}",
                        text=Msg("{what}: {tier} extract request by {requested_by} ({org})",
                                 what=what, tier=req.tier.upper(),
                                 requested_by=req.requested_by, org=req.recipient_org))


def needs(req: ExtractRequest) -> list[str]:
    """The approvals a request needs (§11.3.4.3: the higher the tier, the more)."""
    return TIER_RULES[req.tier].approvals_needed(req.cross_border)


@dataclass
class ApprovalState:
    needs: list[str]
    done: dict[str, bool]
    yes: int
    no: int
    members: int
    """The size of the frozen roll (the denominator of the vote)."""
    left: int
    """Roll members who left (deactivated, or the role removed) without voting."""
    rejected: str | None

    @property
    def approved(self) -> bool:
        return self.rejected is None and all(self.done.get(n) for n in self.needs)


def approval_state(session: Session, req: ExtractRequest) -> ApprovalState:
    """Where the approvals stand. The committee counts over the roll frozen when the request
    opened: a yes counts when a member of that roll cast it while standing (a vote can only be
    cast then, so it stays counted if the member leaves later — the committee's decision at the
    time); a member who left before voting can no longer vote and is no yes."""
    ds = decisions_of(session, req.id)
    roll = list(req.committee_roll or [])
    standing = set(committee_members(session, req.study_code)) if roll else set()
    votes = [d for d in ds if d.kind == "vote" and d.user_id in roll]
    yes = sum(1 for d in votes if d.approve)
    no = len(votes) - yes
    voted = {d.user_id for d in votes}
    left = sum(1 for u in roll if u not in voted and u not in standing)
    done = {"officer": any(d.kind == "officer" and d.approve for d in ds),
            "committee": committee_approves(yes, len(roll)),
            "dua": any(d.kind == "dua" and d.approve for d in ds),
            "ethics": any(d.kind == "ethics" and d.approve for d in ds)}
    rejected = None
    if any(d.kind == "officer" and not d.approve for d in ds):
        rejected = (_("refused at the data security office's first review (§11.3.4.6)"))
    elif any(d.kind == "ethics" and not d.approve for d in ds):
        rejected = _("refused by the ethics committee")
    elif "committee" in needs(req) and not committee_approves(
            len(roll) - no - left, len(roll)):
        rejected = (_("the committee cannot reach more than two thirds of its {n_roll} members: "
                      "{no} voted no, {left} left without voting (Appendix C)")
                    .format(n_roll=len(roll), no=no, left=left))
    return ApprovalState(needs(req), done, yes, no, len(roll), left, rejected)


# ── Builds, transfers, destruction ────────────────────────────────────────────────────────────

def _live_progress(session: Session, req: ExtractRequest) -> int:
    """A running build's progress from its job (the row any web process reads; see
    ``studies.jobs.service.LIVE_PROGRESS`` for SQLite)."""
    if req.build_state == "running":
        job = jobs.latest_for(session, kind=Kind.EXTRACT_BUILD, ref=req.id)
        if job is not None:
            return max(jobs.progress_of(job), req.progress)
    return req.progress


def build_status(session: Session, *, actor: Actor, request_id: str) -> dict[str, Any]:
    """A request's build as its page follows it while it runs: state, progress (live while
    running), error. Only for those who may see the request."""
    req = view_request(session, actor=actor, request_id=request_id)
    return {"state": req.build_state, "progress": _live_progress(session, req),
            "error": req.build_error}


def recipient_status(session: Session, req: ExtractRequest) -> dict[str, Any] | None:
    """The recipient organisation's code, kind, country and cross-border running total
    (§7 p), as the request page and API show it; None on a request made before the registry."""
    org = session.get(Organisation, req.recipient_org_id) if req.recipient_org_id else None
    if org is None:
        return None
    cb = recipients_rules.status_of(session, org)
    return {"id": org.id, "code": org.code, "kind": org.kind, "country": org.country,
            "abroad": cb.abroad, "cross_border_total": cb.total, "cross_border_limit": cb.limit,
            "authority_approval": cb.approval_reference}


def public(session: Session, req: ExtractRequest) -> dict[str, Any]:
    st = approval_state(session, req)
    return {
        "id": req.id, "study": req.study_code, "tier": req.tier, "purpose": req.purpose,
        "fields": req.fields, "recipient_org": req.recipient_org,
        "recipient_key": req.recipient_key, "recipients": req.recipients,
        "use_from": req.use_from.isoformat(), "use_until": req.use_until.isoformat(),
        "cross_border": req.cross_border, "persons": req.persons, "k": req.k,
        "recipient": recipient_status(session, req),
        "as_of": req.as_of.isoformat() if req.as_of else None,
        "requested_by": req.requested_by, "requested_at": req.requested_at.isoformat(),
        "status": req.status, "status_reason": req.status_reason,
        "approvals": {"needs": st.needs, "done": st.done, "yes": st.yes, "no": st.no,
                      "committee_members": st.members, "committee_left": st.left,
                      "committee_min": COMMITTEE_MIN,
                      "first_review": "officer" in st.needs,
                      "problem": st.rejected if req.status in ("pending", "held")
                      else req.status_reason if req.status == "rejected" else None},
        "build": {"state": req.build_state, "progress": _live_progress(session, req),
                  "error": req.build_error, "built_at":
                  req.built_at.isoformat() if req.built_at else None,
                  "package_sha256": req.package_sha256, "package_size": req.package_size,
                  "manifest_sha256": req.manifest_sha256, "snapshot_seq": req.snapshot_seq,
                  "rows": req.row_count, "checks": req.checks, "exclusions": req.exclusions},
        "destruction_due": (req.use_until + dt.timedelta(days=DESTRUCTION_DAYS)).isoformat(),
        "destruction_at": req.destruction_at.isoformat() if req.destruction_at else None,
    }


def recipient_choices(session: Session) -> list[tuple[Organisation, bool]]:
    """The organisations a request may name, each with whether data sent to it leave the
    country."""
    return [(o, organisations.is_abroad(session, o))
            for o in organisations.list_organisations(session)]


def fields_for(session: Session, *, actor: Actor, study_code: str) -> list[FieldInfo]:
    require(actor, Perm.EXTRACT_REQUEST, study=study_code)
    study = registry.get_study(session, study_code)
    return list(field_catalogue(session, study.id).values())


