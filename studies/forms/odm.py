"""CDISC ODM 1.3.2 metadata: write a study's MetaDataVersion, and read one back.

Pure: no database. The export validates against the official schema (``ODM1-3-2.xsd``). What
ODM has no element for travels in ``Alias`` elements with an ``edc:`` context (classification,
Table 1 category, §6.2 level, text format, checkbox). Branching logic is a ``ConditionDef``
named by the item's ``CollectionExceptionConditionOID`` (its expression says when the item is
*not* collected, so it is the negation of "show if"); a calculated item names a
``MethodDef`` of type Computation. Both carry the system's own expression text with the
``FormalExpression Context="edc:expression"``.

Reading refuses DTDs, entities and network access (no XXE), and reports problems with the
line of the XML element at fault.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.resources
import re
from typing import Any

from lxml import etree

from studies.forms import expressions as ex
from studies.forms.datatypes import BY_FIELD_TYPE, CODE_LIST, DATA_TYPES, DECIMAL_PLACES, ODM_IN
from studies.forms.errors import ExpressionError, OdmError
from studies.forms.spec import (
    NAME_RE,
    Dictionary,
    EventSpec,
    FormSpec,
    GroupSpec,
    ItemSpec,
    default_category_level,
    propose_classification,
)

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EXPR_CONTEXT = "edc:expression"
MAX_BYTES = 5_000_000


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _el(parent: Any, tag: str, **attrs: str | None) -> Any:
    return etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})


def _texts(parent: Any, tag: str, zh: str | None, en: str | None) -> None:
    if not zh and not en:
        return
    node = _el(parent, tag)
    for lang, text in (("zh", zh), ("en", en)):
        if text:
            t = _el(node, "TranslatedText")
            t.set(XML_LANG, lang)
            t.text = text


def _alias(parent: Any, context: str, name: str) -> None:
    _el(parent, "Alias", Context=context, Name=name)


def export_metadata(*, study_code: str, title_zh: str, title_en: str, protocol_label: str,
                    mdv_name: str, forms: list[FormSpec], events: list[EventSpec],
                    now: dt.datetime) -> bytes:
    """The study's metadata as an ODM 1.3.2 Snapshot document (UTF-8 bytes)."""
    digest = hashlib.sha256(repr((study_code, mdv_name, forms, events)).encode()).hexdigest()
    root = etree.Element(_q("ODM"), nsmap={None: NS}, attrib={
        "FileType": "Snapshot", "Granularity": "Metadata", "ODMVersion": "1.3.2",
        "FileOID": f"EDC.{study_code}.{digest[:12]}",
        "CreationDateTime": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "SourceSystem": "EDC (GB/T 39725-2020)"})
    study = _el(root, "Study", OID=f"ST.{study_code}")
    gv = _el(study, "GlobalVariables")
    _el(gv, "StudyName").text = f"{title_zh} / {title_en}"
    _el(gv, "StudyDescription").text = title_en
    _el(gv, "ProtocolName").text = f"{study_code} v{protocol_label}" if protocol_label else (
        study_code)
    units = sorted({i.unit for f in forms for i in f.items() if i.unit})
    unit_oid = {u: f"MU.{hashlib.sha256(u.encode()).hexdigest()[:8]}" for u in units}
    if units:
        bd = _el(study, "BasicDefinitions")
        for u in units:
            mu = _el(bd, "MeasurementUnit", OID=unit_oid[u], Name=u)
            sym = _el(mu, "Symbol")
            _el(sym, "TranslatedText").text = u
    mdv = _el(study, "MetaDataVersion", OID=f"MDV.{digest[:12]}", Name=mdv_name)
    if events:
        proto = _el(mdv, "Protocol")
        for n, e in enumerate(events, 1):
            _el(proto, "StudyEventRef", StudyEventOID=f"SE.{e.name}", OrderNumber=str(n),
                Mandatory="Yes")
    for e in events:
        sed = _el(mdv, "StudyEventDef", OID=f"SE.{e.name}", Name=e.label_en or e.name,
                  Repeating="Yes" if e.repeating else "No", Type="Scheduled")
        _texts(sed, "Description", e.label_zh, e.label_en)
        for n, fname in enumerate(e.form_names, 1):
            _el(sed, "FormRef", FormOID=f"F.{fname}", OrderNumber=str(n), Mandatory="Yes")
    for f in forms:
        fd = _el(mdv, "FormDef", OID=f"F.{f.name}", Name=f.label_en or f.name, Repeating="No")
        _texts(fd, "Description", f.label_zh, f.label_en)
        for n, g in enumerate(f.groups, 1):
            _el(fd, "ItemGroupRef", ItemGroupOID=f"IG.{f.name}.{g.name}", OrderNumber=str(n),
                Mandatory="Yes")
    for f in forms:
        for g in f.groups:
            ig = _el(mdv, "ItemGroupDef", OID=f"IG.{f.name}.{g.name}", Name=g.name,
                     Repeating="Yes" if g.repeating else "No")
            _texts(ig, "Description", g.label_zh, g.label_en)
            for n, i in enumerate(g.items, 1):
                _el(ig, "ItemRef", ItemOID=f"I.{f.name}.{i.name}", OrderNumber=str(n),
                    Mandatory="Yes" if i.required else "No",
                    MethodOID=f"MT.{f.name}.{i.name}" if i.calc else None,
                    CollectionExceptionConditionOID=(f"CD.{f.name}.{i.name}"
                                                     if i.show_if else None))
    for f in forms:
        for i in f.items():
            places = DECIMAL_PLACES.get(i.text_format or "")
            idef = _el(mdv, "ItemDef", OID=f"I.{f.name}.{i.name}", Name=i.name,
                       DataType=DATA_TYPES[i.data_type].odm,
                       SignificantDigits=str(places) if places else None)
            _texts(idef, "Description", i.help_zh, i.help_en)
            _texts(idef, "Question", i.label_zh, i.label_en)
            if i.unit:
                _el(idef, "MeasurementUnitRef", MeasurementUnitOID=unit_oid[i.unit])
            for bound, comparator in ((i.range_min, "GE"), (i.range_max, "LE")):
                if bound is not None and bound != "today":
                    rc = _el(idef, "RangeCheck", Comparator=comparator, SoftHard="Hard")
                    _el(rc, "CheckValue").text = bound
            if i.choices and DATA_TYPES[i.data_type].code_list:
                _el(idef, "CodeListRef", CodeListOID=f"CL.{f.name}.{i.name}")
            _alias(idef, "edc:field_type", i.field_type)
            _alias(idef, "edc:classification", i.classification)
            if not i.classification_confirmed:
                _alias(idef, "edc:classification_proposed", "yes")
            _alias(idef, "edc:data_category", i.data_category)
            _alias(idef, "edc:level", str(i.level))
            if i.text_format:
                _alias(idef, "edc:format", i.text_format)
            if i.matrix_group:
                _alias(idef, "edc:matrix_group", i.matrix_group)
            if i.multiple:
                _alias(idef, "edc:multiple", "yes")
            for bound, which in ((i.range_min, "edc:range_min"), (i.range_max, "edc:range_max")):
                if bound == "today":
                    _alias(idef, which, "today")
            if i.logic_problem and i.source_logic:
                _alias(idef, "edc:untranslated_logic", i.source_logic)
    for f in forms:
        for i in f.items():
            if i.choices and DATA_TYPES[i.data_type].code_list:
                cl = _el(mdv, "CodeList", OID=f"CL.{f.name}.{i.name}", Name=i.name,
                         DataType="text")
                for c in i.choices:
                    cli = _el(cl, "CodeListItem", CodedValue=c["code"])
                    _texts(cli, "Decode", c.get("label_zh"), c.get("label_en"))
    for f in forms:
        for i in f.items():
            if i.show_if:
                cd = _el(mdv, "ConditionDef", OID=f"CD.{f.name}.{i.name}",
                         Name=f"hide {i.name}")
                _texts(cd, "Description", f"不满足条件时不采集 {i.name}",
                       f"{i.name} is not collected unless: {i.show_if}")
                _el(cd, "FormalExpression", Context=EXPR_CONTEXT).text = (
                    ex.to_text(ex.Unary("not", ex.parse(i.show_if))))
    for f in forms:
        for i in f.items():
            if i.calc:
                md = _el(mdv, "MethodDef", OID=f"MT.{f.name}.{i.name}", Name=f"calc {i.name}",
                         Type="Computation")
                _texts(md, "Description", f"由服务器计算 {i.name}",
                       f"{i.name} is computed by the server")
                _el(md, "FormalExpression", Context=EXPR_CONTEXT).text = i.calc
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                pretty_print=True))


