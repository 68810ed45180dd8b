"""The worked example in docs/deid.md runs as written."""

import re
from pathlib import Path

import pandas as pd
import pycanon.anonymity as pa

DOC = Path(__file__).resolve().parents[2] / "docs" / "deid.md"


def test_worked_example_runs():
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/deid.md has no python example"
    ns: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), ns)
    # the example's k-anonymous release passes the independent pycanon check too
    res = ns["result"]
    pdf = pd.DataFrame({c: res.table[c].to_list() for c in res.table.columns})
    assert pa.k_anonymity(pdf, ["age", "zip", "sex"]) >= 5
    assert pa.l_diversity(pdf, ["age", "zip", "sex"], ["hbv"]) >= 2
