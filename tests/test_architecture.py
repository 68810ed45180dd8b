"""Arrows point down: edc → studies → audit_trail; deid imports none of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "audit_trail": {"studies", "edc", "deid"},
    "deid": {"studies", "edc", "audit_trail"},
    "studies": {"edc"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_up(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path) & FORBIDDEN[package]:
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_routes_hold_no_queries() -> None:
    """Thin routes: no select(), session.add or commit in the web layer."""
    bad = []
    # The CLI package, the demo loader and the request plumbing may hold transactions.
    allowed = {"edc/db.py", "edc/demo.py", "edc/deps.py", "edc/errors.py"}
    for path in sorted((ROOT / "edc").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in allowed or rel.startswith("edc/cli/"):
            continue
        src = path.read_text()
        for needle in ("select(", "session.add(", ".commit()"):
            if needle in src:
                bad.append(f"{path.relative_to(ROOT)}: {needle}")
    assert bad == []
