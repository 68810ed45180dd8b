"""Benchmark data: UCI Adult (ARX variant) and the peer variants of the reference figures.

Data sets, as the peers' reference run describes them (docs/benchmarks-deid.md):

* ``adult`` - the 30,162 rows as shipped in ``tests/data/adult/``;
* ``x10`` / ``x33`` - 10 or 33 copies of Adult (301,620 / 995,346 rows). The first copy is
  Adult itself; in every further copy age moves by a uniform integer in [-2, +2] (clipped to
  17..90) and each other quasi-identifier is, independently with probability 0.1, redrawn from
  its own column (the value of a uniformly drawn Adult row);
* ``x33_pc`` - ``x33`` plus a synthetic 6-digit postcode per row, drawn from a fixed domain of
  5,000 codes with Zipf-like weights (``1 / rank``), independent of the other columns; its
  hierarchy truncates one digit per level (7 levels) and lists all 5,000 codes.

The random draws are this project's (fixed seeds), so the rows are not the peers' rows: the
figures are comparable in distribution, not record for record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ADULT = Path(__file__).resolve().parents[2] / "tests" / "data" / "adult"
QIS7 = ["age", "education", "marital-status", "occupation", "race", "sex", "native-country"]
QIS8 = [*QIS7, "postcode"]
DATASETS = {"adult": (1, False), "x10": (10, False), "x33": (33, False), "x33_pc": (33, True)}
POSTCODE_CODES = 5000
REDRAW_P = 0.1


def adult_dir() -> Path:
    if (ADULT / "adult.csv").exists():
        return ADULT
    raise FileNotFoundError(f"adult.csv not found in {ADULT}")


def postcode_domain(seed: int = 7) -> list[str]:
    """The 5,000 distinct synthetic postcodes, most frequent first (2-digit province, postal
    zone, county digit, 2-digit delivery office)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < POSTCODE_CODES:
        prov = rng.choice([10, 11, 20, 21, 23, 24, 25, 26, 30, 31, 33, 34, 35, 36, 40, 41, 43])
        code = prov * 10000 + rng.integers(0, 10) * 1000 + rng.integers(0, 10) * 100
        code += rng.integers(0, 100)
        seen.setdefault(f"{code:06d}", None)
    return list(seen)


def make_dataset(name: str, seed: int = 42) -> pl.DataFrame:
    copies, with_postcode = DATASETS[name]
    base = pl.read_csv(adult_dir() / "adult.csv", separator=";")
    rng = np.random.default_rng(seed)
    parts = [base]
    n0 = base.height
    for _ in range(copies - 1):
        cols = [
            pl.Series(
                "age", np.clip(base["age"].to_numpy() + rng.integers(-2, 3, n0), 17, 90)
            ).cast(base.schema["age"])
        ]
        for c in QIS7[1:]:
            orig = base[c].to_numpy()
            donor = base[c].to_numpy()[rng.integers(0, n0, n0)]
            cols.append(pl.Series(c, np.where(rng.random(n0) < REDRAW_P, donor, orig)))
        parts.append(base.with_columns(cols))
    df = pl.concat(parts)
    if with_postcode:
        domain = postcode_domain()
        w = 1.0 / np.arange(1, len(domain) + 1)
        pick = rng.choice(len(domain), size=df.height, p=w / w.sum())
        df = df.with_columns(pl.Series("postcode", np.asarray(domain)[pick]))
    return df


def postcode_hierarchy_rows(values: list[str]) -> list[list[str]]:
    """ARX-style table rows for the postcode: one digit masked per level (7 levels)."""
    return [[v] + [v[: 6 - i] + "*" * i for i in range(1, 7)] for v in values]


def dataset_path(out: Path, name: str, seed: int = 42) -> Path:
    p = out / f"peer_{name}_s{seed}.csv"
    if not p.exists():
        out.mkdir(parents=True, exist_ok=True)
        make_dataset(name, seed).write_csv(p, separator=";")
    return p
