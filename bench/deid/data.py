"""Benchmark data: UCI Adult (ARX variant) replicated to N rows with perturbed copies.

The first 30,162 rows are Adult as shipped. Every further row is a copy of a random Adult row
with (a) age moved by a uniform random -2..+2 (clipped to 17..90) and (b) the value of one other
quasi-identifier, chosen at random among education, marital-status, occupation, race, sex,
native-country and postcode, replaced by that column's value in another random row. So copies do
not trivially satisfy k. ``postcode`` is a synthetic 6-digit Chinese-style postcode (2-digit
province, postal-zone digit, county digit, 2-digit delivery office; Zipf-like skew), assigned per
Adult row from a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ADULT = Path(__file__).resolve().parents[2] / "tests" / "data" / "adult"
QIS7 = ["age", "education", "marital-status", "occupation", "race", "sex", "native-country"]
QIS8 = [*QIS7, "postcode"]
SWAPPABLE = [
    "education",
    "marital-status",
    "occupation",
    "race",
    "sex",
    "native-country",
    "postcode",
]


def adult_dir() -> Path:
    if (ADULT / "adult.csv").exists():
        return ADULT
    raise FileNotFoundError(f"adult.csv not found in {ADULT}")


def _postcodes(n: int, rng: np.random.Generator) -> np.ndarray:
    provinces = np.array(
        [
            10,
            11,
            20,
            21,
            23,
            24,
            25,
            26,
            30,
            31,
            33,
            34,
            35,
            36,
            40,
            41,
            43,
            44,
            45,
            46,
            47,
            51,
            52,
            53,
            54,
            55,
            56,
            61,
            65,
            71,
            73,
        ]
    )
    w = 1.0 / np.arange(1, provinces.size + 1)
    prov = rng.choice(provinces, size=n, p=w / w.sum())
    zone = rng.choice(10, size=n, p=np.array([8, 6, 5, 4, 3, 2, 2, 1, 1, 1]) / 33)
    county = rng.integers(0, 10, size=n)
    office = np.minimum(rng.geometric(0.08, size=n) - 1, 99)
    codes = prov * 10000 + zone * 1000 + county * 100 + office
    return np.char.zfill(codes.astype(str), 6)


def base_adult(seed: int = 7) -> pl.DataFrame:
    df = pl.read_csv(adult_dir() / "adult.csv", separator=";")
    rng = np.random.default_rng(seed)
    return df.with_columns(pl.Series("postcode", _postcodes(df.height, rng)))


def make_dataset(n: int, seed: int = 42) -> pl.DataFrame:
    base = base_adult()
    if n <= base.height:
        return base.head(n)
    rng = np.random.default_rng(seed)
    extra = n - base.height
    src = rng.integers(0, base.height, size=extra)
    copies = base[src]
    age = np.clip(copies["age"].to_numpy() + rng.integers(-2, 3, size=extra), 17, 90)
    which = rng.integers(0, len(SWAPPABLE), size=extra)
    donor = rng.integers(0, base.height, size=extra)
    cols = {"age": pl.Series("age", age, dtype=pl.Int64)}
    for j, c in enumerate(SWAPPABLE):
        orig = copies[c].to_numpy()
        new = base[c].to_numpy()[donor]
        cols[c] = pl.Series(c, np.where(which == j, new, orig))
    copies = copies.with_columns(list(cols.values()))
    return pl.concat([base, copies.select(base.columns)])


def postcode_hierarchy_rows(values: list[str]) -> list[list[str]]:
    """ARX-style table rows for the postcode: one digit masked per level (7 levels)."""
    return [[v] + [v[: 6 - i] + "*" * i for i in range(1, 7)] for v in values]


def dataset_path(out: Path, n: int) -> Path:
    p = out / f"adult_{n}.csv"
    if not p.exists():
        out.mkdir(parents=True, exist_ok=True)
        make_dataset(n).write_csv(p, separator=";")
    return p
