"""Benchmark: deid.anonymize vs the peer ``anjana`` on the same k-anonymity task.

Run (see docs/benchmarks-deid.md)::

    .venv-bench/bin/python bench/deid_bench.py --sizes 30162,300000,1000000

Task: UCI Adult (ARX variant) and perturbed replicas (bench/deid/data.py); quasi-identifiers
age, education, marital-status, occupation, race, sex, native-country with the ARX hierarchies;
k = 5 and 10; at most 1 % of records suppressed. Optionally an eighth quasi-identifier, a
6-digit postcode truncated one digit per level (``--postcode-sizes``).

Every run is a fresh subprocess (``--child``); time is the wall time of hierarchy loading plus
anonymisation (data already in memory), peak memory is the process's maximum RSS right after
it. Each released table is scored by bench/deid/score.py - the benchmark's own code, not
deid's - with one metric for both tools. Medians of ``--repeats`` runs are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.deid.data import (  # noqa: E402
    QIS7,
    QIS8,
    adult_dir,
    dataset_path,
    postcode_hierarchy_rows,
)

OUT = ROOT / "bench" / "out"


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


# ------------------------------------------------------------------------------------------
# children
# ------------------------------------------------------------------------------------------


def child_deid(path: Path, qis: list[str], k: int, supp: float) -> dict[str, object]:
    import polars as pl

    from deid.hierarchy import Hierarchy
    from deid.kanon import anonymize
    from deid.risk import risk_report

    df = pl.read_csv(path, separator=";", schema_overrides={"postcode": pl.String})
    t0 = time.perf_counter()
    hier = {}
    for q in qis:
        if q == "postcode":
            values = df.get_column("postcode").unique().sort().to_list()
            hier[q] = Hierarchy.from_table(postcode_hierarchy_rows(values))
        else:
            hier[q] = Hierarchy.from_csv(adult_dir() / f"adult_hierarchy_{q}.csv")
    res = anonymize(df, hier, k=k, max_suppression=supp)
    elapsed = time.perf_counter() - t0
    peak = _peak_gb()
    risk_times = []
    for _ in range(3):
        t1 = time.perf_counter()
        rep = risk_report(res.table, qis)
        risk_times.append(time.perf_counter() - t1)
    released = res.table.select(qis)
    return {
        "time": elapsed,
        "peak_gb": peak,
        "released": released,
        "claimed_loss": res.information_loss,
        "nodes": res.nodes_evaluated,
        "lattice": res.lattice_size,
        "risk_time": statistics.median(risk_times),
        "risk_max": rep.max_prosecutor_risk,
        "risk_avg": rep.avg_prosecutor_risk,
    }


def child_anjana(path: Path, qis: list[str], k: int, supp: float) -> dict[str, object]:
    import contextlib
    import io

    import pandas as pd
    import polars as pl
    from anjana.anonymity import k_anonymity

    data = pd.read_csv(path, sep=";", dtype={"postcode": str})
    t0 = time.perf_counter()
    hier: dict[str, dict[int, object]] = {}
    for q in qis:
        if q == "postcode":
            values = sorted(data["postcode"].unique())
            rows = postcode_hierarchy_rows(values)
            hier[q] = {i: pd.Series([r[i] for r in rows]) for i in range(7)}
        else:
            h = pd.read_csv(adult_dir() / f"adult_hierarchy_{q}.csv", sep=";", header=None)
            hier[q] = {i: h[i] for i in h.columns}
    with contextlib.redirect_stdout(io.StringIO()):
        out = k_anonymity(data, [], qis, k, supp * 100, hier)
    elapsed = time.perf_counter() - t0
    peak = _peak_gb()
    if len(out) == 0:
        released = pl.DataFrame({q: pl.Series([], dtype=pl.String) for q in qis})
    else:
        released = pl.DataFrame({q: [str(v) for v in out[q].tolist()] for q in qis})
    return {"time": elapsed, "peak_gb": peak, "released": released}


def run_child(args: argparse.Namespace) -> None:
    import polars as pl

    from bench.deid.score import read_hierarchy, score

    path = Path(args.data)
    qis = QIS8 if args.qis == 8 else QIS7
    fn = child_deid if args.tool == "deid" else child_anjana
    r = fn(path, qis, args.k, args.supp)
    original = pl.read_csv(path, separator=";", schema_overrides={"postcode": pl.String})
    tables = {}
    for q in qis:
        if q == "postcode":
            values = original.get_column("postcode").unique().sort().to_list()
            tables[q] = postcode_hierarchy_rows(values)
        else:
            tables[q] = read_hierarchy(adult_dir() / f"adult_hierarchy_{q}.csv")
    released = r.pop("released")
    assert isinstance(released, pl.DataFrame)
    r.update(score(original, released, tables))
    print("RESULT " + json.dumps(r))


def spawn(tool: str, data: Path, k: int, qis: int, supp: float, timeout: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--tool",
        tool,
        "--data",
        str(data),
        "--k",
        str(k),
        "--qis",
        str(qis),
        "--supp",
        str(supp),
    ]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (p.stderr or p.stdout)[-600:]}


# ------------------------------------------------------------------------------------------
# exhaustive reference (small sizes): the optimum of a full lattice search, benchmark metric
# ------------------------------------------------------------------------------------------


def exhaustive_optimum(data: Path, qis: list[str], k: int, supp: float) -> dict[str, object]:
    import numpy as np
    import polars as pl

    from bench.deid.score import read_hierarchy

    df = pl.read_csv(data, separator=";", schema_overrides={"postcode": pl.String})
    n = df.height
    limit = int(np.floor(supp * n + 1e-9))
    tables = {q: read_hierarchy(adult_dir() / f"adult_hierarchy_{q}.csv") for q in qis}
    raw = {q: df.get_column(q).cast(pl.String) for q in qis}
    per_level = {}
    for q in qis:
        t = tables[q]
        present = set(raw[q].unique().to_list())
        h = len(t[0]) - 1
        cols = []
        for lv in range(h + 1):
            mapping = {r[0]: r[lv] for r in t if r[0] in present}
            leaves: dict[str, int] = {}
            for v in mapping.values():
                leaves[v] = leaves.get(v, 0) + 1
            lab = raw[q].replace_strict(list(mapping), list(mapping.values()))
            cl = lab.replace_strict(
                list(leaves),
                [(c - 1) / (len(present) - 1) for c in leaves.values()],
                return_dtype=pl.Float64,
            ).to_numpy()
            cols.append((lab.cast(pl.Categorical).to_physical(), cl))
        per_level[q] = cols
    best = None
    t0 = time.perf_counter()
    for node in itertools.product(*[range(len(per_level[q])) for q in qis]):
        g = pl.DataFrame({q: per_level[q][lv][0] for q, lv in zip(qis, node, strict=True)})
        sizes = g.with_columns(pl.len().over(qis).alias("sz"))["sz"].to_numpy()
        bad = sizes < k
        s = int(bad.sum())
        if s > limit:
            continue
        total = sum(
            float(np.where(bad, 1.0, per_level[q][lv][1]).sum())
            for q, lv in zip(qis, node, strict=True)
        )
        loss = total / (n * len(qis))
        if best is None or loss < best["lm"] - 1e-12:
            best = {"lm": loss, "levels": dict(zip(qis, node, strict=True)), "suppressed": s}
    assert best is not None
    best["time"] = time.perf_counter() - t0
    return best


# ------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------


def fmt_levels(levels: dict[str, int]) -> str:
    return "".join(str(v) for v in levels.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", choices=["deid", "anjana"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--qis", type=int, default=7, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--supp", type=float, default=0.01, help="suppression limit (share)")
    ap.add_argument("--sizes", default="30162,300000,1000000")
    ap.add_argument("--ks", default="5,10")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--peer-repeats", type=int, default=None, help="repeats for anjana (default: --repeats)"
    )
    ap.add_argument(
        "--postcode-sizes",
        default="1000000",
        help="sizes for the 8-QI postcode case at k=5 ('' to skip)",
    )
    ap.add_argument(
        "--postcode-peer",
        action="store_true",
        help="also run anjana on the postcode case (about 10 min per run at 1M)",
    )
    ap.add_argument(
        "--postcode-peer-repeats",
        type=int,
        default=1,
        help="repeats for anjana on the postcode case",
    )
    ap.add_argument(
        "--exhaustive-max",
        type=int,
        default=30162,
        help="run the benchmark's own exhaustive lattice search up to this size",
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="also write all results here")
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return

    sizes = [int(x) for x in args.sizes.split(",") if x]
    ks = [int(x) for x in args.ks.split(",") if x]
    pc_sizes = [int(x) for x in args.postcode_sizes.split(",") if x]
    peer_rep = args.peer_repeats or args.repeats
    cases = [(n, k, 7) for n in sizes for k in ks] + [(n, 5, 8) for n in pc_sizes]
    results = []
    print(
        f"python {sys.version.split()[0]}; suppression limit {args.supp:.0%}; "
        f"repeats deid={args.repeats} anjana={peer_rep} "
        f"(postcode case: {args.postcode_peer_repeats})",
        flush=True,
    )
    for n, k, nq in cases:
        data = dataset_path(OUT, n)
        row: dict[str, object] = {"n": n, "k": k, "qis": nq}
        for tool in ("deid", "anjana"):
            reps = args.repeats if tool == "deid" else peer_rep
            if tool == "anjana" and nq == 8:
                reps = args.postcode_peer_repeats
            if tool == "anjana" and nq == 8 and not args.postcode_peer:
                row[tool] = {"error": "not run (use --postcode-peer)"}
                continue
            runs = [spawn(tool, data, k, nq, args.supp, args.timeout) for _ in range(reps)]
            ok = [r for r in runs if "error" not in r]
            if not ok:
                row[tool] = runs[0]
                print(f"  {tool} n={n} k={k} qis={nq}: {runs[0]['error']}", flush=True)
                continue
            med = dict(ok[0])
            for key in ("time", "peak_gb", "risk_time"):
                if key in ok[0]:
                    med[key] = statistics.median(r[key] for r in ok)
            med["times"] = [r["time"] for r in ok]
            row[tool] = med
            print(
                f"  {tool:6s} n={n:>8} k={k:>2} qis={nq}: {med['time']:8.2f} s "
                f"peak {med['peak_gb']:.2f} GB  suppressed {med['suppressed']:>6}  "
                f"LM {med['lm']:.4f}  Prec {med['prec']:.4f}  k={med['k']}  "
                f"levels {fmt_levels(med['levels'])}",
                flush=True,
            )
        if nq == 7 and n <= args.exhaustive_max:
            ex = exhaustive_optimum(data, QIS7, k, args.supp)
            row["exhaustive"] = ex
            print(
                f"  exhaustive lattice optimum: LM {ex['lm']:.4f} levels "
                f"{fmt_levels(ex['levels'])} ({ex['time']:.0f} s)",
                flush=True,
            )
        results.append(row)

    print()
    print(
        "| rows | QIs | k | tool | time (s) | peak RSS (GB) | suppressed | LM loss | Prec loss "
        "| min class | levels |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for row in results:
        for tool in ("deid", "anjana"):
            r = row[tool]
            if "error" in r:
                print(
                    f"| {row['n']:,} | {row['qis']} | {row['k']} | {tool} | {r['error']} "
                    "| | | | | | |"
                )
                continue
            print(
                f"| {row['n']:,} | {row['qis']} | {row['k']} | {tool} | {r['time']:.2f} | "
                f"{r['peak_gb']:.2f} | {r['suppressed']:,} | {r['lm']:.4f} | {r['prec']:.4f} | "
                f"{r['k']} | {fmt_levels(r['levels'])} |"
            )
    print()
    print(
        "| rows | QIs | k | speed-up (anjana/deid time) | memory ratio (deid/anjana) | "
        "LM ratio (deid/anjana) | deid LM vs exhaustive optimum | deid risk report (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        d, a = row["deid"], row["anjana"]
        if "error" in d:
            continue
        ex = row.get("exhaustive")
        exs = f"{d['lm']:.4f} vs {ex['lm']:.4f}" if ex else "-"
        if "error" in a:
            print(
                f"| {row['n']:,} | {row['qis']} | {row['k']} | - | - | - | {exs} | "
                f"{d['risk_time']:.3f} |"
            )
            continue
        lm_ratio = d["lm"] / a["lm"] if a["lm"] else float("nan")
        print(
            f"| {row['n']:,} | {row['qis']} | {row['k']} | {a['time'] / d['time']:.1f}x | "
            f"{d['peak_gb'] / a['peak_gb']:.2f} | {lm_ratio:.3f} | {exs} | "
            f"{d['risk_time']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
