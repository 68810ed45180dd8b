"""The jobs page and API (the system administrator, ``jobs.read``): the queue as any web
process sees it — counts per state, the jobs with their progress, attempts, runner and error,
and the warnings an operator acts on: queued work no runner claims, a runner that died."""

from __future__ import annotations

import datetime as dt

from factories import make_user
from fastapi.testclient import TestClient
from pages_util import soup
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.service import Ledger
from studies.jobs import service as jobs
from studies.jobs.models import Job
from studies.kernel.roles import Role


def _queue(session: Session) -> dt.datetime:
    """A checkpoint round waiting 10 minutes; a build whose runner is working (heartbeat now);
    a sweep whose runner died (lease run out); a backup that failed. Returns "now"."""
    now = dt.datetime.now(dt.UTC)
    for kind, ref in (("checkpoint", None), ("extract.build", "req-working"),
                      ("sweep", None), ("backup", None)):
        jobs.enqueue(session, kind=kind, ref=ref)
    rows = {j.kind: j for j in session.query(Job).all()}
    rows["checkpoint"].created_at = now - dt.timedelta(minutes=10)
    for kind, worker, lease in (("extract.build", "ward-7:411:1", dt.timedelta(minutes=5)),
                                ("sweep", "ward-7:390:1", dt.timedelta(minutes=-1)),
                                ("backup", "ward-7:411:1", dt.timedelta(minutes=5))):
        row = rows[kind]
        row.created_at = now - dt.timedelta(minutes=1)
        row.state, row.claimed_by, row.attempts = "running", worker, 1
        row.heartbeat_at, row.lease_expires_at = now, now + lease
    rows["extract.build"].progress = 40
    session.flush()
    jobs.fail(session, job_id=rows["backup"].id, worker="ward-7:411:1", attempt=1,
              error="EDC_BACKUP_DIR /backup: no space left on device")
    session.flush()
    return now


def test_the_administrator_sees_the_queue_and_what_to_act_on(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "admin", Role.ADMIN)
    _queue(session)
    login(app_client, "admin")
    home = soup(app_client.get("/").text)
    assert home.find("a", href="/admin/jobs") is not None  # reached by clicking
    r = app_client.get("/admin/jobs")
    assert r.status_code == 200
    page = soup(r.text)
    text = page.get_text(" ", strip=True)
    assert "queued: 1 · running: 2 · done: 0 · failed: 1" in text
    assert "no runner is claiming work" in text
    assert "1 running job(s) whose runner stopped answering" in text
    assert "ward-7:411:1" in page.find(string=lambda s: s and "last heartbeat" in s).parent \
        .get_text()
    rows = {tr.find_all("td")[0].get_text(): [td.get_text() for td in tr.find_all("td")]
            for tr in page.select("tbody tr")}
    assert rows["extract build"][1:5] == ["req-working", "running", "40%", "1 / 3"]
    assert rows["backup"][2] == "failed"
    assert rows["backup"][8] == "EDC_BACKUP_DIR /backup: no space left on device"
    assert rows["checkpoint round"][2] == "queued" and rows["checkpoint round"][5] == "—"

    # one state only, by clicking its link
    failed = soup(app_client.get(page.find("a", string="failed")["href"]).text)
    assert [tr.find_all("td")[0].get_text() for tr in failed.select("tbody tr")] == ["backup"]

    # the same in Chinese
    zh = soup(app_client.get("/admin/jobs", headers={"Accept-Language": "zh"}).text)
    assert "任务" in zh.title.get_text()


def test_the_jobs_api_and_who_is_refused(app_client: TestClient, session: Session,
                                         ledger: Ledger) -> None:
    make_user(session, ledger, "admin", Role.ADMIN)
    make_user(session, ledger, "auditor", Role.AUDITOR)
    now = _queue(session)
    login(app_client, "admin")
    body = app_client.get("/api/v1/jobs").json()
    assert body["counts"] == {"queued": 1, "running": 2, "done": 0, "failed": 1}
    assert body["stalled"] == 1
    assert [r["name"] for r in body["runners"]] == ["ward-7:411:1"]
    build = next(j for j in body["jobs"] if j["kind"] == "extract.build")
    assert build["progress"] == 40 and build["ref"] == "req-working"
    assert dt.datetime.fromisoformat(body["oldest_queued"]) < now - dt.timedelta(minutes=9)
    only = app_client.get("/api/v1/jobs", params={"state": "failed"}).json()["jobs"]
    assert [j["kind"] for j in only] == ["backup"]
    bad = app_client.get("/api/v1/jobs", params={"state": "stuck"})
    assert bad.status_code == 422 and "state: one of queued, running, done, failed" in bad.text
    bad_page = app_client.get("/admin/jobs", params={"state": "stuck"})
    assert bad_page.status_code == 422 and "state: one of" in bad_page.text

    login(app_client, "auditor")  # deny by default: the jobs are the operator's
    assert app_client.get("/api/v1/jobs").status_code == 403
    assert app_client.get("/admin/jobs").status_code == 403
    assert soup(app_client.get("/").text).find("a", href="/admin/jobs") is None
