"""Benchmark: extract building and packaging (issue 9; figures in docs/benchmarks-extract.md).

Two parts, each in a fresh subprocess so that peak memory (max RSS) is the stage's own:

* ``lds``: an LDS of N subjects (default 100,000) x 50 fields — 3 quasi-identifiers
  (date of birth, postcode, ethnicity), 1 sensitive item, 46 clinical items (numbers, dates,
  text) — through the same code the build uses after the snapshot: de-identification
  (keyed tokens, k = 5 search with l-diversity, date shift, free-text scrub), pre-transfer
  checks, CSV + Parquet, minisign signature, tar streamed into age.
* ``encrypt``: a package of SIZE MB (default 1024) of incompressible data: our streamed
  tar + age step (:func:`studies.extracts.package.encrypt_directory`), pyrage alone on the same
  tar bytes, and the ``age`` CLI on the same tar bytes; throughput ratio and peak memory.

Run::

    .venv/bin/python bench/extract_bench.py lds --subjects 100000
    .venv/bin/python bench/extract_bench.py encrypt --size-mb 1024
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def age_key(tmp: Path) -> tuple[Path, str]:
    ident = tmp / "id.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    return ident, pub


def child_lds(n: int) -> dict[str, object]:
    import polars as pl
    from nacl.signing import SigningKey

    from studies.extracts import build as b
    from studies.extracts import deidentify
    from studies.extracts import package as pkg
    from studies.extracts.tiers import TIER_RULES
    from studies.forms.models import Item

    def item(name: str, data_type: str, cls: str, fmt: str | None = None) -> Item:
        return Item(name=name, data_type=data_type, classification=cls, text_format=fmt,
                    form_version_id="v", group_id="g", position=0, field_type="text",
                    label_zh=name, label_en=name)

    items = {"crf.dob": item("dob", "date", "quasi_identifier"),
             "crf.postcode": item("postcode", "text", "quasi_identifier", "postcode"),
             "crf.ethnicity": item("ethnicity", "codelist", "quasi_identifier"),
             "crf.hbsag": item("hbsag", "codelist", "sensitive")}
    for i in range(46):
        kind = ("decimal", "integer", "date", "text")[i % 4]
        items[f"crf.c{i:02d}"] = item(f"c{i:02d}", kind, "clinical")
    t0 = time.perf_counter()
    data: dict[str, list[object]] = {
        "subject": [f"S01-{i:07d}" for i in range(n)], "event": ["baseline"] * n,
        "repeat": [1] * n, "status": ["complete"] * n,
        "dob": [(dt.date(1940, 1, 1) + dt.timedelta(days=(i * 7919) % 20000)).isoformat()
                for i in range(n)],
        "postcode": [f"{100000 + (i * 31) % 900:06d}" for i in range(n)],
        "ethnicity": [str(1 + i % 3) for i in range(n)],
        "hbsag": [str(i % 2) for i in range(n)]}
    for i in range(46):
        kind = ("decimal", "integer", "date", "text")[i % 4]
        data[f"c{i:02d}"] = (
            [f"{(j * 13) % 1000 / 10:.1f}" for j in range(n)] if kind == "decimal" else
            [str((j * 17) % 300) for j in range(n)] if kind == "integer" else
            [(dt.date(2024, 1, 1) + dt.timedelta(days=j % 700)).isoformat() for j in range(n)]
            if kind == "date" else [f"note {j % 977}" for j in range(n)])
    frames = {"crf": pl.DataFrame(data, schema={k: (pl.Int64 if k == "repeat" else pl.String)
                                                for k in data})}
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    lds = TIER_RULES["lds"]
    built = deidentify.deidentify_lds(frames, items, k=5, l_diversity=lds.l_diversity,
                                      max_suppression=lds.max_suppression, study_code="BENCH",
                                      token_project="BENCH/x", secret=b"s" * 32)
    t_deid = time.perf_counter() - t0
    checks = deidentify.pre_transfer_checks(built.tables, frames, "lds")
    out = Path(tempfile.mkdtemp(prefix="xbench-"))
    try:
        t0 = time.perf_counter()
        (out / "data").mkdir()
        df = built.tables[0].df.drop("status")
        b._write_csv(df, out / "data/crf.csv")
        df.write_parquet(out / "data/crf.parquet")
        manifest = json.dumps({"files": [{"name": n, "sha256": pkg.sha256_file(out / n)}
                                         for n in ("data/crf.csv", "data/crf.parquet")]})
        (out / "manifest.json").write_text(manifest)
        (out / "manifest.json.minisig").write_bytes(
            pkg.sign(manifest.encode(), SigningKey.generate(), trusted_comment="bench"))
        t_files = time.perf_counter() - t0
        _, pub = age_key(out)
        t0 = time.perf_counter()
        pkg.encrypt_directory(out, ["manifest.json", "manifest.json.minisig", "data/crf.csv",
                                    "data/crf.parquet"], out / "p.age", pub)
        t_enc = time.perf_counter() - t0
        size = (out / "p.age").stat().st_size
    finally:
        shutil.rmtree(out)
    return {"subjects": n, "fields": 50, "rows_released": df.height,
            "levels": built.deid.get("levels"), "suppressed": built.deid.get(
                "suppressed_subjects"), "checks_passed": checks["passed"],
            "generate_s": round(t_gen, 2), "deidentify_s": round(t_deid, 2),
            "files_s": round(t_files, 2), "encrypt_s": round(t_enc, 2),
            "package_mb": round(size / 2**20, 1), "peak_rss_mb": round(peak_mb(), 1)}


def child_encrypt(size_mb: int, what: str) -> dict[str, object]:
    from studies.extracts import package as pkg

    work = Path(os.environ["XBENCH_DIR"])
    pub = (work / "pub").read_text().strip()
    t0 = time.perf_counter()
    if what == "ours":
        pkg.encrypt_directory(work / "files", ["data.bin"], work / "ours.age", pub)
    else:  # pyrage alone on the tar bytes
        import pyrage

        rec = pyrage.x25519.Recipient.from_str(pub)
        with open(work / "p.tar", "rb") as r, open(work / "pyrage.age", "wb") as w:
            pyrage.encrypt_io(r, w, [rec])
    secs = time.perf_counter() - t0
    return {"what": what, "seconds": round(secs, 2), "mb_per_s": round(size_mb / secs, 1),
            "peak_rss_mb": round(peak_mb(), 1)}


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("part", choices=["lds", "encrypt"])
    p.add_argument("--subjects", type=int, default=100_000)
    p.add_argument("--size-mb", type=int, default=1024)
    p.add_argument("--child", action="store_true")
    p.add_argument("--what", default="ours")
    a = p.parse_args()
    if a.child:
        res = child_lds(a.subjects) if a.part == "lds" else child_encrypt(a.size_mb, a.what)
        print(json.dumps(res))
        return
    if a.part == "lds":
        print(json.dumps(run_child(["lds", "--subjects", str(a.subjects)]), indent=1))
        return
    work = Path(tempfile.mkdtemp(prefix="xbench-enc-"))
    try:
        (work / "files").mkdir()
        with open(work / "files/data.bin", "wb") as fh:
            for _ in range(a.size_mb):
                fh.write(os.urandom(2**20))
        _, pub = age_key(work)
        (work / "pub").write_text(pub)
        subprocess.run(["tar", "cf", str(work / "p.tar"), "-C", str(work / "files"),
                        "data.bin"], check=True)
        env = {"XBENCH_DIR": str(work)}
        ours = run_child(["encrypt", "--size-mb", str(a.size_mb), "--what", "ours"], env)
        alone = run_child(["encrypt", "--size-mb", str(a.size_mb), "--what", "pyrage"], env)
        t0 = time.perf_counter()
        subprocess.run(["age", "-r", pub, "-o", str(work / "cli.age"), str(work / "p.tar")],
                       check=True)
        cli = time.perf_counter() - t0
        res = {"size_mb": a.size_mb, "ours_tar_plus_age": ours, "pyrage_only": alone,
               "age_cli": {"seconds": round(cli, 2), "mb_per_s": round(a.size_mb / cli, 1)},
               "ratio_ours_vs_age_cli": round(cli / float(ours["seconds"]), 2),  # type: ignore
               "ratio_pyrage_vs_age_cli": round(cli / float(alone["seconds"]), 2)}  # type: ignore
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
