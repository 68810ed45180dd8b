"""The benchmark's own scoring, independent of ``deid``: one metric applied to every tool.

Given the input records, the released table and the hierarchy tables, it finds the level each
quasi-identifier was released at, counts suppressed records (input rows missing from the
release) and computes

* ``lm`` - Iyengar's loss metric (ARX "Loss"): per released cell
  ``(raw values under the label - 1) / (distinct raw values - 1)``; 1 per cell of a suppressed
  record; averaged over all ``n x QIs`` cells. This is the primary figure;
* ``prec`` - Sweeney's generalisation precision loss: ``level / height`` per released cell, 1 per
  cell of a suppressed record;
* ``k`` - the smallest equivalence class in the release.
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


def score(
    original: pl.DataFrame, released: pl.DataFrame, tables: dict[str, list[list[str]]]
) -> dict[str, object]:
    n = original.height
    s = n - released.height
    qis = list(tables)
    lm_total = 0.0
    prec_total = 0.0
    levels = {}
    for q in qis:
        table = tables[q]
        height = len(table[0]) - 1
        raw = set(original.get_column(q).cast(pl.String).unique().to_list())
        out = released.get_column(q).cast(pl.String)
        vals = set(out.unique().to_list())
        lv = level_of(vals, table, raw)
        levels[q] = lv
        leaves: dict[str, int] = {}
        for r in table:
            if r[0] in raw:
                leaves[r[lv]] = leaves.get(r[lv], 0) + 1
        card0 = len(raw)
        vc = out.value_counts()
        labels = vc.get_column(q).to_list()
        counts = vc.get_column("count").to_numpy()
        cell = np.array(
            [(leaves[x] - 1) / (card0 - 1) if card0 > 1 else lv / height for x in labels]
        )
        lm_total += float((cell * counts).sum()) + s
        prec_total += (n - s) * lv / height + s
    k = int(released.group_by(qis).len()["len"].min()) if released.height else 0
    m = len(qis)
    return {
        "levels": levels,
        "suppressed": s,
        "lm": lm_total / (n * m),
        "prec": prec_total / (n * m),
        "k": k,
    }
