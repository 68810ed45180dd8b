"""Benchmark: deid.anonymize vs the peer ``anjana``, and against ARX's reference figures.

Run (see docs/benchmarks-deid.md)::

    .venv-bench/bin/python bench/deid_bench.py --cases adult:5,adult:10,x10:10,x33:5,x33_pc:5

Task: the peers' reference cases (bench/deid/data.py): UCI Adult (ARX variant) and its x10 / x33
perturbed copies, quasi-identifiers age, education, marital-status, occupation, race, sex,
native-country with the ARX hierarchies (and a 6-digit postcode for ``x33_pc``); at most 1 % of
records suppressed.

Every run is a fresh subprocess (``--child``); time is the wall time of hierarchy loading plus
anonymisation (data already in memory), peak memory is the process's maximum RSS right after
it. Each released table is scored by bench/deid/score.py - the benchmark's own code, not
deid's - with one metric for every tool: Iyengar's LM over the hierarchy's domain. ARX cannot be
built here, so its figures are the reference run's (``ARX_REFERENCE``), measured on this
machine type with the same scorer. Medians of ``--repeats`` runs are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.deid.data import (  # noqa: E402
    DATASETS,
    QIS7,
    QIS8,
    adult_dir,
    dataset_path,
    postcode_domain,
    postcode_hierarchy_rows,
)

OUT = ROOT / "bench" / "out"

# The peers' reference run (2026-12-01, this machine type, same settings and scorer, medians of
# 3 fresh processes): seconds of the anonymisation call, peak memory, LM over the domain.
# x10: ARX's time was given only as 6.1x deid's (deid at 31a2e19) time.
ARX_REFERENCE: dict[tuple[str, int], dict[str, float | None]] = {
    ("adult", 5): {"lm": 0.398341, "time": None, "mb": None},
    ("adult", 10): {"lm": 0.4320, "time": None, "mb": None},
    ("x10", 10): {"lm": 0.2280, "time": None, "mb": None},
    ("x33", 5): {"lm": 0.1157, "time": 4.69, "mb": 869},
    ("x33_pc", 5): {"lm": 0.2263, "time": 172.8, "mb": 2527},
}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def hierarchy_rows(q: str) -> list[list[str]]:
    from bench.deid.score import read_hierarchy

    if q == "postcode":
        return postcode_hierarchy_rows(postcode_domain())
    return read_hierarchy(adult_dir() / f"adult_hierarchy_{q}.csv")


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
            hier[q] = Hierarchy.from_table(postcode_hierarchy_rows(postcode_domain()))
        else:
            hier[q] = Hierarchy.from_csv(adult_dir() / f"adult_hierarchy_{q}.csv")
    res = anonymize(df, hier, k=k, max_suppression=supp)
    elapsed = time.perf_counter() - t0
    peak = _peak_gb()
    t1 = time.perf_counter()
    rep = risk_report(res.table, qis)
    risk_time = time.perf_counter() - t1
    return {
        "time": elapsed,
        "peak_gb": peak,
        "released": res.table.select(qis),
        "metric": res.metric,
        "claimed_loss": res.information_loss,
        "claimed_lm": res.lm,
        "claimed_lm_present": res.losses["loss"],
        "nodes": res.nodes_evaluated,
        "lattice": res.lattice_size,
        "risk_time": risk_time,
        "risk_max": rep.max_prosecutor_risk,
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
            rows = postcode_hierarchy_rows(postcode_domain())
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

    from bench.deid.score import score

    path = Path(args.data)
    qis = QIS8 if args.qis == 8 else QIS7
    fn = child_deid if args.tool == "deid" else child_anjana
    r = fn(path, qis, args.k, args.supp)
    original = pl.read_csv(path, separator=";", schema_overrides={"postcode": pl.String})
    released = r.pop("released")
    assert isinstance(released, pl.DataFrame)
    r.update(score(original, released, {q: hierarchy_rows(q) for q in qis}))
    print("RESULT " + json.dumps(r))


def spawn(tool: str, data: Path, k: int, qis: int, supp: float, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", "--tool", tool, "--data", str(data)]
    cmd += ["--k", str(k), "--qis", str(qis), "--supp", str(supp)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (p.stderr or p.stdout)[-600:]}


# ------------------------------------------------------------------------------------------
# exhaustive reference: the LM optimum of a full lattice search, benchmark metric, own code
# ------------------------------------------------------------------------------------------


def exhaustive_optimum(data: Path, qis: list[str], k: int, supp: float) -> dict[str, object]:
    import numpy as np
    import polars as pl

    df = pl.read_csv(data, separator=";", schema_overrides={"postcode": pl.String})
    n = df.height
    limit = int(np.floor(supp * n + 1e-9))
    per_level = {}
    for q in qis:
        t = hierarchy_rows(q)
        raw = df.get_column(q).cast(pl.String)
        cols = []
        for lv in range(len(t[0])):
            under: dict[str, int] = {}
            for r in t:
                under[r[lv]] = under.get(r[lv], 0) + 1
            lab = raw.replace_strict([r[0] for r in t], [r[lv] for r in t])
            cl = lab.replace_strict(
                list(under),
                [(c - 1) / (len(t) - 1) for c in under.values()],
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


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", choices=["deid", "anjana"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--qis", type=int, default=7, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--supp", type=float, default=0.01, help="suppression limit (share)")
    ap.add_argument(
        "--cases",
        default="adult:5,adult:10,x10:10,x33:5,x33_pc:5",
        help="data set:k pairs; data sets: " + ", ".join(DATASETS),
    )
    ap.add_argument("--repeats", type=int, default=3, help="repeats for deid")
    ap.add_argument("--peer-repeats", type=int, default=1, help="repeats for anjana")
    ap.add_argument(
        "--peer-cases",
        default="adult:5,adult:10,x10:10,x33:5",
        help="cases anjana runs on ('' for none; x33_pc takes 15 min or more)",
    )
    ap.add_argument(
        "--exhaustive",
        default="adult:5,adult:10",
        help="cases the benchmark's own full-lattice search runs on (7 QIs only)",
    )
    ap.add_argument(
        "--seed", type=int, default=42, help="seed of the perturbed copies (x10, x33, x33_pc)"
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="also write all results here")
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return

    def parse(s: str) -> list[tuple[str, int]]:
        return [(c.split(":")[0], int(c.split(":")[1])) for c in s.split(",") if c]

    cases = parse(args.cases)
    peer_cases = set(parse(args.peer_cases))
    exhaustive = set(parse(args.exhaustive))
    results = []
    print(
        f"python {sys.version.split()[0]}; suppression limit {args.supp:.0%}; "
        f"repeats deid={args.repeats} anjana={args.peer_repeats}; data seed {args.seed}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for name, k in cases:
        data = dataset_path(OUT, name, args.seed)
        nq = 8 if DATASETS[name][1] else 7
        row: dict[str, object] = {"case": name, "k": k, "qis": nq}
        for tool in ("deid", "anjana"):
            reps = args.repeats if tool == "deid" else args.peer_repeats
            if tool == "anjana" and (name, k) not in peer_cases:
                row[tool] = {"error": "not run"}
                continue
            runs = [spawn(tool, data, k, nq, args.supp, args.timeout) for _ in range(reps)]
            ok = [r for r in runs if "error" not in r]
            if not ok:
                row[tool] = runs[0]
                print(f"  {tool} {name} k={k}: {runs[0]['error']}", flush=True)
                continue
            med = dict(ok[0])
            for key in ("time", "peak_gb", "risk_time"):
                if key in ok[0]:
                    med[key] = statistics.median(r[key] for r in ok)
            med["times"] = [r["time"] for r in ok]
            row[tool] = med
            own = f" own loss {med['claimed_loss']:.6f}" if tool == "deid" else ""
            print(
                f"  {tool:6s} {name:6s} k={k:>2} qis={nq}: {med['time']:8.2f} s "
                f"peak {med['peak_gb']:.2f} GB  suppressed {med['suppressed']:>6}  "
                f"LM(domain) {med['lm']:.6f}{own}  LM(present) {med['lm_present']:.6f}  "
                f"Prec {med['prec']:.4f}  k={med['k']} (pycanon {med['k_pycanon']})  "
                f"levels {fmt_levels(med['levels'])}  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if (name, k) in exhaustive and nq == 7:
            ex = exhaustive_optimum(data, QIS7, k, args.supp)
            row["exhaustive"] = ex
            print(
                f"  exhaustive lattice optimum: LM(domain) {ex['lm']:.6f} levels "
                f"{fmt_levels(ex['levels'])} ({ex['time']:.0f} s)",
                flush=True,
            )
        results.append(row)

    print()
    print(
        "| case | QIs | k | tool | time (s) | peak RSS (GB) | suppressed | LM (domain) "
        "| deid's own loss | LM (values present) | Prec | min class (pycanon) | levels |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in results:
        for tool in ("deid", "anjana"):
            r = row[tool]
            head = f"| {row['case']} | {row['qis']} | {row['k']} | {tool} |"
            if "error" in r:
                print(f"{head} {r['error'][:80]} | | | | | | | | |")
                continue
            own = f"{r['claimed_loss']:.6f}" if tool == "deid" else "-"
            print(
                f"{head} {r['time']:.2f} | {r['peak_gb']:.2f} | {r['suppressed']:,} | "
                f"{r['lm']:.6f} | {own} | {r['lm_present']:.6f} | {r['prec']:.4f} | "
                f"{r['k']} ({r['k_pycanon']}) | {fmt_levels(r['levels'])} |"
            )
    print()
    print(
        "| case | k | deid LM | ARX LM (ref.) | deid / ARX LM | anjana LM | deid / anjana LM "
        "| exhaustive optimum | deid time (s) | ARX time (ref., s) | ARX / deid time "
        "| anjana / deid time |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        d, a = row["deid"], row["anjana"]
        if "error" in d:
            continue
        ref = ARX_REFERENCE.get((str(row["case"]), int(row["k"])), {})
        arx_lm, arx_t = ref.get("lm"), ref.get("time")
        ex = row.get("exhaustive")
        a_ok = "error" not in a
        print(
            f"| {row['case']} | {row['k']} | {d['lm']:.6f} | {_num(arx_lm, '.6f')} | "
            f"{_num(d['lm'] / arx_lm if arx_lm else None, '.4f')} | "
            f"{_num(a['lm'] if a_ok else None, '.6f')} | "
            f"{_num(d['lm'] / a['lm'] if a_ok and a['lm'] else None, '.4f')} | "
            f"{_num(ex['lm'] if ex else None, '.6f')} | {d['time']:.2f} | "
            f"{_num(arx_t, '.2f')} | {_num(arx_t / d['time'] if arx_t else None, '.1f')} | "
            f"{_num(a['time'] / d['time'] if a_ok else None, '.1f')} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
