"""Read a REDCap data dictionary (CSV) into form descriptions.

Pure: no database. Every problem is reported with the CSV line it is on; any error means the
whole file is refused (the caller writes nothing). Branching logic and calculations are
translated into the system's own expression language; what cannot be translated is kept
verbatim, flagged on the item and reported as a line-numbered warning (publishing the form is
refused until it is fixed) — never silently dropped.
"""

from __future__ import annotations

import csv
import io
import re

from studies.forms import datatypes
from studies.forms import expressions as ex
from studies.forms.errors import DictionaryError, ExpressionError
from studies.forms.spec import (
    CODE_RE,
    NAME_RE,
    Dictionary,
    FormSpec,
    GroupSpec,
    ItemSpec,
    propose_classification,
    split_label,
)
from studies.kernel.i18n import _

COLUMNS = {  # normalised header prefix -> key
    "variable / field name": "name", "form name": "form", "section header": "section",
    "field type": "type", "field label": "label", "choices": "choices", "field note": "note",
    "text validation type": "validation", "text validation min": "min",
    "text validation max": "max", "identifier": "identifier", "branching logic": "branching",
    "required field": "required", "custom alignment": "alignment", "question number":
    "question", "matrix group name": "matrix", "matrix ranking": "ranking",
    "field annotation": "annotation",
}
REQUIRED_COLUMNS = ("name", "form", "type", "label")
FIELD_TYPES = ("text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc",
               "descriptive", "slider", "file")
VALIDATIONS = datatypes.REDCAP_VALIDATIONS  # text validation → (data type, text format)
MAX_ROWS = 5000
UNIT_RE = re.compile(r"^[A-Za-z%µ/0-9^.·*]{1,20}$")


def _header_keys(header: list[str]) -> dict[str, int]:
    keys: dict[str, int] = {}
    for i, raw in enumerate(header):
        h = raw.strip().lstrip("\ufeff").lower()
        for prefix, key in COLUMNS.items():
            if h.startswith(prefix) and key not in keys:
                keys[key] = i
                break
    return keys


