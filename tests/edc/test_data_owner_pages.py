"""The study's data owner (数据责任人, §11.3.4.4 a) through the pages: the study page names the
owner (a set-up step until one is named); the study's manager names the first, each handover
is signed by the outgoing owner and takes effect when the incoming person accepts and signs;
an administrator hands over a study whose owner has left; every step is audited and the history
is shown. Mistakes are a 422 at the form, nothing recorded but the audited refusal."""

from __future__ import annotations

from factories import PASSWORD, make_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_study_pages import csrf, soup
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.kernel.roles import Role
from studies.registry.models import OwnerHandover

S = "OWN-2026"
OWNER = f"/studies/{S}/owner"


def propose(client: TestClient, by: str, to: str, *, password: str = PASSWORD,
            reason: str = "moves to another department", url: str = OWNER,
            page: str = OWNER) -> object:
    return client.post(url, data={"csrf_token": csrf(client, page), "to_username": to,
                                  "reason": reason, "username": by, "password": password},
                       follow_redirects=False)


def accept(client: TestClient, by: str) -> object:
    page = soup(client.get(OWNER).text)
    form = page.select_one("form.owner-accept")
    assert form is not None, "no accept form for the incoming person"
    return client.post(form["action"], data={"csrf_token": csrf(client, OWNER),
                                             "username": by, "password": PASSWORD},
                       follow_redirects=False)


def study_owner_line(client: TestClient) -> str:
    return soup(client.get(f"/studies/{S}").text).select_one(".data-owner").text


def test_the_owner_is_named_handed_over_with_two_signatures_and_shown(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, S)
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study=S)
    make_user(session, ledger, "inv1", Role.INVESTIGATOR, study=S)
    make_user(session, ledger, "inv2", Role.INVESTIGATOR, study=S)
    make_user(session, ledger, "sp", Role.SPONSOR, study=S)
    make_user(session, ledger, "admin", Role.ADMIN)

    login(app_client, "inv1")
    assert 'No data owner named yet' in study_owner_line(app_client)
    page = soup(app_client.get(f"/studies/{S}").text)
    assert 'Data owner' in page.select_one("ol.wizard").text
    assert soup(app_client.get(OWNER).text).select_one("form.owner-handover") is None
    assert propose(app_client, "inv1", "inv2").status_code == 403  # only the manager names

    login(app_client, "pi")
    r = propose(app_client, "pi", "sp")
    assert r.status_code == 422
    err = soup(r.text).select_one("form.owner-handover .sign-error").text
    assert "the data owner must be a member of the study team" in err
    assert "field: to_username" in err
    r = propose(app_client, "pi", "inv1", password="not the password")
    assert r.status_code == 422
    assert 'wrong password' in soup(r.text).select_one(".sign-error").text
    r = propose(app_client, "pi", "inv1", reason="  ")
    assert r.status_code == 422 and 'field: reason' in r.text
    assert session.execute(select(func.count()).select_from(OwnerHandover)).scalar_one() == 0
    assert session.execute(select(LedgerEntry.outcome).where(
        LedgerEntry.action == "signature.sign", LedgerEntry.actor == "pi")
    ).scalars().all() == ["failure"]  # the refused signature is audited

    r = propose(app_client, "pi", "inv1", reason="first data owner of the study")
    assert r.status_code == 303
    page = soup(app_client.get(OWNER).text)
    assert "— → inv1: first data owner of the study" in page.select_one(".pending").text
    assert "Pi (pi)" in page.select_one(".pending + .signature").text
    # not in force before the acceptance
    assert "No data owner named yet" in study_owner_line(app_client)

    login(app_client, "inv2")
    assert soup(app_client.get(OWNER).text).select_one("form.owner-accept") is None
    pending = session.execute(select(OwnerHandover)).scalar_one()
    r = app_client.post(f"{OWNER}/{pending.id}/accept", data={
        "csrf_token": csrf(app_client, OWNER), "username": "inv2", "password": PASSWORD})
    assert r.status_code == 403

    login(app_client, "inv1")
    assert accept(app_client, "inv1").status_code == 303
    assert study_owner_line(app_client).startswith("Data owner: inv1 · since")
    assert 'Data owner' in soup(app_client.get(f"/studies/{S}").text
                                            ).select_one("ol.wizard").text

    login(app_client, "pi")  # the manager no longer hands over: the owner does
    assert propose(app_client, "pi", "inv2").status_code == 403
    login(app_client, "inv1")
    assert propose(app_client, "inv1", "inv2", reason="inv1 moves to cardiology").status_code \
        == 303
    login(app_client, "inv2")
    assert accept(app_client, "inv2").status_code == 303
    assert "Data owner: inv2" in study_owner_line(app_client)

    rows = soup(app_client.get(OWNER).text).select("table.owner-history tbody tr")
    cells = [[td.text for td in tr.find_all("td")] for tr in rows]
    assert [c[:3] for c in cells] == [["inv1", "inv2", "inv1 moves to cardiology"],
                                      ["—", "inv1", "first data owner of the study"]]
    assert "Inv1 (inv1)" in cells[0][3] and "Inv2 (inv2)" in cells[0][4]
    assert "Pi (pi)" in cells[1][3] and "Inv1 (inv1)" in cells[1][4]
    assert session.execute(select(LedgerEntry.action, LedgerEntry.actor).where(
        LedgerEntry.action.like("study.owner_%")).order_by(LedgerEntry.seq)).all() == [
        ("study.owner_propose", "pi"), ("study.owner_accept", "inv1"),
        ("study.owner_propose", "inv1"), ("study.owner_accept", "inv2")]

    # inv2 leaves the hospital: the administrator hands the study over.
    accounts.find_user(session, "inv2").is_active = False  # type: ignore[union-attr]
    session.flush()
    login(app_client, "admin")
    home = soup(app_client.get("/").text)
    assert home.find("a", {"href": "/admin/data-owners"}).text == \
        'Data owner handovers'
    page = soup(app_client.get("/admin/data-owners").text)
    assert [s["id"] for s in page.select("section.owner-left")] == [f"left-{S}"]
    assert "inv2" in page.select_one(f"#left-{S}").text
    r = propose(app_client, "admin", "inv1", reason="inv2 left the hospital",
                url=f"/admin/data-owners/{S}", page="/admin/data-owners")
    assert r.status_code == 303, r.text
    login(app_client, "inv1")
    assert accept(app_client, "inv1").status_code == 303
    assert "Data owner: inv1" in study_owner_line(app_client)
    first = soup(app_client.get(OWNER).text).select("table.owner-history tbody tr")[0]
    assert [td.text for td in first.find_all("td")][:3] == ["inv2", "inv1",
                                                            "inv2 left the hospital"]
    assert "Admin (admin)" in first.find_all("td")[3].text
