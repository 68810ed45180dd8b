"""Who may receive what (§11.3.4.6) and data leaving the country (§7 p).

- **Tiers by recipient** (§11.3.4.6): a tier marked ``inside_hospital_only`` (the RIF) goes
  only to the hospital itself, requested by and for accounts that belong to it; a company —
  the requester's organisation or the recipient organisation — may have PUF or LDS only. The
  code index stays in the hospital. Recipient accounts that belong to an organisation must
  belong to the recipient organisation or to the hospital itself.
- **Cross-border** (§7 p): whether a request's data leave the country is derived from the
  recipient organisation's registered country (:func:`studies.accounts.organisations.is_abroad`),
  never ticked by the requester. The limit counts *records about persons*: the distinct
  subjects an extract may include, summed over every cross-border request to the same
  organisation, across requests and studies, that was not rejected (``extract_request.persons``;
  at request time the subjects of the study whose consent covers the tier's scopes and
  ``cross_border``). Beyond :data:`CROSS_BORDER_MAX` a request is refused unless the data
  security officer has recorded an approval of the relevant authority for that organisation
  (:func:`record_authority_approval`); :func:`cross_border_allowance` is what the build asks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts import organisations as orgs
from studies.accounts.models import Organisation
from studies.extracts.models import CrossBorderApproval, ExtractRequest
from studies.extracts.tiers import Tier
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm

CROSS_BORDER_MAX = 250
"""Records about persons one recipient organisation may receive from abroad, cumulatively,
without an approval of the relevant authority (§7 p)."""
CLAUSE_RECIPIENT = "§11.3.4.6"
CLAUSE_CROSS_BORDER = "§7 p"
MAX_DOCUMENT = 10_000_000
COMPANY_TIERS = ("puf", "lds")


def check_recipients(session: Session, *, tier: Tier, org: Organisation, requester_id: str,
                     accounts: dict[str, str]) -> None:
    """The §11.3.4.6 rules of a request of ``tier`` to ``org`` by the account
    ``requester_id``, for the recipient ``accounts`` (username → user id; the requester among
    them). :class:`PermissionDenied` citing §11.3.4.6, or :class:`InvalidInput` (field
    ``recipients``) for an account of a third organisation."""
    requester_org = orgs.organisation_of(session, requester_id)
    company = next((o for o in (requester_org, org)
                    if o is not None and o.kind == orgs.OrgKind.COMPANY.value), None)
    if company is not None and tier.name not in COMPANY_TIERS:
        raise PermissionDenied(
            _("{label} is a company: it may receive a PUF or an LDS only; the code index stays in "
              "the hospital (§11.3.4.6)").format(label=company.label), field="tier",
                               clause=CLAUSE_RECIPIENT)
    home = orgs.hospital(session)
    if tier.inside_hospital_only:
        if home is None or org.id != home.id:
            raise PermissionDenied(
                _("a RIF goes only to a recipient inside the hospital: name the hospital itself "
                  "as the recipient organisation (§11.3.4.6)"),
                field="recipient_org", clause=CLAUSE_RECIPIENT)
        outside = [u for u, uid in accounts.items()
                   if (o := orgs.organisation_of(session, uid)) is None or o.id != home.id]
        if outside:
            raise PermissionDenied(
                _("a RIF goes only to accounts of the hospital; {outside} do(es) not belong to it "
                  "(§11.3.4.6)").format(outside=', '.join(sorted(outside))),
                field="recipients", clause=CLAUSE_RECIPIENT)
    allowed = {org.id} | ({home.id} if home is not None else set())
    for username, uid in accounts.items():
        o = orgs.organisation_of(session, uid)
        if o is not None and o.id not in allowed:
            raise InvalidInput(
                _("recipients: {username} belongs to {label}, not to the recipient "
                  "organisation").format(username=username, label=o.label), field="recipients")


def cross_border_total(session: Session, org_id: str, *, excluding: str | None = None) -> int:
    """Records about persons already sent or requested abroad to ``org_id``: the sum of
    ``persons`` over its cross-border requests that were not rejected, every study
    (``excluding`` one request, e.g. the one being built)."""
    q = select(func.coalesce(func.sum(col(ExtractRequest.persons)), 0)).where(
        col(ExtractRequest.recipient_org_id) == org_id,
        col(ExtractRequest.cross_border).is_(True),
        col(ExtractRequest.status) != "rejected")
    if excluding is not None:
        q = q.where(col(ExtractRequest.id) != excluding)
    return int(session.execute(q).scalar_one() or 0)


def authority_approval(session: Session, org_id: str,
                       today: dt.date | None = None) -> CrossBorderApproval | None:
    """The newest approval of the relevant authority recorded for ``org_id`` (dated no later
    than ``today``), if any."""
    today = today or dt.datetime.now(dt.UTC).date()
    return session.execute(select(CrossBorderApproval).where(
        col(CrossBorderApproval.organisation_id) == org_id,
        col(CrossBorderApproval.approved_on) <= today).order_by(
        col(CrossBorderApproval.approved_on).desc(),
        col(CrossBorderApproval.recorded_at).desc())).scalars().first()


def cross_border_allowance(session: Session, org_id: str, *,
                           excluding: str | None = None) -> int | None:
    """How many more records about persons may leave the country to ``org_id`` (§7 p):
    :data:`CROSS_BORDER_MAX` less :func:`cross_border_total`, at least 0; None when an
    approval of the relevant authority lifts the limit. The build calls it with
    ``excluding=request.id`` and refuses an extract of more distinct subjects."""
    if authority_approval(session, org_id) is not None:
        return None
    return max(0, CROSS_BORDER_MAX - cross_border_total(session, org_id, excluding=excluding))


@dataclass(frozen=True)
class CrossBorderStatus:
    """A recipient organisation's running total, as the request page and API show it."""

    abroad: bool
    country: str
    total: int
    limit: int | None
    approval_reference: str | None


