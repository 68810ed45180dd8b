"""Labels for the codes people read (statuses, states, kinds, decisions): one table, in the
reader's language. A page or a message shows ``label(code)``, never the bare code;
``tests/edc/test_navigation.py`` fails on a status the table does not name."""

from __future__ import annotations

from studies.kernel.i18n import LazyText, _l

LABELS: dict[str, LazyText] = {
    # studies, forms, protocol
    "draft": _l("draft"), "active": _l("active"), "closed": _l("closed"),
    "published": _l("published"), "retired": _l("retired"),
    "terminated": _l("terminated"), "completed": _l("completed"),
    "archived": _l("archived"),
    "prospective": _l("prospective"), "retrospective": _l("retrospective"),
    "blinded": _l("blinded"), "post_market": _l("post-market"),
    "real_world_data": _l("real-world data"),
    "public_interest": _l("public interest"),
    # subjects, consent
    "enrolled": _l("enrolled"), "withdrawn": _l("withdrawn"),
    "informed": _l("informed"), "broad": _l("broad"),
    "waiver": _l("waiver"), "requested": _l("requested"),
    # records, queries, SDV
    "new": _l("not started"), "incomplete": _l("incomplete"),
    "complete": _l("complete"), "verified": _l("verified"),
    "cleared": _l("changed after SDV"), "open": _l("open"),
    "query.open": _l("opened"), "query.answer": _l("answered"),
    "query.close": _l("closed"), "query.reopen": _l("re-opened"),
    "answered": _l("answered"), "answer": _l("answer"), "close": _l("close"),
    "reopen": _l("re-open"), "locked": _l("locked"),
    "sdv.verified": _l("verified"), "sdv.cleared": _l("changed after SDV"),
    # extracts, approvals, locks, unblinding
    "pending": _l("pending"), "approved": _l("approved"),
    "rejected": _l("rejected"), "held": _l("held"), "built": _l("built"),
    "delivered": _l("delivered"), "none": _l("not built"),
    "queued": _l("queued"), "running": _l("running"), "done": _l("done"),
    "failed": _l("failed"), "destroyed": _l("destroyed"), "blocked": _l("blocked"),
    "relocked": _l("relocked"), "effective": _l("effective"),
    "vote": _l("committee vote"), "officer": _l("security officer"),
    "ethics": _l("ethics committee"), "dua": _l("data-use agreement"),
    "approve": _l("approve"), "reject": _l("reject"), "hold": _l("hold"),
    "study": _l("whole study"), "site": _l("site"), "form": _l("form"),
    "subjects": _l("subjects"), "emergency": _l("emergency"),
    # jobs (the kinds of queued work)
    "extract.build": _l("extract build"), "checkpoint": _l("checkpoint round"),
    "sweep": _l("sweep"), "backup": _l("backup"),
}


def label(code: str | None) -> str:
    """The label of a code shown to people, in their language (the code itself if none is
    known)."""
    if code is None or code == "":
        return "—"
    known = LABELS.get(code)
    return code if known is None else str(known)