def parse_choices(text: str, line: int, errors: list[str], name: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if "," not in part:
            errors.append(f"line {line}: {name}: choice {part!r} must be 'code, label'")
            continue
        code, label = (s.strip() for s in part.split(",", 1))
        if not CODE_RE.match(code):
            errors.append(f"line {line}: {name}: choice code {code!r} is not a valid code")
            continue
        if code in seen:
            errors.append(f"line {line}: {name}: choice code {code!r} appears twice")
            continue
        seen.add(code)
        zh, en = split_label(label)
        out.append({"code": code, "label_zh": zh, "label_en": en})
    if not out:
        errors.append(f"line {line}: {name}: a choice field needs at least one 'code, label'")
    return out


def _bound(value: str, data_type: str, line: int, name: str, errors: list[str]) -> str | None:
    value = value.strip()
    if not value:
        return None
    read = datatypes.DATA_TYPES[data_type].read_bound
    if read is None:
        errors.append(f"line {line}: {name}: a range applies only to numbers and dates")
        return None
    try:
        return read(value)
    except ValueError as exc:
        errors.append(f"line {line}: {name}: range bound {value!r} {exc}")
        return None


def parse_dictionary(text: str) -> Dictionary:
    """Parse the CSV text of a REDCap data dictionary. Raises :class:`DictionaryError`."""
    errors: list[str] = []
    warnings: list[str] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DictionaryError(["line 1: the file is empty"]) from None
    except csv.Error as exc:
        raise DictionaryError([f"line 1: not a CSV file: {exc}"]) from None
    keys = _header_keys(header)
    missing = [k for k in REQUIRED_COLUMNS if k not in keys]
    if missing:
        titles = {v: k for k, v in COLUMNS.items()}
        raise DictionaryError(["line 1: not a REDCap data dictionary: missing column(s) "
                               + ", ".join(repr(titles[m].title()) for m in missing)])

    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DictionaryError([f"line {start}: malformed CSV: {exc}"]) from None
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            errors.append(f"line {start}: {len(row)} columns, the header has {len(header)}")
            continue
        rows.append((start, {k: (row[i] if i < len(row) else "") for k, i in keys.items()}))
        if len(rows) > MAX_ROWS:
            raise DictionaryError([f"line {start}: more than {MAX_ROWS} fields"])
    if not rows:
        raise DictionaryError(["line 2: the dictionary has no fields"])

    first_line, first = rows[0]
    warnings.append(f"line {first_line}: {first['name'].strip()!r} is REDCap's record "
                    "identifier; the subject code takes its place, so it was not imported")
    rows = rows[1:]

    forms: dict[str, FormSpec] = {}
    names: dict[str, int] = {}
    pending_logic: list[tuple[ItemSpec, str, str]] = []  # item, kind, source
    for line, r in rows:
        name = r["name"].strip()
        ftype = r["type"].strip().lower()
        form_name = r["form"].strip()
        if not NAME_RE.match(name):
            errors.append(f"line {line}: variable name {name!r} must start with a lower-case "
                          "letter and hold only a-z, 0-9 and _ (at most 64)")
            continue
        if name in names:
            errors.append(f"line {line}: variable {name!r} is already defined on line "
                          f"{names[name]}")
            continue
        names[name] = line
        if not NAME_RE.match(form_name):
            errors.append(f"line {line}: {name}: form name {form_name!r} is not valid")
            continue
        if ftype not in FIELD_TYPES:
            errors.append(f"line {line}: {name}: unknown REDCap field type {ftype!r} "
                          f"(known: {', '.join(FIELD_TYPES)})")
            continue
        zh, en = split_label(r["label"])
        if not zh and ftype != "descriptive":
            errors.append(f"line {line}: {name}: the field label is empty")
            continue
        item = ItemSpec(name=name, field_type=ftype,
                        data_type=datatypes.BY_FIELD_TYPE[ftype], label_zh=zh,
                        label_en=en, line=line)
        note = r.get("note", "").strip()
        if note:
            item.help_zh, item.help_en = split_label(note)
        validation = r.get("validation", "").strip().lower()
        choices = r.get("choices", "").strip()
        if ftype == "text":
            if validation:
                if validation in VALIDATIONS:
                    item.data_type, item.text_format = VALIDATIONS[validation]
                else:
                    warnings.append(f"line {line}: {name}: validation {validation!r} is not "
                                    "known here; imported as plain text")
        elif ftype in ("dropdown", "radio", "checkbox"):
            item.multiple = ftype == "checkbox"
            item.choices = parse_choices(choices, line, errors, name)
        elif ftype in ("yesno", "truefalse"):
            item.choices = ([dict(c) for c in datatypes.YES_NO]
                            if ftype == "yesno" else
                            [{"code": "1", "label_zh": "正确", "label_en": "True"},
                             {"code": "0", "label_zh": "错误", "label_en": "False"}])
        elif ftype == "calc":
            if not choices:
                errors.append(f"line {line}: {name}: a calc field needs its calculation")
            else:
                pending_logic.append((item, "calc", choices))
        elif ftype == "slider":
            item.range_min, item.range_max = "0", "100"
            labels = [s.strip() for s in choices.split("|") if s.strip()]
            if labels:
                points = ("0", "50", "100") if len(labels) == 3 else ("0", "100")
                pairs = [split_label(lab) for lab in labels]  # each mark in both languages
                marks_zh = "，".join(f"{p} = {zh}" for p, (zh, _en) in zip(points, pairs,
                                                                          strict=False))
                marks_en = ", ".join(f"{p} = {en}" for p, (_zh, en) in zip(points, pairs,
                                                                          strict=False))
                item.help_en = ((item.help_en + "; ") if item.help_en else "") + marks_en
                item.help_zh = ((item.help_zh + "；") if item.help_zh else "") + marks_zh
        if (datatypes.DATA_TYPES[item.data_type].numeric and note
                and UNIT_RE.match(note) and ftype != "slider"):
            item.unit, item.help_zh, item.help_en = note, None, None
        if r.get("min", "").strip() or r.get("max", "").strip():
            if ftype in ("text", "slider"):
                item.range_min = _bound(r.get("min", ""), item.data_type, line, name,
                                        errors) or item.range_min
                item.range_max = _bound(r.get("max", ""), item.data_type, line, name,
                                        errors) or item.range_max
            else:
                errors.append(f"line {line}: {name}: a range applies only to text and "
                              "slider fields")
        item.required = r.get("required", "").strip().lower() in ("y", "yes", "1")
        matrix = r.get("matrix", "").strip()
        if matrix:
            if not NAME_RE.match(matrix):
                errors.append(f"line {line}: {name}: matrix group name {matrix!r} must hold only "
                              "a-z, 0-9 and _")
            elif ftype not in ("radio", "checkbox"):
                errors.append(f"line {line}: {name}: a matrix group holds radio or checkbox "
                              "fields")
            else:
                item.matrix_group = matrix
        if ftype in ("descriptive", "calc"):
            item.required = False
        propose_classification(item, r.get("identifier", "").strip().lower() in ("y", "yes"))
        branching = r.get("branching", "").strip()
        if branching:
            pending_logic.append((item, "show_if", branching))

        form = forms.get(form_name)
        if form is None:
            label = form_name.replace("_", " ").capitalize()
            form = forms[form_name] = FormSpec(name=form_name, label_zh=label, label_en=label)
        section = r.get("section", "").strip()
        if section or not form.groups:
            gzh, gen = split_label(section) if section else (form.label_zh, form.label_en)
            form.groups.append(GroupSpec(name=f"{form_name}_g{len(form.groups) + 1}",
                                         label_zh=gzh, label_en=gen))
        form.groups[-1].items.append(item)

    if errors:
        raise DictionaryError(errors)
    known = {i.name: i.multiple for f in forms.values() for i in f.items()}
    for item, kind, source in pending_logic:
        try:
            translated = ex.translate_redcap(source, known)
        except ExpressionError as exc:
            item.source_logic = source
            item.logic_problem = f"{'calculation' if kind == 'calc' else 'branching logic'}: {exc}"
            warnings.append(f"line {item.line}: {item.name}: {item.logic_problem} — kept as "
                            "written; fix it before publishing")
            continue
        setattr(item, kind, translated)
    return Dictionary(forms=list(forms.values()), warnings=warnings)


# ---- writing a data dictionary ----------------------------------------------------------------

# REDCap's data dictionary columns: (CSV header, metadata key of the API's ``content=metadata``).
DICTIONARY_COLUMNS = (
    ("Variable / Field Name", "field_name"), ("Form Name", "form_name"),
    ("Section Header", "section_header"), ("Field Type", "field_type"),
    ("Field Label", "field_label"),
    ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    ("Field Note", "field_note"),
    ("Text Validation Type OR Show Slider Number", "text_validation_type_or_show_slider_number"),
    ("Text Validation Min", "text_validation_min"), ("Text Validation Max", "text_validation_max"),
    ("Identifier?", "identifier"), ("Branching Logic (Show field only if...)", "branching_logic"),
    ("Required Field?", "required_field"), ("Custom Alignment", "custom_alignment"),
    ("Question Number (surveys only)", "question_number"),
    ("Matrix Group Name", "matrix_group_name"), ("Matrix Ranking?", "matrix_ranking"),
    ("Field Annotation", "field_annotation"),
)
RECORD_ID = "record_id"
_SLIDER_MARKS = re.compile(r"^0 = (.+?), (?:50 = (.+?), )?100 = (.+)$")  # as read above
# The REDCap text validation written for a data type and text format (the first one read as it).
_VALIDATION_OUT: dict[tuple[str, str | None], str] = {}
for _v, _key in VALIDATIONS.items():
    _VALIDATION_OUT.setdefault(_key, _v)


def join_label(zh: str | None, en: str | None) -> str:
    """The inverse of :func:`split_label`: ``"中文 / English"``, or one language when both
    are the same."""
    zh, en = (zh or "").strip(), (en or "").strip()
    if zh and en and zh != en:
        return f"{zh} / {en}"
    return zh or en


def _logic(text: str | None) -> str:
    return ex.to_redcap(ex.parse(text)) if text else ""


def dictionary_rows(forms: list[FormSpec]) -> list[dict[str, str]]:
    """The forms as REDCap data dictionary rows, keyed as REDCap's API metadata
    (:data:`DICTIONARY_COLUMNS`). The first row is REDCap's record identifier, which the
    subject code fills; reading the rows back (:func:`parse_dictionary`) gives the same forms.
    ``Identifier?`` is ``y`` for a confirmed direct identifier (a proposed one is proposed
    again on import). Form labels and other classifications have no REDCap column."""
    blank = {key: "" for _x, key in DICTIONARY_COLUMNS}
    rows: list[dict[str, str]] = []
    if forms:
        rows.append({**blank, "field_name": RECORD_ID, "form_name": forms[0].name,
                     "field_type": "text", "field_label": _("Subject code")})
    for form in forms:
        for n, group in enumerate(form.groups):
            first = True
            for item in group.items:
                row = dict(blank, field_name=item.name, form_name=form.name,
                           field_type=item.field_type,
                           field_label=join_label(item.label_zh, item.label_en))
                if first and (n > 0 or (group.label_zh, group.label_en)
                              != (form.label_zh, form.label_en)):
                    row["section_header"] = join_label(group.label_zh, group.label_en)
                first = False
                if item.field_type in ("dropdown", "radio", "checkbox"):
                    row["select_choices_or_calculations"] = " | ".join(
                        f"{c['code']}, {join_label(c.get('label_zh'), c.get('label_en'))}"
                        for c in item.choices)
                elif item.field_type == "calc":
                    row["select_choices_or_calculations"] = (
                        (item.source_logic or "") if item.logic_problem else _logic(item.calc))
                row["field_note"] = item.unit or join_label(item.help_zh, item.help_en)
                marks = _SLIDER_MARKS.match(item.help_en or "")
                if item.field_type == "slider" and marks and item.help_zh == item.help_en:
                    row["select_choices_or_calculations"] = " | ".join(
                        m for m in marks.groups() if m is not None)
                    row["field_note"] = ""
                if item.field_type == "text":
                    row["text_validation_type_or_show_slider_number"] = _VALIDATION_OUT.get(
                        (item.data_type, item.text_format), "")
                if item.field_type in ("text", "slider") and not (
                        item.field_type == "slider" and (item.range_min, item.range_max)
                        == ("0", "100")):
                    row["text_validation_min"] = item.range_min or ""
                    row["text_validation_max"] = item.range_max or ""
                row["identifier"] = ("y" if item.classification == "direct_identifier"
                                     and item.classification_confirmed else "")
                row["branching_logic"] = ((item.source_logic or "") if item.logic_problem
                                          and item.show_if is None and item.field_type != "calc"
                                          else _logic(item.show_if))
                row["required_field"] = "y" if item.required else ""
                row["matrix_group_name"] = item.matrix_group or ""
                rows.append(row)
    return rows


def dictionary_csv(forms: list[FormSpec]) -> str:
    """:func:`dictionary_rows` as a REDCap data dictionary CSV (UTF-8 text; the caller adds a
    byte-order mark for Excel)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([title for title, _x in DICTIONARY_COLUMNS])
    for row in dictionary_rows(forms):
        w.writerow([row[key] for _x, key in DICTIONARY_COLUMNS])
    return buf.getvalue()
