"""De-identification of an extract's tables (§10.2, Table 6, §10.2 e, §11.4.2.4): the
generalisation hierarchy of each quasi-identifier, the LDS treatment (k-anonymity with
l-diversity and bounded suppression, date shifts, free-text scrubbing) and the PUF aggregates,
then the pre-transfer checks. Pure on Polars frames and the items' metadata; the engine is
``deid``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

import deid
from studies.extracts.errors import BuildError
from studies.forms.datatypes import DATA_TYPES
from studies.forms.models import Item

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


def _band(width: int) -> Callable[[str], str]:
    def f(v: str) -> str:
        if v == NA:
            return NA
        try:
            x = float(v)
        except ValueError:
            return "*"
        lo = int(x // width) * width
        return f"{lo}-{lo + width - 1}" if width > 1 else str(lo)
    return f


def hierarchy_for(item: Item, values: list[str]) -> deid.Hierarchy:
    """A generalisation hierarchy for a quasi-identifier, by data type (Table 6)."""
    def na(f: Callable[[str], str]) -> Callable[[str], str]:
        return lambda v: NA if v == NA else f(v)

    generalise = DATA_TYPES[item.data_type].generalise
    if generalise == "date":
        return deid.Hierarchy.from_functions(
            [na(lambda v: v[:7]), na(lambda v: v[:4]), lambda v: "*"])
    if generalise == "bands":
        return deid.Hierarchy.from_functions(
            [_band(5), _band(10), _band(20), _band(50), lambda v: "*"])
    if item.text_format == "postcode":
        def pc(i: int) -> Callable[[str], str]:
            return na(lambda v: v[:6 - i] + "*" * i if len(v) == 6 and v.isdigit() else "*")
        return deid.Hierarchy.from_functions([pc(3), pc(6), lambda v: "*"])
    return deid.Hierarchy.from_table([[v, "*"] for v in sorted(set(values))])


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


def deidentify_lds(frames: dict[str, pl.DataFrame], items: dict[str, Item], *,
                   k: int, l_diversity: int, max_suppression: float, study_code: str,
                   token_project: str, secret: bytes) -> Built:
    """LDS: tokens, k-anonymity + l-diversity on the subject level, date shift, scrubbing."""
    qis = [f for f, i in items.items() if i.classification == "quasi_identifier"]
    sens = [f for f, i in items.items() if i.classification == "sensitive"]
    subjects = sorted({s for df in frames.values() for s in df["subject"].to_list()})
    first: dict[str, dict[str, str]] = {s: {} for s in subjects}
    for form, df in frames.items():
        for f in qis + sens:
            form_of, it = f.split(".", 1)
            if form_of != form:
                continue
            for s, v in zip(df["subject"].to_list(), df[it].to_list(), strict=True):
                if v is not None and f not in first[s]:
                    first[s][f] = v
    treatments: dict[str, str] = {}
    result_info: dict[str, Any] = {"k": k, "quasi_identifiers": qis, "sensitive": sens}
    suppressed: set[str] = set()
    levels: dict[str, int] = {}
    hier: dict[str, deid.Hierarchy] = {}
    if qis and subjects:
        subj = pl.DataFrame({"subject": subjects, **{
            f: [first[s].get(f, NA) for s in subjects] for f in qis + sens}})
        hier = {f: hierarchy_for(items[f], subj[f].to_list()) for f in qis}
        try:
            res = deid.anonymize(subj, hier, k=k, max_suppression=max_suppression,
                                 sensitive=sens, l=l_diversity if sens else None)
        except deid.DeidError as e:
            raise BuildError(f"k-anonymity (k={k}) cannot be reached: {e} / "
                             "无法达到k匿名要求") from None
        suppressed = {subjects[i] for i in res.suppressed_rows.tolist()}
        levels = dict(res.levels)
        report = deid.risk_report(res.table, qis)
        result_info.update(levels=levels, achieved_k=res.achieved_k, l=res.l,
                           suppressed_subjects=len(suppressed),
                           information_loss=round(res.information_loss, 4),
                           risk=report.as_dict())
        for f in qis:
            treatments[f] = f"generalised to level {levels[f]} of {res.heights[f]} (k={k})"
    elif sens:
        result_info["note"] = "no quasi-identifiers requested; no equivalence classes"
    offset_days = deid.project_date_offset(study_code, secret)
    out: list[Table] = []
    token_cache: dict[str, str] = {}

    def token(code: str) -> str:
        t = token_cache.get(code)
        if t is None:
            t = token_cache[code] = deid.keyed_token(code, project_id=token_project,
                                                     secret=secret, length=24)
        return t

    for form, df in frames.items():
        df = df.filter(~pl.col("subject").is_in(list(suppressed)))
        for col in df.columns[4:]:
            f = f"{form}.{col}"
            it = items[f]
            if f in levels:
                h, lv = hier[f], levels[f]
                cache: dict[str, str] = {}

                def gen(v: str | None, h: deid.Hierarchy = h, lv: int = lv,
                        cache: dict[str, str] = cache) -> str | None:
                    key = NA if v is None else v
                    if key not in cache:
                        try:
                            cache[key] = h.labels_of(key)[lv]
                        except Exception:
                            cache[key] = "*"
                    return None if cache[key] == NA else cache[key]
                df = df.with_columns(pl.Series(col, [gen(v) for v in df[col].to_list()],
                                               dtype=pl.String))
            elif (lds := DATA_TYPES[it.data_type].lds) in ("shift_date", "shift_datetime"):
                df = df.with_columns(
                    (pl.col(col).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
                     + pl.duration(days=offset_days)).dt.strftime("%Y-%m-%d")
                    .alias(col) if lds == "shift_date" else
                    (pl.col(col).str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S",
                                                                 strict=False)
                     + pl.duration(days=offset_days)).dt.strftime("%Y-%m-%dT%H:%M:%S")
                    .alias(col))
                treatments[f] = "shifted by the study's secret offset (intervals exact)"
            elif lds == "scrub" and f not in sens:
                df, _ = deid.scrub_column(df, col)
                treatments[f] = "free text scrubbed (ID numbers, phones, e-mails masked)"
            else:
                treatments.setdefault(f, "as recorded")
        df = df.with_columns(pl.Series("subject", [token(s) for s in df["subject"].to_list()],
                                       dtype=pl.String)).rename({"subject": "subject_token"})
        out.append(Table(form, df, ["subject_token", "event", "repeat"]))
    result_info["tokens"] = "keyed HMAC-SHA256 tokens, one set per extract"
    result_info["date_shift"] = "one secret offset per study; intervals preserved"
    return Built(out, result_info, treatments)


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