# ---- reading ----------------------------------------------------------------------------------

def _slug(text: str, prefix: str) -> str:
    s = text.strip()
    for p in (prefix + ".",):
        if s.startswith(p):
            s = s[len(p):]
    s = s.rsplit(".", 1)[-1]
    s = re.sub(r"[^a-z0-9_]", "_", s.lower()).strip("_")
    if not s or not s[0].isalpha():
        s = f"x_{s}"
    return s[:64]


def _translated(node: Any) -> tuple[str | None, str | None]:
    if node is None:
        return None, None
    zh = en = other = None
    for t in node.findall(_q("TranslatedText")):
        lang = (t.get(XML_LANG) or "").lower()
        text = (t.text or "").strip()
        if lang.startswith("zh"):
            zh = text
        elif lang.startswith("en"):
            en = text
        else:
            other = other or text
    zh, en = zh or en or other, en or zh or other
    return zh, en


def parse_metadata(data: bytes) -> Dictionary:
    """Read the first MetaDataVersion of an ODM 1.3.2 file. Raises :class:`OdmError`."""
    if len(data) > MAX_BYTES:
        raise OdmError([f"the file is larger than {MAX_BYTES} bytes"])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        raise OdmError([f"line {line}: not well-formed XML: {exc.msg}"]) from None
    if root.tag != _q("ODM"):
        raise OdmError([f"line {root.sourceline}: the root element is not an ODM 1.3 element "
                        f"in namespace {NS}"])
    mdv = root.find(f"{_q('Study')}/{_q('MetaDataVersion')}")
    if mdv is None:
        raise OdmError([f"line {root.sourceline}: no Study/MetaDataVersion element"])
    errors: list[str] = []
    warnings: list[str] = []

    def by_oid(tag: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for el in mdv.findall(_q(tag)):
            oid = el.get("OID")
            if not oid:
                errors.append(f"line {el.sourceline}: {tag} without OID")
            elif oid in out:
                errors.append(f"line {el.sourceline}: {tag} OID {oid!r} is defined twice")
            else:
                out[oid] = el
        return out

    item_defs, groups_def, forms_def = by_oid("ItemDef"), by_oid("ItemGroupDef"), by_oid("FormDef")
    code_lists, conditions, methods = by_oid("CodeList"), by_oid("ConditionDef"), by_oid(
        "MethodDef")
    units = {mu.get("OID"): mu.get("Name") for mu in root.iter(_q("MeasurementUnit"))}
    back_types = ODM_IN

    def expr_of(el: Any, what: str) -> tuple[ex.Node | None, str | None]:
        fe = el.find(_q("FormalExpression"))
        if fe is None or not (fe.text or "").strip():
            return None, f"line {el.sourceline}: {what} has no FormalExpression"
        if fe.get("Context") != EXPR_CONTEXT:
            return None, (f"line {fe.sourceline}: {what}: expression in context "
                          f"{fe.get('Context')!r} cannot be translated")
        try:
            return ex.parse(fe.text.strip(), "edc"), None
        except ExpressionError as exc:
            return None, f"line {fe.sourceline}: {what}: {exc}"

    forms: list[FormSpec] = []
    form_names: dict[str, str] = {}
    for foid, fd in forms_def.items():
        fname = _slug(foid, "F")
        if fname in {f.name for f in forms}:
            errors.append(f"line {fd.sourceline}: form name {fname!r} is used twice")
            continue
        form_names[foid] = fname
        dzh, den = _translated(fd.find(_q("Description")))
        label = fd.get("Name") or fname
        form = FormSpec(name=fname, label_zh=dzh or label, label_en=den or label)
        seen_items: set[str] = set()
        for gref in fd.findall(_q("ItemGroupRef")):
            goid = gref.get("ItemGroupOID") or ""
            gd = groups_def.get(goid)
            if gd is None:
                errors.append(f"line {gref.sourceline}: ItemGroupRef to unknown {goid!r}")
                continue
            gzh, gen = _translated(gd.find(_q("Description")))
            gname = _slug(gd.get("Name") or goid, "IG")
            if not NAME_RE.match(gname):
                gname = _slug(goid, "IG")
            group = GroupSpec(name=gname, label_zh=gzh or gname, label_en=gen or gname,
                              repeating=gd.get("Repeating") == "Yes")
            for iref in gd.findall(_q("ItemRef")):
                ioid = iref.get("ItemOID") or ""
                idef = item_defs.get(ioid)
                if idef is None:
                    errors.append(f"line {iref.sourceline}: ItemRef to unknown {ioid!r}")
                    continue
                item = _item(idef, iref, back_types, units, code_lists, errors)
                if item is None:
                    continue
                if item.name in seen_items:
                    errors.append(f"line {iref.sourceline}: item {item.name!r} appears twice "
                                  f"in form {fname!r}")
                    continue
                seen_items.add(item.name)
                cd_oid = iref.get("CollectionExceptionConditionOID")
                if cd_oid:
                    cd = conditions.get(cd_oid)
                    if cd is None:
                        errors.append(f"line {iref.sourceline}: unknown ConditionDef {cd_oid!r}")
                    else:
                        tree, problem = expr_of(cd, f"condition of {item.name}")
                        if tree is None:
                            fe = cd.find(_q("FormalExpression"))
                            item.source_logic = (fe.text or "").strip() if fe is not None else ""
                            item.logic_problem = problem
                            warnings.append(f"{problem} — kept as written; fix it before "
                                            "publishing")
                        else:
                            show = tree.operand if isinstance(tree, ex.Unary) and \
                                tree.op == "not" else ex.Unary("not", tree)
                            item.show_if = ex.to_text(show)
                m_oid = iref.get("MethodOID")
                if m_oid:
                    md = methods.get(m_oid)
                    if md is None:
                        errors.append(f"line {iref.sourceline}: unknown MethodDef {m_oid!r}")
                    else:
                        tree, problem = expr_of(md, f"method of {item.name}")
                        if tree is None:
                            fe = md.find(_q("FormalExpression"))
                            item.source_logic = (fe.text or "").strip() if fe is not None else ""
                            item.logic_problem = problem
                            warnings.append(f"{problem} — kept as written; fix it before "
                                            "publishing")
                        else:
                            item.calc = ex.to_text(tree)
                            item.field_type = "calc"
                            item.data_type = BY_FIELD_TYPE["calc"]
                group.items.append(item)
            form.groups.append(group)
        forms.append(form)

    events: list[EventSpec] = []
    for eoid, sed in by_oid("StudyEventDef").items():
        ename = _slug(eoid, "SE")
        ezh, een = _translated(sed.find(_q("Description")))
        label = sed.get("Name") or ename
        ev = EventSpec(name=ename, label_zh=ezh or label, label_en=een or label,
                       repeating=sed.get("Repeating") == "Yes")
        for fref in sed.findall(_q("FormRef")):
            foid = fref.get("FormOID") or ""
            if foid not in form_names:
                errors.append(f"line {fref.sourceline}: FormRef to unknown {foid!r}")
            else:
                ev.form_names.append(form_names[foid])
        events.append(ev)

    if errors:
        raise OdmError(errors)
    known = {i.name: i.multiple for f in forms for i in f.items()}
    for f in forms:
        for i in f.items():
            for attr in ("show_if", "calc"):
                text = getattr(i, attr)
                if text:
                    try:
                        ex.check_fields(ex.parse(text), known)
                    except ExpressionError as exc:
                        setattr(i, attr, None)
                        i.source_logic, i.logic_problem = text, f"{attr}: {exc}"
                        warnings.append(f"line {i.line}: {i.name}: {exc} — kept as written; "
                                        "fix it before publishing")
    return Dictionary(forms=forms, events=events, warnings=warnings)


def _item(idef: Any, iref: Any, back_types: dict[str, str], units: dict[str, str],
          code_lists: dict[str, Any], errors: list[str]) -> ItemSpec | None:
    line = idef.sourceline
    name = idef.get("Name") or ""
    if not NAME_RE.match(name):
        name = _slug(idef.get("OID") or name, "I")
    odm_type = idef.get("DataType") or ""
    if odm_type not in back_types:
        errors.append(f"line {line}: ItemDef {idef.get('OID')!r}: data type {odm_type!r} is "
                      "not supported")
        return None
    aliases = {a.get("Context"): a.get("Name") for a in idef.findall(_q("Alias"))}
    qzh, qen = _translated(idef.find(_q("Question")))
    hzh, hen = _translated(idef.find(_q("Description")))
    item = ItemSpec(name=name, field_type=aliases.get("edc:field_type") or "text",
                    data_type=back_types[odm_type], label_zh=qzh or name, label_en=qen or name,
                    help_zh=hzh, help_en=hen, line=line,
                    required=iref.get("Mandatory") == "Yes")
    mu = idef.find(_q("MeasurementUnitRef"))
    if mu is not None:
        item.unit = units.get(mu.get("MeasurementUnitOID"))
    for rc in idef.findall(_q("RangeCheck")):
        cv = rc.find(_q("CheckValue"))
        value = (cv.text or "").strip() if cv is not None else ""
        if rc.get("Comparator") in ("GE", "GT"):
            item.range_min = value or None
        elif rc.get("Comparator") in ("LE", "LT"):
            item.range_max = value or None
    item.range_min = aliases.get("edc:range_min") or item.range_min
    item.range_max = aliases.get("edc:range_max") or item.range_max
    clr = idef.find(_q("CodeListRef"))
    if clr is not None:
        cl = code_lists.get(clr.get("CodeListOID") or "")
        if cl is None:
            errors.append(f"line {clr.sourceline}: CodeListRef to unknown "
                          f"{clr.get('CodeListOID')!r}")
            return None
        item.data_type = CODE_LIST
        for cli in cl.findall(_q("CodeListItem")):
            zh, en = _translated(cli.find(_q("Decode")))
            code = cli.get("CodedValue") or ""
            item.choices.append({"code": code, "label_zh": zh or code, "label_en": en or code})
        if item.field_type == "text":
            item.field_type = "dropdown"
    item.text_format = aliases.get("edc:format")
    item.matrix_group = aliases.get("edc:matrix_group")
    item.multiple = aliases.get("edc:multiple") == "yes"
    fixed = DATA_TYPES[item.data_type]
    if fixed.choices:  # a type of fixed codes (boolean): a field type of its own, its codes
        kinds = fixed.field_types
        item.field_type = item.field_type if item.field_type in kinds else kinds[0]
        item.choices = [dict(c) for c in fixed.choices]
    classification = aliases.get("edc:classification")
    if classification:
        item.classification = classification
        item.classification_confirmed = aliases.get("edc:classification_proposed") != "yes"
        cat, lvl = default_category_level(classification)
        item.data_category = aliases.get("edc:data_category") or cat
        try:
            item.level = int(aliases.get("edc:level") or lvl)
        except ValueError:
            errors.append(f"line {line}: edc:level must be 1–5")
    else:
        propose_classification(item, False)
    if aliases.get("edc:untranslated_logic"):
        item.source_logic = aliases["edc:untranslated_logic"]
        item.logic_problem = "logic was not translated in the source system"
    return item


@functools.cache
def load_schema() -> Any:
    """The official ODM 1.3.2 schema (``ODM1-3-2.xsd``, MIT licence, CDISC), shipped as package
    data in ``studies/forms/odm_schema/`` and parsed once."""
    xsd = importlib.resources.files("studies.forms") / "odm_schema" / "ODM1-3-2.xsd"
    with importlib.resources.as_file(xsd) as path:
        return etree.XMLSchema(etree.parse(str(path)))
