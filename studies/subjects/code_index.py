"""The code-index custodian's work (§11.3.4.6 a, §10.2 f–h): identity and code lookups, each with a
reason and a ledger entry, the lookup history, a subject's own data (subject access), and the
code-index keys: verification and rotation. Ledger entries never carry identity."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger
from studies import guards
from studies.entry.models import CurrentValue, FormRecord
from studies.forms.models import Form, FormVersion, Item
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l, current, pick
from studies.kernel.roles import Perm
from studies.registry.models import Site, Study
from studies.subjects import codes
from studies.subjects.crypto import CodeIndexKeys, blind_index, decrypt_identity, encrypt_identity
from studies.subjects.errors import CodeIndexKeyError
from studies.subjects.identity import (
    Identity,
    normalise_resident_id,
    validate_resident_id,
)
from studies.subjects.models import CodeIndexEntry, Disclosure, Subject
from studies.subjects.service import (
    CLAUSE_LOOKUP,
    lock_index,
    now_utc,
    plain_text,
    require_usable_keys,
)

MIN_REASON = 5


MAX_REASON = 500


LOOKUP_ACTIONS = (Action.CODE_INDEX_LOOKUP_IDENTITY, Action.CODE_INDEX_LOOKUP_CODE,
                  Action.SUBJECT_EXPORT, Action.CODE_INDEX_ROTATE_KEY)


def _reason(reason: str | None) -> str:
    value = " ".join((reason or "").split())
    plain_text(value, field="reason", max_len=10_000)
    if len(value) < MIN_REASON:
        raise InvalidInput(_("reason is required (at least {MIN_REASON} characters)").format(
                               MIN_REASON=MIN_REASON), field="reason", clause=CLAUSE_LOOKUP)
    if len(value) > MAX_REASON:
        raise InvalidInput(_("reason is longer than {MAX_REASON} characters").format(
                               MAX_REASON=MAX_REASON),
                           field="reason")
    return value


def _code(raw: str) -> str:
    code = codes.normalise_code(raw)
    if not re.fullmatch(r"[A-Z0-9]{1,10}-[A-Z0-9]{1,9}", code):
        raise InvalidInput(_("code: a subject code such as S01-7Q4K2M"),
                           field="code")
    return code


def _entry_by_code(session: Session, code: str) -> tuple[CodeIndexEntry, Study] | None:
    row = session.execute(
        select(CodeIndexEntry, Study).join(Study, col(Study.id) == CodeIndexEntry.study_id)
        .where(col(CodeIndexEntry.code) == code)).first()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class IdentityLookup:
    code: str
    found: bool
    study: str | None = None
    identity: Identity | None = None


def lookup_identity(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                    code: str, reason: str) -> IdentityLookup:
    """Re-identify: the identity behind a subject code. Custodian only, reason required; the
    ledger records actor, reason and result (found / not found), never the identity."""
    require(actor, Perm.CODE_INDEX_LOOKUP)
    why = _reason(reason)
    code = _code(code)
    hit = _entry_by_code(session, code)
    if hit is not None:
        subject = session.get(Subject, hit[0].subject_id)
        assert subject is not None
        guards.require_for_subject(session, actor, Perm.CODE_INDEX_LOOKUP, study=hit[1],
                                   subject=subject)
        keys.require_all([hit[0].key_id])
        identity = decrypt_identity(code=code, kid=hit[0].key_id, nonce=hit[0].nonce,
                                    ciphertext=hit[0].ciphertext, keys=keys)
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_LOOKUP_IDENTITY,
                  entity_type="code_index", entity_id=code, study=hit[1].code if hit else None,
                  subject=code if hit else None, reason=why, client=actor.client,
                  changes=[Change("result", None, "found" if hit else "not_found")])
    if hit is None:
        return IdentityLookup(code=code, found=False)
    return IdentityLookup(code=code, found=True, study=hit[1].code, identity=identity)


@dataclass(frozen=True)
class CodeLookup:
    found: bool
    matches: list[tuple[str, str]] = field(default_factory=list)  # (study code, subject code)


def lookup_code(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                resident_id: str, reason: str) -> CodeLookup:
    """The subject code(s) of a person, found by the blind index of the ID number (nothing is
    decrypted). Custodian only, reason required; audited with the result, not the ID number."""
    require(actor, Perm.CODE_INDEX_LOOKUP)
    why = _reason(reason)
    rid = normalise_resident_id(resident_id)
    if rid and rid in normalise_resident_id(why):
        raise InvalidInput(_("do not put the ID number in the reason (it is recorded)"),
                           field="reason")
    rid = validate_resident_id(resident_id)
    require_usable_keys(session, keys)
    bidx = blind_index(rid, key=keys.blind)
    rows = session.execute(
        select(col(CodeIndexEntry.code), col(Study.code), col(Site.code))
        .join(Study, col(Study.id) == CodeIndexEntry.study_id)
        .join(Subject, col(Subject.id) == CodeIndexEntry.subject_id)
        .join(Site, col(Site.id) == Subject.site_id)
        .where(col(CodeIndexEntry.blind_index) == bidx).order_by(col(Study.code))).all()
    matches = [(s, c) for c, s, t in rows if actor.can(Perm.CODE_INDEX_LOOKUP, s, t)]
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_LOOKUP_CODE,
                  entity_type="code_index", entity_id="(by resident ID number)",
                  subject=matches[0][1] if len(matches) == 1 else None, reason=why,
                  client=actor.client,
                  changes=[Change("result", None, "found" if matches else "not_found"),
                           Change("codes", None, [c for _x, c in matches])])
    return CodeLookup(found=bool(matches), matches=matches)


@dataclass(frozen=True)
class LookupRecord:
    seq: int
    ts: str
    actor: str
    action: str
    code: str | None
    study: str | None
    reason: str | None
    result: str | None


def lookup_history(session: Session, *, actor: Actor, limit: int = 200) -> list[LookupRecord]:
    """The latest code-index lookups, exports and key rotations, newest first, in the studies
    the actor is custodian for."""
    require(actor, Perm.CODE_INDEX_HISTORY)
    rows = session.execute(
        select(LedgerEntry).where(col(LedgerEntry.action).in_(LOOKUP_ACTIONS))
        .order_by(col(LedgerEntry.seq).desc()).limit(max(1, min(limit, 1000)))).scalars()
    out = []
    for e in rows:
        if e.study and not actor.can(Perm.CODE_INDEX_HISTORY, e.study):
            continue  # a custodian of one study sees that study's lookups (and unscoped ones)
        result = None
        try:
            for ch in json.loads(e.changes or "[]"):
                if isinstance(ch, dict) and ch.get("field") == "result":
                    result = ch.get("after")
        except ValueError:
            pass
        code = e.subject or (e.entity_id if e.entity_type in ("code_index", "subject")
                             and e.action != "code_index.lookup_code" else None)
        out.append(LookupRecord(e.seq, e.ts, e.actor, e.action, code, e.study, e.reason,
                                result if isinstance(result, str) else None))
    return out


EXPORT_FORMATS = ("json", "text", "html")


EXPORT_ACTION_PREFIXES = ("subject.", "consent.", "waiver.", "withdrawal.")


@dataclass(frozen=True)
class SubjectExport:
    filename: str
    media_type: str
    content: bytes


def _bilingual(zh: str | None, en: str | None) -> str:
    return pick(zh, en)


def _readable(item: Item, value: object) -> object:
    """A stored value as the subject reads it: a choice's label instead of its code."""
    labels = {c.get("code"): _bilingual(c.get("label_zh"), c.get("label_en")) or c.get("code")
              for c in item.choices or []}
    if isinstance(value, list):
        return [labels.get(str(v), v) for v in value]
    if value is not None and labels:
        return labels.get(str(value), value)
    return value


