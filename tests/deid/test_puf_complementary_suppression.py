"""PUF aggregates: small cells withheld, and no withheld cell can be recovered from totals."""

import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from deid.errors import ParameterError
from deid.puf import aggregate


def _records(counts: dict[tuple[str, str], int], seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    sid = 0
    for (a, b), n in counts.items():
        for _ in range(n):
            rows.append({"sid": f"s{sid}", "site": a, "dx": b, "sbp": float(rng.normal(130, 15))})
            sid += 1
    return pl.DataFrame(rows)


def _published(t):
    """What a reader of the PUF sees: the cell grid and margins, None where withheld."""
    rows = t.row_totals.get_column("site").to_list()
    cols = t.column_totals.get_column("dx").to_list()
    grid = {(r["site"], r["dx"]): r["n"] for r in t.cells.iter_rows(named=True)}
    rt = dict(zip(rows, t.row_totals["n"].to_list(), strict=True))
    ct = dict(zip(cols, t.column_totals["n"].to_list(), strict=True))
    return rows, cols, grid, rt, ct, t.grand_total


def attacker_bounds(rows, cols, grid, rt, ct, grand):
    """Integer-programming attack: min and max of every withheld figure given everything else."""
    names = (
        [("cell", r, c) for r in rows for c in cols]
        + [("row", r) for r in rows]
        + [("col", c) for c in cols]
        + [("grand",)]
    )
    value = {}
    for r in rows:
        for c in cols:
            value[("cell", r, c)] = grid[(r, c)]
        value[("row", r)] = rt[r]
    for c in cols:
        value[("col", c)] = ct[c]
    value[("grand",)] = grand
    idx = {nm: i for i, nm in enumerate(names)}
    eqs = []
    for r in rows:
        e = np.zeros(len(names))
        for c in cols:
            e[idx[("cell", r, c)]] = 1
        e[idx[("row", r)]] = -1
        eqs.append(e)
    for c in cols:
        e = np.zeros(len(names))
        for r in rows:
            e[idx[("cell", r, c)]] = 1
        e[idx[("col", c)]] = -1
        eqs.append(e)
    e = np.zeros(len(names))
    for r in rows:
        e[idx[("row", r)]] = 1
    e[idx[("grand",)]] = -1
    eqs.append(e)
    a = np.array(eqs)
    lo = np.zeros(len(names))
    hi = np.full(len(names), 10_000.0)
    for nm, v in value.items():
        if v is not None:
            lo[idx[nm]] = hi[idx[nm]] = v
    cons = LinearConstraint(a, 0, 0)
    bounds = {}
    for nm, v in value.items():
        if v is not None:
            continue
        out = []
        for sign in (1, -1):
            cvec = np.zeros(len(names))
            cvec[idx[nm]] = sign
            res = milp(
                cvec, constraints=cons, integrality=np.ones(len(names)), bounds=Bounds(lo, hi)
            )
            assert res.status == 0
            out.append(sign * res.fun)
        bounds[nm] = (round(out[0]), round(out[1]))
    return bounds


COUNTS = {
    ("A", "flu"): 12,
    ("A", "hiv"): 2,
    ("A", "tb"): 9,
    ("A", "hcv"): 15,
    ("B", "flu"): 20,
    ("B", "hiv"): 7,
    ("B", "tb"): 3,
    ("B", "hcv"): 11,
    ("C", "flu"): 8,
    ("C", "hiv"): 6,
    ("C", "tb"): 14,
    ("C", "hcv"): 10,
}


def test_cells_under_five_subjects_are_withheld():
    t = aggregate(_records(COUNTS), ["site", "dx"], subject="sid")
    shown = {(r["site"], r["dx"]): r for r in t.cells.iter_rows(named=True)}
    assert shown[("A", "hiv")]["n"] is None and shown[("A", "hiv")]["suppression"] == "primary"
    assert shown[("B", "tb")]["n"] is None and shown[("B", "tb")]["suppression"] == "primary"
    published = [r["n"] for r in shown.values() if r["n"] is not None]
    assert published and min(published) >= 5
    assert t.n_primary == 2 and t.n_complementary >= 2


def test_no_withheld_cell_can_be_recovered_from_row_or_column_totals():
    t = aggregate(_records(COUNTS), ["site", "dx"], subject="sid", values=["sbp"])
    bounds = attacker_bounds(*_published(t))
    assert bounds, "something must be withheld"
    for nm, (lo, hi) in bounds.items():
        assert lo < hi, f"{nm} recoverable: attacker pins it to {lo}"
    # statistics of a withheld cell are withheld too
    hidden = t.cells.filter(pl.col("suppression").is_not_null())
    assert hidden["sbp_mean"].null_count() == hidden.height


def test_primary_suppression_alone_would_be_recovered():
    # the attack is real: with only the small cells blanked, totals give them away
    t = aggregate(_records(COUNTS), ["site", "dx"], subject="sid")
    rows, cols = _published(t)[:2]
    naive = {k: (None if v < 5 else v) for k, v in COUNTS.items()}
    rt_true = {r: sum(v for (a, _), v in COUNTS.items() if a == r) for r in rows}
    ct_true = {c: sum(v for (_, b), v in COUNTS.items() if b == c) for c in cols}
    b = attacker_bounds(rows, cols, naive, rt_true, ct_true, sum(COUNTS.values()))
    assert b[("cell", "A", "hiv")] == (2, 2)


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_are_safe_against_the_attacker(seed):
    rng = np.random.default_rng(seed)
    counts = {
        (f"S{i}", f"D{j}"): int(rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 30]))
        for i in range(4)
        for j in range(4)
    }
    df = _records(counts, seed)
    t = aggregate(df, ["site", "dx"], subject="sid")
    published = [v for v in t.cells["n"].to_list() if v is not None]
    assert all(v == 0 or v >= 5 for v in published)
    for nm, (lo, hi) in attacker_bounds(*_published(t)).items():
        assert lo < hi, f"seed {seed}: {nm} recoverable"


def test_one_way_table_needs_a_second_withheld_cell():
    df = _records({("A", "x"): 3, ("B", "x"): 40, ("C", "x"): 12, ("D", "x"): 7})
    t = aggregate(df, "site")
    n = dict(zip(t.cells["site"].to_list(), t.cells["n"].to_list(), strict=True))
    assert n["A"] is None
    assert sum(v is None for v in n.values()) >= 2
    assert t.grand_total == 62
    assert n["D"] is None  # the smallest other cell is the cheapest complement


def test_bad_parameters():
    df = _records({("A", "x"): 3})
    with pytest.raises(ParameterError, match="puf"):
        aggregate(df, ["site"], stats=["mode"])
    with pytest.raises(ParameterError):
        aggregate(df, [], min_count=5)
