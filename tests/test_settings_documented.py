"""Every setting is in the README's table (ARCHITECTURE convention 11)."""

from __future__ import annotations

import re
from pathlib import Path

from edc.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `(EDC_[A-Z_]+)`", README.read_text(), flags=re.M))
    expected = {f"EDC_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
