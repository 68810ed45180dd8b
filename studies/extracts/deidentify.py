"""De-identification of an extract's tables (§10.2, Table 6, §10.2 e, §11.4.2.4): the kind
of each released field (:func:`kind_of`), the LDS treatment (Table 6 floors, k-anonymity with
l-diversity over every released row, date shifts, free-text scrubbing, keyed tokens) and the
PUF aggregates, then the pre-transfer checks. Pure on Polars frames and the items' metadata;
every transform is :mod:`deid`'s (:mod:`deid.table6`, :mod:`deid.subjects`,
:mod:`deid.freetext`, :func:`deid.aggregate`)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

import deid
from deid import table6
from deid.subjects import TableRows, anonymize_subjects, label_at
from studies.extracts.errors import BuildError
from studies.forms.datatypes import DATA_TYPES
from studies.forms.models import Item
from studies.kernel.i18n import _

NA = "NA"




@dataclass
class Snapshot:
    as_of: dt.datetime
    # form name -> rows (subject_id, subject code, event, repeat, status, {item: value})
    rows: dict[str, list[tuple[str, str, str, int, str, dict[str, Any]]]] = field(
        default_factory=dict)


def cell_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


_AGE = re.compile(r"(^|_)age($|_)|年龄", re.I)
_BIRTH = re.compile(r"(^|_)(dob|birth|birth_?date|date_?of_?birth|birthday)($|_)|出生", re.I)


def kind_of(item: Item) -> table6.Kind:
    """The kind of value an item holds for de-identification (:mod:`deid.table6`): its data
    type's ``deid_kind`` (:data:`studies.forms.datatypes.DATA_TYPES`), refined by the item —
    a direct identifier by classification or text format; a postcode by text format; a birth
    date or an age by name or label."""
    kind = DATA_TYPES[item.data_type].deid_kind
    text = f"{item.name} {item.label_zh} {item.label_en}"
    if item.classification == "direct_identifier" or item.text_format in DIRECT_FORMATS:
        return "direct"
    if item.text_format == "postcode":
        return "postcode"
    if kind in ("date", "datetime") and _BIRTH.search(text):
        return "birth_date"
    if kind == "number" and _AGE.search(text):
        return "age"
    return kind


DIRECT_FORMATS = ("email", "phone", "id_number")


@dataclass
class Table:
    form: str
    df: pl.DataFrame
    key: list[str]


@dataclass
class Built:
    tables: list[Table]
    deid: dict[str, Any]
    treatments: dict[str, str]
    identity: pl.DataFrame | None = None
    clauses: dict[str, str] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)  # codes of the subjects released


def form_frames(snap: Snapshot, wanted: dict[str, list[str]],
                 keep: set[str]) -> dict[str, pl.DataFrame]:
    out: dict[str, pl.DataFrame] = {}
    for form, items in wanted.items():
        rows = [r for r in snap.rows.get(form, []) if r[0] in keep]
        data: dict[str, list[Any]] = {"subject": [r[1] for r in rows],
                                      "event": [r[2] for r in rows],
                                      "repeat": [r[3] for r in rows],
                                      "status": [r[4] for r in rows]}
        for it in items:
            data[it] = [cell_text(r[5].get(it)) for r in rows]
        out[form] = pl.DataFrame(data, schema={
            "subject": pl.String, "event": pl.String, "repeat": pl.Int64, "status": pl.String,
            **{it: pl.String for it in items}})
    return out


@dataclass(frozen=True)
class Names:
    """Names to take out of free text (§10.2 d): each subject's own, drawn from the code index
    by the system (subject code -> names; never shown to a person), and the staff's and study
    team's, from the accounts."""

    subjects: dict[str, list[str]] = field(default_factory=dict)
    staff: list[str] = field(default_factory=list)


def _scrub(df: pl.DataFrame, col: str, names: Names, masks: Counter[str]) -> pl.DataFrame:
    """Scrub one free-text column: each row of the staff's names and of its subject's own,
    and of person names in general (:func:`deid.scrub_column`)."""
    own = [names.subjects.get(s, []) for s in df["subject"].to_list()]
    df, counts = deid.scrub_column(df, col, names.staff, row_names=own)
    masks.update(counts)
    return df