def status_of(session: Session, org: Organisation) -> CrossBorderStatus:
    appr = authority_approval(session, org.id)
    return CrossBorderStatus(orgs.is_abroad(session, org), org.country,
                             cross_border_total(session, org.id),
                             None if appr else CROSS_BORDER_MAX,
                             appr.reference if appr else None)


def overview(session: Session, *, actor: Actor,
             ) -> list[tuple[Organisation, CrossBorderStatus]]:
    """Every organisation with its running total (data security officer)."""
    require(actor, Perm.EXTRACT_APPROVE)
    return [(o, status_of(session, o)) for o in orgs.list_organisations(session)]


def check_limit(session: Session, *, actor: Actor, org: Organisation, persons: int,
                study_code: str) -> None:
    """Refuse a cross-border request that would take ``org`` beyond the limit (§7 p) unless
    an authority approval is recorded; the refusal is a ledger entry of its own. Locks the
    organisation's row first (PostgreSQL), so two requests at once cannot both pass."""
    session.execute(select(col(Organisation.id)).where(
        col(Organisation.id) == org.id).with_for_update())
    allowance = cross_border_allowance(session, org.id)
    if allowance is None or persons <= allowance:
        return
    total = cross_border_total(session, org.id)
    raise PermissionDenied(
        _("data leaving the country: {label} has {total} records about persons; {persons} more "
          "would exceed {CROSS_BORDER_MAX} without an approval of the relevant authority (§7 p)")
        .format(label=org.label, total=total, persons=persons, CROSS_BORDER_MAX=CROSS_BORDER_MAX),
        field="recipient_org", clause=CLAUSE_CROSS_BORDER,
        audit=dict(actor=actor.username, action=Action.EXTRACT_REQUEST,
                   entity_type="organisation", entity_id=org.id, study=study_code,
                   outcome="denied", client=actor.client,
                   reason=f"cross-border: {total} + {persons} records about persons exceed "
                          f"{CROSS_BORDER_MAX} (§7 p)"))


def record_authority_approval(session: Session, ledger: Ledger, *, actor: Actor,
                              organisation: str, reference: str, approved_on: dt.date,
                              document: bytes, filename: str,
                              today: dt.date | None = None) -> CrossBorderApproval:
    """The data security officer records an approval of the relevant authority for data
    about more than 250 persons to leave the country to ``organisation`` (by id or code): the
    authority's reference, the approval's date and the SHA-256 of the uploaded document.
    An unknown organisation is :class:`NotFound` (it is the URL's)."""
    require(actor, Perm.EXTRACT_APPROVE)
    org = orgs.find_organisation(session, organisation, in_path=True)
    today = today or dt.datetime.now(dt.UTC).date()
    ref = " ".join(reference.split())
    if not 3 <= len(ref) <= 100:
        raise InvalidInput(_("reference: the authority's reference, 3 to 100 characters"),
                           field="reference")
    if approved_on > today:
        raise InvalidInput(_("approved_on: not in the future"),
                           field="approved_on")
    if not document:
        raise InvalidInput(_("document: upload the approval document"),
                           field="document")
    if len(document) > MAX_DOCUMENT:
        raise InvalidInput(_("document: at most 10 MB"), field="document")
    name = (filename.strip() or "approval")[:200]
    appr = CrossBorderApproval(organisation_id=org.id, reference=ref, approved_on=approved_on,
                               document_sha256=hashlib.sha256(document).hexdigest(),
                               document_name=name, recorded_by=actor.username)
    session.add(appr)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.EXTRACT_CROSS_BORDER_APPROVAL,
                  entity_type="organisation", entity_id=org.id, client=actor.client,
                  reason=f"approval of the relevant authority {ref} (§7 p)",
                  changes=[Change("reference", None, ref),
                           Change("approved_on", None, approved_on.isoformat()),
                           Change("document_sha256", None, appr.document_sha256),
                           Change("document_name", None, name)])
    return appr


def approvals_of(session: Session, *, actor: Actor, organisation: str,
                 ) -> tuple[Organisation, list[CrossBorderApproval]]:
    """An organisation and its recorded authority approvals (data security officer)."""
    require(actor, Perm.EXTRACT_APPROVE)
    org = orgs.find_organisation(session, organisation, in_path=True)
    return org, list(session.execute(select(CrossBorderApproval).where(
        col(CrossBorderApproval.organisation_id) == org.id).order_by(
        col(CrossBorderApproval.recorded_at))).scalars())
