"""k-anonymity search: optimal (same loss as exhaustive search), verified by pycanon."""

import csv
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pycanon.anonymity as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deid.errors import HierarchyError, InfeasibleError, ParameterError
from deid.hierarchy import Hierarchy, age_hierarchy, postcode_hierarchy
from deid.kanon import anonymize

ADULT = Path(__file__).resolve().parents[1] / "data" / "adult"


def _adult(n: int, seed: int = 1) -> pl.DataFrame:
    df = pl.read_csv(ADULT / "adult.csv", separator=";")
    return df.sample(n=n, seed=seed) if n < df.height else df


def _csv_table(col: str) -> dict[str, list[str]]:
    with (ADULT / f"adult_hierarchy_{col}.csv").open(newline="") as fh:
        return {r[0]: r for r in csv.reader(fh, delimiter=";") if r}


def pandas_of(df: pl.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: df.get_column(c).to_list() for c in df.columns})


def assert_pycanon(result, qis, k, sens=(), l_div=None):
    """The independent check: pycanon's k (and l) on the released table."""
    pdf = pandas_of(result.table)
    k_pc = pa.k_anonymity(pdf, list(qis))
    assert k_pc >= k, f"pycanon k={k_pc} < claimed {k}"
    assert k_pc >= result.achieved_k >= k
    if sens:
        l_pc = pa.l_diversity(pdf, list(qis), list(sens))
        assert l_pc >= l_div


def brute_force(df, tables, k, max_supp, metric, sens=(), l_div=1):
    """Exhaustive search, written independently of deid.kanon: every node, polars group_by on
    the generalised labels, the loss computed from the hierarchy tables."""
    qis = list(tables)
    n = df.height
    limit = int(np.floor(max_supp * n + 1e-9))
    raw = {q: df.get_column(q).cast(pl.String).to_list() for q in qis}
    heights = {q: len(next(iter(tables[q].values()))) - 1 for q in qis}
    best = None
    for node in itertools.product(*[range(heights[q] + 1) for q in qis]):
        gen = {q: [tables[q][v][lv] for v in raw[q]] for q, lv in zip(qis, node, strict=True)}
        g = pl.DataFrame(gen).with_row_index("__i")
        for s in sens:
            g = g.with_columns(df.get_column(s).alias(s))
        agg = g.group_by(qis).agg(
            pl.len().alias("size"), *[pl.col(s).n_unique().alias(f"d_{s}") for s in sens]
        )
        bad = pl.col("size") < k
        for s in sens:
            bad = bad | (pl.col(f"d_{s}") < l_div)
        j = g.join(agg.with_columns(bad.alias("bad")), on=qis, how="left").sort("__i")
        badm = j["bad"].to_numpy()
        if badm.sum() > limit:
            continue
        total = 0.0
        for q, lv in zip(qis, node, strict=True):
            if metric == "precision":
                cl = np.full(n, lv / heights[q])
            elif metric == "lm":  # leaves of the hierarchy's domain, present or not
                under: dict[str, int] = {}
                for row in tables[q].values():
                    under[row[lv]] = under.get(row[lv], 0) + 1
                cl = np.array([(under[x] - 1) / (len(tables[q]) - 1) for x in gen[q]])
            else:  # "loss": leaves among the level-0 labels present in the data
                present0 = {tables[q][v][0] for v in raw[q]}
                leaves: dict[str, set] = {}
                for v in set(raw[q]):
                    leaves.setdefault(tables[q][v][lv], set()).add(tables[q][v][0])
                cl = np.array([(len(leaves[x]) - 1) / (len(present0) - 1) for x in gen[q]])
            total += float(np.where(badm, 1.0, cl).sum())
        loss = total / (n * len(qis))
        if best is None or loss < best[0] - 1e-12:
            best = (loss, node, int(badm.sum()))
    return best


SMALL_QIS = ["age", "education", "marital-status", "sex"]