def deidentify_lds(frames: dict[str, pl.DataFrame], items: dict[str, Item], *,
                   k: int, l_diversity: int, max_suppression: float, study_code: str,
                   token_project: str, secret: bytes, on: dt.date,
                   names: Names | None = None) -> Built:
    """LDS (§10.2, Table 6, §11.4.2.4): every released value at or above its Table 6 floor
    (:mod:`deid.table6`); k-anonymity and l-diversity over every released row, the subject's
    whole quasi-identifier record the unit (:mod:`deid.subjects`); dates that are not
    quasi-identifiers shifted by the study's secret offset; free text scrubbed of names, ID
    numbers, phones and e-mails; subject codes replaced by keyed tokens."""
    names = names or Names()
    frames = dict(frames)
    kinds = {f: kind_of(i) for f, i in items.items()}
    direct = [f for f, kd in kinds.items() if kd == "direct"]
    if direct:
        raise BuildError(_("{value} is a direct identifier and is never released in a limited "
                           "data set (Table 6)").format(value=direct[0]))
    qis = [f for f, i in items.items() if i.classification == "quasi_identifier"]
    sens = [f for f, i in items.items() if i.classification == "sensitive"]
    masks: Counter[str] = Counter()
    for form, df in list(frames.items()):
        for col in df.columns[4:]:
            if kinds[f"{form}.{col}"] == "text":
                df = _scrub(df, col, names, masks)
        frames[form] = df
    info: dict[str, Any] = {"k": k, "quasi_identifiers": qis, "sensitive": sens,
                            "unit": "the subject's whole released quasi-identifier record, "
                                    "across forms and visits (deid.subjects)"}
    treatments: dict[str, str] = {}
    clauses: dict[str, str] = {}
    labels = {f: table6.level_labels(kinds[f], on=on, values=[
        v for v in frames[f.split(".", 1)[0]][f.split(".", 1)[1]].to_list() if v is not None])
        for f in qis}
    levels: dict[str, int] = {}
    suppressed: set[str] = set()
    subjects = {s for df in frames.values() for s in df["subject"].to_list()}
    if qis and len(subjects) < k:
        raise BuildError(
            _("k-anonymity (k={k}) cannot be reached: only {n_subjects} subjects can be released, "
              "and every description must be shared by at least {k}. The approver can wait for "
              "more subjects, ask for a smaller k (at least 5), or leave out the "
              "quasi-identifiers ({qis})")
            .format(k=k, n_subjects=len(subjects), qis=', '.join(qis)))
    if qis:
        tables = []
        for form, df in frames.items():
            cols = [c for c in df.columns[4:] if f"{form}.{c}" in labels]
            if cols:
                tables.append(TableRows(form, [f"{form}.{c}" for c in cols], list(zip(
                    df["subject"].to_list(), df.select(cols).rows(), strict=True))))
        sensitive = {}
        for f in sens:
            form, col = f.split(".", 1)
            sets: dict[str, set[str]] = {}
            for s, v in zip(frames[form]["subject"].to_list(), frames[form][col].to_list(),
                            strict=True):
                sets.setdefault(s, set()).update([] if v is None else [v])
            sensitive[f] = sets
        try:
            res = anonymize_subjects(tables, labels, k=k, max_suppression=max_suppression,
                                     sensitive=sensitive or None,
                                     l=l_diversity if sensitive else None)
        except deid.DeidError as e:
            stop = e.column or "?"
            raise BuildError(
                _("k-anonymity (k={k}) cannot be reached: {stop} splits the subjects into groups "
                  "under {k} even at its coarsest level within {max_suppression:.0%} suppression. "
                  "The approver can ask for fewer quasi-identifiers (leave out {stop}), a smaller "
                  "k (at least 5), or wait for more subjects")
                .format(k=k, stop=stop, max_suppression=max_suppression)) from None
        levels, suppressed = res.levels, res.suppressed
        info.update(levels=levels, heights=res.heights, achieved_k=res.achieved_k, l=res.l,
                    suppressed_subjects=len(suppressed), rounds=res.rounds,
                    information_loss=round(res.information_loss, 4),
                    risk=deid.risk_report(res.subject_table, qis).as_dict())
    elif sens:
        info["note"] = "no quasi-identifiers requested; no equivalence classes"
    offset_days = deid.project_date_offset(study_code, secret)
    token_cache: dict[str, str] = {}

    def token(code: str) -> str:
        t = token_cache.get(code)
        if t is None:
            t = token_cache[code] = deid.keyed_token(code, project_id=token_project,
                                                     secret=secret, length=24)
        return t

    out: list[Table] = []
    released: set[str] = set()
    for form, df in frames.items():
        df = df.filter(~pl.col("subject").is_in(sorted(suppressed)))
        released |= set(df["subject"].to_list())
        for col in df.columns[4:]:
            f = f"{form}.{col}"
            kd = kinds[f]
            if f in levels:
                lv, fs = levels[f], labels[f]
                cache: dict[str, str | None] = {}

                def gen(v: str | None, fs: Any = fs, lv: int = lv,
                        cache: dict[str, str | None] = cache) -> str | None:
                    if v is None:
                        return None
                    if v not in cache:
                        cache[v] = label_at(fs, lv, v)
                    return cache[v]
                df = df.with_columns(pl.Series(col, [gen(v) for v in df[col].to_list()],
                                               dtype=pl.String))
                rule = table6.RULES[kd]
                treatments[f] = (f"{rule.treatment}; generalised to level {lv} of "
                                 f"{len(fs)} above the floor (k={k})")
                clauses[f] = f"{rule.clause}; §10.2 e"
            elif kd in ("date", "datetime"):
                df = df.with_columns(_shift(col, kd, offset_days))
                treatments[f], clauses[f] = table6.SHIFT_RULE.treatment, table6.SHIFT_RULE.clause
            else:
                if kd in ("age", "birth_date", "postcode"):
                    df = df.with_columns(pl.Series(col, [
                        table6.floor_value(kd, v, on=on) for v in df[col].to_list()],
                        dtype=pl.String))
                rule = table6.RULES[kd]
                treatments[f], clauses[f] = rule.treatment, rule.clause
        df = df.with_columns(pl.Series("subject", [token(s) for s in df["subject"].to_list()],
                                       dtype=pl.String)).rename({"subject": "subject_token"})
        out.append(Table(form, df, ["subject_token", "event", "repeat"]))
    info["free_text_masks"] = {kind: masks.get(kind, 0) for kind in deid.freetext.KINDS}
    info["tokens"] = "keyed HMAC-SHA256 tokens, one set per extract"
    info["date_shift"] = "one secret offset per study; intervals preserved"
    return Built(out, info, treatments, clauses=clauses, released=released)


