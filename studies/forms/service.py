"""eCRF metadata: imports (REDCap, ODM), export (ODM 1.3.2), versions, publishing, and the
field-level checks and logic that data entry applies (§11.3.4.4 a).

An import is checked whole before anything is written and runs in the caller's transaction,
so a refused file leaves nothing behind. A published form version never changes; a change
is a new draft version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from sqlalchemy import bindparam, delete, event, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.forms import datatypes, odm, redcap
from studies.forms import expressions as ex
from studies.forms.errors import DictionaryError, ExpressionError, OdmError
from studies.forms.models import (
    CLASSIFICATIONS,
    DATA_CATEGORIES,
    DATA_TYPES,
    FIELD_TYPES,
    LEVELS,
    TEXT_FORMATS,
    Form,
    FormVersion,
    Item,
    ItemGroup,
    StudyEvent,
)
from studies.forms.schemas import EventIn, ItemUpdate
from studies.forms.spec import (
    CODE_RE,
    NAME_RE,
    Dictionary,
    EventSpec,
    FormSpec,
    GroupSpec,
    ItemSpec,
)
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, Locked, NotFound, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import Study

CLAUSE_METADATA = "§11.3.4.4 a"
ITEM_FIELDS = ("name", "field_type", "data_type", "label_zh", "label_en", "help_zh", "help_en",
               "unit", "text_format", "range_min", "range_max", "required", "multiple",
               "choices", "show_if", "calc", "source_logic", "logic_problem", "classification",
               "classification_confirmed", "data_category", "level", "matrix_group")


@dataclass
class ImportResult:
    study_code: str
    forms: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    study_created: bool = False

    def public(self) -> dict[str, Any]:
        return {"study": self.study_code, "study_created": self.study_created,
                "forms": self.forms, "events": self.events, "warnings": self.warnings}


# ---- reading ------------------------------------------------------------------------------------

_FORM_BY_NAME = select(Form).where(col(Form.study_id) == bindparam("study_id"),
                                   col(Form.name) == bindparam("name"))


def get_form(session: Session, study: Study, name: str) -> Form:
    f = session.execute(_FORM_BY_NAME, {"study_id": study.id, "name": name}
                        ).scalar_one_or_none()
    if f is None:
        raise NotFound(_("no form {name!r} in study {code}").format(name=name, code=study.code),
                       field="form")
    return f


def versions_of(session: Session, form_id: str) -> list[FormVersion]:
    return list(session.execute(select(FormVersion).where(col(FormVersion.form_id) == form_id)
                                .order_by(col(FormVersion.number))).scalars())


def get_version(session: Session, form: Form, number: int) -> FormVersion:
    v = session.execute(select(FormVersion).where(col(FormVersion.form_id) == form.id,
                                                  col(FormVersion.number) == number)
                        ).scalar_one_or_none()
    if v is None:
        raise NotFound(_("form {name!r} has no version {number}").format(
                           name=form.name, number=number),
                       field="version")
    return v


def groups_of(session: Session, version_id: str) -> list[ItemGroup]:
    return list(session.execute(select(ItemGroup)
                                .where(col(ItemGroup.form_version_id) == version_id)
                                .order_by(col(ItemGroup.position))).scalars())


def items_of(session: Session, version_id: str) -> list[Item]:
    return list(session.execute(select(Item).where(col(Item.form_version_id) == version_id)
                                .order_by(col(Item.position))).scalars())


ITEM_TABLE = Item.__table__  # type: ignore[attr-defined]
_VERSION_TABLE = FormVersion.__table__  # type: ignore[attr-defined]
_GROUP_TABLE = ItemGroup.__table__  # type: ignore[attr-defined]
_VERSION_ROW = select(_VERSION_TABLE).where(_VERSION_TABLE.c.id == bindparam("id"))
_ITEM_ROWS = select(ITEM_TABLE).where(ITEM_TABLE.c.form_version_id == bindparam("id")) \
    .order_by(ITEM_TABLE.c.position)
_GROUP_ROWS = select(_GROUP_TABLE).where(_GROUP_TABLE.c.form_version_id == bindparam("id")) \
    .order_by(_GROUP_TABLE.c.position)


@dataclass(frozen=True)
class Design:
    """A form version as read-only rows with the attribute names of ``FormVersion``, ``Item``
    and ``ItemGroup`` (several times cheaper to load than ORM objects)."""

    version: Any
    items: tuple[Any, ...]
    groups: tuple[Any, ...]

    @cached_property
    def public_groups(self) -> tuple[Mapping[str, Any], ...]:
        """``groups_public`` of the design, made once and read-only all the way down
        (mappings and tuples): a kept design is shared by every request of the process."""
        return _frozen(groups_public(self.groups, self.items))


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


# Published versions' designs, by version id, in this process (``design``); those a
# transaction read wait in its session's ``info`` until it commits.
_DESIGNS: dict[str, Design] = {}
_PENDING = "edc.forms.designs"
DESIGNS_HELD = 1024


def design(session: Session, version_id: str) -> Design:
    """The version's row, items and groups. A published version never changes (the module
    doc; ``_draft`` refuses to edit one), so once a transaction that read it as published has
    committed, its design is kept for this process — data entry reads it on every form view,
    live check and save. A draft's is read every time, and so is one whose publishing has not
    committed (it could still roll back to a draft). At most ``DESIGNS_HELD`` are kept; then
    the store starts afresh."""
    found = _DESIGNS.get(version_id) or session.info.get(_PENDING, {}).get(version_id)
    if found is not None:
        return found
    version = session.execute(_VERSION_ROW, {"id": version_id}).one()
    d = Design(version, tuple(session.execute(_ITEM_ROWS, {"id": version_id})),
               tuple(session.execute(_GROUP_ROWS, {"id": version_id})))
    if version.status == "published":
        session.info.setdefault(_PENDING, {})[version_id] = d
    return d


@event.listens_for(Session, "after_commit")
def _keep_designs(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        if len(_DESIGNS) + len(pending) > DESIGNS_HELD:
            _DESIGNS.clear()
        _DESIGNS.update(pending)


@event.listens_for(Session, "after_rollback")
def _drop_designs(session: Session) -> None:
    session.info.pop(_PENDING, None)


def item_rows(session: Session, version_id: str) -> list[Any]:
    """The items of a version as read-only rows (``design``): for checking a save's values."""
    return list(design(session, version_id).items)


