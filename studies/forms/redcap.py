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
                marks = ", ".join(f"{p} = {lab}" for p, lab in zip(
                    ("0", "50", "100") if len(labels) == 3 else ("0", "100"), labels,
                    strict=False))
                item.help_en = ((item.help_en + "; ") if item.help_en else "") + marks
                item.help_zh = ((item.help_zh + "；") if item.help_zh else "") + marks
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
