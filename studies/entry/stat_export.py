"""Exports statisticians open without conversion (§11.3.4.9 b): a form or the whole study as
CSV (UTF-8 with a byte-order mark; codes or labels), SPSS ``.sav``, Stata ``.dta`` and SAS
transport ``.xpt`` with variable labels (and value labels in ``.sav`` / ``.dta``), written with
``pyreadstat``, and an R script that reads the CSV with its labels and factors, as REDCap's.

The rows are REDCap's flat rows (:func:`studies.entry.redcap_api.flat_records`): one per
subject, event and repeat; subjects by their code only; items classified as direct
identifiers never written, quasi-identifiers only when the approval of the export grants
them raw. For internal roles only (``entry.export``, the sites where it is held) with an
approved export request (:mod:`studies.entry.export_approval`, §11.3.4.1 c); anyone outside
the study team gets data through a de-identified extract. Every export is
a ledger entry with its format, forms, rows and SHA-256.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyreadstat

from audit_trail.service import Change, Ledger
from studies.entry import export_approval, level5, redcap_api
from studies.entry.redcap_api import RECORD_ID, RecordQuery
from studies.forms import service as forms
from studies.forms.datatypes import DATA_TYPES
from studies.forms.models import Item
from studies.forms.redcap import join_label
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm
from studies.registry import service as registry

# format → (file suffix, media type)
FORMATS: dict[str, tuple[str, str]] = {
    "csv": (".csv", "text/csv; charset=utf-8"),
    "csv_labels": ("_labels.csv", "text/csv; charset=utf-8"),
    "sav": (".sav", "application/x-spss-sav"),
    "dta": (".dta", "application/x-stata-dta"),
    "xpt": (".xpt", "application/x-sas-xport"),
    "r": (".r", "text/plain; charset=utf-8"),
}
COMPLETE_LABELS = {0.0: "Incomplete", 2.0: "Complete"}
CHECKBOX_LABELS = {0.0: "Unchecked", 1.0: "Checked"}


@dataclass
class Column:
    name: str
    label: str
    label_en: str
    numeric: bool
    value_labels: dict[float, str] | None = None


def _numeric_codes(item: Item) -> dict[float, str] | None:
    choices = item.choices or list(DATA_TYPES[item.data_type].choices)
    try:
        return {float(c["code"]): join_label(c.get("label_zh"), c.get("label_en")) or c["code"]
                for c in choices}
    except ValueError:
        return None  # codes that are not numbers: written as text


def _columns(chosen: redcap_api.Chosen) -> list[Column]:
    cols = [Column(RECORD_ID, _("Subject code"), "Subject code", False),
            Column("redcap_event_name", _("Event"), "Event", False),
            Column("redcap_repeat_instance", _("Repeat instance"), "Repeat instance",
                   True)]
    for f, items, complete in chosen:
        for i in items:
            label = join_label(i.label_zh, i.label_en)
            t = DATA_TYPES[i.data_type]
            if i.multiple:
                for c in i.choices:
                    choice = join_label(c.get("label_zh"), c.get("label_en"))
                    cols.append(Column(f"{i.name}___{c['code']}", f"{label} ({choice})",
                                       f"{i.label_en} ({c.get('label_en') or c['code']})",
                                       True, dict(CHECKBOX_LABELS)))
            elif t.coded:
                codes = _numeric_codes(i)
                cols.append(Column(i.name, label, i.label_en, codes is not None, codes))
            else:
                cols.append(Column(i.name, label, i.label_en, t.numeric))
        if complete:
            cols.append(Column(f"{f.form.name}_complete", _("{label}: complete").format(
                                                              label=f.label),
                               f"{f.form.name} complete", True, dict(COMPLETE_LABELS)))
    return cols


def _frame(rows: list[dict[str, str]], cols: list[Column]) -> pl.DataFrame:
    data: dict[str, Any] = {}
    for c in cols:
        raw = [r.get(c.name, "") for r in rows]
        if c.numeric:
            data[c.name] = pl.Series(c.name, [float(v) if v not in ("", None) else None
                                              for v in raw], dtype=pl.Float64)
        else:
            data[c.name] = pl.Series(c.name, [v or None for v in raw], dtype=pl.Utf8)
    return pl.DataFrame(data)


def _written(write: Any, frame: pl.DataFrame, suffix: str, **kw: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{suffix}"
        write(frame, str(path), **kw)
        return path.read_bytes()


def _ascii(text: str, limit: int) -> str:
    return text.encode("ascii", "replace").decode()[:limit]


def _r_script(cols: list[Column], csv_name: str) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["# Reads " + csv_name + " (the raw CSV of the same export) with its labels.",
             "# Written by the EDC; like REDCap's R export.",
             f"data <- read.csv({q(csv_name)}, fileEncoding = \"UTF-8-BOM\", "
             "check.names = FALSE, stringsAsFactors = FALSE)", ""]
    for c in cols:
        lines.append(f"attr(data[[{q(c.name)}]], \"label\") <- {q(c.label)}")
    lines.append("")
    for c in cols:
        if c.value_labels:
            levels = ", ".join(format(k, "g") for k in c.value_labels)
            labels = ", ".join(q(v) for v in c.value_labels.values())
            lines.append(f"data[[{q(c.name + '.factor')}]] <- factor(data[[{q(c.name)}]], "
                         f"levels = c({levels}), labels = c({labels}))")
    return "\n".join(lines) + "\n"


def export_for_statistics(session: Any, ledger: Ledger, *, actor: Actor, study_code: str,
                          fmt: str, form_name: str | None = None) -> tuple[bytes, str]:
    """One form (or, without ``form_name``, the whole study) in ``fmt`` (:data:`FORMATS`);
    returns the bytes and the file name."""
    require(actor, Perm.ENTRY_EXPORT, study=study_code)
    if fmt not in FORMATS:
        raise InvalidInput(_("format: one of {FORMATS}").format(FORMATS=', '.join(FORMATS)),
                           field="format")
    study = registry.get_study(session, study_code)
    if form_name is not None:
        forms.get_form(session, study, form_name)  # 404 naming the form
    approval = export_approval.covering(session, actor=actor, study=study,
                                        form_names=[form_name] if form_name else None)
    labels = fmt == "csv_labels"
    q = RecordQuery(forms=[form_name] if form_name else None, labels=labels)
    note = ReadNote()
    # a masked level-5 value is missing in a statistics file (its column keeps its type)
    rows, chosen = redcap_api.flat_records(
        session, actor=actor, study=study, q=q, perm=Perm.ENTRY_EXPORT, note=note, masked=None,
        quasi_identifiers=export_approval.with_quasi_identifiers(approval))
    cols = _columns(chosen)
    base = f"{study.code}-{form_name or 'all'}"
    suffix = FORMATS[fmt][0]
    if fmt in ("csv", "csv_labels"):
        data = ("\ufeff" + redcap_api.to_csv(rows, [c.name for c in cols])).encode("utf-8")
    elif fmt == "r":
        data = _r_script(cols, base + ".csv").encode("utf-8")
    else:
        frame = _frame(rows, cols)
        value_labels = {c.name: c.value_labels for c in cols if c.value_labels}
        if fmt == "sav":
            data = _written(pyreadstat.write_sav, frame, suffix,
                            column_labels={c.name: c.label for c in cols},
                            variable_value_labels=value_labels)
        elif fmt == "dta":
            data = _written(pyreadstat.write_dta, frame, suffix,
                            column_labels={c.name: c.label for c in cols},
                            variable_value_labels=value_labels, version=15)
        else:  # SAS transport (version 8): variable labels, in ASCII (the format's limit)
            data = _written(pyreadstat.write_xport, frame, suffix,
                            column_labels={c.name: _ascii(c.label_en, 40) for c in cols},
                            table_name=_ascii((form_name or "ALL").upper(), 32),
                            file_format_version=8)
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.ENTRY_EXPORT,
                  entity_type="study", entity_id=study.id, study=study.code,
                  changes=[Change("format", None, f"statistics ({fmt})"),
                           Change("forms", None, [f.form.name for f, _x1, _x2 in chosen]),
                           Change("rows", None, len(rows)),
                           Change("sha256", None, hashlib.sha256(data).hexdigest()),
                           *level5.unmasked_change(note),
                           *export_approval.audit_changes(approval)])
    return data, base + suffix