def forms_of(session: Session, study_id: str) -> list[Form]:
    return list(session.execute(select(Form).where(col(Form.study_id) == study_id)
                                .order_by(col(Form.created_at), col(Form.name))).scalars())


def events_of(session: Session, study_id: str) -> list[StudyEvent]:
    return list(session.execute(select(StudyEvent).where(col(StudyEvent.study_id) == study_id)
                                .order_by(col(StudyEvent.position))).scalars())


def published_version(session: Session, form: Form) -> FormVersion | None:
    """The newest published version (None while the form is a draft): an extract names
    only fields of published forms."""
    vs = [v for v in versions_of(session, form.id) if v.status == "published"]
    return vs[-1] if vs else None


def current_version(session: Session, form: Form) -> FormVersion | None:
    """The newest published version, or the newest draft when none is published."""
    vs = versions_of(session, form.id)
    published = [v for v in vs if v.status == "published"]
    return published[-1] if published else (vs[-1] if vs else None)


def item_public(i: Item) -> dict[str, Any]:
    return {k: getattr(i, k) for k in ITEM_FIELDS}


def version_public(session: Session, form: Form, v: FormVersion,
                   items: list[Any] | None = None) -> dict[str, Any]:
    """The version with its groups and items; ``items``: the version's items (``items_of`` or
    ``item_rows``) if the caller has read them."""
    items = items if items is not None else items_of(session, v.id)
    return {"form": form.name, "version": v.number, "id": v.id, "status": v.status,
            "label_zh": v.label_zh, "label_en": v.label_en, "source": v.source,
            "published_at": v.published_at.isoformat() if v.published_at else None,
            "groups": groups_public(groups_of(session, v.id), items)}


def groups_public(groups: Sequence[Any], items: Sequence[Any]) -> list[dict[str, Any]]:
    """The groups of a version with their items (ORM objects or ``design`` rows)."""
    return [{"name": g.name, "label_zh": g.label_zh, "label_en": g.label_en,
             "repeating": g.repeating,
             "items": [item_public(i) for i in items if i.group_id == g.id]}
            for g in groups]


def list_forms(session: Session, *, actor: Actor, study_code: str) -> list[dict[str, Any]]:
    require(actor, Perm.STUDY_READ, study=study_code)
    study = registry.get_study(session, study_code)
    return [{"name": f.name, "versions": [{"number": v.number, "status": v.status,
                                           "label_en": v.label_en, "label_zh": v.label_zh}
                                          for v in versions_of(session, f.id)]}
            for f in forms_of(session, study.id)]


