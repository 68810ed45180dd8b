"""Table 6 as the floor (deid.table6) and k over every released row with the subject as the
unit (deid.subjects), issue 14."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import polars as pl
import pycanon.anonymity as pa
import pytest

from deid import table6
from deid.subjects import TableRows, anonymize_subjects, label_at

ON = dt.date(2026, 12, 1)


def nests(fs: list, values: list[str]) -> bool:
    """Each label of a level maps to exactly one label of the next level up."""
    for lo in range(len(fs)):
        up: dict[str, set[str]] = {}
        for v in values:
            up.setdefault(label_at(fs, lo, v) or "", set()).add(label_at(fs, lo + 1, v) or "")
        if any(len(s) > 1 for s in up.values()):
            return False
    return True


@pytest.mark.parametrize("kind,values", [
    ("number", [str(x) for x in range(0, 200)]),            # 40–59 spans the old 20/50 bands
    ("number", [f"{x / 10:.1f}" for x in range(30, 150)]),  # a lab value, one decimal
    ("age", [str(x) for x in range(0, 110)]),
    ("birth_date", [f"{y}-06-15" for y in range(1915, 2020)]),
    ("date", [f"{y}-0{m}-1{m}" for y in range(2001, 2027) for m in range(1, 10)]),
    ("postcode", [f"{p:06d}" for p in range(100000, 101000, 7)]),
    ("coded", ["1", "2", "99"]),
])
def test_every_hierarchy_nests_and_encodes(kind: table6.Kind, values: list[str]) -> None:
    fs = table6.level_labels(kind, on=ON, values=values)
    assert nests(fs, values)
    h = table6.floor_hierarchy(kind, values, on=ON)
    floors = [table6.floor_value(kind, v, on=ON) or "" for v in values]
    h.encode(pl.Series("x", floors))  # raises HierarchyError if the levels do not nest


def test_table_6_floors_ages_birth_dates_dates_postcodes() -> None:
    assert [table6.floor_value("age", a, on=ON) for a in ("17", "38", "89", "90", "103")] == [
        "<25", "35-39", "85-89", ">89", ">89"]
    assert table6.floor_value("birth_date", "1950-03-15", on=ON) == "75-79"
    assert table6.floor_value("birth_date", "1930-12-02", on=ON) == ">89"
    assert table6.floor_value("date", "2025-07-04", on=ON) == "2025"
    assert table6.floor_value("datetime", "2025-07-04T10:11:12", on=ON) == "2025"
    assert table6.floor_value("postcode", "100080", on=ON) == "100***"
    with pytest.raises(ValueError, match="never released"):
        table6.floor_value("direct", "张三", on=ON)
    # above 89 no level is finer than >89
    fs = table6.level_labels("age", on=ON)
    assert {label_at(fs, lv, "96") for lv in range(len(fs) + 1)} == {">89", "*"}


def test_a_rare_follow_up_value_does_not_single_a_subject_out() -> None:
    """k on each subject's first value passes; the follow-up row of subject 0 is unique.
    With the whole record as the unit, every table and the subject join hold k."""
    random.seed(7)
    base = [(f"S{i:02d}", [str(40 + i % 2)]) for i in range(40)]
    visits = [(f"S{i:02d}", [f"{60 + (i % 2) * 10}.0"]) for i in range(40) for _ in range(2)]
    visits.append(("S00", ["180.5"]))  # a follow-up weight nobody else has
    tables = [TableRows("dm", ["age"], base), TableRows("vs", ["weight"], visits)]
    labels = {"age": table6.level_labels("age", on=ON),
              "weight": table6.level_labels("number", on=ON,
                                            values=[v[0] for _, v in visits])}
    res = anonymize_subjects(tables, labels, k=5, max_suppression=0.05)
    assert res.achieved_k >= 5
    for t in tables:
        rows = [(s, label_at(labels[t.quasi_identifiers[0]],
                             res.levels[t.quasi_identifiers[0]], v[0]))
                for s, v in t.rows if s not in res.suppressed]
        assert pa.k_anonymity(pd.DataFrame(rows, columns=["s", "q"]), ["q"]) >= 5
    joined = res.subject_table.to_dicts()
    assert pa.k_anonymity(pd.DataFrame(joined), ["age", "weight"]) >= 5
    assert "180.5" not in {r["weight"] for r in joined}
