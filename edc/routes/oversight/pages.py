"""The Appendix F self-check page (data security officer, auditor): every checklist item the
software can evidence with pass / fail / not applicable and its evidence, read now; each view
is a run of the check and a ledger entry. The signed HTML and PDF an assessor is handed come
from ``edc conformance report``."""

from __future__ import annotations

import htpy as h
from fastapi import APIRouter, Request
from fastapi.responses import Response

from edc import selfcheck_report
from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import requires
from edc.routes.clock import now
from edc.routing import Route
from edc.web.layout import page
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.oversight import selfcheck

router = APIRouter(route_class=Route)


@router.get("/self-check", dependencies=[requires(Perm.AUDIT_VERIFY)])
def self_check(request: Request, session: SessionDep, ledger: LedgerDep, state: StateDep,
               actor: CurrentActor) -> Response:
    vkey = state.keys.signer.vkey
    report = selfcheck.run(session, ledger, actor=actor, vkey=vkey, now=now())
    return page(
        request, _("Self-check (Appendix F)"),
        h.p[_("The items of the GB/T 39725-2020 Appendix F checklist the software can "
              "evidence, each judged on the data as it is now.")],
        h.p(".summary")[selfcheck_report.summary_line(report)],
        selfcheck_report.items_table(report),
        h.p[_("The signed report for an assessor (HTML and PDF):") + " ",
            h.code["edc conformance report --out report --by USERNAME"]],
        h.p[_("Conformance table:") + " ", selfcheck_report.conformance_line()])
