"""Every extract tier rule, in one table (SPEC §7–8; GB/T 39725-2020 §11.3.4.3, §10.2).

Three tiers, from the least to the most identifiable:

- **PUF** (公用数据集, public use file): aggregates only — subject counts and summary
  statistics by the coded fields, cells under 5 withheld with complementary suppression
  (:func:`deid.aggregate`). The data security officer approves.
- **LDS** (受限制数据集, limited data set): rows without direct identifiers — keyed subject
  tokens, quasi-identifiers generalised to k-anonymity (k ≥ 5, §10.2 e) with 2-diversity on
  sensitive items, other dates shifted by the study's secret offset, free text scrubbed. After
  the data security office's first review, the data security committee votes (more than two
  thirds of its frozen roll, Appendix C) and the recipient signs the data-use agreement
  (Appendix E.3, :mod:`studies.extracts.agreement`).
- **RIF** (可标识数据集, research identifiable file): subject codes kept, identity fields (direct
  identifiers, Table 6 — only a RIF may hold them, §10.2) drawn through the code index. As LDS,
  plus an ethics approval of the current protocol version covering identifiable use
  (§11.3.4.2), and subjects must have
  consented to ``identifiable`` use.

Whatever the tier, the data security office reviews first (初审, §11.3.4.6): the officer's
signed approval comes before any committee vote or ethics step, and a refusal there rejects the
request; for a PUF it is the one decision. Whatever the tier, data leaving the country also
need the committee, and the subjects' consent to ``cross_border`` (§7 o–p). The higher the
tier, the more approvals (§11.3.4.3).

The committee votes over the roll frozen when the request opened (its active members then):
approved when more than two thirds of that roll vote yes (:func:`committee_approves`), a roll
needs at least :data:`COMMITTEE_MIN` members (Appendix C).

The request checks (:mod:`studies.extracts.service`), the approvals, the consent exclusions and
the build (:mod:`studies.extracts.build`) read these rules from :data:`TIER_RULES`; :mod:`deid`
stays a pure library whose functions the build applies as the table says. The pre-transfer
checks (§11.3.4.5 c) are the same for every tier, so the table has no field for them.

Imports nothing of ours but the kernel's errors, so the models, the service, the build and the
delivery layer can all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import LazyText, _, _l

K_MAX = 100
"""The largest k a request may ask for (every tier)."""

COMMITTEE_MIN = 3
"""The fewest members a data security committee's roll may have for a vote (Appendix C)."""

CLAUSE_COMMITTEE = "Appendix C"
CLAUSE_FIRST_REVIEW = "§11.3.4.6"

CROSS_BORDER_SCOPE = "cross_border"
"""The consent scope data leaving the country need, whatever the tier (§7 o–p)."""


class Treatment(StrEnum):
    """What the build does to the rows of a tier (§11.4.2.4)."""

    AGGREGATE = "aggregate"
    """Counts and statistics by the coded fields, small cells withheld
    (:func:`studies.extracts.build.aggregate_puf`, through :func:`deid.aggregate`)."""

    DEIDENTIFY = "deidentify"
    """Keyed tokens, k-anonymity with l-diversity, date shift, free-text scrubbing
    (:func:`studies.extracts.build.deidentify_lds`, through :mod:`deid`)."""

    IDENTIFIABLE = "identifiable"
    """Codes kept, values as recorded; identity fields drawn through the code index
    (:func:`studies.extracts.build.draw_identities`)."""