def clinical_data(session: Session, subject_id: str) -> list[dict[str, object]]:
    """The subject's clinical data as it stands (§7 d–e): per form record (event, repeat,
    form), every current value with its item's bilingual label and a readable value."""
    out: list[dict[str, object]] = []
    records = session.execute(
        select(FormRecord, Form, FormVersion).join(Form, col(Form.id) == col(FormRecord.form_id))
        .join(FormVersion, col(FormVersion.id) == col(FormRecord.form_version_id))
        .where(col(FormRecord.subject_id) == subject_id)
        .order_by(col(FormRecord.created_at), col(FormRecord.event_name),
                  col(FormRecord.event_repeat), col(Form.name))).all()
    for rec, form, version in records:
        items = {i.name: i for i in session.execute(select(Item).where(
            col(Item.form_version_id) == version.id)).scalars()}
        values = session.execute(select(CurrentValue).where(
            col(CurrentValue.record_id) == rec.id)).scalars().all()
        rows = []
        for v in sorted(values, key=lambda c: items[c.item_name].position
                        if c.item_name in items else 10**6):
            item = items.get(v.item_name)
            if v.value is None or v.value == "" or v.value == []:
                continue
            rows.append({"item": v.item_name,
                         "label": _bilingual(item.label_zh, item.label_en) if item else
                         v.item_name,
                         "value": _readable(item, v.value) if item else v.value,
                         "unit": item.unit if item else None})
        out.append({"event": rec.event_name, "repeat": rec.event_repeat, "form": form.name,
                    "form_label": _bilingual(version.label_zh, version.label_en),
                    "status": rec.status, "values": rows})
    return out


