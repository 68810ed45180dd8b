"""The benchmark's own scoring, independent of ``deid``: one metric applied to every tool.

Given the input records, the released table and the hierarchy tables, it finds the level each
quasi-identifier was released at, counts suppressed records (input rows missing from the
release) and computes

* ``lm`` - Iyengar's loss metric over the hierarchy's domain (ARX "Loss", the peers' scorer):
  a released value generalised to a label covering ``m`` of the ``M`` leaves of the hierarchy
  (all its rows, present in the data or not) costs ``(m - 1) / (M - 1)``; a suppressed record
  costs 1 on every quasi-identifier; averaged over all ``n x QIs`` cells. The primary figure;
* ``lm_present`` - the same with ``m`` and ``M`` counted over the raw values present in the
  input only (deid's earlier measure, ``metric="loss"``), for comparison with older runs;
* ``prec`` - Sweeney's generalisation precision loss: ``level / height`` per released cell, 1 per
  cell of a suppressed record;
* ``k`` - the smallest equivalence class in the release; ``k_pycanon`` - the same by pycanon.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl


def read_hierarchy(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return [r for r in csv.reader(fh, delimiter=";") if r]


def level_of(values: set[str], table: list[list[str]], raw_present: set[str]) -> int:
    height = len(table[0]) - 1
    for lv in range(height + 1):
        labels = {r[lv] for r in table if r[0] in raw_present}
        if values <= labels:
            return lv
    raise ValueError(f"released values {sorted(values)[:5]} match no single hierarchy level")


def _lm_part(
    table: list[list[str]], lv: int, raw: set[str], labels: list[str], counts: np.ndarray
) -> tuple[float, float]:
    """Summed cell cost of the released cells (labels with counts): domain and present rule."""
    height = len(table[0]) - 1
    totals = []
    for rows in (table, [r for r in table if r[0] in raw]):
        under: dict[str, int] = {}
        for r in rows:
            under[r[lv]] = under.get(r[lv], 0) + 1
        size = len(rows)
        cell = np.array([(under[x] - 1) / (size - 1) if size > 1 else lv / height for x in labels])
        totals.append(float((cell * counts).sum()))
    return totals[0], totals[1]


def score(
    original: pl.DataFrame, released: pl.DataFrame, tables: dict[str, list[list[str]]]
) -> dict[str, object]:
    n = original.height
    s = n - released.height
    qis = list(tables)
    lm_total = lm_present_total = prec_total = 0.0
    levels = {}
    for q in qis:
        table = tables[q]
        height = len(table[0]) - 1
        raw = set(original.get_column(q).cast(pl.String).unique().to_list())
        out = released.get_column(q).cast(pl.String)
        lv = level_of(set(out.unique().to_list()), table, raw)
        levels[q] = lv
        vc = out.value_counts()
        dom, pres = _lm_part(
            table, lv, raw, vc.get_column(q).to_list(), vc.get_column("count").to_numpy()
        )
        lm_total += dom + s
        lm_present_total += pres + s
        prec_total += (n - s) * lv / height + s
    k = int(released.group_by(qis).len()["len"].min()) if released.height else 0
    m = len(qis)
    return {
        "levels": levels,
        "suppressed": s,
        "lm": lm_total / (n * m),
        "lm_present": lm_present_total / (n * m),
        "prec": prec_total / (n * m),
        "k": k,
        "k_pycanon": _pycanon_k(released, qis),
    }


def _pycanon_k(released: pl.DataFrame, qis: list[str]) -> int | None:
    try:
        import pandas as pd
        import pycanon.anonymity as pa
    except ImportError:
        return None
    if not released.height:
        return 0
    frame = pd.DataFrame({q: released.get_column(q).cast(pl.String).to_list() for q in qis})
    return int(pa.k_anonymity(frame, qis))