def show_version(session: Session, *, actor: Actor, study_code: str, form_name: str,
                 number: int) -> dict[str, Any]:
    require(actor, Perm.STUDY_READ, study=study_code)
    study = registry.get_study(session, study_code)
    form = get_form(session, study, form_name)
    return version_public(session, form, get_version(session, form, number))


# ---- writing ------------------------------------------------------------------------------------

def _spec_of(session: Session, form: Form, v: FormVersion) -> FormSpec:
    items = items_of(session, v.id)
    spec = FormSpec(name=form.name, label_zh=v.label_zh, label_en=v.label_en)
    for g in groups_of(session, v.id):
        gs = GroupSpec(name=g.name, label_zh=g.label_zh, label_en=g.label_en,
                       repeating=g.repeating)
        for i in items:
            if i.group_id == g.id:
                gs.items.append(ItemSpec(**{k: getattr(i, k) for k in ITEM_FIELDS}))
        spec.groups.append(gs)
    return spec


def _write_version(session: Session, v: FormVersion, spec: FormSpec) -> int:
    pos = 0
    for gpos, g in enumerate(spec.groups, 1):
        group = ItemGroup(form_version_id=v.id, name=g.name, label_zh=g.label_zh[:500],
                          label_en=g.label_en[:500], position=gpos, repeating=g.repeating)
        session.add(group)
        session.flush()
        for i in g.items:
            pos += 1
            session.add(Item(form_version_id=v.id, group_id=group.id, position=pos,
                             **{k: getattr(i, k) for k in ITEM_FIELDS}))
    session.flush()
    return pos


def _clear_draft(session: Session, v: FormVersion) -> None:
    session.execute(delete(Item).where(col(Item.form_version_id) == v.id))
    session.execute(delete(ItemGroup).where(col(ItemGroup.form_version_id) == v.id))
    session.flush()


def _bound_ok(value: str | None, data_type: str) -> bool:
    if value is None:
        return True
    if len(value) > 40:
        return False
    return datatypes.DATA_TYPES[data_type].bound_ok(value)


def _check_spec(spec: FormSpec) -> None:
    """Whatever an importer produced must fit the tables and the rules (an imported ODM file
    can say anything in its aliases)."""
    where = _("form {name!r}").format(name=spec.name)
    if not NAME_RE.match(spec.name):
        raise InvalidInput(_("form name {name!r} is not valid").format(name=spec.name),
                           field="form")
    names = [i.name for i in spec.items()]
    if len(set(names)) != len(names):
        raise InvalidInput(_("{where} defines an item twice").format(where=where), field="items")
    for i in spec.items():
        at = _("{where}, item {name!r}").format(where=where, name=i.name) + (
            _(" (line {line})").format(line=i.line) if i.line else "")
        if i.classification not in CLASSIFICATIONS or i.data_category not in DATA_CATEGORIES \
                or i.level not in LEVELS:
            raise InvalidInput(_("{at}: unknown classification, category or level").format(at=at),
                               field="items")
        if i.field_type not in FIELD_TYPES or i.data_type not in DATA_TYPES or (
                i.text_format is not None and i.text_format not in TEXT_FORMATS):
            raise InvalidInput(
                _("{at}: unknown field type, data type or text format").format(at=at),
                               field="items")
        if len(i.label_zh) > 20000 or len(i.label_en) > 20000 or len(i.unit or "") > 40:
            raise InvalidInput(_("{at}: label or unit too long").format(at=at), field="items")
        if not (_bound_ok(i.range_min, i.data_type) and _bound_ok(i.range_max, i.data_type)):
            raise InvalidInput(_("{at}: range bounds must be numbers (or dates) that fit the "
                                 "item's type").format(at=at), field="items")
        if any(not CODE_RE.match(c.get("code", "")) for c in i.choices):
            raise InvalidInput(_("{at}: a choice code is not valid").format(at=at), field="items")


