"""The worked example in docs/deid.md runs as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "deid.md"


def test_worked_example_runs():
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/deid.md has no python example"
    exec(compile(blocks[0], str(DOC), "exec"), {})
