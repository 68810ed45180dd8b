"""The import order, parsed with ``ast`` (every import statement, also those inside functions).

- Packages: ``edc`` → ``studies`` → ``audit_trail``; ``deid`` and ``audit_trail`` import no
  other package of ours; nothing in ``studies`` imports ``edc``.
- Inside ``studies``: the kernel imports no domain; a domain's ``models.py`` imports only the
  kernel and other domains' models; ``guards.py`` only the kernel and models; every other
  module of a domain imports the kernel, the guards, any domain's models and the modules of the
  domains before it in :data:`DOMAIN_ORDER`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edc", "studies", "audit_trail", "deid")
FORBIDDEN = {
    "audit_trail": {"studies", "edc", "deid"},
    "deid": {"studies", "edc", "audit_trail"},
    "studies": {"edc"},
}
# The domains of ``studies`` from the bottom up: each may use the ones before it.
DOMAIN_ORDER = ("jobs", "accounts", "registry", "ethics", "consent", "subjects", "forms",
                "signoff", "entry", "locks", "randomisation", "extracts", "overview", "retention",
                "oversight")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module (and ``module.name``) an import statement in ``path`` names, with relative
    imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_of(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names |= {f"{mod}.{a.name}" for a in node.names}
    return names


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_up(package: str) -> None:
    bad = []
    for path in python_files(package):
        for name in imports_of(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def _allowed(src: tuple[str, ...], dst: tuple[str, ...]) -> bool:
    """May module ``studies.<src>`` import ``studies.<dst>``? (both without the prefix)"""
    s_dom, d_dom = src[0], dst[0]
    if s_dom == d_dom:
        return True
    if d_dom == "kernel":
        return True
    if s_dom == "kernel":
        return False
    d_is_models = len(dst) > 1 and dst[1] == "models"
    if src[-1] == "models" or s_dom == "guards":
        return d_is_models
    if d_dom == "guards" or d_is_models:
        return True
    if s_dom not in DOMAIN_ORDER or d_dom not in DOMAIN_ORDER:
        return False
    return DOMAIN_ORDER.index(d_dom) < DOMAIN_ORDER.index(s_dom)


def test_domains_import_in_order() -> None:
    bad = []
    for path in python_files("studies"):
        src = tuple(module_of(path).split(".")[1:])
        if not src:
            continue
        for name in sorted(imports_of(path)):
            parts = name.split(".")
            if parts[0] != "studies" or len(parts) < 2:
                continue
            dst = tuple(parts[1:])
            # "from studies.x import service" names the module studies.x.service
            if not _allowed(src, dst):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_every_domain_is_in_the_order() -> None:
    """A new domain package must be given its place in the order."""
    found = {p.name for p in (ROOT / "studies").iterdir()
             if p.is_dir() and (p / "__init__.py").exists()}
    assert found - {"kernel"} == set(DOMAIN_ORDER)


def test_the_order_check_catches_an_arrow_against_it() -> None:
    """The rule itself: an earlier domain may not use a later one, models stay models-only."""
    assert _allowed(("locks", "service"), ("entry", "service"))
    assert not _allowed(("entry", "service"), ("locks", "service"))
    assert not _allowed(("entry", "models"), ("entry2", "service"))
    assert not _allowed(("kernel", "actor"), ("accounts", "models"))
    assert not _allowed(("guards",), ("locks", "service"))
    assert _allowed(("guards",), ("locks", "models"))


QUERY_BUILDERS = {"select", "insert", "update", "delete", "text"}
SESSION_CALLS = {"add", "add_all", "commit", "execute", "scalars", "flush", "delete"}
# Delivery modules that own a session by design: the database set-up, the request transaction,
# the refusal audit, the CLI, the demo loader and the background jobs.
OWN_SESSIONS = ("edc/db.py", "edc/deps.py", "edc/sessions.py", "edc/errors.py", "edc/demo.py",
                "edc/cli", "edc/jobs")


def query_use(path: Path) -> list[str]:
    """Queries and session writes in a module: importing a query builder from SQLAlchemy or
    SQLModel, or calling ``session.add/commit/execute…`` on a name or attribute ``session``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "sqlalchemy", "sqlmodel"):
            found += [f"imports {a.name} from {node.module}" for a in node.names
                      if a.name in QUERY_BUILDERS]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in SESSION_CALLS:
            target = node.func.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in ("session", "db", "s"):
                found.append(f"calls {name}.{node.func.attr}()")
    return found


def test_routes_hold_no_queries() -> None:
    """Thin routes: no query and no session write in the web layer (parsed, not grepped: an
    HTML ``h.select`` is not a query, ``sqlalchemy.select`` under another name still is)."""
    bad = []
    for path in sorted((ROOT / "edc").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(OWN_SESSIONS):
            continue
        bad += [f"{rel}: {what}" for what in query_use(path)]
    assert bad == []


def test_the_route_check_sees_a_renamed_select(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("from sqlalchemy import select as pick\n"
                   "def f(session):\n    session.add(1)\n    return h.select()\n")
    assert query_use(mod) == ["imports select from sqlalchemy", "calls session.add()"]


def plain_actions(path: Path) -> list[str]:
    """Ledger actions written as plain strings (``action="x.y"``) instead of ``Action.X``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, ast.keyword) and node.arg == "action":
            values = [node.value]
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "action" for t in node.targets):
            values = [node.value]
        for v in values:
            branches = [v.body, v.orelse] if isinstance(v, ast.IfExp) else [v]
            for b in branches:
                text = b.value if isinstance(b, ast.Constant) else None
                if isinstance(text, str) and "." in text and not text.startswith("/"):
                    found.append(f"line {b.lineno}: {text!r}")
    return found


def test_ledger_actions_are_typed() -> None:
    """Every kind of ledger entry is a member of ``studies.kernel.events.Action``, so a reader
    can list them in one place."""
    bad = []
    for package in ("studies", "edc"):
        for path in python_files(package):
            bad += [f"{path.relative_to(ROOT)} {hit}" for hit in plain_actions(path)]
    assert bad == []


def test_the_action_check_sees_a_plain_string(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text('ledger.append(s, action="entry.update")\n'
                   'ledger.append(s, action=Action.ENTRY_UPDATE)\n'
                   'h.form(action="/login")\n')
    assert plain_actions(mod) == ["line 1: 'entry.update'"]