@dataclass(frozen=True)
class Tier:
    """The rules of one tier.

    :param name: the code stored on the request (``extract_request.tier``, at most 3 letters).
    :param label: the name shown in the request form.
    :param min_k: the smallest k a request of this tier may ask for (§10.2 e: at least 5 for
        a limited data set); the largest is :data:`K_MAX`.
    :param allows_direct_identifiers: whether the request may name direct identifiers
        (Table 6: only a RIF, §10.2).
    :param needs_officer: the data security office's signed review (初审, §11.3.4.6), which
        comes before the committee and the ethics step; for a PUF the one decision.
    :param needs_committee: the data security committee's vote, more than two thirds of the
        roll frozen when the request opened yes (Appendix C); data leaving the country need it
        whatever this says.
    :param needs_dua: the recipient's signed data-use agreement (Appendix E.3); it also goes
        into the package's manifest.
    :param needs_ethics: an ethics committee member records an ethics approval of the current
        protocol version that covers identifiable use (§11.3.4.2).
    :param consent_scopes: the consent scopes every included subject must hold; subjects whose
        consent does not (or no longer) cover them are excluded (``cross_border`` is added
        when the data leave the country).
    :param treatment: what the build does to the rows (§11.4.2.4).
    :param writes_clinical_odm: whether ``odm.xml`` carries ClinicalData (patient-level
        values) besides the study metadata.
    :param min_cell_count: for aggregates, the smallest publishable count (SPEC §7 PUF).
    :param l_diversity: for de-identified rows, the distinct l of each sensitive item within
        an equivalence class.
    :param max_suppression: for de-identified rows, the largest share of subjects the
        k-anonymity search may suppress.
    :param inside_hospital_only: only a recipient inside the hospital may receive it — the
        recipient organisation is the hospital itself and the requester and every recipient
        account belong to it (§11.3.4.6: the code index stays in the hospital; companies
        receive de-identified data only).
    """

    name: str
    label: LazyText
    min_k: int
    allows_direct_identifiers: bool
    needs_officer: bool
    needs_committee: bool
    needs_dua: bool
    needs_ethics: bool
    consent_scopes: tuple[str, ...]
    treatment: Treatment
    writes_clinical_odm: bool
    min_cell_count: int | None = None
    l_diversity: int | None = None
    max_suppression: float | None = None
    inside_hospital_only: bool = False

    def approvals_needed(self, cross_border: bool) -> list[str]:
        """The approvals a request of this tier needs, in the order they are shown
        (§11.3.4.3: the higher the tier, the more; §7 o–p: leaving the country, the
        committee)."""
        out = ["officer"] if self.needs_officer else []
        if self.needs_committee or cross_border:
            out.append("committee")
        if self.needs_dua:
            out.append("dua")
        if self.needs_ethics:
            out.append("ethics")
        return out

    def scopes_needed(self, cross_border: bool) -> list[str]:
        """The consent scopes each included subject must hold."""
        return [*self.consent_scopes, *([CROSS_BORDER_SCOPE] if cross_border else [])]


TIER_RULES: dict[str, Tier] = {t.name: t for t in (
    Tier(name="puf", label=_l("Public use file (PUF)"),
         min_k=2, allows_direct_identifiers=False,
         needs_officer=True, needs_committee=False, needs_dua=False, needs_ethics=False,
         consent_scopes=("study",), treatment=Treatment.AGGREGATE,
         writes_clinical_odm=False, min_cell_count=5),
    Tier(name="lds", label=_l("Limited data set (LDS)"),
         min_k=5, allows_direct_identifiers=False,
         needs_officer=True, needs_committee=True, needs_dua=True, needs_ethics=False,
         consent_scopes=("study",), treatment=Treatment.DEIDENTIFY,
         writes_clinical_odm=True, l_diversity=2, max_suppression=0.05),
    Tier(name="rif", label=_l("Research identifiable file (RIF)"),
         min_k=2, allows_direct_identifiers=True,
         needs_officer=True, needs_committee=True, needs_dua=True, needs_ethics=True,
         consent_scopes=("study", "identifiable"), treatment=Treatment.IDENTIFIABLE,
         writes_clinical_odm=True, inside_hospital_only=True),
)}
"""The tiers by name, from the least to the most identifiable."""


def committee_approves(yes: int, roll: int) -> bool:
    """More than two thirds of the frozen roll voted yes, on a roll of at least
    :data:`COMMITTEE_MIN` (Appendix C: 由表决同意的全体委员会签)."""
    return roll >= COMMITTEE_MIN and yes * 3 > roll * 2


def tier_named(name: str) -> Tier:
    """The tier a request names; :class:`InvalidInput` (field ``tier``) for any other name."""
    tier = TIER_RULES.get(name)
    if tier is None:
        names = list(TIER_RULES)
        raise InvalidInput(_("tier must be {value} or {value2}").format(
                               value=", ".join(names[:-1]), value2=names[-1]), field="tier")
    return tier
