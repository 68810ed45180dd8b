"""Benchmark: deid.freetext.scrub_column on 100,000 short clinical texts.

Run::

    .venv/bin/python bench/freetext_bench.py [--rows 100000]

The texts are the labelled sample's snippets (tests/data/freetext/sample.json) repeated, each
row with its subject's own name (``row_names``, a different tuple every row, as in an extract)
and the sample's 26 staff names shared. Prints CPU and wall seconds for the first call (which
loads jieba's dictionary) and for a second call, with and without general name detection.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl

from deid.freetext import scrub_column

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    sample = json.loads((ROOT / "tests/data/freetext/sample.json").read_text("utf-8"))
    snippets = sample["snippets"]
    n = args.rows
    df = pl.DataFrame({"note": [snippets[i % len(snippets)]["text"] for i in range(n)]})
    # a distinct name per row, so nothing is served from the per-name cache
    row_names = [[snippets[i % len(snippets)]["subject_names"][0], f"受试者{i}"] for i in range(n)]
    chars = sum(len(t) for t in df["note"])
    print(f"{n} texts, {chars / n:.0f} characters on average")
    for label, detect in (
        ("first call, detection on", True),
        ("detection on", True),
        ("detection off", False),
    ):
        cpu, wall = time.process_time(), time.perf_counter()
        _, totals = scrub_column(
            df, "note", sample["staff_names"], row_names=row_names, detect_names=detect
        )
        print(
            f"{label:26s} cpu {time.process_time() - cpu:6.2f} s  "
            f"wall {time.perf_counter() - wall:6.2f} s  {totals}"
        )


if __name__ == "__main__":
    main()