def _store_dictionary(session: Session, ledger: Ledger, *, actor: Actor, study: Study,
                      d: Dictionary, source: str, result: ImportResult) -> None:
    for spec in d.forms:
        _check_spec(spec)
    for spec in d.forms:
        form = session.execute(select(Form).where(col(Form.study_id) == study.id,
                                                  col(Form.name) == spec.name)).scalar_one_or_none()
        if form is None:
            form = Form(study_id=study.id, name=spec.name)
            session.add(form)
            session.flush()
        vs = versions_of(session, form.id)
        if vs and vs[-1].status == "draft":
            v = vs[-1]
            _clear_draft(session, v)
            v.label_zh, v.label_en, v.source = spec.label_zh[:300], spec.label_en[:300], source
            action = Action.FORM_REIMPORT_DRAFT
        else:
            v = FormVersion(form_id=form.id, number=(vs[-1].number + 1) if vs else 1,
                            label_zh=spec.label_zh[:300], label_en=spec.label_en[:300],
                            source=source, created_by=actor.username)
            session.add(v)
            session.flush()
            action = Action.FORM_IMPORT
        count = _write_version(session, v, spec)
        ledger.append(session, actor=actor.username, client=actor.client, action=action,
                      entity_type="form_version", entity_id=v.id, study=study.code,
                      version=v.number,
                      changes=[Change("form", None, spec.name), Change("source", None, source),
                               Change("items", None, [i.name for i in spec.items()])])
        result.forms.append({"form": spec.name, "version": v.number, "items": count,
                             "status": v.status})
    for e in d.events:
        _upsert_event(session, ledger, actor=actor, study=study, spec=e)
        result.events.append(e.name)


def import_redcap(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                  text: str) -> ImportResult:
    """Import every form of a REDCap data dictionary as new draft versions (a study that does
    not exist yet is created as a draft). A malformed file or unknown field type is refused
    with line-numbered errors and nothing is written."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    try:
        d = redcap.parse_dictionary(text)
    except DictionaryError as exc:
        raise InvalidInput(_("the REDCap data dictionary was refused; nothing was "
                             "imported") + " " + "; ".join(exc.errors[:50]),
                           field="file", clause=CLAUSE_METADATA) from None
    return _import(session, ledger, actor=actor, study_code=study_code, d=d, source="redcap")


def import_odm(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
               data: bytes) -> ImportResult:
    """Import the forms (and events) of an ODM 1.3.2 MetaDataVersion; same rules as REDCap."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    try:
        d = odm.parse_metadata(data)
    except OdmError as exc:
        raise InvalidInput(_("the ODM file was refused; nothing was "
                             "imported") + " " + "; ".join(exc.errors[:50]),
                           field="file", clause=CLAUSE_METADATA) from None
    return _import(session, ledger, actor=actor, study_code=study_code, d=d, source="odm")


def _import(session: Session, ledger: Ledger, *, actor: Actor, study_code: str, d: Dictionary,
            source: str) -> ImportResult:
    existed = session.execute(select(col(Study.id)).where(col(Study.code) == study_code)).first()
    study = registry.ensure_study(session, ledger, actor=actor, code=study_code)
    if study.status == "closed":
        raise Conflict(_("the study is closed"), field="study")
    result = ImportResult(study_code=study.code, study_created=existed is None,
                          warnings=list(d.warnings))
    _store_dictionary(session, ledger, actor=actor, study=study, d=d, source=source,
                      result=result)
    return result


def current_specs(session: Session, study: Study) -> tuple[list[FormSpec], list[str]]:
    """The current version of every form of the study, and a label per form version."""
    specs = []
    labels = []
    for form in forms_of(session, study.id):
        v = current_version(session, form)
        if v is not None:
            specs.append(_spec_of(session, form, v))
            labels.append(f"{form.name} v{v.number}{'' if v.status == 'published' else ' draft'}")
    return specs, labels


def metadata_odm(session: Session, study: Study, *, now: dt.datetime) -> tuple[bytes, list[str]]:
    """The study's metadata (current version of every form, events) as ODM 1.3.2 bytes, with
    the form-version labels it contains. Read-only; callers audit their own export."""
    specs, labels = current_specs(session, study)
    events = [EventSpec(name=e.name, label_zh=e.label_zh, label_en=e.label_en,
                        repeating=e.repeating,
                        form_names=[n for n in e.form_names if n in {s.name for s in specs}])
              for e in events_of(session, study.id)]
    pv = registry.protocol_versions(session, study.id)
    data = odm.export_metadata(study_code=study.code, title_zh=study.title_zh,
                               title_en=study.title_en, protocol_label=pv[-1].label if pv else "",
                               mdv_name=", ".join(labels) or "empty", forms=specs,
                               events=events, now=now)
    return data, labels