def _exported(session: Session, actor: Actor,
              code: str) -> tuple[CodeIndexEntry, Study, Subject, Site]:
    """The code-index entry of a subject the custodian may export, with the subject and its
    site (404 when there is none; 403 when the subject's site is outside the grant)."""
    hit = _entry_by_code(session, code)
    if hit is None:
        raise NotFound(_("no subject with this code"), field="code")
    entry, study = hit
    subject = session.get(Subject, entry.subject_id)
    assert subject is not None
    site = guards.require_for_subject(session, actor, Perm.CODE_INDEX_EXPORT, study=study,
                                      subject=subject)
    return entry, study, subject, site


def export_subject(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                   code: str, reason: str, fmt: str = "json") -> SubjectExport:
    """Subject access (§7 d–e): the subject's own data as a readable file — identity, enrolment
    and the consent- and enrolment-related ledger entries about the subject. Custodian only,
    with a reason; audited (the entry holds the format, never the content)."""
    require(actor, Perm.CODE_INDEX_EXPORT)
    why = _reason(reason)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(_("format: json or text"), field="format")
    code = _code(code)
    entry, study, subject, site = _exported(session, actor, code)
    identity = decrypt_identity(code=code, kid=entry.key_id, nonce=entry.nonce,
                                ciphertext=entry.ciphertext, keys=keys)
    events = session.execute(
        select(LedgerEntry).where(col(LedgerEntry.subject) == code).order_by(col(LedgerEntry.seq))
    ).scalars()
    history = [{"time": e.ts, "action": e.action, "by": e.actor, "outcome": e.outcome,
                "reason": e.reason}
               for e in events if e.action.startswith(EXPORT_ACTION_PREFIXES)]
    generated = now_utc()
    disclosed = [disclosure_json(d) for d in disclosures_of(session, subject.id)]
    doc: dict[str, object] = {
        "document": "Subject access export / 受试者个人数据副本 (GB/T 39725-2020 §7 d–e)",
        "generated_at": generated.isoformat(timespec="seconds"),
        "subject_code": code,
        "identity": identity.to_json(),
        "enrolment": {"study": study.code, "study_title_zh": study.title_zh,
                      "study_title_en": study.title_en, "site": site.code,
                      "hospital": site.hospital, "status": subject.status,
                      "enrolled_at": subject.enrolled_at.isoformat(timespec="seconds")},
        "clinical_data": clinical_data(session, subject.id),
        "history": history,
        "disclosures": disclosed,
    }
    ledger.append(session, actor=actor.username,
                  action=Action.SUBJECT_EXPORT, entity_type="subject",
                  entity_id=subject.id, study=study.code, subject=code, reason=why,
                  client=actor.client, changes=[Change("format", None, fmt),
                                                Change("result", None, "found")])
    stamp = generated.strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        return SubjectExport(f"subject-{code}-{stamp}.json", "application/json",
                             json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n")
    if fmt == "html":
        return SubjectExport(f"subject-{code}-{stamp}.html", "text/html; charset=utf-8",
                             _as_html(doc).encode())
    return SubjectExport(f"subject-{code}-{stamp}.txt", "text/plain; charset=utf-8",
                         _as_text(doc).encode())


_LABELS = {
    "name": _l("Name"), "resident_id": _l("Resident ID number"),
    "phone": _l("Phone"), "medical_record_number": _l("Medical record number"),
    "date_of_birth": _l("Date of birth"), "address": _l("Address"),
    "study": _l("Study"), "study_title_zh": _l("Title (zh)"),
    "study_title_en": _l("Title (en)"), "site": _l("Site"), "hospital": _l("Hospital"),
    "status": _l("Status"), "enrolled_at": _l("Enrolled at (UTC)"),
}


def _as_text(doc: dict[str, object]) -> str:
    lines = [str(doc["document"]), _("Generated (UTC): {generated_at}").format(
                                       generated_at=doc['generated_at']),
             _("Subject code: {subject_code}").format(subject_code=doc['subject_code']), "",
             _("Identity"), "-" * 40]
    ident = doc["identity"]
    enrol_ = doc["enrolment"]
    assert isinstance(ident, dict) and isinstance(enrol_, dict)
    lines += [f"{_LABELS[k]}: {v if v is not None else '—'}" for k, v in ident.items()]
    lines += ["", _("Enrolment"), "-" * 40]
    lines += [f"{_LABELS[k]}: {v}" for k, v in enrol_.items()]
    lines += ["", _("Your clinical data"), "-" * 40]
    for rec in _records(doc):
        lines.append(f"{rec['event']} #{rec['repeat']} — {rec['form_label']}")
        vals = rec["values"]
        assert isinstance(vals, list)
        lines += [f"  {v['label']}: {_shown(v)}" for v in vals]
    if not _records(doc):
        lines.append("—")
    lines += ["", _("Records (enrolment and consent)"), "-" * 40]
    hist = doc["history"]
    assert isinstance(hist, list)
    for h in hist:
        lines.append(f"{h['time']}  {h['action']}  {h['by']}  {h['outcome']}"
                     + (f"  ({h['reason']})" if h.get("reason") else ""))
    if not hist:
        lines.append("—")
    lines += ["", _("To whom your data were disclosed (§7 g)"), "-" * 40]
    shown = doc.get("disclosures") or []
    assert isinstance(shown, list)
    for d in shown:
        tier = str(TIER_NAMES.get(d["tier"], d["tier"]))
        lines.append(f"{d['disclosed_at']}  {d['recipient_org']}  {tier}  {d['study']}  "
                     + ", ".join(d["fields"]))
    if not shown:
        lines.append("—")
    return "\n".join(lines) + "\n"


def _records(doc: dict[str, object]) -> list[dict[str, object]]:
    recs = doc.get("clinical_data") or []
    assert isinstance(recs, list)
    return recs


def _shown(v: dict[str, object]) -> str:
    value = v["value"]
    text = "; ".join(str(x) for x in value) if isinstance(value, list) else str(value)
    return f"{text} {v['unit']}" if v.get("unit") else text


def _as_html(doc: dict[str, object]) -> str:
    """The same document as an HTML page the subject can read, in the custodian's language."""
    e = html.escape

    def table(head: list[str], rows: list[list[str]]) -> str:
        if not rows:
            return "<p>—</p>"
        return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
                + "</tr></thead><tbody>" + "".join(
                    "<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
                + "</tbody></table>")

    ident, enrol_ = doc["identity"], doc["enrolment"]
    assert isinstance(ident, dict) and isinstance(enrol_, dict)
    parts = [f"<h1>{e(str(doc['document']))}</h1>",
             "<p>" + e(_("Generated (UTC): {generated_at}").format(
                 generated_at=doc["generated_at"])) + " · " + e(_("Subject code: {subject_code}")
                 .format(subject_code=doc["subject_code"])) + "</p>",
             f"<h2>{e(_('Identity'))}</h2>",
             table(["", ""], [[str(_LABELS[k]), "—" if v is None else str(v)]
                              for k, v in ident.items()]),
             f"<h2>{e(_('Enrolment'))}</h2>",
             table(["", ""], [[str(_LABELS[k]), str(v)] for k, v in enrol_.items()]),
             f"<h2>{e(_('Your clinical data'))}</h2>"]
    for rec in _records(doc):
        parts.append(f"<h3 class=\"record\">{e(str(rec['event']))} #{rec['repeat']} — "
                     f"{e(str(rec['form_label']))}</h3>")
        vals = rec["values"]
        assert isinstance(vals, list)
        parts.append(table([_("Item"), _("Value")],
                           [[str(v["label"]), _shown(v)] for v in vals]))
    if not _records(doc):
        parts.append("<p>—</p>")
    hist = doc["history"]
    shown = doc.get("disclosures") or []
    assert isinstance(hist, list) and isinstance(shown, list)
    parts += [f"<h2>{e(_('Records (enrolment and consent)'))}</h2>",
              table([_("Time"), _("Action"), _("By"), _("Reason")],
                    [[h["time"], h["action"], h["by"], h.get("reason") or ""] for h in hist]),
              f"<h2 id=\"disclosures\">{e(_('To whom your data were disclosed (§7 g)'))}</h2>",
              table([_("When"), _("Recipient"), _("Tier"), _("Study"),
                     _("Fields")],
                    [[d["disclosed_at"], d["recipient_org"],
                      str(TIER_NAMES.get(d["tier"], d["tier"])),
                      d["study"], ", ".join(d["fields"])] for d in shown])]
    return (f"<!DOCTYPE html>\n<html lang=\"{current()}\"><head><meta charset=\"utf-8\"><title>"
            f"{e(_('Subject access export'))}</title></head><body>"
            + "".join(parts) + "</body></html>\n")


TIER_NAMES = {"lds": _l("limited data set"), "rif": _l("identifiable file"),
              "puf": _l("public use file")}


def disclosures_of(session: Session, subject_id: str) -> list[Disclosure]:
    return list(session.execute(select(Disclosure).where(
        col(Disclosure.subject_id) == subject_id).order_by(col(Disclosure.disclosed_at)))
        .scalars())


def disclosure_json(d: Disclosure) -> dict[str, object]:
    return {"request_id": d.request_id, "study": d.study_code, "recipient_org": d.recipient_org,
            "tier": d.tier, "fields": list(d.fields),
            "disclosed_at": d.disclosed_at.isoformat(timespec="seconds")}


def disclosures(session: Session, ledger: Ledger, *, actor: Actor,
                code: str) -> list[Disclosure]:
    """To whom a subject's data went (§7 g): every extract package built with their rows —
    recipient, tier, fields, when. The custodian's (as the subject access export, which
    holds the same list); the view is a ledger entry."""
    require(actor, Perm.CODE_INDEX_EXPORT)
    code = _code(code)
    entry, study, _subject, _site = _exported(session, actor, code)
    rows = disclosures_of(session, entry.subject_id)
    ledger.append(session, actor=actor.username, action=Action.SUBJECT_DISCLOSURES_VIEW,
                  entity_type="subject", entity_id=entry.subject_id, study=study.code,
                  subject=code, client=actor.client, changes=[Change("rows", None, len(rows))])
    return rows


@dataclass(frozen=True)
class IndexCheck:
    entries: int
    by_key: dict[str, int]


def key_usage(session: Session) -> dict[str, int]:
    """How many entries each key id encrypted (no decryption)."""
    out: dict[str, int] = {}
    for kid in session.execute(select(col(CodeIndexEntry.key_id))).scalars():
        out[kid] = out.get(kid, 0) + 1
    return out


def verify_code_index(session: Session, *, keys: CodeIndexKeys) -> IndexCheck:
    """Decrypt every entry with ``keys`` (in memory only); raise CodeIndexKeyError naming the
    first entry that does not decrypt. Read-only."""
    by_key: dict[str, int] = {}
    n = 0
    for e in session.execute(select(CodeIndexEntry).order_by(col(CodeIndexEntry.code))).scalars():
        decrypt_identity(code=e.code, kid=e.key_id, nonce=e.nonce, ciphertext=e.ciphertext,
                         keys=keys)
        by_key[e.key_id] = by_key.get(e.key_id, 0) + 1
        n += 1
    return IndexCheck(entries=n, by_key=by_key)


@dataclass(frozen=True)
class RotationReport:
    entries: int
    old_key_ids: list[str]
    new_key_id: str


def rotate_code_index(session: Session, ledger: Ledger, *, actor: Actor, keys: CodeIndexKeys,
                      new_key: bytes, on_entry: Callable[[int], None] | None = None,
                      client: str | None = None) -> RotationReport:
    """Re-encrypt every code-index entry under ``new_key`` in the caller's ONE transaction,
    then check (before the caller commits) that every entry decrypts under ``new_key`` alone.

    All or nothing: if anything fails, the caller's rollback leaves every entry under its old
    key. Keeps: every identity unchanged (byte for byte after decryption), codes, blind indexes.
    Changes: nonce, ciphertext, key id, ``encrypted_at``. Idempotent in effect: rotating
    again to another key is another rotation. ``on_entry`` is called after each entry (tests
    use it to interrupt a rotation halfway).
    """
    require(actor, Perm.CODE_INDEX_ROTATE)
    new_keys = CodeIndexKeys(current=new_key, blind=keys.blind)
    if new_keys.current_id in keys.by_id():
        raise InvalidInput(_("the new key must differ from every key in use"),
                           field="new_key")
    lock_index(session)
    entries = list(session.execute(
        select(CodeIndexEntry).order_by(col(CodeIndexEntry.code))).scalars())
    old_ids = sorted({e.key_id for e in entries})
    keys.require_all(old_ids)
    now = now_utc()
    for i, e in enumerate(entries):
        identity = decrypt_identity(code=e.code, kid=e.key_id, nonce=e.nonce,
                                    ciphertext=e.ciphertext, keys=keys)
        e.key_id, e.nonce, e.ciphertext = encrypt_identity(identity, code=e.code, key=new_key)
        e.encrypted_at = now
        if on_entry is not None:
            on_entry(i)
    session.flush()
    session.expire_all()
    check = verify_code_index(session, keys=new_keys)
    if check.entries != len(entries) or set(check.by_key) - {new_keys.current_id}:
        raise CodeIndexKeyError("re-encryption did not cover every entry; nothing is changed")
    ledger.append(session, actor=actor.username, action=Action.CODE_INDEX_ROTATE_KEY,
                  entity_type="code_index", entity_id="(all entries)", client=client,
                  reason="key rotation", changes=[
                      Change("key_id", old_ids, new_keys.current_id),
                      Change("entries", None, len(entries)),
                      Change("result", None, "verified")])
    return RotationReport(entries=len(entries), old_key_ids=old_ids,
                          new_key_id=new_keys.current_id)
