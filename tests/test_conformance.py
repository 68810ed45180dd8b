"""docs/conformance.md is rendered from studies/oversight/conformance.py and committed up to
date; every test a row names exists (found by parsing the test files, not by importing them);
a covered or partial row names its feature and at least one test; every clause of the sections
the table must cover has a row; and a test a row names has not changed its rule since the row
was last checked against it (its fingerprint, the SHA-256 of its parsed code, is recorded in
tests/conformance_fingerprints.json: after re-reading the rows that name a changed test, run
``python tests/test_conformance.py`` to record the new fingerprints)."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from studies.oversight import conformance
from studies.oversight.conformance import Row, Status

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "conformance.md"
FINGERPRINTS = ROOT / "tests" / "conformance_fingerprints.json"


def test_functions() -> dict[str, str]:
    """Each test function's id and fingerprint: the SHA-256 of its code as parsed (comments
    and layout do not count; a changed assertion, input or decorator does)."""
    out: dict[str, str] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    node.name.startswith("test_"):
                out[f"{rel}::{node.name}"] = hashlib.sha256(
                    ast.dump(node, include_attributes=False).encode()).hexdigest()
    return out


def test_ids() -> set[str]:
    return set(test_functions())


def named_fingerprints() -> dict[str, str]:
    """The fingerprints of the tests the table names, as they are now."""
    now = test_functions()
    return {t: now[t] for r in conformance.all_rows() for t in r.tests if t in now}


def changed(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    return sorted(t for t in now if recorded.get(t) != now[t])


test_functions.__test__ = False  # type: ignore[attr-defined]  # helpers, not tests
test_ids.__test__ = False  # type: ignore[attr-defined]


def problems(rows: list[Row], known: set[str]) -> list[str]:
    out = []
    for r in rows:
        out += [f"{r.clause}: no such test {t}" for t in r.tests if t not in known]
        if r.status in (Status.COVERED, Status.PARTIAL) and not (r.feature and r.tests):
            out.append(f"{r.clause}: {r.status} needs a feature and a test")
    return out


def test_committed_table_is_up_to_date() -> None:
    assert DOC.read_text() == conformance.render(), (
        "docs/conformance.md is stale: run `edc conformance table --out docs/conformance.md`")


def test_every_named_test_exists_and_every_covered_row_has_one() -> None:
    assert problems(conformance.all_rows(), test_ids()) == []


def test_no_named_test_changed_its_rule_since_its_rows_were_checked() -> None:
    recorded = json.loads(FINGERPRINTS.read_text())
    assert changed(recorded, named_fingerprints()) == [], (
        "these tests changed since the conformance rows naming them were checked: re-read "
        "those rows in studies/oversight/conformance.py, then run "
        "`python tests/test_conformance.py` to record the new fingerprints")


def test_a_changed_assertion_changes_the_fingerprint(tmp_path: Path) -> None:
    before = "def test_x():\n    assert f() == 1\n"
    after = "def test_x():\n    assert f() == 2  # the rule changed\n"
    layout = "def test_x():\n    # only a comment and the layout\n    assert f()   ==   1\n"

    def fp(src: str) -> str:
        node = ast.parse(src).body[0]
        return hashlib.sha256(ast.dump(node, include_attributes=False).encode()).hexdigest()

    assert fp(before) != fp(after) and fp(before) == fp(layout)
    assert changed({"t": fp(before)}, {"t": fp(after)}) == ["t"]
    assert changed({"t": fp(before)}, {"t": fp(layout)}) == []


def test_the_checks_catch_a_wrong_test_id_and_a_row_without_a_test() -> None:
    known = test_ids()
    bad = [Row("§x", "要求", "requirement", Status.COVERED, "feature",
               ("tests/test_conformance.py::test_that_does_not_exist",)),
           Row("§y", "要求", "requirement", Status.PARTIAL, "feature"),
           Row("§z", "要求", "requirement", Status.MISSING)]
    assert problems(bad, known) == [
        "§x: no such test tests/test_conformance.py::test_that_does_not_exist",
        "§y: partial needs a feature and a test"]


def test_every_clause_the_table_must_cover_has_a_row() -> None:
    clauses = " ".join(r.clause for r in conformance.all_rows())
    needed = ([f"§6.2 {c}" for c in "abcde"] + [f"§7 {c}" for c in "abcdefghijklmnopqr"]
              + [f"§10.2 {c}" for c in "abcdefghijk"]
              + [f"§11.3.4.1 {c}" for c in "abcd"] + ["§11.3.4.2", "§11.3.4.3"]
              + [f"§11.3.4.4 {c}" for c in "bcd"] + [f"§11.3.4.5 {c}" for c in "abcde"]
              + [f"§11.3.4.6 a{n}" for n in range(1, 6)]
              + [f"§11.3.4.6 b{n}" for n in (1, 2, 3, 5)]
              + [f"§11.3.4.7 {c}" for c in "abcdefghi"]
              + ["§11.3.4.8 a", "§11.3.4.8 b", "§11.3.4.8 c", "§11.3.4.8 d–g"]
              + [f"§11.3.4.9 {c}" for c in "abcde"]
              + [f"表6 {a}" for a in ("姓名", "联系方式", "日期", "出生日期", "年龄", "号码",
                                      "医疗机构内部号码")]
              + ["§11.3.2 e", "§11.3.3", "附录C", "E.3", "F 安全管理: 自查"])
    assert [c for c in needed if c not in clauses] == []


if __name__ == "__main__":  # record the fingerprints after re-checking the rows
    FINGERPRINTS.write_text(json.dumps(named_fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(named_fingerprints())} fingerprints in {FINGERPRINTS}")