def export_odm(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
               now: dt.datetime) -> bytes:
    """The study's metadata as ODM 1.3.2 (:func:`metadata_odm`). Audited as an export."""
    require(actor, Perm.STUDY_READ, study=study_code)
    study = registry.get_study(session, study_code)
    data, labels = metadata_odm(session, study, now=now)
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.METADATA_EXPORT,
                  entity_type="study", entity_id=study.id, study=study.code,
                  changes=[Change("format", None, "ODM 1.3.2"), Change("forms", None, labels),
                           Change("sha256", None, hashlib.sha256(data).hexdigest())])
    return data


def redcap_dictionary(session: Session, ledger: Ledger, *, actor: Actor, study_code: str
                      ) -> bytes:
    """The study's forms (current versions) as a REDCap data dictionary CSV, UTF-8 with a
    byte-order mark (Excel on Chinese Windows reads it as UTF-8). Importing it again
    (:func:`import_redcap`) gives the same forms. Audited as a metadata export."""
    require(actor, Perm.STUDY_READ, study=study_code)
    study = registry.get_study(session, study_code)
    specs, labels = current_specs(session, study)
    data = ("\ufeff" + redcap.dictionary_csv(specs)).encode("utf-8")
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.METADATA_EXPORT,
                  entity_type="study", entity_id=study.id, study=study.code,
                  changes=[Change("format", None, "REDCap data dictionary"),
                           Change("forms", None, labels),
                           Change("sha256", None, hashlib.sha256(data).hexdigest())])
    return data


def _upsert_event(session: Session, ledger: Ledger, *, actor: Actor, study: Study,
                  spec: EventSpec) -> StudyEvent:
    if not NAME_RE.match(spec.name):
        raise InvalidInput(_("event name {name!r}: lower-case letters, digits and _").format(
                               name=spec.name), field="name")
    known = {f.name for f in forms_of(session, study.id)}
    missing = [n for n in spec.form_names if n not in known]
    if missing:
        raise NotFound(_("no form {value!r} in this study").format(value=missing[0]),
                       field="form_names")
    ev = session.execute(select(StudyEvent).where(col(StudyEvent.study_id) == study.id,
                                                  col(StudyEvent.name) == spec.name)
                         ).scalar_one_or_none()
    before = None
    if ev is None:
        last = session.execute(select(func.max(col(StudyEvent.position))).where(
            col(StudyEvent.study_id) == study.id)).scalar() or 0
        ev = StudyEvent(study_id=study.id, name=spec.name, label_zh=spec.label_zh[:300],
                        label_en=spec.label_en[:300], position=last + 1, repeating=spec.repeating,
                        form_names=list(spec.form_names))
        session.add(ev)
    else:
        before = ev.form_names
        ev.label_zh, ev.label_en = spec.label_zh[:300], spec.label_en[:300]
        ev.repeating = spec.repeating
        ev.form_names = list(spec.form_names)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.EVENT_DEFINE,
                  entity_type="study_event", entity_id=ev.id, study=study.code,
                  changes=[Change("name", None, ev.name),
                           Change("forms", before, list(spec.form_names))])
    return ev


def define_event(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                 data: EventIn) -> StudyEvent:
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    return _upsert_event(session, ledger, actor=actor, study=study,
                         spec=EventSpec(**data.model_dump()))


def _draft(session: Session, actor: Actor, study_code: str, form_name: str,
           number: int) -> tuple[Study, Form, FormVersion]:
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    form = get_form(session, study, form_name)
    v = get_version(session, form, number)
    if v.status != "draft":
        raise Locked(_("form {name} version {number} is published and cannot change; create a new "
                       "version").format(name=form.name, number=v.number),
                     field="version", clause=CLAUSE_METADATA)
    return study, form, v


def publish_problems(session: Session, version_id: str) -> list[str]:
    items = items_of(session, version_id)
    problems = []
    if not items:
        problems.append(_("the form has no items"))
    for i in items:
        if i.logic_problem:
            problems.append(f"{i.name}: untranslated logic: {i.logic_problem}")
        if not i.classification_confirmed:
            problems.append(_("{name}: classification {classification} is only proposed; confirm "
                              "or change it").format(name=i.name, classification=i.classification))
    return problems