def _shift(col: str, kind: str, days: int) -> pl.Expr:
    if kind == "date":
        return (pl.col(col).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
                + pl.duration(days=days)).dt.strftime("%Y-%m-%d").alias(col)
    return (pl.col(col).str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
            + pl.duration(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%S").alias(col)


def aggregate_puf(frames: dict[str, pl.DataFrame], items: dict[str, Item], *,
                  min_count: int, token_project: str, secret: bytes) -> Built:
    """PUF: counts of subjects (and numeric statistics) by the coded fields, cells under
    ``min_count`` suppressed with complementary suppression (:func:`deid.aggregate`)."""
    out: list[Table] = []
    treatments: dict[str, str] = {}
    withheld = 0
    for form, df in frames.items():
        cols = df.columns[4:]
        cats = [c for c in cols if DATA_TYPES[items[f"{form}.{c}"].data_type].coded][:2]
        nums = [c for c in cols if DATA_TYPES[items[f"{form}.{c}"].data_type].numeric]
        by = cats or ["event"]
        frame = df.with_columns([pl.col(c).fill_null(NA) for c in by] +
                                [pl.col(c).cast(pl.Float64, strict=False) for c in nums])
        try:
            t = deid.aggregate(frame, by, subject="subject", values=nums,
                               stats=("mean", "sd", "median"), min_count=min_count)
        except deid.DeidError as e:
            raise BuildError(f"PUF aggregate of {form}: {e}") from None
        withheld += t.n_primary + t.n_complementary
        for c in cols:
            treatments[f"{form}.{c}"] = ("dimension of the aggregate" if c in by else
                                         "summarised (mean, sd, median)" if c in nums else
                                         "not released (not aggregable)")
        out.append(Table(form, t.cells, []))
    return Built(out, {"min_count": min_count, "withheld_cells": withheld,
                       "method": "primary and complementary cell suppression"}, treatments)


def pre_transfer_checks(tables: list[Table], frames: dict[str, pl.DataFrame],
                        tier: str) -> dict[str, Any]:
    """§11.3.4.5 c: completeness, missing values per field, duplicate rows, unique keys."""
    out: dict[str, Any] = {"forms": {}}
    ok = True
    for t in tables:
        src = frames[t.form]
        incomplete = int((src["status"] != "complete").sum()) if src.height else 0
        missing = {c: int(t.df[c].null_count()) for c in t.df.columns
                   if c not in ("subject_token", "subject", "event", "repeat", "status")}
        dup = int(t.df.height - t.df.unique().height)
        unique_keys = (not t.key) or t.df.select(t.key).unique().height == t.df.height
        form_ok = incomplete == 0 and dup == 0 and unique_keys
        ok = ok and form_ok
        out["forms"][t.form] = {"rows": t.df.height, "incomplete_records": incomplete,
                                "missing_values": missing, "duplicate_rows": dup,
                                "unique_keys": unique_keys, "passed": form_ok}
    out["passed"] = ok
    return out
