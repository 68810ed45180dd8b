"""docs/permissions.md is rendered from the code and committed up to date."""

from __future__ import annotations

from pathlib import Path

from edc.permissions_doc import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "permissions.md"


def test_committed_permission_table_is_up_to_date() -> None:
    assert DOC.read_text() == render(), (
        "docs/permissions.md is stale: run `edc accounts permissions --out docs/permissions.md`")