def publish_version(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    form_name: str, number: int) -> FormVersion:
    """Publish a draft; from then on it never changes. Refused while an item's logic is
    untranslated or a proposed classification is unconfirmed."""
    study, form, v = _draft(session, actor, study_code, form_name, number)
    problems = publish_problems(session, v.id)
    if problems:
        raise RuleViolation(_("the form cannot be published yet") + " "
                            + "; ".join(problems[:30]), field="version", clause=CLAUSE_METADATA)
    v.status, v.published_at, v.published_by = "published", dt.datetime.now(dt.UTC), \
        actor.username
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.FORM_PUBLISH,
                  entity_type="form_version", entity_id=v.id, study=study.code, version=v.number,
                  changes=[Change("status", "draft", "published")])
    return v


def new_version(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                form_name: str) -> FormVersion:
    """A new draft copied from the newest version (which must be published)."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    form = get_form(session, study, form_name)
    vs = versions_of(session, form.id)
    last = vs[-1]
    if last.status == "draft":
        raise Conflict(_("version {number} is still a draft; edit it").format(number=last.number),
                       field="form")
    v = FormVersion(form_id=form.id, number=last.number + 1, label_zh=last.label_zh,
                    label_en=last.label_en, source="copy", created_by=actor.username)
    session.add(v)
    session.flush()
    _write_version(session, v, _spec_of(session, form, last))
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.FORM_NEW_VERSION,
                  entity_type="form_version", entity_id=v.id, study=study.code, version=v.number,
                  changes=[Change("copied_from", None, last.number)])
    return v


def update_item(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                form_name: str, number: int, item_name: str, data: ItemUpdate) -> Item:
    """Change an item of a draft: confirm or change its classification (with Table 1 category
    and §6.2 level), fix its logic (in the system's own expression language), and so on."""
    study, form, v = _draft(session, actor, study_code, form_name, number)
    items = items_of(session, v.id)
    item = next((i for i in items if i.name == item_name), None)
    if item is None:
        raise NotFound(_("no item {item_name!r} in this version").format(item_name=item_name),
                       field="item")
    known = {i.name: i.multiple for i in items}
    for other in forms_of(session, study.id):  # logic may refer to the subject's other forms
        ov = current_version(session, other) if other.id != form.id else None
        if ov is not None:
            for i in items_of(session, ov.id):
                known.setdefault(i.name, i.multiple)
    changes: list[Change] = []

    def put(attr: str, value: Any) -> None:
        before = getattr(item, attr)
        if before != value:
            changes.append(Change(attr, before, value))
            setattr(item, attr, value)

    if data.classification is not None:
        if data.classification not in CLASSIFICATIONS:
            raise InvalidInput(_("classification must be one of {values}").format(
                values=", ".join(CLASSIFICATIONS)),
                               field="classification")
        put("classification", data.classification)
        put("classification_confirmed", True)
    if data.confirm_classification:
        put("classification_confirmed", True)
    if data.data_category is not None:
        if data.data_category not in DATA_CATEGORIES:
            raise InvalidInput(_("data category must be one of Table 1's: {values}").format(
                values=", ".join(DATA_CATEGORIES)), field="data_category")
        put("data_category", data.data_category)
    if data.level is not None:
        if data.level not in LEVELS:
            raise InvalidInput(_("level must be 1–5 (§6.2)"), field="level")
        put("level", data.level)
    if data.required is not None:
        put("required", data.required)
    for attr in ("show_if", "calc"):
        text = getattr(data, attr)
        if text is not None:
            try:
                tree = ex.parse(text, "edc")
                ex.check_fields(tree, known)
            except ExpressionError as exc:
                raise InvalidInput(f"{attr}: {exc}", field=attr) from None
            if item.name in ex.fields_of(tree):
                raise InvalidInput(_("{attr}: an item cannot refer to itself").format(attr=attr),
                                   field=attr)
            if attr == "calc" and item.field_type != "calc":
                raise InvalidInput(_("only a calculated field has a calculation"), field="calc")
            put(attr, ex.to_text(tree))
            put("logic_problem", None)
    if data.clear_show_if:
        put("show_if", None)
        put("logic_problem", None)
    for attr in ("unit", "help_zh", "help_en"):
        if getattr(data, attr) is not None:
            put(attr, getattr(data, attr) or None)
    if changes:
        session.flush()
        ledger.append(session, actor=actor.username, client=actor.client, action=Action.ITEM_UPDATE,
                      entity_type="crf_item", entity_id=item.id, study=study.code,
                      version=v.number, changes=changes)
    return item


# ---- entry-time checks and logic ----------------------------------------------------------------