@pytest.mark.parametrize(
    ("k", "max_supp", "metric"),
    [
        (5, 0.0, "lm"),
        (5, 0.02, "lm"),
        (5, 0.02, "loss"),
        (10, 0.01, "precision"),
        (3, 0.05, "lm"),
        (3, 0.05, "loss"),
    ],
)
def test_search_finds_same_least_loss_as_exhaustive_search(k, max_supp, metric):
    df = _adult(1500)
    tables = {q: _csv_table(q) for q in SMALL_QIS}
    hier = {q: Hierarchy.from_csv(ADULT / f"adult_hierarchy_{q}.csv") for q in SMALL_QIS}
    res = anonymize(df, hier, k=k, max_suppression=max_supp, metric=metric)
    loss, node, supp = brute_force(df, tables, k, max_supp, metric)
    assert res.information_loss == pytest.approx(loss, abs=1e-9)
    assert res.n_suppressed <= int(max_supp * df.height)
    assert res.nodes_evaluated < res.lattice_size  # pruning did something
    assert_pycanon(res, SMALL_QIS, k)


def test_l_diversity_in_same_search_matches_exhaustive_and_pycanon():
    df = _adult(1200, seed=3)
    qis = ["age", "education", "sex"]
    tables = {q: _csv_table(q) for q in qis}
    hier = {q: Hierarchy.from_csv(ADULT / f"adult_hierarchy_{q}.csv") for q in qis}
    res = anonymize(df, hier, k=3, max_suppression=0.02, sensitive=["salary-class"])
    assert res.l == 2  # default l when a sensitive column is present
    loss, _, _ = brute_force(df, tables, 3, 0.02, "lm", sens=["salary-class"], l_div=2)
    assert res.information_loss == pytest.approx(loss, abs=1e-9)
    assert_pycanon(res, qis, 3, sens=["salary-class"], l_div=2)
    classes = res.table.group_by(qis).agg(pl.col("salary-class").n_unique().alias("d"))
    assert classes["d"].min() >= 2


