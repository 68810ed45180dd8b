"""Public-use-file aggregates with small-cell and complementary suppression (SPEC §7, PUF).

:func:`aggregate` builds a one- or two-way table of subject counts (plus summary statistics of
numeric columns) with row totals, column totals and the grand total, then

1. **primary suppression** - every cell or total counting 1 to ``min_count - 1`` subjects is
   withheld (zeros are shown: they identify nobody);
2. **complementary suppression** - more cells are withheld until *no* withheld figure can be
   worked out from the published ones. Published cells and totals are linked by linear
   equations (a row's cells sum to the row total, and so on); a withheld figure is recoverable
   exactly when it is fixed by those equations, i.e. when the unit vector of that figure lies in
   the row space of the equations restricted to the withheld figures (equivalently: every
   null-space vector has a zero there). The algorithm checks this with an SVD after each step
   and greedily adds the published non-zero figure that leaves the fewest recoverable ones,
   preferring small counts and cells over totals, until none is recoverable. Because every
   withheld figure is then on a cycle of non-zero withheld figures, integer non-negativity does
   not pin it either.

With more than two ``by`` columns, all but the last form the row dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from deid._util import as_list, require_columns
from deid.errors import ColumnTypeError, ParameterError

__all__ = ["PufTable", "aggregate", "recoverable"]

_STATS = ("mean", "sd", "median", "min", "max")


@dataclass(frozen=True)
class PufTable:
    """A suppressed aggregate table.

    * ``cells`` - one row per (row category, column category) with ``n`` (null when withheld),
      requested statistics (null when withheld) and ``suppression``: null, ``"primary"`` or
      ``"complementary"``;
    * ``row_totals`` / ``column_totals`` - the margins, same ``n`` and ``suppression`` columns;
    * ``grand_total`` - total subjects, or ``None`` when withheld;
    * ``n_primary`` / ``n_complementary`` - how many figures were withheld for each reason.
    """

    cells: pl.DataFrame
    row_totals: pl.DataFrame
    column_totals: pl.DataFrame
    grand_total: int | None
    n_primary: int
    n_complementary: int


def _equations(r: int, c: int, two_way: bool) -> np.ndarray:
    """Constraint matrix over the vector [cells (r*c, row-major), row totals, col totals, grand]."""
    if not two_way:
        a = np.zeros((1, r + 1))
        a[0, :r] = 1
        a[0, r] = -1
        return a
    nv = r * c + r + c + 1
    rows = []
    for i in range(r):
        e = np.zeros(nv)
        e[i * c : (i + 1) * c] = 1
        e[r * c + i] = -1
        rows.append(e)
    for j in range(c):
        e = np.zeros(nv)
        e[j : r * c : c] = 1
        e[r * c + r + j] = -1
        rows.append(e)
    e = np.zeros(nv)
    e[r * c : r * c + r] = 1
    e[-1] = -1
    rows.append(e)
    return np.array(rows)


def recoverable(equations: np.ndarray, withheld: Sequence[int], tol: float = 1e-9) -> list[int]:
    """Which withheld positions are fixed by ``equations @ x == 0`` given all other values.

    Exposed so a release can be re-checked (the tests use it as an attacker would).
    """
    w = list(withheld)
    if not w:
        return []
    sub = equations[:, w]
    _, s, vt = np.linalg.svd(sub, full_matrices=True)
    rank = int((s > tol * max(1.0, s.max() if s.size else 1.0)).sum())
    null = vt[rank:].T  # columns span the null space
    if null.size == 0:
        return w
    norms = np.linalg.norm(null, axis=1)
    return [w[i] for i in range(len(w)) if norms[i] < 1e-7]


def _complementary(values: np.ndarray, eq: np.ndarray, primary: set[int], n_cells: int) -> set[int]:
    withheld = set(primary)
    while True:
        rec = recoverable(eq, sorted(withheld))
        if not rec:
            return withheld - primary
        candidates = [i for i in range(values.size) if i not in withheld and values[i] > 0] or [
            i for i in range(values.size) if i not in withheld
        ]
        # only figures sharing an equation with a recoverable one can help it
        touching = np.flatnonzero(np.abs(eq[:, rec]).sum(axis=1) > 0)
        near = [i for i in candidates if np.abs(eq[touching, i]).sum() > 0] or candidates
        best: tuple[int, int, int, float] | None = None
        best_i = near[0]
        for i in near:
            left = len(recoverable(eq, sorted(withheld | {i})))
            score = (left, int(i >= n_cells), 0, float(values[i]))
            if best is None or score < best:
                best, best_i = score, i
        withheld.add(best_i)


def aggregate(
    df: pl.DataFrame,
    by: str | Sequence[str],
    *,
    subject: str | None = None,
    values: Sequence[str] = (),
    stats: Sequence[str] = ("mean", "sd", "median"),
    min_count: int = 5,
) -> PufTable:
    """Counts (and statistics of ``values``) by ``by`` with primary + complementary suppression.

    :param by: one column (one-way table) or several (last = columns, the rest = rows).
    :param subject: count distinct subjects in this column (default: count records).
    :param values: numeric columns summarised per cell with ``stats``
        (any of ``mean, sd, median, min, max``).
    :param min_count: smallest publishable count (default 5, SPEC §7 PUF).
    """
    rule = "puf"
    dims = as_list(by)
    if not dims:
        raise ParameterError("at least one dimension is needed", rule=rule)
    if min_count < 1:
        raise ParameterError(f"min_count must be >= 1, got {min_count}", rule=rule)
    bad_stats = [s for s in stats if s not in _STATS]
    if bad_stats:
        raise ParameterError(f"unknown statistics {bad_stats}; use {_STATS}", rule=rule)
    require_columns(df, [*dims, *values, *([subject] if subject else [])], rule)
    for v in values:
        if not df.schema[v].is_numeric():
            raise ColumnTypeError(
                f"expected a numeric column, got {df.schema[v]}", column=v, rule=rule
            )
    two_way = len(dims) >= 2
    row_dims = dims[:-1] if two_way else dims
    col_dim = dims[-1] if two_way else None

    count = pl.col(subject).n_unique() if subject else pl.len()
    aggs = [count.cast(pl.Int64).alias("n")]
    for v in values:
        for s in stats:
            e = {
                "mean": pl.col(v).mean(),
                "sd": pl.col(v).std(),
                "median": pl.col(v).median(),
                "min": pl.col(v).min(),
                "max": pl.col(v).max(),
            }[s]
            aggs.append(e.cast(pl.Float64).alias(f"{v}_{s}"))
    grouped = df.group_by(dims).agg(aggs)
    row_keys = df.select(row_dims).unique().sort(row_dims)
    if two_way:
        assert col_dim is not None
        col_keys = df.select(col_dim).unique().sort(col_dim)
        frame = row_keys.join(col_keys, how="cross")
    else:
        col_keys = pl.DataFrame()
        frame = row_keys
    cells = frame.join(grouped, on=dims, how="left", maintain_order="left").with_columns(
        pl.col("n").fill_null(0)
    )
    r = row_keys.height
    c = col_keys.height if two_way else 1
    row_tot = df.group_by(row_dims).agg(count.cast(pl.Int64).alias("n"))
    row_tot = row_keys.join(row_tot, on=row_dims, how="left", maintain_order="left")
    grand = int(df.select(count).item())
    if two_way:
        assert col_dim is not None
        col_tot = df.group_by(col_dim).agg(count.cast(pl.Int64).alias("n"))
        col_tot = col_keys.join(col_tot, on=col_dim, how="left", maintain_order="left")
        vec = np.concatenate(
            [cells["n"].to_numpy(), row_tot["n"].to_numpy(), col_tot["n"].to_numpy(), [grand]]
        ).astype(np.int64)
    else:
        col_tot = pl.DataFrame({"n": pl.Series([], dtype=pl.Int64)})
        vec = np.concatenate([cells["n"].to_numpy(), [grand]]).astype(np.int64)
    eq = _equations(r, c, two_way)
    n_cells = r * c
    primary = {i for i in range(vec.size) if 0 < vec[i] < min_count}
    comp = _complementary(vec, eq, primary, n_cells)
    reason = np.full(vec.size, None, dtype=object)
    for i in primary:
        reason[i] = "primary"
    for i in comp:
        reason[i] = "complementary"

    def apply(frame: pl.DataFrame, lo: int, hi: int, stat_cols: Sequence[str]) -> pl.DataFrame:
        rs = pl.Series("suppression", list(reason[lo:hi]), dtype=pl.String)
        hidden = rs.is_not_null()
        return frame.with_columns(rs).with_columns(
            pl.when(hidden).then(None).otherwise(pl.col(x)).alias(x) for x in ["n", *stat_cols]
        )

    stat_cols = [x for x in cells.columns if x not in dims and x != "n"]
    cells_out = apply(cells, 0, n_cells, stat_cols)
    if two_way:
        rows_out = apply(row_tot, n_cells, n_cells + r, [])
        cols_out = apply(col_tot, n_cells + r, n_cells + r + c, [])
    else:  # a one-way table's rows are its cells
        rows_out = cells_out.select([*row_dims, "n", "suppression"])
        cols_out = col_tot
    return PufTable(
        cells=cells_out,
        row_totals=rows_out,
        column_totals=cols_out,
        grand_total=None if reason[-1] is not None else grand,
        n_primary=len(primary),
        n_complementary=len(comp),
    )
