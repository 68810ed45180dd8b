"""deid is a pure library: it imports nothing from edc, studies or audit_trail."""

import ast
from pathlib import Path

import deid

FORBIDDEN = {"edc", "studies", "audit_trail", "sqlalchemy", "sqlmodel", "fastapi"}


def test_deid_imports_only_stdlib_and_dataframe_libraries():
    root = Path(deid.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN, f"{path.name} imports {n}"