def test_l_diversity_forces_more_generalisation_than_k_alone():
    rng = np.random.default_rng(0)
    n = 400
    df = pl.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "sex": rng.choice(["M", "F"], n),
            "hiv": ["neg"] * n,
        }
    )
    # every 25-29 year old woman is HIV positive: a k-anonymous class would reveal it
    df = df.with_columns(
        pl.when((pl.col("age") < 30) & (pl.col("sex") == "F"))
        .then(pl.lit("pos"))
        .otherwise(pl.col("hiv"))
        .alias("hiv")
    )
    df = df.with_columns(
        pl.when(pl.arange(0, n) % 7 == 0).then(pl.lit("pos")).otherwise(pl.col("hiv")).alias("hiv")
    )
    hier = {"age": age_hierarchy(), "sex": Hierarchy.from_table([["M", "*"], ["F", "*"]])}
    res_k = anonymize(df, hier, k=5, max_suppression=0.0)
    res_l = anonymize(df, hier, k=5, max_suppression=0.0, sensitive=["hiv"], l=2)
    assert res_l.information_loss >= res_k.information_loss
    assert_pycanon(res_l, ["age", "sex"], 5, sens=["hiv"], l_div=2)
    assert_pycanon(res_k, ["age", "sex"], 5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 200),
    k=st.integers(2, 6),
    supp=st.sampled_from([0.0, 0.02, 0.1]),
    metric=st.sampled_from(["lm", "loss", "precision"]),
)
def test_random_tables_search_equals_exhaustive(seed, n, k, supp, metric):
    rng = np.random.default_rng(seed)
    # three integer QIs with nested hierarchies built from integer division
    specs = {"a": (40, [4, 8, 40]), "b": (12, [3, 12]), "c": (6, [2, 6])}
    data = {q: rng.integers(0, dom, n) for q, (dom, _) in specs.items()}
    df = pl.DataFrame(data)
    tables = {}
    hier = {}
    for q, (dom, divs) in specs.items():
        rows = [[str(v)] + [str(v // d) if d < dom else "*" for d in divs] for v in range(dom)]
        tables[q] = {r[0]: r for r in rows}
        hier[q] = Hierarchy.from_table(rows)
    best = brute_force(df, tables, k, supp, metric)
    if best is None:
        with pytest.raises(InfeasibleError):
            anonymize(df, hier, k=k, max_suppression=supp, metric=metric)
        return
    res = anonymize(df, hier, k=k, max_suppression=supp, metric=metric)
    assert res.information_loss == pytest.approx(best[0], abs=1e-9)
    assert_pycanon(res, list(specs), k)


def test_output_shows_generalised_labels_and_keeps_other_columns():
    df = _adult(3000)
    qis = ["age", "education", "race", "sex"]
    hier = {q: ADULT / f"adult_hierarchy_{q}.csv" for q in qis}  # paths are accepted
    res = anonymize(df, hier, k=5, max_suppression=0.01)
    assert res.table.height == df.height - res.n_suppressed
    assert set(res.levels) == set(qis)
    tables = {q: _csv_table(q) for q in qis}
    for q in qis:
        allowed = {r[res.levels[q]] for r in tables[q].values()}
        assert set(res.table[q].to_list()) <= allowed
    kept = np.setdiff1d(np.arange(df.height), res.suppressed_rows)
    assert res.table["occupation"].to_list() == df["occupation"].gather(kept).to_list()
    assert_pycanon(res, qis, 5)


def test_suppressed_rows_are_exactly_those_in_small_classes():
    df = _adult(2000, seed=9)
    qis = ["age", "education", "occupation"]
    hier = {q: ADULT / f"adult_hierarchy_{q}.csv" for q in qis}
    res = anonymize(df, hier, k=5, max_suppression=0.05)
    tables = {q: _csv_table(q) for q in qis}
    gen = pl.DataFrame(
        {q: [tables[q][str(v)][res.levels[q]] for v in df[q].to_list()] for q in qis}
    )
    sizes = gen.join(gen.group_by(qis).len(), on=qis, how="left", maintain_order="left")["len"]
    assert np.flatnonzero((sizes < 5).to_numpy()).tolist() == res.suppressed_rows.tolist()
    assert res.n_suppressed <= 100
    assert_pycanon(res, qis, 5)


def test_postcode_hierarchy_in_search():
    rng = np.random.default_rng(5)
    n = 600
    pcs = [f"{p}{rng.integers(0, 10000):04d}" for p in rng.choice(["10", "20", "51"], n)]
    df = pl.DataFrame({"zip": pcs, "age": rng.integers(18, 95, n)})
    res = anonymize(df, {"zip": postcode_hierarchy(), "age": age_hierarchy()}, k=5)
    lv = res.levels["zip"]
    assert all(z.endswith("*" * lv) for z in res.table["zip"].to_list())
    assert_pycanon(res, ["zip", "age"], 5)


def test_infeasible_and_bad_parameters_are_reported():
    df = pl.DataFrame({"sex": ["M", "F", "M"]})
    h = {"sex": Hierarchy.from_table([["M", "*"], ["F", "*"]])}
    with pytest.raises(InfeasibleError):
        anonymize(df, h, k=5, max_suppression=0.0)
    with pytest.raises(ParameterError, match="k-anonymity"):
        anonymize(df, h, k=0)
    with pytest.raises(ParameterError):
        anonymize(df, h, max_suppression=1.5)
    with pytest.raises(ParameterError, match="l-diversity"):
        anonymize(df, h, l=2)


def test_hierarchy_errors_name_the_column():
    df = pl.DataFrame({"sex": ["M", "F", "X"]})
    with pytest.raises(HierarchyError) as e:
        anonymize(df, {"sex": Hierarchy.from_table([["M", "*"], ["F", "*"]])}, k=1)
    assert "'sex'" in str(e.value) and "'X'" in str(e.value)
    not_nested = Hierarchy.from_table([["1", "a", "x"], ["2", "a", "y"]])
    with pytest.raises(HierarchyError, match="do not nest"):
        anonymize(pl.DataFrame({"v": ["1", "2"]}), {"v": not_nested}, k=1)


def test_wide_key_spaces_are_grouped_correctly():
    # 7 columns x 1500 values overflow a 62-bit mixed-radix key; grouping must still be exact
    rng = np.random.default_rng(11)
    n = 3000
    cols = {f"q{i}": rng.integers(0, 1500, n) for i in range(7)}
    cols["q0"] = np.where(np.arange(n) < 2000, 7, cols["q0"])
    for i in range(1, 7):
        cols[f"q{i}"] = np.where(np.arange(n) < 2000, 3, cols[f"q{i}"])
    df = pl.DataFrame(cols)
    hier = {
        q: Hierarchy.from_functions([lambda v: str(int(v) // 100), lambda v: "*"]) for q in cols
    }
    res = anonymize(df, hier, k=5, max_suppression=0.4)
    # the 2000 identical rows form one class; every other row is unique even at level 1
    assert res.levels == dict.fromkeys(cols, 0)
    assert res.n_suppressed == 1000
    assert_pycanon(res, list(cols), 5)
