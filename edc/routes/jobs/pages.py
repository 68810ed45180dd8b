"""The jobs page (``/admin/jobs``, the system administrator): the queued work of the job
runners — extract builds, checkpoint rounds, sweeps, backups — as any web process sees it,
with the warnings an operator acts on (no runner claiming queued work, a runner that died)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import htpy as h
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from edc.deps import CurrentActor, SessionDep
from edc.policy import requires
from edc.routes.clock import now
from edc.routing import Route
from edc.web.labels import label
from edc.web.layout import page
from edc.web.timefmt import local_minute
from studies.jobs import service as jobs
from studies.jobs.models import JOB_STATES
from studies.kernel.i18n import _
from studies.kernel.roles import Perm

router = APIRouter(route_class=Route)

# queued work no runner has claimed for this long means no runner is working
UNCLAIMED_WARNING = dt.timedelta(minutes=2)


@router.get("/admin/jobs", dependencies=[requires(Perm.JOBS_READ)])
def jobs_page(request: Request, session: SessionDep, actor: CurrentActor,
              state: str | None = Query(None, max_length=10)) -> Response:
    at = now()
    view = jobs.overview(session, actor=actor, state=state or None, now=at)
    counts = " · ".join(f"{label(s)}: {view.counts[s]}" for s in JOB_STATES)
    notes: list[h.Node] = []
    if view.oldest_queued is not None and at - view.oldest_queued > UNCLAIMED_WARNING:
        notes.append(h.p(".bad", role="alert")[
            _("✘ The oldest queued job has waited since {time}: no runner is claiming work. Is "
              "edc worker running (or EDC_SERVE_JOBS on in edc serve)?").format(
                time=local_minute(view.oldest_queued))])
    if view.stalled:
        notes.append(h.p(".bad", role="alert")[
            _("✘ {n} running job(s) whose runner stopped answering (lease run out): the next "
              "claim retries them, up to their limit of attempts").format(n=view.stalled)])
    runners = (", ".join(f"{n} ({local_minute(t, seconds=True)})" for n, t in view.runners)
               if view.runners else _("none working now"))
    filters: list[h.Node] = [h.a(href="/admin/jobs", aria_current="page" if not state else None)[
        _("All")]]
    for s in JOB_STATES:
        filters += [" · ", h.a(href="/admin/jobs?" + urlencode({"state": s}),
                               aria_current="page" if state == s else None)[label(s)]]
    rows = [h.tr[h.td[label(j.kind)], h.td[h.code[j.ref] if j.ref else "—"],
                 h.td(".status")[label(j.state)], h.td[f"{jobs.progress_of(j)}%"],
                 h.td[f"{j.attempts} / {j.max_attempts}"], h.td[j.claimed_by or "—"],
                 h.td[local_minute(j.created_at)], h.td[local_minute(j.finished_at)],
                 h.td[j.error or ""]] for j in view.jobs]
    return page(
        request, _("Jobs"),
        h.p[_("The queued work of the job runners (edc worker, or the runner inside edc "
              "serve), read from the database: every web process shows the same.")],
        h.p(".summary")[counts],
        *notes,
        h.p[_("Runners working now (last heartbeat):") + " " + runners],
        h.p[filters],
        h.table[h.thead[h.tr[h.th[_("Kind")], h.th[_("About")], h.th[_("State")],
                             h.th[_("Progress")], h.th[_("Attempts")], h.th[_("Runner")],
                             h.th[_("Queued")], h.th[_("Finished")], h.th[_("Error")]]],
                h.tbody[rows or h.tr[h.td(colspan="9")[_("No jobs.")]]]])
